//! Shared pieces of the receiver tests: a bounded in-memory sink with scripted answers,
//! small HTTP clients (HTTP/1.1, h2c, raw TCP), request fixtures, test certificates.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

pub mod certs;
pub mod python;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::error::RpcStatus;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Encoding, Payload, Refusal};
use otlp_transport_http::receiver::{
    HttpReceiver, HttpReceiverConfigBuilder, RunningReceiver, Sinks,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(10);

/// Run `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

// --- the sink -----------------------------------------------------------------------

/// How [`TestSink`] answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Take everything.
    Accept,
    /// Take the payload, reporting `rejected` items refused for `message`.
    Partial { rejected: u64, message: String },
    /// Refuse with this.
    Refuse(Refusal),
}

/// An in-memory sink holding at most `capacity` payloads (refusing with 503 beyond),
/// answering as scripted, optionally waiting on a gate before answering.
pub struct TestSink {
    capacity: usize,
    answer: Mutex<Answer>,
    held: Mutex<Vec<Payload>>,
    /// One permit per payload that reached `accept` (before the gate).
    pub arrivals: Semaphore,
    /// When set, `accept` waits for `notify_one` before answering.
    gate: Option<Arc<Notify>>,
    /// `accept` calls dropped before they answered (a receiver cutting off requests).
    pub cancelled: Arc<AtomicUsize>,
}

/// Counts an `accept` call as cancelled unless it is disarmed first.
struct CancelGuard(Option<Arc<AtomicUsize>>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(count) = self.0.take() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl TestSink {
    pub fn new() -> Arc<TestSink> {
        TestSink::build(usize::MAX, None)
    }

    pub fn bounded(capacity: usize) -> Arc<TestSink> {
        TestSink::build(capacity, None)
    }

    pub fn gated(gate: Arc<Notify>) -> Arc<TestSink> {
        TestSink::build(usize::MAX, Some(gate))
    }

    fn build(capacity: usize, gate: Option<Arc<Notify>>) -> Arc<TestSink> {
        Arc::new(TestSink {
            capacity,
            answer: Mutex::new(Answer::Accept),
            held: Mutex::new(Vec::new()),
            arrivals: Semaphore::new(0),
            gate,
            cancelled: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn answer_with(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn payloads(&self) -> Vec<Payload> {
        self.held.lock().unwrap().clone()
    }

    pub fn take(&self) -> Vec<Payload> {
        std::mem::take(&mut *self.held.lock().unwrap())
    }

    pub fn len(&self) -> usize {
        self.held.lock().unwrap().len()
    }

    /// Wait until `n` payloads have reached `accept` since the last call.
    pub async fn arrived(&self, n: u32) {
        bounded("payloads reaching the sink", self.arrivals.acquire_many(n))
            .await
            .expect("semaphore open")
            .forget();
    }
}

impl Sink for TestSink {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(async move {
            self.arrivals.add_permits(1);
            let mut guard = CancelGuard(Some(self.cancelled.clone()));
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            guard.0 = None;
            let answer = self.answer.lock().unwrap().clone();
            match answer {
                Answer::Refuse(refusal) => Err(refusal),
                answer => {
                    let mut held = self.held.lock().unwrap();
                    if held.len() >= self.capacity {
                        return Err(Refusal::Unavailable {
                            reason: format!("test sink holds {} payloads", held.len()),
                            retry_after: Duration::from_secs(2),
                        });
                    }
                    held.push(payload);
                    Ok(match answer {
                        Answer::Partial { rejected, message } => {
                            Accepted::partial(rejected, message)
                        }
                        _ => Accepted::full(),
                    })
                }
            }
        })
    }
}

/// Bind a receiver on 127.0.0.1:0 with `builder`'s other settings and one sink for all.
pub async fn start(builder: HttpReceiverConfigBuilder, sink: Arc<TestSink>) -> RunningReceiver {
    let config = builder.addr("127.0.0.1:0").build().expect("valid config");
    HttpReceiver::bind(config, Sinks::all(sink))
        .await
        .expect("bind 127.0.0.1:0")
}

// --- clients ------------------------------------------------------------------------

/// An HTTP response, body collected.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().expect("ASCII header"))
    }

    /// The encoding the response's `Content-Type` names.
    pub fn encoding(&self) -> Encoding {
        Encoding::from_content_type(self.header("content-type"))
            .unwrap_or_else(|| panic!("not an OTLP content type: {self:?}"))
    }

    /// The `google.rpc.Status` body.
    pub fn rpc_status(&self) -> RpcStatus {
        RpcStatus::from_body(self.encoding(), &self.body)
            .unwrap_or_else(|| panic!("not a google.rpc.Status body: {self:?}"))
    }

    /// Assert the status and that the Status message contains every `needle`.
    pub fn assert_refused(&self, status: u16, needles: &[&str]) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        let message = self.rpc_status().message;
        for needle in needles {
            assert!(
                message.contains(needle),
                "status message {message:?} should contain {needle:?}"
            );
        }
    }
}

/// A POST request with `content_type` (none when empty) and `body`.
pub fn post(path: &str, content_type: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let mut builder = Request::post(path).header("host", "127.0.0.1");
    if !content_type.is_empty() {
        builder = builder.header("content-type", content_type);
    }
    builder.body(Full::new(body.into())).expect("valid request")
}

/// `request` as protobuf to `path`.
pub fn post_protobuf<T: otlp_core::codec::Message>(
    path: &str,
    message: &T,
) -> Request<Full<Bytes>> {
    post(
        path,
        "application/x-protobuf",
        otlp_core::codec::protobuf::encode(message),
    )
}

/// Send `request` on a new HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Reply {
    bounded("HTTP/1.1 exchange", async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP/1.1 handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("response");
        collect(response).await
    })
    .await
}

/// Send `request` on a new h2c (prior knowledge) connection.
pub async fn send_h2(addr: SocketAddr, request: Request<Full<Bytes>>) -> Reply {
    bounded("h2c exchange", async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        let response = sender
            .send_request(absolute(addr, "http", request))
            .await
            .expect("response");
        collect(response).await
    })
    .await
}

/// HTTP/2 needs `:scheme` and `:authority`: make the URI absolute.
pub fn absolute<B>(addr: SocketAddr, scheme: &str, request: Request<B>) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("{scheme}://{addr}{path}").parse().expect("uri");
    parts.headers.remove("host");
    Request::from_parts(parts, body)
}

pub async fn collect(response: http::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body,
    }
}

/// Write `bytes` on a new raw TCP connection and return the connection.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = bounded("connect", TcpStream::connect(addr))
        .await
        .expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    bounded("write", stream.write_all(bytes))
        .await
        .expect("write");
    stream
}

/// Read until the peer closes (EOF or reset), at most [`STEP`]: what arrived, and whether
/// the connection was closed by then.
pub async fn read_until_closed(stream: &mut TcpStream) -> (String, bool) {
    let mut received = Vec::new();
    let closed = tokio::time::timeout(STEP, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

/// Poll `condition` every 10 ms until it holds, failing after [`STEP`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

// --- fixtures -----------------------------------------------------------------------

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![string("service.name", "receiver-test")],
        ..Default::default()
    })
}

/// A traces request with `spans` spans, each with ids, times and two attributes.
pub fn traces(spans: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "receiver-test".to_owned(),
                    ..Default::default()
                }),
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![0x5b; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("span {i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        end_time_unix_nano: 1_700_000_000_000_001_000 + i as u64,
                        attributes: vec![
                            string("http.route", "/orders/{id}"),
                            KeyValue {
                                key: "index".to_owned(),
                                value: Some(AnyValue {
                                    value: Some(any_value::Value::IntValue(i as i64)),
                                }),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A metrics request with one gauge of `points` data points.
pub fn metrics(points: usize) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "queue.depth".to_owned(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                time_unix_nano: 1_700_000_000_000_000_000,
                                value: Some(number_data_point::Value::AsInt(i as i64)),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A logs request with `records` log records.
pub fn logs(records: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: (0..records)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        severity_number: 9,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(format!("record {i}"))),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
