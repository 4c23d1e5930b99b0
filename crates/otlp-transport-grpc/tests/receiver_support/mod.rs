//! Shared pieces of the OTLP/gRPC receiver tests: a scripted in-memory sink, a tonic
//! client with the pass-through codec, a raw HTTP/2 client for hand-made gRPC requests,
//! request fixtures.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{ExportError, Payload, Refusal, Signal};
use otlp_transport_grpc::codec::BytesCodec;
use otlp_transport_grpc::receiver::{
    GrpcReceiver, GrpcReceiverConfigBuilder, RunningGrpcReceiver, Sinks,
};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(20);

/// Run `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
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

/// An in-memory sink answering as scripted; when gated, every `accept` waits for a
/// permit from [`TestSink::release`] first.
pub struct TestSink {
    answer: Mutex<Answer>,
    held: Mutex<Vec<Payload>>,
    /// One permit per payload that reached `accept` (before the gate).
    arrivals: Semaphore,
    gate: Option<Semaphore>,
    in_flight: AtomicUsize,
    /// The most `accept` calls in flight at once.
    pub max_in_flight: AtomicUsize,
    /// `accept` calls dropped before they answered (a receiver cutting off calls).
    pub cancelled: Arc<AtomicUsize>,
}

/// Counts an `accept` call as cancelled unless it is disarmed first; tracks in-flight.
struct CallGuard<'a> {
    sink: &'a TestSink,
    answered: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.sink.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.answered {
            self.sink.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl TestSink {
    pub fn new() -> Arc<TestSink> {
        TestSink::build(None)
    }

    /// Every `accept` waits for [`TestSink::release`].
    pub fn gated() -> Arc<TestSink> {
        TestSink::build(Some(Semaphore::new(0)))
    }

    fn build(gate: Option<Semaphore>) -> Arc<TestSink> {
        Arc::new(TestSink {
            answer: Mutex::new(Answer::Accept),
            held: Mutex::new(Vec::new()),
            arrivals: Semaphore::new(0),
            gate,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            cancelled: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn answer_with(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Let `n` gated calls answer.
    pub fn release(&self, n: usize) {
        self.gate.as_ref().expect("a gated sink").add_permits(n);
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
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            let mut guard = CallGuard {
                sink: self,
                answered: false,
            };
            self.arrivals.add_permits(1);
            if let Some(gate) = &self.gate {
                gate.acquire().await.expect("gate open").forget();
            }
            guard.answered = true;
            let answer = self.answer.lock().unwrap().clone();
            match answer {
                Answer::Refuse(refusal) => Err(refusal),
                Answer::Accept => {
                    self.held.lock().unwrap().push(payload);
                    Ok(Accepted::full())
                }
                Answer::Partial { rejected, message } => {
                    self.held.lock().unwrap().push(payload);
                    Ok(Accepted::partial(rejected, message))
                }
            }
        })
    }
}

/// Bind a receiver on 127.0.0.1:0 with `builder`'s other settings and one sink for all.
pub async fn start(builder: GrpcReceiverConfigBuilder, sink: Arc<TestSink>) -> RunningGrpcReceiver {
    let config = builder.addr("127.0.0.1:0").build().expect("valid config");
    GrpcReceiver::bind(config, Sinks::all(sink))
        .await
        .expect("bind 127.0.0.1:0")
}

// --- a tonic client -----------------------------------------------------------------

/// A tonic client sending encoded `Export*ServiceRequest`s with the pass-through codec.
#[derive(Clone)]
pub struct Client {
    grpc: tonic::client::Grpc<Channel>,
}

impl Client {
    /// A client on a new HTTP/2 connection to `addr`.
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::over(channel(addr).await)
    }

    /// A client on `channel`.
    pub fn over(channel: Channel) -> Client {
        Client {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    /// Compress requests with `encoding`.
    pub fn compressing(mut self, encoding: CompressionEncoding) -> Client {
        self.grpc = self.grpc.send_compressed(encoding);
        self
    }

    /// Send `message` to `signal`'s `Export` method.
    pub async fn export(&mut self, signal: Signal, message: Bytes) -> Result<Bytes, tonic::Status> {
        self.call(signal.grpc_path(), message, &[]).await
    }

    /// Send `message` to `path` with extra metadata.
    pub async fn call(
        &mut self,
        path: &'static str,
        message: Bytes,
        metadata: &[(&'static str, &str)],
    ) -> Result<Bytes, tonic::Status> {
        let mut request = tonic::Request::new(message);
        for (key, value) in metadata {
            request
                .metadata_mut()
                .insert(*key, value.parse().expect("metadata value"));
        }
        bounded("gRPC call", async {
            self.grpc
                .ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            self.grpc
                .unary(
                    request,
                    http::uri::PathAndQuery::from_static(path),
                    BytesCodec,
                )
                .await
                .map(tonic::Response::into_inner)
        })
        .await
    }
}

/// A tonic channel (HTTP/2 prior knowledge, TCP_NODELAY) to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    bounded(
        "connect",
        Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .tcp_nodelay(true)
            .connect(),
    )
    .await
    .expect("connect")
}

/// The OTLP classification of a gRPC status, as an exporter sees it.
pub fn export_error(status: &tonic::Status) -> ExportError {
    ExportError::from_grpc(status.code() as i32, status.message(), status.details())
}

// --- a raw HTTP/2 client ------------------------------------------------------------

/// An HTTP/2 response, body and trailers collected.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    /// The gRPC status: from the trailers, or from the headers of a trailers-only
    /// answer.
    pub fn grpc(&self) -> tonic::Status {
        self.trailers
            .as_ref()
            .and_then(tonic::Status::from_header_map)
            .or_else(|| tonic::Status::from_header_map(&self.headers))
            .unwrap_or_else(|| panic!("no grpc-status in {self:?}"))
    }

    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().expect("ASCII header"))
    }
}

/// One gRPC message frame: compressed flag, big-endian length, the bytes.
pub fn frame(compressed: bool, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(u8::from(compressed));
    out.put_u32(u32::try_from(message.len()).expect("message under 4 GiB"));
    out.put_slice(message);
    out.freeze()
}

/// A POST to `path` with gRPC's headers, `extra` headers (which may override
/// `content-type`) and `body` as it is.
pub fn grpc_request(path: &str, body: Bytes, extra: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = Request::post(format!("http://127.0.0.1{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(body))
        .expect("valid request");
    for (name, value) in extra {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
        request
            .headers_mut()
            .insert(name, value.parse().expect("header value"));
    }
    request
}

/// Send `request` on a new h2c (prior knowledge) connection.
pub async fn send_h2<B>(addr: SocketAddr, request: Request<B>) -> Reply
where
    B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    bounded("h2c exchange", async {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2 handshake");
        tokio::spawn(connection);
        let response = sender.send_request(request).await.expect("response");
        let (parts, body) = response.into_parts();
        let collected = body.collect().await.expect("response body");
        let trailers = collected.trailers().cloned();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        }
    })
    .await
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
        attributes: vec![string("service.name", "grpc-receiver-test")],
        ..Default::default()
    })
}

/// A traces request with `spans` spans.
pub fn traces(spans: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans: (0..spans)
                    .map(|i| Span {
                        trace_id: vec![0x5b; 16],
                        span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                        name: format!("span {i}"),
                        kind: 2,
                        start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
                        end_time_unix_nano: 1_700_000_000_000_001_000 + i as u64,
                        attributes: vec![string("http.route", "/orders/{id}")],
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
                                time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
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

/// `message` encoded.
pub fn encode(message: &impl prost::Message) -> Bytes {
    Bytes::from(message.encode_to_vec())
}

/// An encoded request of `signal` with `items` items.
pub fn request(signal: Signal, items: usize) -> Bytes {
    match signal {
        Signal::Traces => encode(&traces(items)),
        Signal::Metrics => encode(&metrics(items)),
        Signal::Logs => encode(&logs(items)),
    }
}
