//! The exporter against a scripted local server: what it sends, and what it does with
//! every answer the OTLP specification distinguishes. The server counts requests, so
//! retry counts are proven on the server side.
//!
//! Time: the tests about waiting run with `start_paused`. reqwest copes with paused
//! time here because the scripted server runs on the same current-thread runtime and
//! connects by IP literal: whenever the runtime parks, tokio first polls the sockets
//! (loopback data is already there), and only advances the clock when nothing is ready,
//! that is when every task waits on a timer (a backoff, a `Retry-After`, the server's
//! scripted delay, the request timeout). So delays are exact in virtual time and cost no
//! real time. (A peer on another thread or process, or a host name resolved on a
//! blocking thread, would break that: the clock could jump past a timeout while the
//! answer is still on its way; those tests run on real time.)

mod exporter_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use exporter_support::{
    ScriptedServer, Step, bounded, fast_retry, logs, metrics, test_exporter, traces,
};
use otlp_core::codec::{self, json, protobuf};
use otlp_core::compression::{Compression, decompress};
use otlp_core::error::RpcStatus;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlp_core::sink::Accepted;
use otlp_core::{Encoding, ExportError, Exporter, OtlpResponse, PartialSuccess, Payload, Signal};
use otlp_resilience::breaker::{BreakerState, CircuitBreakerConfig, SlidingWindow};
use otlp_resilience::retry::RetryPolicy;
use otlp_transport_http::exporter::{FailureReason, HttpExporter, HttpVersion, Protocol};

fn status_body(encoding: Encoding, code: i32, message: &str) -> Bytes {
    let status = RpcStatus {
        code,
        message: message.to_owned(),
        details: Vec::new(),
    };
    match encoding {
        Encoding::Protobuf => protobuf::encode(&status),
        Encoding::Json => Bytes::from(status.to_json()),
    }
}

fn gap(server: &ScriptedServer, i: usize) -> Duration {
    let arrivals = server.arrivals();
    arrivals[i + 1].at.duration_since(arrivals[i].at)
}

// --- what is sent -------------------------------------------------------------------

#[tokio::test]
async fn sends_protobuf_as_is_with_headers() {
    let server = ScriptedServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url())
        .header("api-key", "secret")
        .header("x-tenant", "a b")
        .build()
        .unwrap();
    let request = traces(10);
    let accepted = bounded("export", exporter.export_traces(&request))
        .await
        .unwrap();
    assert_eq!(accepted, Accepted::full());

    let payload = Payload::from_request(&logs(3));
    let expected_body = payload.body().clone();
    bounded("export", exporter.export_payload(payload))
        .await
        .unwrap();

    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 2);
    let first = &arrivals[0];
    assert_eq!(first.path, "/v1/traces");
    assert_eq!(first.version, http::Version::HTTP_11);
    assert_eq!(first.header("content-type"), "application/x-protobuf");
    assert_eq!(first.header("content-encoding"), "");
    assert_eq!(first.header("api-key"), "secret");
    assert_eq!(first.header("x-tenant"), "a b");
    assert!(first.header("user-agent").starts_with("otlp-rust/"));
    let back: ExportTraceServiceRequest = protobuf::decode(&first.body).unwrap();
    assert_eq!(back, request);
    // A payload's bytes go out untouched.
    assert_eq!(arrivals[1].path, "/v1/logs");
    assert_eq!(arrivals[1].body, expected_body);

    let stats = exporter.stats();
    assert_eq!(
        (stats.requests, stats.exports, stats.items_accepted),
        (2, 2, 13)
    );
}

#[tokio::test]
async fn compresses_with_gzip_and_zstd() {
    for compression in [Compression::Gzip, Compression::Zstd] {
        let server = ScriptedServer::always(Step::ok()).await;
        let exporter = test_exporter(&server.url())
            .compression(compression)
            .build()
            .unwrap();
        let request = metrics(20);
        bounded("export", exporter.export_metrics(&request))
            .await
            .unwrap();
        let arrival = &server.arrivals()[0];
        assert_eq!(arrival.path, "/v1/metrics");
        assert_eq!(arrival.header("content-encoding"), compression.as_str());
        let plain = decompress(compression, &arrival.body, 1 << 24).unwrap();
        assert!(
            plain.len() > arrival.body.len(),
            "{compression} shrinks the body"
        );
        let back: ExportMetricsServiceRequest = protobuf::decode(&plain).unwrap();
        assert_eq!(back, request);
    }
}

#[tokio::test]
async fn json_protocol_sends_otlp_json() {
    let server = ScriptedServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url())
        .protocol(Protocol::HttpJson)
        .build()
        .unwrap();
    let request = traces(2);
    bounded("export", exporter.export_traces(&request))
        .await
        .unwrap();
    // A protobuf payload is decoded and written as OTLP/JSON.
    bounded(
        "export",
        exporter.export_payload(Payload::from_request(&logs(2))),
    )
    .await
    .unwrap();
    let arrivals = server.arrivals();
    assert_eq!(arrivals[0].header("content-type"), "application/json");
    let text = std::str::from_utf8(&arrivals[0].body).unwrap();
    assert!(
        text.contains(r#""traceId":"5b8efff798038103d269b633813fc60c""#),
        "{text}"
    );
    let back: ExportTraceServiceRequest = json::from_slice(&arrivals[0].body).unwrap();
    assert_eq!(back, request);
    let back: ExportLogsServiceRequest = json::from_slice(&arrivals[1].body).unwrap();
    assert_eq!(back, logs(2));
}

#[tokio::test]
async fn speaks_http2_with_prior_knowledge_and_pools_connections() {
    let server = ScriptedServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url())
        .http_version(HttpVersion::Http2Only)
        .build()
        .unwrap();
    for _ in 0..3 {
        bounded("export", exporter.export_logs(&logs(1)))
            .await
            .unwrap();
    }
    assert!(
        server
            .arrivals()
            .iter()
            .all(|a| a.version == http::Version::HTTP_2)
    );
    assert_eq!(server.connections(), 1, "one pooled HTTP/2 connection");

    let server = ScriptedServer::always(Step::ok()).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    for _ in 0..3 {
        bounded("export", exporter.export_logs(&logs(1)))
            .await
            .unwrap();
    }
    assert!(
        server
            .arrivals()
            .iter()
            .all(|a| a.version == http::Version::HTTP_11)
    );
    assert_eq!(
        server.connections(),
        1,
        "one kept-alive HTTP/1.1 connection"
    );
}

#[tokio::test]
async fn configuration_from_the_environment() {
    let server = ScriptedServer::always(Step::ok()).await;
    let env = std::collections::HashMap::from([
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT".to_owned(),
            format!("{}/custom/logs", server.url()),
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS".to_owned(),
            "authorization=Bearer%20t0k3n".to_owned(),
        ),
        (
            "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION".to_owned(),
            "gzip".to_owned(),
        ),
    ]);
    let exporter = HttpExporter::builder()
        .env(env)
        .retry(fast_retry(1))
        .build()
        .unwrap();
    assert_eq!(
        exporter.settings(Signal::Traces).endpoint(),
        "http://127.0.0.1:9/v1/traces"
    );
    bounded("export", exporter.export_logs(&logs(2)))
        .await
        .unwrap();
    let arrival = &server.arrivals()[0];
    assert_eq!(arrival.path, "/custom/logs");
    assert_eq!(arrival.header("authorization"), "Bearer t0k3n");
    assert_eq!(arrival.header("content-encoding"), "gzip");
}

// --- retryable answers ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn retries_429_after_retry_after_seconds() {
    let server = ScriptedServer::start(
        vec![Step::status(429).header("retry-after", "1")],
        Step::ok(),
    )
    .await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let accepted = bounded("export", exporter.export_traces(&traces(4)))
        .await
        .unwrap();
    assert_eq!(accepted, Accepted::full());
    assert_eq!(server.requests(), 2);
    // Exactly the server's delay, not the 10-50 ms backoff.
    assert_eq!(gap(&server, 0), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn retries_503_after_retry_after_http_date() {
    // An HTTP-date has one-second resolution and is compared with the wall clock, which
    // runs on (unlike the paused test clock) between now and when the exporter reads it:
    // a date 6 s ahead on a whole second, and a margin of 3 s for a loaded machine.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(now.as_secs() + 6);
    let server = ScriptedServer::start(
        vec![Step::status(503).header("retry-after", httpdate::fmt_http_date(at))],
        Step::ok(),
    )
    .await;
    let policy = RetryPolicy::builder()
        .max_attempts(2)
        .initial_backoff(Duration::from_millis(10))
        .max_server_delay(Duration::from_secs(10))
        .no_budget()
        .build();
    let exporter = test_exporter(&server.url()).retry(policy).build().unwrap();
    bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap();
    assert_eq!(server.requests(), 2);
    let waited = gap(&server, 0);
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_secs(6),
        "retried after {waited:?}, not at the date"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_cap_gives_up_and_says_when() {
    let server = ScriptedServer::always(Step::status(429).header("retry-after", "3600")).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(7)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 1, "no retry before the server's delay");
    assert_eq!(failure.reason(), FailureReason::ServerDelayTooLong);
    assert_eq!(failure.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(failure.items(), 7);
    assert!(failure.is_transient());
    assert!(matches!(
        failure.error(),
        ExportError::Http { status: 429, .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn retries_502_503_504_then_succeeds() {
    let server = ScriptedServer::start(
        vec![Step::status(502), Step::status(503), Step::status(504)],
        Step::ok(),
    )
    .await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    bounded("export", exporter.export_metrics(&metrics(2)))
        .await
        .unwrap();
    assert_eq!(server.requests(), 4);
    assert_eq!(exporter.stats().requests, 4);
    // Full-jitter backoff: at most 10 ms, 20 ms, 40 ms before retries 1, 2, 3.
    for (i, cap) in [10, 20, 40].into_iter().enumerate() {
        let waited = gap(&server, i);
        assert!(
            waited <= Duration::from_millis(cap),
            "retry {}: {waited:?}",
            i + 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn default_retry_policy_schedule() {
    let server = ScriptedServer::always(Step::status(503)).await;
    let exporter = HttpExporter::builder()
        .no_env()
        .endpoint(server.url())
        .no_circuit_breaker()
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let failure = bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap_err();
    // 5 attempts, backoff capped at 1 s, 2 s, 4 s, 5 s (full jitter), well within 30 s.
    assert_eq!(server.requests(), 5);
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    for (i, cap) in [1, 2, 4, 5].into_iter().enumerate() {
        let waited = gap(&server, i);
        assert!(
            waited <= Duration::from_secs(cap),
            "retry {}: {waited:?}",
            i + 1
        );
    }
    assert!(started.elapsed() <= Duration::from_secs(12));
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_naming_status_and_message() {
    let body = status_body(Encoding::Protobuf, 14, "ingest queue full");
    let server =
        ScriptedServer::always(Step::status(503).body("application/x-protobuf", body)).await;
    let exporter = test_exporter(&server.url())
        .retry(fast_retry(3))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(512)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 3);
    assert_eq!(failure.attempts(), 3);
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    let text = failure.to_string();
    assert!(
        text.starts_with("512 spans not delivered to http://"),
        "{text}"
    );
    assert!(text.contains("/v1/traces after 3 attempt(s)"), "{text}");
    assert!(text.contains("HTTP 503: ingest queue full"), "{text}");
    let stats = exporter.stats();
    assert_eq!((stats.failed_exports, stats.items_failed), (1, 512));
}

#[tokio::test(start_paused = true)]
async fn slow_server_times_out_and_is_retried() {
    let server = ScriptedServer::always(Step::ok().after(Duration::from_secs(3))).await;
    let exporter = test_exporter(&server.url())
        .timeout(Duration::from_millis(200))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let failure = bounded("export", exporter.export_logs(&logs(5)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 2);
    // Two timeouts and a backoff: nowhere near the server's 3 s.
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        failure.error(),
        &ExportError::Timeout(Duration::from_millis(200))
    );
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let server = ScriptedServer::start(vec![Step::Reset, Step::Reset], Step::ok()).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    bounded("export", exporter.export_traces(&traces(3)))
        .await
        .unwrap();
    assert_eq!(server.requests(), 3);

    let server = ScriptedServer::always(Step::Reset).await;
    let exporter = test_exporter(&server.url())
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(3)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 2);
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{failure}"
    );
}

#[tokio::test]
async fn refused_connections_are_transport_errors() {
    // Bind and drop: nothing listens on the port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exporter = test_exporter(&format!("http://127.0.0.1:{port}"))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap_err();
    assert_eq!(failure.attempts(), 2);
    match failure.error() {
        ExportError::Transport(message) => {
            assert!(message.to_lowercase().contains("connect"), "{message}")
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

// --- final answers ------------------------------------------------------------------

#[tokio::test]
async fn bad_data_is_not_retried_and_reports_the_status_message() {
    for (protocol, encoding) in [
        (Protocol::HttpProtobuf, Encoding::Protobuf),
        (Protocol::HttpJson, Encoding::Json),
    ] {
        let body = status_body(encoding, 3, "span 3 has an invalid trace id");
        let server =
            ScriptedServer::always(Step::status(400).body(encoding.content_type(), body)).await;
        let exporter = test_exporter(&server.url())
            .protocol(protocol)
            .build()
            .unwrap();
        let failure = bounded("export", exporter.export_traces(&traces(4)))
            .await
            .unwrap_err();
        assert_eq!(server.requests(), 1, "{protocol}: 400 is never retried");
        assert_eq!(failure.reason(), FailureReason::NotRetryable);
        assert_eq!(
            failure.error(),
            &ExportError::Http {
                status: 400,
                message: "span 3 has an invalid trace id".to_owned(),
                retry_after: None,
            }
        );
        assert!(!failure.is_transient());
    }
}

#[tokio::test]
async fn server_errors_other_than_502_503_504_are_final() {
    for status in [500, 401, 403, 404, 413] {
        let server = ScriptedServer::always(
            Step::status(status)
                .header("retry-after", "1")
                .body("text/plain", format!("status {status} here")),
        )
        .await;
        let exporter = test_exporter(&server.url()).build().unwrap();
        let failure = bounded("export", exporter.export_metrics(&metrics(1)))
            .await
            .unwrap_err();
        assert_eq!(server.requests(), 1, "{status} is not retried");
        let text = failure.to_string();
        assert!(text.contains(&format!("HTTP {status}")), "{text}");
        assert!(text.contains(&format!("status {status} here")), "{text}");
        assert_eq!(failure.reason(), FailureReason::NotRetryable);
    }
}

#[tokio::test]
async fn partial_success_is_surfaced_and_not_retried() {
    let partial = PartialSuccess {
        rejected: 2,
        message: "2 spans are older than the retention".to_owned(),
    };
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let response = ExportTraceServiceResponse::with_partial_success(Some(partial.clone()));
        let server = ScriptedServer::always(
            Step::ok().body(encoding.content_type(), codec::encode(encoding, &response)),
        )
        .await;
        let protocol = match encoding {
            Encoding::Protobuf => Protocol::HttpProtobuf,
            Encoding::Json => Protocol::HttpJson,
        };
        let exporter = test_exporter(&server.url())
            .protocol(protocol)
            .build()
            .unwrap();
        let accepted = bounded("export", exporter.export_traces(&traces(10)))
            .await
            .unwrap();
        assert_eq!(accepted.partial_success, Some(partial.clone()));
        assert_eq!(server.requests(), 1);
        let stats = exporter.stats();
        assert_eq!(
            (
                stats.partial_successes,
                stats.items_rejected,
                stats.items_accepted
            ),
            (1, 2, 8)
        );
    }
}

#[tokio::test]
async fn garbage_success_body_is_an_invalid_response_not_a_retry() {
    let server =
        ScriptedServer::always(Step::ok().body("application/x-protobuf", &b"\x0a\xff\xff"[..]))
            .await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let failure = bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 1);
    assert!(
        matches!(failure.error(), ExportError::InvalidResponse(_)),
        "{failure}"
    );

    // A proxy's plain "OK" carries no partial success: full success.
    let server = ScriptedServer::always(Step::ok().body("text/plain", "OK")).await;
    let exporter = test_exporter(&server.url()).build().unwrap();
    let accepted = bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap();
    assert_eq!(accepted, Accepted::full());
}

// --- without retry, with the circuit breaker, through the trait -----------------------

#[tokio::test]
async fn without_retry_a_retryable_error_is_returned_at_once() {
    let server = ScriptedServer::always(Step::status(503).header("retry-after", "2")).await;
    let exporter = test_exporter(&server.url()).no_retry().build().unwrap();
    let failure = bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 1);
    assert_eq!(failure.reason(), FailureReason::RetryDisabled);
    assert_eq!(failure.retry_after(), Some(Duration::from_secs(2)));
}

#[tokio::test(start_paused = true)]
async fn circuit_breaker_opens_per_endpoint_and_fails_fast() {
    let server = ScriptedServer::always(Step::status(503)).await;
    let exporter = test_exporter(&server.url())
        .retry(fast_retry(2))
        .circuit_breaker(
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::count(4))
                .minimum_calls(4)
                .failure_rate_threshold(50.0)
                .wait_in_open(Duration::from_secs(60)),
        )
        .build()
        .unwrap();
    for _ in 0..2 {
        let failure = bounded("export", exporter.export_traces(&traces(1)))
            .await
            .unwrap_err();
        assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    }
    assert_eq!(server.requests(), 4);
    let breaker = exporter.circuit_breaker(Signal::Traces).unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(breaker.name().as_str().ends_with("/v1/traces"));

    // Open: nothing is sent, and the failure says when to come back.
    let failure = bounded("export", exporter.export_traces(&traces(9)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 4, "an open breaker sends nothing");
    assert_eq!(failure.reason(), FailureReason::CircuitOpen);
    assert_eq!(failure.attempts(), 0);
    assert!(
        failure
            .retry_after()
            .is_some_and(|d| d > Duration::from_secs(50))
    );
    assert!(failure.to_string().contains("circuit breaker"), "{failure}");

    // Other endpoints have their own breaker.
    assert_eq!(
        exporter.circuit_breaker(Signal::Logs).unwrap().state(),
        BreakerState::Closed
    );
    bounded("export", exporter.export_logs(&logs(1)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 6);
}

#[tokio::test]
async fn exporter_trait_returns_classified_errors() {
    let body = status_body(Encoding::Protobuf, 3, "no spans");
    let server = ScriptedServer::start(
        vec![
            Step::ok(),
            Step::status(400).body("application/x-protobuf", body),
        ],
        Step::ok(),
    )
    .await;
    let exporter = test_exporter(&server.url())
        .name("collector-a")
        .build()
        .unwrap();
    let dynamic: &dyn Exporter = &exporter;
    assert_eq!(dynamic.name(), "collector-a");
    let payload = Payload::from_request(&traces(2));
    assert_eq!(
        bounded("export", dynamic.export(payload.clone())).await,
        Ok(Accepted::full())
    );
    let error = bounded("export", dynamic.export(payload.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ExportError::Http { status: 400, ref message, .. } if message == "no spans")
    );
    bounded("shutdown", dynamic.shutdown()).await.unwrap();
    let error = bounded("export", dynamic.export(payload))
        .await
        .unwrap_err();
    assert_eq!(error, ExportError::Shutdown);
    assert_eq!(server.requests(), 2, "nothing is sent after shutdown");
}

#[tokio::test]
async fn default_name_is_the_traces_endpoint_origin() {
    let exporter = HttpExporter::builder()
        .no_env()
        .endpoint("https://collector.example:4318/otlp")
        .build()
        .unwrap();
    assert_eq!(Exporter::name(&exporter), "https://collector.example:4318");
    assert_eq!(
        exporter.settings(Signal::Metrics).endpoint(),
        "https://collector.example:4318/otlp/v1/metrics"
    );
}
