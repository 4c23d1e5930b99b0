//! The OTLP/gRPC receiver with real tonic clients over real sockets: data arrives byte
//! for byte, compression, partial success, refusals with RetryInfo, auth, routing,
//! concurrency limit, tenant, graceful shutdown, counters.

mod receiver_support;

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use otlp_core::proto::collector::logs::v1::ExportLogsServiceResponse;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceResponse;
use otlp_core::{GrpcCode, OtlpResponse, PartialSuccess, Refusal, Signal};
use otlp_transport_grpc::receiver::{
    AuthConfig, AuthenticatedKey, GrpcReceiver, GrpcReceiverConfig, Sinks, TenantFn, TenantSource,
};
use prost::Message as _;
use receiver_support::{
    Answer, Client, TestSink, bounded, encode, eventually, export_error, frame, grpc_request,
    request, send_h2, start, traces,
};
use tonic::Code;
use tonic::codec::CompressionEncoding;

#[tokio::test]
async fn every_signal_arrives_byte_identical() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let mut client = Client::connect(receiver.local_addr()).await;

    for (signal, items) in [(Signal::Traces, 3), (Signal::Metrics, 4), (Signal::Logs, 5)] {
        let sent = request(signal, items);
        let answer = client.export(signal, sent.clone()).await.expect("OK");
        // Full success: an empty Export*ServiceResponse.
        assert!(answer.is_empty(), "{signal}: {answer:?}");
        let payloads = sink.take();
        assert_eq!(payloads.len(), 1, "{signal}");
        let payload = &payloads[0];
        assert_eq!(payload.signal(), signal);
        assert_eq!(payload.items(), items as u64, "{signal}");
        assert_eq!(
            payload.body(),
            &sent,
            "{signal}: the client's bytes, as sent"
        );
    }

    let snapshot = receiver.metrics().snapshot();
    for signal in Signal::ALL {
        assert_eq!(snapshot.signal(signal).accepted, 1, "{signal}");
        assert_eq!(snapshot.signal(signal).responses, vec![(GrpcCode::Ok, 1)]);
    }
    assert_eq!(
        receiver.listener_metrics().snapshot().connections.accepted,
        1
    );
}

#[tokio::test]
async fn compressed_requests_arrive_decompressed() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let sent = request(Signal::Traces, 200);
    for encoding in [
        CompressionEncoding::Gzip,
        CompressionEncoding::Zstd,
        CompressionEncoding::Deflate,
    ] {
        let mut client = Client::connect(receiver.local_addr())
            .await
            .compressing(encoding);
        client
            .export(Signal::Traces, sent.clone())
            .await
            .unwrap_or_else(|s| panic!("{encoding:?}: {s:?}"));
        let payloads = sink.take();
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0].body(), &sent, "{encoding:?}");
        assert_eq!(payloads[0].items(), 200);
    }
    let traces = receiver.metrics().snapshot().traces;
    assert_eq!(traces.accepted, 3);
    assert_eq!(traces.bytes_decompressed, 3 * sent.len() as u64);
    assert!(
        traces.bytes_received < traces.bytes_decompressed / 2,
        "compressed on the wire: {traces:?}"
    );
}

#[tokio::test]
async fn partial_success_is_returned() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let mut client = Client::connect(receiver.local_addr()).await;
    sink.answer_with(Answer::Partial {
        rejected: 2,
        message: "2 spans without a name".to_owned(),
    });
    let expected = Some(PartialSuccess {
        rejected: 2,
        message: "2 spans without a name".to_owned(),
    });

    let answer = client
        .export(Signal::Traces, request(Signal::Traces, 5))
        .await
        .expect("OK");
    let response = ExportTraceServiceResponse::decode(answer).expect("a trace response");
    assert_eq!(response.partial_success(), expected);
    let answer = client
        .export(Signal::Metrics, request(Signal::Metrics, 5))
        .await
        .expect("OK");
    let response = ExportMetricsServiceResponse::decode(answer).expect("a metrics response");
    assert_eq!(response.partial_success(), expected);
    let answer = client
        .export(Signal::Logs, request(Signal::Logs, 5))
        .await
        .expect("OK");
    let response = ExportLogsServiceResponse::decode(answer).expect("a logs response");
    assert_eq!(response.partial_success(), expected);

    let traces = receiver.metrics().snapshot().traces;
    assert_eq!(traces.partially_accepted, 1);
    assert_eq!((traces.items_accepted, traces.items_refused), (3, 2));
    assert_eq!(sink.len(), 3, "a partial success keeps the payload");
}

#[tokio::test]
async fn sink_refusals_map_to_codes_with_retry_info() {
    let sink = TestSink::new();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let mut client = Client::connect(receiver.local_addr()).await;

    // (refusal, code, retryable, delay)
    let cases = [
        (
            Refusal::Unavailable {
                reason: "queue full".into(),
                retry_after: Duration::from_millis(1500),
            },
            Code::Unavailable,
            true,
            Some(Duration::from_millis(1500)),
        ),
        (
            Refusal::Throttled {
                reason: "tenant over its rate".into(),
                retry_after: Duration::from_secs(3),
            },
            Code::ResourceExhausted,
            true,
            Some(Duration::from_secs(3)),
        ),
        (
            Refusal::BadData("span without trace id".into()),
            Code::InvalidArgument,
            false,
            None,
        ),
        (
            Refusal::Internal("disk on fire".into()),
            Code::Internal,
            false,
            None,
        ),
    ];
    for (refusal, code, retryable, delay) in cases {
        sink.answer_with(Answer::Refuse(refusal.clone()));
        let status = client
            .export(Signal::Logs, request(Signal::Logs, 2))
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{refusal:?}: {status:?}");
        assert!(
            status.message().contains(&refusal.to_string()),
            "{status:?}"
        );
        let err = export_error(&status);
        assert_eq!(err.is_retryable(), retryable, "{refusal:?}: {err}");
        assert_eq!(err.retry_delay(), delay, "{refusal:?}: {err}");
    }

    let logs = receiver.metrics().snapshot().logs;
    assert_eq!(logs.refused, 4);
    assert_eq!(logs.items_refused, 8);
    assert_eq!(logs.responses_with(GrpcCode::Unavailable), 1);
    assert_eq!(logs.responses_with(GrpcCode::ResourceExhausted), 1);
    assert_eq!(sink.len(), 0);
}

#[tokio::test]
async fn unknown_methods_and_unserved_signals_are_unimplemented() {
    let sink = TestSink::new();
    let config = GrpcReceiverConfig::builder()
        .addr("127.0.0.1:0")
        .build()
        .unwrap();
    let receiver = GrpcReceiver::bind(config, Sinks::none().with(Signal::Traces, sink.clone()))
        .await
        .unwrap();
    let mut client = Client::connect(receiver.local_addr()).await;

    let status = client
        .call(
            "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
            request(Signal::Traces, 1),
            &[],
        )
        .await
        .expect_err("no such method");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(
        status.message().contains("TraceService/Export"),
        "{status:?}"
    );

    let status = client
        .export(Signal::Logs, request(Signal::Logs, 1))
        .await
        .expect_err("logs are not served");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert!(status.message().contains("logs"), "{status:?}");

    client
        .export(Signal::Traces, request(Signal::Traces, 1))
        .await
        .expect("traces are served");
    let snapshot = receiver.metrics().snapshot();
    assert_eq!(snapshot.unrouted.responses_with(GrpcCode::Unimplemented), 1);
    assert_eq!(snapshot.logs.responses_with(GrpcCode::Unimplemented), 1);
    assert_eq!(snapshot.traces.accepted, 1);
}

#[tokio::test]
async fn bearer_auth_answers_unauthenticated_as_a_grpc_status() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().auth(AuthConfig::bearer(["s3cret", "other"])),
        sink.clone(),
    )
    .await;
    let mut client = Client::connect(receiver.local_addr()).await;
    let body = request(Signal::Traces, 1);

    let status = client
        .export(Signal::Traces, body.clone())
        .await
        .expect_err("no credentials");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("Bearer"), "{status:?}");
    assert!(!export_error(&status).is_retryable());

    let status = client
        .call(
            Signal::Traces.grpc_path(),
            body.clone(),
            &[("authorization", "Bearer wrong")],
        )
        .await
        .expect_err("wrong token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    client
        .call(
            Signal::Traces.grpc_path(),
            body.clone(),
            &[("authorization", "Bearer s3cret")],
        )
        .await
        .expect("the right token");
    assert_eq!(sink.len(), 1);

    // On the wire: HTTP 200 with grpc-status 16, never an HTTP 401.
    let reply = send_h2(
        receiver.local_addr(),
        grpc_request(
            Signal::Traces.grpc_path(),
            receiver_support::frame(false, &body),
            &[],
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.grpc().code(), Code::Unauthenticated);

    let traces = receiver.metrics().snapshot().traces;
    assert_eq!(traces.responses_with(GrpcCode::Unauthenticated), 3);
    assert_eq!(traces.rejected, 3);
}

#[tokio::test]
async fn api_key_auth() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().auth(AuthConfig::api_key("x-api-key", ["key-1"])),
        sink.clone(),
    )
    .await;
    let mut client = Client::connect(receiver.local_addr()).await;
    let body = request(Signal::Metrics, 1);

    let status = client
        .export(Signal::Metrics, body.clone())
        .await
        .expect_err("no key");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("x-api-key"), "{status:?}");
    let status = client
        .call(
            Signal::Metrics.grpc_path(),
            body.clone(),
            &[("x-api-key", "key-2")],
        )
        .await
        .expect_err("wrong key");
    assert_eq!(status.code(), Code::Unauthenticated);
    // A bearer token is not accepted when only the header is configured.
    let status = client
        .call(
            Signal::Metrics.grpc_path(),
            body.clone(),
            &[("authorization", "Bearer key-1")],
        )
        .await
        .expect_err("bearer not configured");
    assert_eq!(status.code(), Code::Unauthenticated);
    client
        .call(Signal::Metrics.grpc_path(), body, &[("x-api-key", "key-1")])
        .await
        .expect("the right key");
    assert_eq!(sink.len(), 1);
}

#[tokio::test]
async fn tenant_comes_from_metadata() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().tenant(TenantSource::Header(http::HeaderName::from_static(
            "x-tenant",
        ))),
        sink.clone(),
    )
    .await;
    let mut client = Client::connect(receiver.local_addr()).await;
    client
        .call(
            Signal::Logs.grpc_path(),
            request(Signal::Logs, 1),
            &[("x-tenant", "acme")],
        )
        .await
        .unwrap();
    client
        .export(Signal::Logs, request(Signal::Logs, 1))
        .await
        .unwrap();
    let payloads = sink.take();
    assert_eq!(payloads[0].header().tenant.as_deref(), Some("acme"));
    assert_eq!(payloads[1].header().tenant, None);
}

#[tokio::test]
async fn custom_tenant_sees_the_authenticated_key() {
    let sink = TestSink::new();
    let tenants: TenantFn = Arc::new(|parts: &http::request::Parts| {
        let key = parts
            .extensions
            .get::<AuthenticatedKey>()
            .ok_or_else(|| Refusal::Internal("auth did not run".into()))?;
        Ok(Some(Arc::from(["team-a", "team-b"][key.index])))
    });
    let receiver = start(
        GrpcReceiverConfig::builder()
            .auth(AuthConfig::bearer(["key-a", "key-b"]))
            .tenant(TenantSource::Custom(tenants)),
        sink.clone(),
    )
    .await;
    let mut client = Client::connect(receiver.local_addr()).await;
    for key in ["key-b", "key-a"] {
        client
            .call(
                Signal::Traces.grpc_path(),
                request(Signal::Traces, 1),
                &[("authorization", &format!("Bearer {key}"))],
            )
            .await
            .unwrap();
    }
    let tenants: Vec<_> = sink
        .take()
        .iter()
        .map(|p| p.header().tenant.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(
        tenants,
        vec![Some("team-b".to_owned()), Some("team-a".to_owned())]
    );
}

#[tokio::test]
async fn responses_are_compressed_only_when_asked() {
    let sink = TestSink::new();
    sink.answer_with(Answer::Partial {
        rejected: 1,
        message: "one span too old; one span too old; one span too old".to_owned(),
    });
    let body = frame(false, &request(Signal::Traces, 2));
    let accepting_gzip = [("grpc-accept-encoding", "gzip")];
    for compress in [false, true] {
        let receiver = start(
            GrpcReceiverConfig::builder().compress_responses(compress),
            sink.clone(),
        )
        .await;
        let reply = send_h2(
            receiver.local_addr(),
            grpc_request(Signal::Traces.grpc_path(), body.clone(), &accepting_gzip),
        )
        .await;
        assert_eq!(reply.grpc().code(), Code::Ok, "{reply:?}");
        let (flag, message) = (reply.body[0], reply.body.slice(5..));
        let message = if compress {
            assert_eq!(reply.header("grpc-encoding"), "gzip");
            assert_eq!(flag, 1);
            otlp_core::compression::decompress(otlp_core::Compression::Gzip, &message, 1 << 20)
                .unwrap()
        } else {
            assert_eq!(reply.header("grpc-encoding"), "");
            assert_eq!(flag, 0);
            message
        };
        let response = ExportTraceServiceResponse::decode(message).unwrap();
        assert_eq!(response.partial_success().unwrap().rejected, 1);
    }
}

#[tokio::test]
async fn concurrency_limit_answers_unavailable_with_retry_info() {
    let sink = TestSink::gated();
    let receiver = start(
        GrpcReceiverConfig::builder()
            .max_concurrent_calls(2)
            .overload_retry_after(Duration::from_secs(2)),
        sink.clone(),
    )
    .await;
    let client = Client::connect(receiver.local_addr()).await;

    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = client.clone();
        held.push(tokio::spawn(async move {
            client
                .export(Signal::Traces, request(Signal::Traces, 1))
                .await
        }));
    }
    sink.arrived(2).await;

    let status = client
        .clone()
        .export(Signal::Traces, request(Signal::Traces, 1))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("max_concurrent_calls"),
        "{status:?}"
    );
    let err = export_error(&status);
    assert!(err.is_retryable());
    assert_eq!(err.retry_delay(), Some(Duration::from_secs(2)));

    sink.release(3);
    for call in held {
        bounded("held call", call).await.unwrap().expect("OK");
    }
    client
        .clone()
        .export(Signal::Traces, request(Signal::Traces, 1))
        .await
        .expect("a slot is free again");
    let traces = receiver.metrics().snapshot().traces;
    assert_eq!((traces.accepted, traces.refused), (3, 1));
}

#[tokio::test]
async fn graceful_shutdown_completes_an_in_flight_call() {
    let sink = TestSink::gated();
    let receiver = start(GrpcReceiverConfig::builder(), sink.clone()).await;
    let addr = receiver.local_addr();
    let mut client = Client::connect(addr).await;
    let sent = request(Signal::Traces, 7);
    let call = {
        let sent = sent.clone();
        tokio::spawn(async move { client.export(Signal::Traces, sent).await })
    };
    sink.arrived(1).await;

    let shutdown = tokio::spawn(receiver.shutdown(Duration::from_secs(10)));
    // The listener closes first: new connections are refused while the call runs.
    eventually("listener closed", || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
    })
    .await;
    assert!(!call.is_finished());

    sink.release(1);
    bounded("in-flight call", call)
        .await
        .unwrap()
        .expect("the in-flight call completes");
    let report = bounded("shutdown", shutdown).await.unwrap().expect("clean");
    assert_eq!(report.connections_closed, 1);
    assert_eq!(report.connections_aborted, 0);
    assert_eq!(sink.payloads()[0].body(), &sent);
    assert_eq!(sink.cancelled.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn counters_add_up() {
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().auth(AuthConfig::bearer(["k"])),
        sink.clone(),
    )
    .await;
    let mut client = Client::connect(receiver.local_addr()).await;
    let auth = [("authorization", "Bearer k")];
    let body = encode(&traces(10));

    for _ in 0..3 {
        client
            .call(Signal::Traces.grpc_path(), body.clone(), &auth)
            .await
            .unwrap();
    }
    sink.answer_with(Answer::Refuse(Refusal::Unavailable {
        reason: "full".into(),
        retry_after: Duration::from_secs(1),
    }));
    client
        .call(Signal::Traces.grpc_path(), body.clone(), &auth)
        .await
        .unwrap_err();
    client
        .export(Signal::Traces, body.clone())
        .await
        .unwrap_err();

    let traces = receiver.metrics().snapshot().traces;
    assert_eq!(traces.requests(), 5);
    assert_eq!(
        (traces.accepted, traces.refused, traces.rejected),
        (3, 1, 1)
    );
    assert_eq!(
        traces.responses,
        vec![
            (GrpcCode::Ok, 3),
            (GrpcCode::Unavailable, 1),
            (GrpcCode::Unauthenticated, 1)
        ]
    );
    assert_eq!((traces.items_accepted, traces.items_refused), (30, 10));
    // Four calls were read (5-byte gRPC frame header each); the unauthenticated one
    // was answered before its message was read.
    assert_eq!(traces.bytes_decompressed, 4 * body.len() as u64);
    assert!(traces.bytes_received <= 5 * (body.len() as u64 + 5));
    assert!(traces.bytes_received >= 4 * (body.len() as u64 + 5));
    let connections = receiver.listener_metrics().snapshot().connections;
    assert_eq!((connections.accepted, connections.active), (1, 1));
}

/// A TCP connection that can be frozen: from then on it neither reads nor writes, like
/// a peer whose host died or whose NAT mapping vanished.
struct Freezable {
    inner: hyper_util::rt::TokioIo<tokio::net::TcpStream>,
    frozen: Arc<AtomicBool>,
}

impl hyper::rt::Read for Freezable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Freezable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.frozen.load(Ordering::SeqCst) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(start_paused = true)]
async fn keepalive_disconnects_a_silent_peer_and_drops_its_call() {
    let sink = TestSink::gated();
    let receiver = start(
        GrpcReceiverConfig::builder().keepalive(Duration::from_secs(2), Duration::from_secs(1)),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();
    let frozen = Arc::new(AtomicBool::new(false));
    let connector = {
        let frozen = frozen.clone();
        tower::service_fn(move |_: http::Uri| {
            let frozen = frozen.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect(addr).await?;
                tcp.set_nodelay(true)?;
                Ok::<_, std::io::Error>(Freezable {
                    inner: hyper_util::rt::TokioIo::new(tcp),
                    frozen,
                })
            }
        })
    };
    let channel = bounded(
        "connect",
        tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_with_connector(connector),
    )
    .await
    .unwrap();
    let mut client = Client::over(channel);
    let call = tokio::spawn(async move {
        client
            .export(Signal::Traces, request(Signal::Traces, 1))
            .await
    });
    sink.arrived(1).await;
    frozen.store(true, Ordering::SeqCst);

    // No PING answer: the connection is closed and the call's sink work dropped.
    let listener = receiver.listener_metrics();
    eventually("silent connection closed", || {
        listener.snapshot().connections.active == 0
    })
    .await;
    eventually("sink call dropped", || {
        sink.cancelled.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(sink.len(), 0);
    call.abort();
}
