//! The OTLP/gRPC exporter against a raw HTTP/2 server (hyper) that sends a
//! `grpc-status-details-bin` that is not base64, in a trailers-only answer and in the
//! trailers. tonic 0.14.9 alone panics on it (the control test below shows that); the
//! exporter must instead return the status the server sent, classified by its code, and
//! keep accepting valid details, padded or not.
//!
//! Time: the server runs on the test's current-thread runtime with paused time, as in
//! `exporter.rs`; the `RetryInfo` delay costs no real time. Every wait is bounded.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::error::{RETRY_INFO_TYPE_URL, RetryInfo, RpcStatus};
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_core::sink::Accepted;
use otlp_core::{ExportError, GrpcCode};
use otlp_resilience::retry::RetryPolicy;
use otlp_transport_grpc::codec::BytesCodec;
use otlp_transport_grpc::exporter::{ExportFailure, FailureReason, GrpcExporter};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Every network step of a test is bounded by this.
const STEP: Duration = Duration::from_secs(20);

const NOT_BASE64: &str = "!!!notbase64";

const TRACE_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

// --- the server -----------------------------------------------------------------------

/// How the server answers one call (after reading the request).
#[derive(Debug, Clone)]
enum Answer {
    /// HEADERS with END_STREAM: HTTP 200 carrying the status, no body.
    TrailersOnly { status: u8, details: String },
    /// HTTP 200, one empty message, then trailers with the status.
    InTrailers { status: u8, details: String },
    /// OK with an empty message (full success).
    Ok,
}

struct Script {
    answers: Mutex<VecDeque<Answer>>,
    then: Answer,
    calls: AtomicUsize,
}

struct HostileServer {
    addr: SocketAddr,
    script: Arc<Script>,
}

impl HostileServer {
    /// Answers with `answers` in turn, then always with `then`.
    async fn start(answers: Vec<Answer>, then: Answer) -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into()),
            then,
            calls: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&script);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tcp.set_nodelay(true).unwrap();
                let script = Arc::clone(&shared);
                let service = hyper::service::service_fn(move |request| {
                    let script = Arc::clone(&script);
                    async move { Ok::<_, Infallible>(answer(&script, request).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service),
                );
            }
        });
        HostileServer { addr, script }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn calls(&self) -> usize {
        self.script.calls.load(Ordering::SeqCst)
    }
}

async fn answer(
    script: &Script,
    request: Request<Incoming>,
) -> Response<BoxBody<Bytes, Infallible>> {
    assert_eq!(request.uri().path(), TRACE_EXPORT);
    // The whole request first, as a real server would; the exporter sends a few bytes.
    let _request = request.into_body().collect().await;
    script.calls.fetch_add(1, Ordering::SeqCst);
    let next = script.answers.lock().unwrap().pop_front();
    let response = Response::builder().header("content-type", "application/grpc");
    match next.unwrap_or_else(|| script.then.clone()) {
        Answer::TrailersOnly { status, details } => response
            .header("grpc-status", status.to_string())
            .header("grpc-message", "scripted")
            .header("grpc-status-details-bin", details)
            .body(Empty::new().boxed())
            .unwrap(),
        Answer::InTrailers { status, details } => {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from(u16::from(status)));
            trailers.insert("grpc-message", HeaderValue::from_static("scripted"));
            trailers.insert(
                "grpc-status-details-bin",
                HeaderValue::from_str(&details).unwrap(),
            );
            response
                .body(
                    Full::new(empty_message())
                        .with_trailers(async move { Some(Ok(trailers)) })
                        .boxed(),
                )
                .unwrap()
        }
        Answer::Ok => {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            response
                .body(
                    Full::new(empty_message())
                        .with_trailers(async move { Some(Ok(trailers)) })
                        .boxed(),
                )
                .unwrap()
        }
    }
}

/// One gRPC message of length 0, uncompressed (an empty `Export*ServiceResponse`).
fn empty_message() -> Bytes {
    Bytes::from_static(&[0, 0, 0, 0, 0])
}

/// A `google.rpc.Status` with `RetryInfo`, base64 without padding. The message is
/// chosen so that the padded form would end in `=`: the value really is unpadded.
fn unpadded_retry_info(delay: Duration) -> String {
    let status = RpcStatus {
        code: GrpcCode::ResourceExhausted as i32,
        message: "slow down, please".into(),
        details: vec![prost_types::Any {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: RetryInfo {
                retry_delay: Some(prost_types::Duration {
                    seconds: delay.as_secs() as i64,
                    nanos: delay.subsec_nanos() as i32,
                }),
            }
            .encode_to_vec(),
        }],
    }
    .encode_to_vec();
    assert_ne!(status.len() % 3, 0, "pick a message that needs padding");
    let encoded = STANDARD_NO_PAD.encode(status);
    assert!(!encoded.len().is_multiple_of(4) && !encoded.ends_with('='));
    encoded
}

// --- the exporter ---------------------------------------------------------------------

fn request() -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: vec![1; 16],
                    span_id: vec![2; 8],
                    name: "GET /orders".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn exporter(server: &HostileServer, retry: bool) -> GrpcExporter {
    let builder = GrpcExporter::builder()
        .no_env()
        .endpoint(server.url())
        .no_circuit_breaker()
        .timeout(Duration::from_secs(5));
    let builder = if retry {
        builder.retry(
            RetryPolicy::builder()
                .name("hostile-server-test")
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(10))
                .max_backoff(Duration::from_millis(50))
                .max_server_delay(Duration::from_secs(3))
                .max_elapsed(Duration::from_secs(20))
                .no_budget()
                .build(),
        )
    } else {
        builder.no_retry()
    };
    builder.build().unwrap()
}

/// One export on its own task, as the gateway's exporter worker runs it: a panic shows
/// as a failed join instead of unwinding through the test.
async fn export_on_a_task(exporter: &GrpcExporter) -> Result<Accepted, ExportFailure> {
    let exporter = exporter.clone();
    let task = tokio::spawn(async move { exporter.export_traces(&request()).await });
    match bounded("export", task).await {
        Ok(result) => result,
        Err(join) => panic!("the export task did not finish: {join}"),
    }
}

fn grpc_parts(error: &ExportError) -> (GrpcCode, &str, Option<Duration>, bool) {
    match error {
        ExportError::Grpc {
            code,
            message,
            retry_delay,
            has_retry_info,
        } => (*code, message.as_str(), *retry_delay, *has_retry_info),
        other => panic!("expected ExportError::Grpc, got {other:?}"),
    }
}

// --- undecodable details --------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn undecodable_details_in_a_trailers_only_answer_are_unavailable_not_a_panic() {
    let server = HostileServer::start(
        vec![],
        Answer::TrailersOnly {
            status: 14,
            details: NOT_BASE64.into(),
        },
    )
    .await;
    let failure = export_on_a_task(&exporter(&server, false))
        .await
        .unwrap_err();
    assert_eq!(failure.reason(), FailureReason::RetryDisabled, "{failure}");
    assert_eq!(failure.attempts(), 1);
    let (code, message, retry_delay, has_retry_info) = grpc_parts(failure.error());
    assert_eq!(code, GrpcCode::Unavailable);
    assert!(message.starts_with("scripted ("), "{message}");
    assert!(message.contains("undecodable status details"), "{message}");
    assert_eq!((retry_delay, has_retry_info), (None, false));
    assert!(failure.error().is_retryable());
    assert_eq!(server.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn undecodable_details_in_a_trailers_only_answer_are_retried_like_unavailable() {
    let server = HostileServer::start(
        vec![Answer::TrailersOnly {
            status: 14,
            details: NOT_BASE64.into(),
        }],
        Answer::Ok,
    )
    .await;
    let accepted = export_on_a_task(&exporter(&server, true)).await.unwrap();
    assert_eq!(accepted, Accepted::full());
    assert_eq!(server.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn undecodable_details_in_the_trailers_keep_resource_exhausted_not_retryable() {
    let server = HostileServer::start(
        vec![],
        Answer::InTrailers {
            status: 8,
            details: NOT_BASE64.into(),
        },
    )
    .await;
    for retry in [false, true] {
        let before = server.calls();
        let failure = export_on_a_task(&exporter(&server, retry))
            .await
            .unwrap_err();
        // Without RetryInfo (dropped with the bad details) RESOURCE_EXHAUSTED is final.
        assert_eq!(failure.reason(), FailureReason::NotRetryable, "{failure}");
        let (code, message, retry_delay, has_retry_info) = grpc_parts(failure.error());
        assert_eq!(code, GrpcCode::ResourceExhausted);
        assert!(message.contains("undecodable status details"), "{message}");
        assert_eq!((retry_delay, has_retry_info), (None, false));
        assert!(!failure.error().is_retryable());
        assert_eq!(server.calls() - before, 1, "retry={retry}: not sent again");
    }
}

// --- valid details still work -----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn unpadded_details_with_retry_info_are_kept_in_both_places() {
    let delay = Duration::from_millis(1500);
    for place in ["trailers-only", "trailers"] {
        let details = unpadded_retry_info(delay);
        let refusal = if place == "trailers-only" {
            Answer::TrailersOnly { status: 8, details }
        } else {
            Answer::InTrailers { status: 8, details }
        };

        let server = HostileServer::start(vec![], refusal.clone()).await;
        let failure = export_on_a_task(&exporter(&server, false))
            .await
            .unwrap_err();
        let (code, message, retry_delay, has_retry_info) = grpc_parts(failure.error());
        assert_eq!(code, GrpcCode::ResourceExhausted, "{place}");
        assert_eq!(message, "scripted", "{place}: the message is untouched");
        assert_eq!(retry_delay, Some(delay), "{place}");
        assert!(has_retry_info, "{place}");
        assert!(failure.error().is_retryable(), "{place}");
        assert_eq!(failure.reason(), FailureReason::RetryDisabled, "{place}");

        // With retries the server's delay is honoured (virtual time), then it succeeds.
        let server = HostileServer::start(vec![refusal], Answer::Ok).await;
        let start = Instant::now();
        let accepted = export_on_a_task(&exporter(&server, true)).await.unwrap();
        assert_eq!(accepted, Accepted::full(), "{place}");
        assert_eq!(server.calls(), 2, "{place}");
        assert!(start.elapsed() >= delay, "{place}: {:?}", start.elapsed());
    }
}

// --- the control: why the guard exists ------------------------------------------------

/// tonic 0.14.9 on its own panics on these answers. When this test fails after a tonic
/// upgrade, tonic handles them itself and `exporter/status_guard.rs` can go.
#[tokio::test(start_paused = true)]
async fn tonic_alone_panics_on_undecodable_details() {
    for hostile in [
        Answer::TrailersOnly {
            status: 14,
            details: NOT_BASE64.into(),
        },
        Answer::InTrailers {
            status: 8,
            details: NOT_BASE64.into(),
        },
    ] {
        let server = HostileServer::start(vec![], hostile.clone()).await;
        let channel = bounded(
            "connect",
            tonic::transport::Endpoint::from_shared(server.url())
                .unwrap()
                .connect(),
        )
        .await
        .unwrap();
        let task = tokio::spawn(async move {
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready().await.unwrap();
            let request = tonic::Request::new(Bytes::from(request().encode_to_vec()));
            let path = http::uri::PathAndQuery::from_static(TRACE_EXPORT);
            grpc.unary(request, path, BytesCodec).await
        });
        let outcome = bounded("bare tonic call", task).await;
        assert!(
            outcome.as_ref().is_err_and(|join| join.is_panic()),
            "{hostile:?}: tonic no longer panics ({outcome:?}); remove the StatusGuard"
        );
        assert_eq!(server.calls(), 1);
    }
}
