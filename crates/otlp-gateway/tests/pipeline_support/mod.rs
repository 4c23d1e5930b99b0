//! Pieces of the pipeline tests: real OTLP upstreams (our gRPC and HTTP receivers) with a
//! scripted recording sink, gateway configuration from TOML, clients that show the
//! gateway's answers as the wire carries them, and request fixtures with unique span ids.
#![allow(dead_code)] // not every test uses every helper

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Compression, ExportError, Payload, Refusal, Signal};
use otlp_gateway::Gateway;
use otlp_gateway::config::GatewayConfig;
use otlp_gateway::metrics::ExporterMetrics;
use otlp_transport_grpc::exporter::GrpcExporter;
use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig, RunningGrpcReceiver};
use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, RunningReceiver, Sinks};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Every network step and every wait of a test is bounded by this.
pub(crate) const STEP: Duration = Duration::from_secs(30);

/// Run `future`, failing the test if it takes longer than [`STEP`].
pub(crate) async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

/// Poll `condition` every 10 ms until it holds, failing after [`STEP`].
pub(crate) async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

// --- the upstream's sink ---------------------------------------------------------------

/// How [`RecordingSink`] answers.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// Take everything.
    Accept,
    /// Refuse with this.
    Refuse(Refusal),
    /// Refuse as bad data every traces request holding a span with this name; take the rest.
    RefuseSpanNamed(String),
}

/// Records every payload it accepts; answers as scripted.
#[derive(Debug)]
pub(crate) struct RecordingSink {
    answer: Mutex<Answer>,
    held: Mutex<Vec<Payload>>,
    /// `accept` calls, answered either way.
    pub(crate) calls: AtomicU64,
    /// `accept` calls refused.
    pub(crate) refused: AtomicU64,
    /// When set, calls wait here until [`RecordingSink::open_gate`].
    gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    changed: Notify,
}

impl RecordingSink {
    pub(crate) fn new() -> Arc<RecordingSink> {
        Arc::new(RecordingSink {
            answer: Mutex::new(Answer::Accept),
            held: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            gate: Mutex::new(None),
            changed: Notify::new(),
        })
    }

    pub(crate) fn answer_with(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Refuse with UNAVAILABLE / 503 and `retry_after`.
    pub(crate) fn refuse_unavailable(&self, retry_after: Duration) {
        self.answer_with(Answer::Refuse(Refusal::Unavailable {
            reason: "upstream is overloaded (test)".into(),
            retry_after,
        }));
    }

    /// Hold every call until [`RecordingSink::open_gate`].
    pub(crate) fn close_gate(&self) {
        *self.gate.lock().unwrap() = Some(Arc::new(tokio::sync::Semaphore::new(0)));
    }

    /// Let held and later calls through.
    pub(crate) fn open_gate(&self) {
        if let Some(gate) = self.gate.lock().unwrap().take() {
            gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
    }

    /// Payloads accepted so far.
    pub(crate) fn payloads(&self) -> Vec<Payload> {
        self.held.lock().unwrap().clone()
    }

    /// Accepted requests of `signal`.
    pub(crate) fn requests(&self, signal: Signal) -> usize {
        self.held
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.signal() == signal)
            .count()
    }

    /// Items of `signal` accepted so far.
    pub(crate) fn items(&self, signal: Signal) -> u64 {
        self.held
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.signal() == signal)
            .map(Payload::items)
            .sum()
    }

    /// Span ids of every accepted span, in arrival order (duplicates kept).
    pub(crate) fn span_ids(&self) -> Vec<u64> {
        self.spans().iter().map(span_key).collect()
    }

    /// Every accepted span.
    pub(crate) fn spans(&self) -> Vec<Span> {
        self.payloads()
            .iter()
            .filter(|p| p.signal() == Signal::Traces)
            .flat_map(|p| {
                p.decode::<ExportTraceServiceRequest>()
                    .expect("the gateway forwards valid traces")
                    .resource_spans
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    }
}

impl Sink for RecordingSink {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let gate = self.gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                gate.acquire().await.expect("gate never closed").forget();
            }
            let answer = self.answer.lock().unwrap().clone();
            let result = match answer {
                Answer::Accept => {
                    self.held.lock().unwrap().push(payload);
                    Ok(Accepted::full())
                }
                Answer::Refuse(refusal) => {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                    Err(refusal)
                }
                Answer::RefuseSpanNamed(name) => {
                    let poisoned = payload
                        .decode::<ExportTraceServiceRequest>()
                        .map(|r| {
                            r.resource_spans
                                .iter()
                                .flat_map(|r| &r.scope_spans)
                                .flat_map(|s| &s.spans)
                                .any(|s| s.name == name)
                        })
                        .unwrap_or(false);
                    if poisoned {
                        self.refused.fetch_add(1, Ordering::SeqCst);
                        Err(Refusal::BadData(format!("span {name:?} is invalid (test)")))
                    } else {
                        self.held.lock().unwrap().push(payload);
                        Ok(Accepted::full())
                    }
                }
            };
            self.changed.notify_waiters();
            result
        })
    }
}

// --- upstreams -------------------------------------------------------------------------

/// A real OTLP receiver in this process, recording what the gateway sends it.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) sink: Arc<RecordingSink>,
    pub(crate) addr: SocketAddr,
    kind: UpstreamKind,
    grpc: Option<RunningGrpcReceiver>,
    http: Option<RunningReceiver>,
}

/// Which transport an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamKind {
    Grpc,
    Http,
}

impl Upstream {
    /// An OTLP/gRPC upstream on a free port.
    pub(crate) async fn grpc() -> Upstream {
        Upstream::start(UpstreamKind::Grpc, "127.0.0.1:0", RecordingSink::new()).await
    }

    /// An OTLP/HTTP upstream on a free port.
    pub(crate) async fn http() -> Upstream {
        Upstream::start(UpstreamKind::Http, "127.0.0.1:0", RecordingSink::new()).await
    }

    /// An upstream of `kind` on `addr` (to bring a "dead" endpoint to life).
    pub(crate) async fn start(
        kind: UpstreamKind,
        addr: &str,
        sink: Arc<RecordingSink>,
    ) -> Upstream {
        let sinks = Sinks::all(sink.clone());
        match kind {
            UpstreamKind::Grpc => {
                let config = GrpcReceiverConfig::builder()
                    .addr(addr)
                    .build()
                    .expect("receiver config");
                let running = bounded("bind gRPC upstream", GrpcReceiver::bind(config, sinks))
                    .await
                    .expect("bind gRPC upstream");
                Upstream {
                    sink,
                    addr: running.local_addr(),
                    kind,
                    grpc: Some(running),
                    http: None,
                }
            }
            UpstreamKind::Http => {
                let config = HttpReceiverConfig::builder()
                    .addr(addr)
                    .build()
                    .expect("receiver config");
                let running = bounded("bind HTTP upstream", HttpReceiver::bind(config, sinks))
                    .await
                    .expect("bind HTTP upstream");
                Upstream {
                    sink,
                    addr: running.local_addr(),
                    kind,
                    grpc: None,
                    http: Some(running),
                }
            }
        }
    }

    /// The exporter endpoint the gateway's configuration names.
    pub(crate) fn endpoint(&self) -> String {
        endpoint(self.kind, self.addr)
    }

    /// Stop listening.
    pub(crate) async fn stop(self) {
        if let Some(grpc) = self.grpc {
            let _ = bounded("stop gRPC upstream", grpc.shutdown(Duration::from_secs(1))).await;
        }
        if let Some(http) = self.http {
            let _ = bounded("stop HTTP upstream", http.shutdown(Duration::from_secs(1))).await;
        }
    }
}

/// `grpc://addr` or `http://addr`.
pub(crate) fn endpoint(kind: UpstreamKind, addr: SocketAddr) -> String {
    match kind {
        UpstreamKind::Grpc => format!("grpc://{addr}"),
        UpstreamKind::Http => format!("http://{addr}"),
    }
}

/// A loopback address nobody listens on (bound, then released).
pub(crate) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

// --- the gateway -----------------------------------------------------------------------

/// A gateway configuration: loopback listeners on port 0, `data_dir` = `dir`, extra keys of
/// `[receivers.grpc]` and `[receivers.http]` from `listener_extra`, then `body` (tables).
pub(crate) fn config_with_listeners(dir: &Path, listener_extra: &str, body: &str) -> GatewayConfig {
    let text = format!(
        r#"
data_dir = "{dir}"
shutdown_grace = "10s"

[receivers.grpc]
addr = "127.0.0.1:0"
{listener_extra}

[receivers.http]
addr = "127.0.0.1:0"
{listener_extra}

[admin]
addr = "127.0.0.1:0"

[log]
level = "warn"

{body}
"#,
        dir = dir.display()
    );
    GatewayConfig::from_toml_str(&text).unwrap_or_else(|e| panic!("config: {e}\n{text}"))
}

/// [`config_with_listeners`] with default listener settings.
pub(crate) fn config(dir: &Path, body: &str) -> GatewayConfig {
    config_with_listeners(dir, "", body)
}

/// Start a gateway.
pub(crate) async fn start(config: GatewayConfig) -> Gateway {
    bounded("gateway start", Gateway::start(config))
        .await
        .expect("gateway starts")
}

/// The counters of exporter `name`.
pub(crate) fn exporter(gateway: &Gateway, name: &str) -> Arc<ExporterMetrics> {
    gateway
        .metrics()
        .routes()
        .iter()
        .flat_map(|r| r.exporters.iter())
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no exporter {name}"))
        .clone()
}

/// Items of `signal` exporter `name` delivered.
pub(crate) fn exported(gateway: &Gateway, name: &str, signal: Signal) -> u64 {
    exporter(gateway, name).exported_items[signal.index()].load(Ordering::Relaxed)
}

// --- clients ---------------------------------------------------------------------------

/// An OTLP/gRPC client without retries: each call shows the gateway's own answer.
pub(crate) fn grpc_client(addr: SocketAddr, headers: &[(&str, &str)]) -> GrpcExporter {
    let mut builder = GrpcExporter::builder()
        .no_env()
        .endpoint(format!("http://{addr}"))
        .compression(Compression::None)
        .timeout(Duration::from_secs(10))
        .no_retry()
        .no_circuit_breaker();
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder.build().expect("gRPC client")
}

/// Send `payload` over gRPC; the classified error when refused.
pub(crate) async fn grpc_send(client: &GrpcExporter, payload: Payload) -> Result<(), ExportError> {
    bounded("gRPC export", client.export_payload(payload))
        .await
        .map(|_| ())
        .map_err(ExportError::from)
}

/// An HTTP answer as the wire carried it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// A header's value ("" when absent).
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().expect("ASCII header"))
    }
}

/// POST `payload` as OTLP/HTTP protobuf to the gateway at `addr`, on a new HTTP/1.1
/// connection. `Err` when no connection could be made or it broke.
pub(crate) async fn http_send(
    addr: SocketAddr,
    payload: &Payload,
    headers: &[(&str, &str)],
) -> Result<Reply, String> {
    let path = match payload.signal() {
        Signal::Traces => "/v1/traces",
        Signal::Metrics => "/v1/metrics",
        Signal::Logs => "/v1/logs",
    };
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("host", addr.to_string())
        .header("content-type", "application/x-protobuf")
        .body(Full::new(payload.body().clone()))
        .expect("request");
    for (k, v) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    bounded("HTTP exchange", async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    })
    .await
}

/// [`http_send`] that must get an answer.
pub(crate) async fn http_post(
    addr: SocketAddr,
    payload: &Payload,
    headers: &[(&str, &str)],
) -> Reply {
    http_send(addr, payload, headers)
        .await
        .unwrap_or_else(|e| panic!("HTTP to the gateway at {addr}: {e}"))
}

// --- fixtures --------------------------------------------------------------------------

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
        attributes: vec![string("service.name", "pipeline-test")],
        ..Default::default()
    })
}

/// SplitMix64: spreads consecutive numbers over the whole range (trace ids that a
/// ratio sampler treats as random).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A span whose span id is `id` (big-endian) and whose trace id is derived from it.
pub(crate) fn span(id: u64, error: bool) -> Span {
    let mut trace_id = mix(id).to_be_bytes().to_vec();
    trace_id.extend_from_slice(&mix(!id).to_be_bytes());
    Span {
        trace_id,
        span_id: id.to_be_bytes().to_vec(),
        name: format!("span {id}"),
        kind: 2,
        start_time_unix_nano: 1_700_000_000_000_000_000 + id,
        end_time_unix_nano: 1_700_000_000_000_001_000 + id,
        attributes: vec![string("http.route", "/orders/{id}")],
        status: error.then(|| Status {
            code: status::StatusCode::Error as i32,
            message: "boom".into(),
        }),
        ..Default::default()
    }
}

/// The key a span is compared by: its span id.
pub(crate) fn span_key(span: &Span) -> u64 {
    u64::from_be_bytes(span.span_id.as_slice().try_into().expect("8-byte span id"))
}

/// A traces payload with the spans of `ids` (none of them errors).
pub(crate) fn traces(ids: impl IntoIterator<Item = u64>) -> Payload {
    traces_of(ids.into_iter().map(|id| span(id, false)).collect())
}

/// A traces payload with `spans`.
pub(crate) fn traces_of(spans: Vec<Span>) -> Payload {
    Payload::from_request(&ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// A metrics payload with one gauge of `points` data points.
pub(crate) fn metrics(points: usize) -> Payload {
    Payload::from_request(&ExportMetricsServiceRequest {
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
    })
}

/// A logs payload with `records` log records of severity INFO.
pub(crate) fn logs(records: usize) -> Payload {
    Payload::from_request(&ExportLogsServiceRequest {
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
    })
}

/// How often each id occurs.
pub(crate) fn counts(ids: &[u64]) -> BTreeMap<u64, usize> {
    let mut map = BTreeMap::new();
    for id in ids {
        *map.entry(*id).or_insert(0) += 1;
    }
    map
}

/// Whether `ids` holds every id of `expected` exactly once and nothing else.
pub(crate) fn exactly_once(ids: &[u64], expected: impl IntoIterator<Item = u64>) -> bool {
    let want: BTreeMap<u64, usize> = expected.into_iter().map(|id| (id, 1)).collect();
    counts(ids) == want
}
