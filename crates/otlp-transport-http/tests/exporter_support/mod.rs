//! Shared pieces of the exporter tests: a scripted HTTP server on 127.0.0.1:0 that
//! records every request and answers as told (status, headers, body, delay, or closing
//! the connection without an answer), request fixtures, a collecting sink for the
//! receiver, and the exporter settings tests use.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

#[path = "../support/certs.rs"]
pub mod certs;
#[path = "../support/python.rs"]
pub mod python;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    Exemplar, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, exemplar, metric, number_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Payload, Refusal};
use otlp_resilience::retry::RetryPolicy;
use otlp_transport_http::exporter::{HttpExporter, HttpExporterBuilder};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(20);

/// Run `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

// --- the scripted server ------------------------------------------------------------

/// What the server does with one request (after reading it whole).
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer with this status, headers and body.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
    },
    /// Wait, then do the inner step.
    After(Duration, Box<Step>),
    /// Close the connection without answering.
    Reset,
}

impl Step {
    /// `status` with an empty body.
    pub fn status(status: u16) -> Step {
        Step::Answer {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// 200 with an empty body (full success).
    pub fn ok() -> Step {
        Step::status(200)
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Step {
        if let Step::Answer { headers, .. } = &mut self {
            headers.push((name, value.into()));
        }
        self
    }

    /// Sets the body and its content type.
    pub fn body(self, content_type: &str, body: impl Into<Bytes>) -> Step {
        let mut step = self.header("content-type", content_type);
        if let Step::Answer { body: b, .. } = &mut step {
            *b = body.into();
        }
        step
    }

    /// Waits `delay` before doing this.
    pub fn after(self, delay: Duration) -> Step {
        Step::After(delay, Box::new(self))
    }
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub at: Instant,
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Arrival {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or("<not ASCII>"))
    }
}

struct State {
    script: Mutex<VecDeque<Step>>,
    otherwise: Step,
    arrivals: Mutex<Vec<Arrival>>,
    connections: AtomicUsize,
}

/// An HTTP/1.1 and h2c server on 127.0.0.1:0 answering from a script.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

/// The service's error: hyper closes the connection without an answer.
#[derive(Debug)]
pub struct ScriptError(String);

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptError {}

type Reply = Result<Response<Full<Bytes>>, ScriptError>;

fn run(step: Step) -> Pin<Box<dyn Future<Output = Reply> + Send>> {
    Box::pin(async move {
        match step {
            Step::Answer {
                status,
                headers,
                body,
            } => {
                let mut response = Response::new(Full::new(body));
                *response.status_mut() = StatusCode::from_u16(status).expect("status");
                for (name, value) in headers {
                    response
                        .headers_mut()
                        .append(name, value.parse().expect("header value"));
                }
                Ok(response)
            }
            Step::After(delay, step) => {
                tokio::time::sleep(delay).await;
                run(*step).await
            }
            // hyper closes the connection without writing anything when the service fails.
            Step::Reset => Err(ScriptError("scripted reset".to_owned())),
        }
    })
}

impl ScriptedServer {
    /// Answers the requests in order with `script`, then every later one with `otherwise`.
    pub async fn start(script: Vec<Step>, otherwise: Step) -> ScriptedServer {
        ScriptedServer::start_with(script, otherwise, None).await
    }

    /// Like [`start`](Self::start), over TLS with `tls` when given.
    pub async fn start_with(
        script: Vec<Step>,
        otherwise: Step,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> ScriptedServer {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State {
            script: Mutex::new(script.into()),
            otherwise,
            arrivals: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // The design's known trap: set TCP_NODELAY on every accepted socket.
                let _ = stream.set_nodelay(true);
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let state = Arc::clone(&shared);
                let service = service_fn(move |request: Request<Incoming>| {
                    let state = Arc::clone(&state);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = match body.collect().await {
                            Ok(collected) => collected.to_bytes(),
                            Err(e) => return Err(ScriptError(e.to_string())),
                        };
                        state.arrivals.lock().unwrap().push(Arrival {
                            at: Instant::now(),
                            path: parts.uri.path().to_owned(),
                            version: parts.version,
                            headers: parts.headers,
                            body,
                        });
                        let step = state
                            .script
                            .lock()
                            .unwrap()
                            .pop_front()
                            .unwrap_or_else(|| state.otherwise.clone());
                        run(step).await
                    }
                });
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                        Some(acceptor) => {
                            // A failed handshake (e.g. no client certificate) just ends here.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    }
                });
            }
        });
        ScriptedServer { addr, state, task }
    }

    /// A server that answers every request with `step`.
    pub async fn always(step: Step) -> ScriptedServer {
        ScriptedServer::start(Vec::new(), step).await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `https://127.0.0.1:PORT` (an IP address the test certificate names).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// How many requests arrived.
    pub fn requests(&self) -> usize {
        self.state.arrivals.lock().unwrap().len()
    }

    /// The requests that arrived, in order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- exporter settings --------------------------------------------------------------

/// A retry policy for tests: `attempts` attempts, 10-50 ms backoff, server delays
/// honoured up to 3 s, no budget.
pub fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .name("exporter-test")
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .max_server_delay(Duration::from_secs(3))
        .max_elapsed(Duration::from_secs(20))
        .no_budget()
        .build()
}

/// An exporter builder for `base` without environment, with [`fast_retry`] (5
/// attempts), no circuit breaker and a 5 s timeout.
pub fn test_exporter(base: &str) -> HttpExporterBuilder {
    HttpExporter::builder()
        .no_env()
        .endpoint(base)
        .retry(fast_retry(5))
        .no_circuit_breaker()
        .timeout(Duration::from_secs(5))
}

// --- fixtures -----------------------------------------------------------------------

pub fn string(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            string("service.name", "exporter-test"),
            string("service.instance.id", "rs-0001"),
            kv("process.pid", any_value::Value::IntValue(4242)),
        ],
        ..Default::default()
    })
}

pub fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_owned(),
        version: "1.2.3".to_owned(),
        attributes: vec![string("scope.kind", "test")],
        ..Default::default()
    })
}

/// A traces request with `spans` spans of realistic shape: ids, parent, times, kind,
/// status, six attributes of every value type, an event on every third span.
pub fn traces(spans: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope("exporter-test"),
                spans: (0..spans).map(span_fixture).collect(),
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
            }],
            ..Default::default()
        }],
    }
}

fn span_fixture(i: usize) -> Span {
    let n = i as u64;
    Span {
        trace_id: (0x5b8e_fff7_9803_8103_d269_b633_813f_c60c_u128 + u128::from(n))
            .to_be_bytes()
            .to_vec(),
        span_id: (0xeee1_9b7e_c3c1_b174 + n).to_be_bytes().to_vec(),
        parent_span_id: if i.is_multiple_of(4) {
            Vec::new()
        } else {
            (0xaaaa_0000_0000_0000 + n).to_be_bytes().to_vec()
        },
        trace_state: if i.is_multiple_of(5) {
            "vendor=v1".to_owned()
        } else {
            String::new()
        },
        flags: 0x101,
        name: format!("GET /orders/{i}"),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_700_000_000_000_000_000 + n * 1_000,
        end_time_unix_nano: 1_700_000_000_000_500_000 + n * 1_000,
        attributes: vec![
            string("http.request.method", "GET"),
            string("url.path", &format!("/orders/{i}")),
            kv(
                "http.response.status_code",
                any_value::Value::IntValue(200 + (n % 3) as i64),
            ),
            kv(
                "server.duration",
                any_value::Value::DoubleValue(0.25 * n as f64),
            ),
            kv(
                "cache.hit",
                any_value::Value::BoolValue(i.is_multiple_of(2)),
            ),
            kv(
                "tags",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::StringValue("a".into())),
                        },
                        AnyValue {
                            value: Some(any_value::Value::IntValue(-7)),
                        },
                    ],
                }),
            ),
        ],
        events: if i.is_multiple_of(3) {
            vec![span::Event {
                time_unix_nano: 1_700_000_000_000_100_000 + n,
                name: "cache.miss".to_owned(),
                attributes: vec![string("cache.key", &format!("order:{i}"))],
                dropped_attributes_count: 0,
            }]
        } else {
            Vec::new()
        },
        status: Some(Status {
            code: if i % 7 == 6 {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Ok as i32
            },
            message: if i % 7 == 6 {
                "upstream failed".to_owned()
            } else {
                String::new()
            },
        }),
        ..Default::default()
    }
}

/// A metrics request with a gauge, a monotonic sum and a histogram with an exemplar,
/// `points` data points each.
pub fn metrics(points: usize) -> ExportMetricsServiceRequest {
    let attrs = |i: usize| vec![string("queue", &format!("q{i}"))];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope("exporter-test.metrics"),
                metrics: vec![
                    Metric {
                        name: "queue.depth".to_owned(),
                        unit: "{item}".to_owned(),
                        description: "items waiting".to_owned(),
                        data: Some(metric::Data::Gauge(Gauge {
                            data_points: (0..points)
                                .map(|i| NumberDataPoint {
                                    attributes: attrs(i),
                                    time_unix_nano: 1_700_000_000_000_000_000,
                                    value: Some(number_data_point::Value::AsInt(i as i64 * 3)),
                                    ..Default::default()
                                })
                                .collect(),
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "requests".to_owned(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: (0..points)
                                .map(|i| NumberDataPoint {
                                    attributes: attrs(i),
                                    start_time_unix_nano: 1_699_999_990_000_000_000,
                                    time_unix_nano: 1_700_000_000_000_000_000,
                                    value: Some(number_data_point::Value::AsDouble(i as f64 + 0.5)),
                                    ..Default::default()
                                })
                                .collect(),
                            aggregation_temporality: 2,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "latency".to_owned(),
                        unit: "ms".to_owned(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: (0..points)
                                .map(|i| HistogramDataPoint {
                                    attributes: attrs(i),
                                    start_time_unix_nano: 1_699_999_990_000_000_000,
                                    time_unix_nano: 1_700_000_000_000_000_000,
                                    count: 6,
                                    sum: Some(61.5),
                                    bucket_counts: vec![1, 2, 3],
                                    explicit_bounds: vec![5.0, 25.0],
                                    min: Some(0.5),
                                    max: Some(40.0),
                                    exemplars: vec![Exemplar {
                                        time_unix_nano: 1_699_999_999_000_000_000,
                                        value: Some(exemplar::Value::AsDouble(40.0)),
                                        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
                                        trace_id: vec![9; 16],
                                        ..Default::default()
                                    }],
                                    ..Default::default()
                                })
                                .collect(),
                            aggregation_temporality: 1,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A logs request with `records` log records: severities, bodies of several types,
/// trace context on every other record.
pub fn logs(records: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope("exporter-test.logs"),
                log_records: (0..records)
                    .map(|i| {
                        let n = i as u64;
                        LogRecord {
                            time_unix_nano: 1_700_000_000_000_000_000 + n,
                            observed_time_unix_nano: 1_700_000_000_000_000_100 + n,
                            severity_number: [1, 5, 9, 13, 17, 21][i % 6],
                            severity_text: ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
                                [i % 6]
                                .to_owned(),
                            body: Some(AnyValue {
                                value: Some(match i % 3 {
                                    0 => any_value::Value::StringValue(format!("record {i}")),
                                    1 => any_value::Value::KvlistValue(KeyValueList {
                                        values: vec![string("user", "ada")],
                                    }),
                                    _ => any_value::Value::BytesValue(vec![0, 1, 254, 255]),
                                }),
                            }),
                            attributes: vec![string("logger", "orders")],
                            trace_id: if i % 2 == 0 { vec![7; 16] } else { Vec::new() },
                            span_id: if i % 2 == 0 { vec![8; 8] } else { Vec::new() },
                            flags: if i % 2 == 0 { 1 } else { 0 },
                            event_name: if i % 4 == 0 {
                                "order.placed".to_owned()
                            } else {
                                String::new()
                            },
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

// --- a sink for the receiver --------------------------------------------------------

/// Keeps every payload the receiver accepts.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Payload>>);

impl Collect {
    pub fn new() -> Arc<Collect> {
        Arc::new(Collect::default())
    }

    pub fn payloads(&self) -> Vec<Payload> {
        self.0.lock().unwrap().clone()
    }

    pub fn items(&self) -> u64 {
        self.0.lock().unwrap().iter().map(Payload::items).sum()
    }

    /// Waits until at least `items` items arrived.
    pub async fn wait_for_items(&self, items: u64) {
        bounded("items reaching the receiver", async {
            while self.items() < items {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
    }
}

impl Sink for Collect {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        self.0.lock().unwrap().push(payload);
        Box::pin(async { Ok(Accepted::full()) })
    }
}
