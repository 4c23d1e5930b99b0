//! The OTLP/gRPC exporter against a real local tonic server that answers as scripted
//! (every status code with and without `RetryInfo`, partial success, slowly, dropping
//! the connection). The server records every call, so retry counts and delivered data
//! are proven on the server side.
//!
//! Time: most tests run with `start_paused`. The server runs on the test's own
//! current-thread runtime and is dialled by IP address, so whenever the runtime parks,
//! tokio first polls the sockets (loopback data is already there) and only advances the
//! clock when every task waits on a timer (a backoff, a `RetryInfo` delay, the server's
//! scripted delay, a timeout): delays are exact in virtual time and cost no real time.
//! The test with the system resolver (a blocking thread) runs on real time.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_core::codec::protobuf;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::sink::Accepted;
use otlp_core::{Compression, ExportError, Exporter, GrpcCode, PartialSuccess, Payload, Signal};
use otlp_resilience::breaker::{BreakerState, CircuitBreakerConfig, SlidingWindow};
use otlp_transport_grpc::exporter::{FailureReason, GrpcExporter};
use support::tonic_server::{
    ServerOptions, Step, TonicServer, bounded, fast_retry, logs, metrics, test_exporter, traces,
};
use tonic::Code;
use tonic::codec::CompressionEncoding;

/// The codes the OTLP specification says to retry (RESOURCE_EXHAUSTED only with
/// `RetryInfo`, tested separately).
const RETRYABLE: [Code; 6] = [
    Code::Cancelled,
    Code::DeadlineExceeded,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unavailable,
    Code::DataLoss,
];

/// Every non-OK code.
const ALL_ERRORS: [Code; 16] = [
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// An address nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A listener that accepts connections and never says a word (holding them open).
async fn silent_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

fn span_names(request: &ExportTraceServiceRequest) -> Vec<String> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect()
}

// --- what is sent -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn sends_encoded_bytes_as_they_are_with_metadata() {
    let server = TonicServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url())
        .header("api-key", "secret")
        .header("x-tenant", "a b")
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    assert_eq!(exporter.name(), server.url());

    let request = traces(10);
    let accepted = bounded("export", exporter.export_traces(&request))
        .await
        .unwrap();
    assert_eq!(accepted, Accepted::full());
    let payload = Payload::from_request(&logs(3));
    let sent_bytes = payload.body().clone();
    bounded("export", exporter.export_payload(payload))
        .await
        .unwrap();
    let request_metrics = metrics(4);
    bounded("export", exporter.export_metrics(&request_metrics))
        .await
        .unwrap();

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 3);
    let first = &arrivals[0];
    assert_eq!(first.path, Signal::Traces.grpc_path());
    assert_eq!(first.header("content-type"), "application/grpc");
    assert_eq!(first.header("api-key"), "secret");
    assert_eq!(first.header("x-tenant"), "a b");
    assert_eq!(first.header("grpc-timeout"), "3000000u");
    assert_eq!(first.header("grpc-encoding"), "");
    assert!(
        first.header("user-agent").starts_with("otlp-rust/"),
        "{}",
        first.header("user-agent")
    );
    assert_eq!(first.authority, server.addr().to_string());
    let back: ExportTraceServiceRequest = protobuf::decode(&first.body).unwrap();
    assert_eq!(back, request);
    // A payload's bytes arrive exactly as the pipeline held them.
    assert_eq!(arrivals[1].path, Signal::Logs.grpc_path());
    assert_eq!(arrivals[1].body, sent_bytes);
    assert_eq!(arrivals[2].path, Signal::Metrics.grpc_path());
    let back: ExportMetricsServiceRequest = protobuf::decode(&arrivals[2].body).unwrap();
    assert_eq!(back, request_metrics);
    // One connection for all three services.
    assert!(arrivals.iter().all(|a| a.connection == 0));

    let stats = exporter.stats();
    assert_eq!(
        (
            stats.requests,
            stats.exports,
            stats.items_accepted,
            stats.items_failed
        ),
        (3, 3, 17, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn compresses_with_gzip_and_zstd() {
    for compression in [Compression::Gzip, Compression::Zstd] {
        let server = TonicServer::always(Step::ok()).await;
        let exporter = test_exporter(&server.url())
            .compression(compression)
            .build()
            .unwrap();
        let request = metrics(50);
        bounded("export", exporter.export_metrics(&request))
            .await
            .unwrap();
        let arrival = &server.arrivals()[0];
        assert_eq!(arrival.header("grpc-encoding"), compression.as_str());
        // tonic decompressed it: the bytes are the encoded request, unchanged.
        assert_eq!(arrival.body, protobuf::encode(&request));
    }
}

#[tokio::test(start_paused = true)]
async fn accepts_compressed_responses() {
    for encoding in [CompressionEncoding::Gzip, CompressionEncoding::Zstd] {
        let server = TonicServer::start(
            Vec::new(),
            Step::partial(2, "two spans too old"),
            ServerOptions {
                send_compressed: Some(encoding),
                ..ServerOptions::default()
            },
        )
        .await;
        let exporter = test_exporter(&server.url()).build().unwrap();
        let accepted = bounded("export", exporter.export_traces(&traces(5)))
            .await
            .unwrap();
        assert_eq!(
            accepted.partial_success,
            Some(PartialSuccess {
                rejected: 2,
                message: "two spans too old".into()
            })
        );
        let offered = server.arrivals()[0]
            .header("grpc-accept-encoding")
            .to_owned();
        for name in ["gzip", "zstd"] {
            assert!(offered.contains(name), "{offered}");
        }
    }
}

// --- status handling ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn retries_exactly_the_retryable_codes() {
    for code in ALL_ERRORS {
        let server = TonicServer::always(Step::status(code)).await;
        let exporter = test_exporter(&server.url())
            .retry(fast_retry(3))
            .build()
            .unwrap();
        let failure = bounded("export", exporter.export_traces(&traces(7)))
            .await
            .unwrap_err();
        let retryable = RETRYABLE.contains(&code);
        let calls = if retryable { 3 } else { 1 };
        assert_eq!(server.count(), calls, "{code:?}");
        assert_eq!(failure.attempts(), calls as u32, "{code:?}");
        assert_eq!(failure.items(), 7);
        assert_eq!(failure.signal(), Signal::Traces);
        assert_eq!(
            failure.reason(),
            if retryable {
                FailureReason::AttemptsExhausted
            } else {
                FailureReason::NotRetryable
            },
            "{code:?}"
        );
        assert_eq!(failure.is_transient(), retryable, "{code:?}");
        match failure.error() {
            ExportError::Grpc {
                code: got, message, ..
            } => {
                assert_eq!(*got as i32, code as i32);
                assert!(message.starts_with("scripted"), "{message}");
            }
            other => panic!("{code:?}: expected a gRPC status, got {other:?}"),
        }
        let stats = exporter.stats();
        assert_eq!(
            (stats.items_accepted, stats.items_failed, stats.requests),
            (0, 7, calls as u64),
            "{code:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_info_makes_resource_exhausted_retryable_and_nothing_else() {
    for code in ALL_ERRORS {
        let server = TonicServer::always(Step::status_with_retry_info(
            code,
            Duration::from_millis(200),
        ))
        .await;
        let exporter = test_exporter(&server.url())
            .retry(fast_retry(3))
            .build()
            .unwrap();
        let failure = bounded("export", exporter.export_logs(&logs(2)))
            .await
            .unwrap_err();
        let retryable = RETRYABLE.contains(&code) || code == Code::ResourceExhausted;
        assert_eq!(
            server.count(),
            if retryable { 3 } else { 1 },
            "{code:?} with RetryInfo"
        );
        if retryable {
            assert_eq!(
                failure.error().retry_delay(),
                Some(Duration::from_millis(200))
            );
        }
    }
    // And without RetryInfo, RESOURCE_EXHAUSTED is final.
    let server = TonicServer::always(Step::status(Code::ResourceExhausted)).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let failure = bounded("export", exporter.export_logs(&logs(2)))
        .await
        .unwrap_err();
    assert_eq!(server.count(), 1);
    assert_eq!(failure.reason(), FailureReason::NotRetryable);
}

#[tokio::test(start_paused = true)]
async fn retry_info_delays_are_honoured() {
    let server = TonicServer::script(
        vec![
            Step::status_with_retry_info(Code::Unavailable, Duration::from_secs(2)),
            Step::status_with_retry_info(Code::ResourceExhausted, Duration::from_millis(1500)),
            Step::status(Code::Unavailable),
        ],
        Step::ok(),
    )
    .await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let accepted = bounded("export", exporter.export_traces(&traces(3)))
        .await
        .unwrap();
    assert_eq!(accepted, Accepted::full());
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 4);
    let gap = |i: usize| arrivals[i + 1].at.duration_since(arrivals[i].at);
    assert!(
        gap(0) >= Duration::from_secs(2) && gap(0) < Duration::from_millis(2050),
        "{:?}",
        gap(0)
    );
    assert!(
        gap(1) >= Duration::from_millis(1500) && gap(1) < Duration::from_millis(1550),
        "{:?}",
        gap(1)
    );
    // No RetryInfo: the policy's own backoff (at most 50 ms here).
    assert!(gap(2) <= Duration::from_millis(60), "{:?}", gap(2));
    // Every attempt carried the same bytes.
    assert!(arrivals.iter().all(|a| a.body == arrivals[0].body));
}

#[tokio::test(start_paused = true)]
async fn a_delay_longer_than_the_policy_allows_gives_up_with_it() {
    let server = TonicServer::always(Step::status_with_retry_info(
        Code::Unavailable,
        Duration::from_secs(60),
    ))
    .await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(4)))
        .await
        .unwrap_err();
    assert_eq!(server.count(), 1);
    assert_eq!(failure.reason(), FailureReason::ServerDelayTooLong);
    assert_eq!(failure.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(failure.items(), 4);
}

#[tokio::test(start_paused = true)]
async fn partial_success_is_returned_and_not_retried() {
    let server = TonicServer::always(Step::partial(3, "3 spans had no trace id")).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let accepted = bounded("export", exporter.export_traces(&traces(10)))
        .await
        .unwrap();
    assert_eq!(
        accepted.partial_success,
        Some(PartialSuccess {
            rejected: 3,
            message: "3 spans had no trace id".into()
        })
    );
    assert_eq!(server.count(), 1);
    let stats = exporter.stats();
    assert_eq!(
        (
            stats.partial_successes,
            stats.items_rejected,
            stats.items_accepted,
            stats.items_failed
        ),
        (1, 3, 7, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_server_times_out_and_is_retried() {
    let server = TonicServer::always(Step::slow(Duration::from_secs(10), Step::ok())).await;
    let exporter = test_exporter(&server.url())
        .timeout(Duration::from_secs(1))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_metrics(&metrics(6)))
        .await
        .unwrap_err();
    assert_eq!(
        failure.error(),
        &ExportError::Timeout(Duration::from_secs(1))
    );
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    assert_eq!((failure.attempts(), failure.items()), (2, 6));
    assert_eq!(server.count(), 2);
    assert_eq!(server.arrivals()[0].header("grpc-timeout"), "1000000u");

    // One slow answer, then a prompt one: delivered on the second call.
    server.set_script(
        vec![Step::slow(Duration::from_secs(10), Step::ok())],
        Step::ok(),
    );
    bounded("export", exporter.export_metrics(&metrics(6)))
        .await
        .unwrap();
    assert_eq!(server.count(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_connect_timeout_covers_the_tls_handshake() {
    let addr = silent_server().await;
    let exporter = test_exporter(&format!("https://127.0.0.1:{}", addr.port()))
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(10))
        .no_retry()
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let failure = bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert_eq!(failure.reason(), FailureReason::RetryDisabled);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_close_a_connection_whose_peer_went_silent() {
    // The peer accepts the connection and then says nothing, not even to HTTP/2 PINGs:
    // keepalive gives up on it long before the call's own timeout.
    let addr = silent_server().await;
    let exporter = test_exporter(&format!("http://{addr}"))
        .keep_alive_interval(Duration::from_secs(2))
        .keep_alive_timeout(Duration::from_secs(1))
        .keep_alive_while_idle(true)
        .timeout(Duration::from_secs(60))
        .no_retry()
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let failure = bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_retried_on_a_new_one() {
    let server = TonicServer::script(vec![Step::drop_connection()], Step::ok()).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let request = logs(5);
    bounded("export", exporter.export_logs(&request))
        .await
        .unwrap();
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert_ne!(arrivals[0].connection, arrivals[1].connection);
    let back: ExportLogsServiceRequest = protobuf::decode(&arrivals[1].body).unwrap();
    assert_eq!(back, request);

    // Always dropped: reported as not delivered, with every call counted.
    server.set_script(Vec::new(), Step::drop_connection());
    let failure = bounded("export", exporter.export_logs(&request))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    assert_eq!((failure.attempts(), failure.items()), (5, 5));
    assert_eq!(server.count(), 7);
    let stats = exporter.stats();
    assert_eq!((stats.items_accepted, stats.items_failed), (5, 5));
}

#[tokio::test(start_paused = true)]
async fn nothing_is_reported_sent_when_the_server_is_down() {
    let addr = closed_port().await;
    let exporter = test_exporter(&format!("http://{addr}"))
        .retry(fast_retry(3))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(9)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert!(failure.is_transient());
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    assert_eq!((failure.attempts(), failure.items()), (3, 9));
    assert_eq!(failure.endpoint(), format!("http://{addr}"));
    let stats = exporter.stats();
    assert_eq!(
        (
            stats.items_accepted,
            stats.items_failed,
            stats.failed_exports
        ),
        (0, 9, 1)
    );
    // Through the Exporter trait: the last error, classified.
    let err = bounded(
        "export",
        Exporter::export(&exporter, Payload::from_request(&traces(1))),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn an_oversized_request_fails_without_a_call() {
    let server = TonicServer::always(Step::ok()).await;
    let limit = protobuf::encode(&traces(1)).len();
    let exporter = test_exporter(&server.url())
        .max_encoding_message_size(limit)
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(20)))
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), FailureReason::NotRetryable);
    assert!(matches!(failure.error(), ExportError::InvalidRequest(_)));
    assert_eq!((failure.attempts(), failure.items()), (0, 20));
    assert_eq!(server.count(), 0);
    bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap();
    assert_eq!(server.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_response_is_not_retried() {
    // The server took the data; a response the exporter will not read must not make it
    // send the data again.
    let server = TonicServer::always(Step::partial(1, &"x".repeat(4096))).await;
    let exporter = test_exporter(&server.url())
        .max_decoding_message_size(1024)
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_logs(&logs(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::InvalidResponse(_)),
        "{:?}",
        failure.error()
    );
    assert_eq!(failure.reason(), FailureReason::NotRetryable);
    assert_eq!(server.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_refuses_further_exports() {
    let server = TonicServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    bounded("shutdown", Exporter::shutdown(&exporter))
        .await
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), FailureReason::Shutdown);
    let err = bounded(
        "export",
        Exporter::export(&exporter, Payload::from_request(&logs(1))),
    )
    .await
    .unwrap_err();
    assert_eq!(err, ExportError::Shutdown);
    assert_eq!(server.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_exporter_trait_classifies_server_statuses() {
    let server = TonicServer::script(vec![Step::ok()], Step::status(Code::InvalidArgument)).await;
    let exporter: Arc<dyn Exporter> = Arc::new(test_exporter(&server.url()).build().unwrap());
    let payload = Payload::from_request(&metrics(3));
    let accepted = bounded("export", exporter.export(payload.clone()))
        .await
        .unwrap();
    assert_eq!(accepted, Accepted::full());
    let err = bounded("export", exporter.export(payload))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExportError::Grpc {
                code: GrpcCode::InvalidArgument,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.count(), 2);
}

// --- circuit breakers and balancing -------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_open_breaker_sends_nothing() {
    let server = TonicServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url())
        .circuit_breaker(CircuitBreakerConfig::builder())
        .retry(fast_retry(3))
        .build()
        .unwrap();
    let endpoints = exporter.endpoints(Signal::Traces);
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].address, server.addr());
    let breaker = endpoints[0].breaker.clone().unwrap();
    breaker.force_open();
    let failure = bounded("export", exporter.export_traces(&traces(8)))
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), FailureReason::CircuitOpen);
    assert_eq!((failure.attempts(), failure.items()), (0, 8));
    assert!(
        failure.error().to_string().contains("nothing sent"),
        "{}",
        failure.error()
    );
    assert_eq!(server.count(), 0);
    breaker.reset();
    bounded("export", exporter.export_traces(&traces(8)))
        .await
        .unwrap();
    assert_eq!(server.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn balances_across_endpoints_and_routes_around_a_dead_one() {
    let a = TonicServer::always(Step::ok()).await;
    let b = TonicServer::always(Step::ok()).await;
    let dead = closed_port().await;
    let exporter = GrpcExporter::builder()
        .no_env()
        .endpoints([a.url(), b.url(), format!("http://{dead}")])
        .retry(fast_retry(4))
        .timeout(Duration::from_secs(5))
        .circuit_breaker(
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::count(4))
                .minimum_calls(2)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_secs(600)),
        )
        .build()
        .unwrap();
    assert_eq!(exporter.endpoints(Signal::Logs).len(), 3);

    // 60 exports, 8 at a time, each with its own span name.
    let mut sent = BTreeSet::new();
    for wave in 0..8 {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let n = wave * 8 + i;
            if n >= 60 {
                break;
            }
            let mut request = traces(1);
            request.resource_spans[0].scope_spans[0].spans[0].name = format!("span-{n}");
            sent.insert(format!("span-{n}"));
            let exporter = exporter.clone();
            tasks.push(tokio::spawn(async move {
                exporter.export_traces(&request).await
            }));
        }
        for task in tasks {
            bounded("export", task).await.unwrap().unwrap();
        }
    }

    // Everything arrived exactly once, at the two live endpoints, which both got calls.
    let mut received = BTreeSet::new();
    for server in [&a, &b] {
        assert!(server.count() > 0, "both live endpoints get calls");
        for arrival in server.arrivals() {
            let request: ExportTraceServiceRequest = protobuf::decode(&arrival.body).unwrap();
            for name in span_names(&request) {
                assert!(received.insert(name), "delivered twice");
            }
        }
    }
    assert_eq!(received, sent);
    assert_eq!(a.count() + b.count(), 60);

    // The dead endpoint's breaker opened; after that it gets no calls at all.
    let status = |addr: SocketAddr| {
        exporter
            .endpoints(Signal::Traces)
            .into_iter()
            .find(|e| e.address == addr)
            .unwrap()
    };
    let dead_status = status(dead);
    let breaker = dead_status.breaker.clone().unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(
        dead_status.calls >= 2 && dead_status.calls < 60,
        "{}",
        dead_status.calls
    );
    assert_eq!(exporter.stats().requests, 60 + dead_status.calls);
    for _ in 0..20 {
        bounded("export", exporter.export_traces(&traces(1)))
            .await
            .unwrap();
    }
    assert_eq!(status(dead).calls, dead_status.calls);
    assert_eq!(a.count() + b.count(), 80);
    assert_eq!(
        status(a.addr()).breaker.unwrap().state(),
        BreakerState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_goes_to_another_endpoint() {
    // Each server refuses its first call with UNAVAILABLE. Were the retry to go back to
    // the endpoint that just refused, that one would accept it (2 calls, one endpoint
    // untouched); going to the other one first takes 3 calls and touches both.
    let a = TonicServer::script(vec![Step::status(Code::Unavailable)], Step::ok()).await;
    let b = TonicServer::script(vec![Step::status(Code::Unavailable)], Step::ok()).await;
    let exporter = test_exporter(&a.url())
        .endpoints([a.url(), b.url()])
        .retry(fast_retry(3))
        .build()
        .unwrap();
    bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap();
    assert!(
        a.count() >= 1 && b.count() >= 1,
        "{} {}",
        a.count(),
        b.count()
    );
    assert_eq!(a.count() + b.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn re_resolution_moves_new_calls_and_loses_nothing_in_flight() {
    let a = TonicServer::always(Step::slow(Duration::from_secs(2), Step::ok())).await;
    let b = TonicServer::always(Step::ok()).await;
    let table = Arc::new(Mutex::new(vec![a.addr()]));
    let lookups = Arc::new(Mutex::new(Vec::new()));
    let exporter = GrpcExporter::builder()
        .no_env()
        .endpoint("http://collector.test:4317")
        .resolver({
            let table = Arc::clone(&table);
            let lookups = Arc::clone(&lookups);
            move |host: &str, port: u16| {
                lookups.lock().unwrap().push((host.to_owned(), port));
                Ok(table.lock().unwrap().clone())
            }
        })
        .resolve_interval(Duration::from_secs(30))
        .retry(fast_retry(3))
        .circuit_breaker(CircuitBreakerConfig::builder())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // Nothing resolved before the first export.
    assert!(exporter.endpoints(Signal::Traces).is_empty());

    // A call in flight on `a` (it answers after 2 s) ...
    let in_flight = tokio::spawn({
        let exporter = exporter.clone();
        async move { exporter.export_traces(&traces(1)).await }
    });
    a.wait_for(1).await;
    assert_eq!(
        lookups.lock().unwrap().as_slice(),
        [("collector.test".to_owned(), 4317)]
    );
    let addresses = |e: &GrpcExporter| {
        e.endpoints(Signal::Traces)
            .into_iter()
            .map(|s| s.address)
            .collect::<Vec<_>>()
    };
    assert_eq!(addresses(&exporter), [a.addr()]);
    assert_eq!(a.arrivals()[0].authority, "collector.test:4317");

    // ... while the name now resolves to `b` only: new calls go to `b` ...
    *table.lock().unwrap() = vec![b.addr()];
    bounded("refresh", exporter.refresh_endpoints(Signal::Traces))
        .await
        .unwrap();
    assert_eq!(addresses(&exporter), [b.addr()]);
    bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap();
    assert_eq!(b.count(), 1);
    // ... and the call on the removed address still completes.
    bounded("in-flight export", in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.count(), 1);
    assert_eq!(exporter.stats().items_accepted, 3);

    // Re-resolution on the interval: the name grows to both; an export after the
    // interval starts it, and the pool follows.
    *table.lock().unwrap() = vec![a.addr(), b.addr()];
    tokio::time::advance(Duration::from_secs(31)).await;
    bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap();
    bounded("re-resolution", async {
        while exporter.endpoints(Signal::Traces).len() < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert_eq!(lookups.lock().unwrap().len(), 3);
    let mut now = addresses(&exporter);
    now.sort();
    let mut want = vec![a.addr(), b.addr()];
    want.sort();
    assert_eq!(now, want);
}

#[tokio::test]
async fn resolves_localhost_with_the_system_resolver() {
    let server = TonicServer::always(Step::ok()).await;
    let exporter = test_exporter(&format!("http://localhost:{}", server.addr().port()))
        .resolve_interval(None)
        .build()
        .unwrap();
    bounded("export", exporter.export_logs(&logs(2)))
        .await
        .unwrap();
    let endpoints = exporter.endpoints(Signal::Logs);
    assert!(
        endpoints.iter().any(|e| e.address == server.addr()),
        "{endpoints:?}"
    );
    assert!(endpoints.iter().all(|e| e.address.ip().is_loopback()));
    assert_eq!(
        server.arrivals()[0].authority,
        format!("localhost:{}", server.addr().port())
    );
}

// --- configuration from the environment ---------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_environment_configures_the_exporter_and_code_wins() {
    let server = TonicServer::always(Step::ok()).await;
    let logs_server = TonicServer::always(Step::ok()).await;
    let env = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", server.url()),
        ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", logs_server.url()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=from-env,tenant=t%201".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "none".to_owned()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500".to_owned()),
    ]);
    let exporter = GrpcExporter::builder()
        .env(env.clone())
        .retry(fast_retry(2))
        .build()
        .unwrap();
    bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap();
    bounded("export", exporter.export_logs(&logs(2)))
        .await
        .unwrap();
    let traces_call = &server.arrivals()[0];
    assert_eq!(traces_call.path, Signal::Traces.grpc_path());
    assert_eq!(traces_call.header("api-key"), "from-env");
    assert_eq!(traces_call.header("tenant"), "t 1");
    assert_eq!(traces_call.header("grpc-encoding"), "gzip");
    assert_eq!(traces_call.header("grpc-timeout"), "2500000u");
    let logs_call = &logs_server.arrivals()[0];
    assert_eq!(logs_call.path, Signal::Logs.grpc_path());
    assert_eq!(logs_call.header("grpc-encoding"), "");
    assert_eq!(logs_call.header("api-key"), "from-env");

    let exporter = GrpcExporter::builder()
        .env(env)
        .header("api-key", "from-code")
        .timeout(Duration::from_secs(1))
        .compression(Compression::Zstd)
        .build()
        .unwrap();
    bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap();
    let call = &server.arrivals()[1];
    assert_eq!(call.header("api-key"), "from-code");
    assert_eq!(call.header("tenant"), "t 1");
    assert_eq!(call.header("grpc-encoding"), "zstd");
    assert_eq!(call.header("grpc-timeout"), "1000000u");
}

// --- runtimes -----------------------------------------------------------------------

#[test]
fn an_exporter_outlives_the_runtime_that_first_used_it() {
    // A connection's task runs on the runtime that opened it and ends with it; the
    // exporter opens another on the next runtime instead of failing from then on.
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(TonicServer::always(Step::ok()));
    let exporter = test_exporter(&server.url()).build().unwrap();
    for _ in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            bounded("export", exporter.export_traces(&traces(1)))
                .await
                .unwrap();
        });
    }
    assert_eq!(server.count(), 3);
    assert_eq!(exporter.stats().requests, 3);
}
