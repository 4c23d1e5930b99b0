//! A real gRPC server on 127.0.0.1:0 answering the three OTLP services as a script
//! says: OK, OK with a partial success, any status with or without `RetryInfo`, slowly,
//! or by dropping the connection. It records every call it received (path, metadata,
//! the message after decompression, when, on which connection, TLS details).
//!
//! hyper serves HTTP/2 (plaintext or rustls, `TCP_NODELAY` on every accepted socket);
//! `tonic::server::Grpc` with the crate's pass-through `BytesCodec` does the gRPC part
//! (framing, `grpc-encoding`, status trailers), so the exporter talks to real tonic.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use otlp_core::error::{RETRY_INFO_TYPE_URL, RetryInfo, RpcStatus};
use otlp_core::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use otlp_core::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlp_core::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric, number_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use otlp_core::{Encoding, OtlpResponse, PartialSuccess, Signal, codec};
use otlp_transport_grpc::codec::BytesCodec;
use prost::Message as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tonic::codec::CompressionEncoding;

/// Every network step of a test is bounded by this.
pub const STEP: Duration = Duration::from_secs(20);

/// Run `future`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {STEP:?}"))
}

// --- the script ---------------------------------------------------------------------

/// What the server does with one call (after reading its message).
#[derive(Debug, Clone)]
pub enum Step {
    /// OK with an empty `Export*ServiceResponse` (full success).
    Ok,
    /// OK with a `partial_success`.
    Partial { rejected: u64, message: String },
    /// A non-OK status, with `RetryInfo` details when `retry_after` is set.
    Status {
        code: tonic::Code,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Wait, then do the inner step.
    Slow(Duration, Box<Step>),
    /// Close the connection without answering.
    Drop,
}

impl Step {
    pub fn ok() -> Step {
        Step::Ok
    }

    pub fn partial(rejected: u64, message: &str) -> Step {
        Step::Partial {
            rejected,
            message: message.to_owned(),
        }
    }

    pub fn status(code: tonic::Code) -> Step {
        Step::Status {
            code,
            message: format!("scripted {code:?}"),
            retry_after: None,
        }
    }

    pub fn status_with_retry_info(code: tonic::Code, retry_after: Duration) -> Step {
        Step::Status {
            code,
            message: format!("scripted {code:?}, retry in {retry_after:?}"),
            retry_after: Some(retry_after),
        }
    }

    pub fn slow(delay: Duration, then: Step) -> Step {
        Step::Slow(delay, Box::new(then))
    }

    pub fn drop_connection() -> Step {
        Step::Drop
    }
}

/// The encoded `google.rpc.Status` for `grpc-status-details-bin`, with `RetryInfo`.
pub fn retry_info_details(code: tonic::Code, message: &str, delay: Duration) -> Bytes {
    let info = RetryInfo {
        retry_delay: Some(prost_types::Duration {
            seconds: delay.as_secs() as i64,
            nanos: delay.subsec_nanos() as i32,
        }),
    };
    let status = RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: vec![prost_types::Any {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        }],
    };
    Bytes::from(status.encode_to_vec())
}

/// One call the server received.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub path: String,
    /// The `:authority` of the call (the configured host name, not the address).
    pub authority: String,
    pub headers: HeaderMap,
    /// The request message after decompression.
    pub body: Bytes,
    pub at: Instant,
    /// Which accepted connection it came on (0, 1, ...).
    pub connection: u64,
    /// The TLS server name the client asked for (SNI), on TLS connections.
    pub sni: Option<String>,
    /// The protocol TLS negotiated by ALPN, on TLS connections.
    pub alpn: Option<Vec<u8>>,
    /// Whether the client presented a certificate (mutual TLS).
    pub client_certificate: bool,
}

impl Arrival {
    /// A header's value, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn signal(&self) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.grpc_path() == self.path)
    }
}

/// How to run the server.
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Serve TLS with this configuration (ALPN `h2` is set).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Compress responses with this when the client accepts it.
    pub send_compressed: Option<CompressionEncoding>,
}

struct State {
    script: Mutex<VecDeque<Step>>,
    then: Mutex<Step>,
    arrivals: Mutex<Vec<Arrival>>,
    send_compressed: Option<CompressionEncoding>,
    connections: AtomicU64,
    /// Tells every connection to close (the server going down).
    close_all: Notify,
}

impl State {
    fn next_step(&self) -> Step {
        let scripted = self.script.lock().unwrap().pop_front();
        scripted.unwrap_or_else(|| self.then.lock().unwrap().clone())
    }
}

/// The scripted server. Dropping it stops accepting and closes every connection.
pub struct TonicServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Drop for TonicServer {
    fn drop(&mut self) {
        self.accept.abort();
        self.state.close_all.notify_waiters();
    }
}

impl TonicServer {
    /// Answers every call with `step`.
    pub async fn always(step: Step) -> TonicServer {
        TonicServer::start(Vec::new(), step, ServerOptions::default()).await
    }

    /// Answers the first calls as `script` says, then every call with `then`.
    pub async fn script(script: Vec<Step>, then: Step) -> TonicServer {
        TonicServer::start(script, then, ServerOptions::default()).await
    }

    pub async fn start(script: Vec<Step>, then: Step, options: ServerOptions) -> TonicServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            script: Mutex::new(script.into()),
            then: Mutex::new(then),
            arrivals: Mutex::new(Vec::new()),
            send_compressed: options.send_compressed,
            connections: AtomicU64::new(0),
            close_all: Notify::new(),
        });
        let tls = options.tls.map(|config| {
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"h2".to_vec()];
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state), tls));
        TonicServer {
            addr,
            state,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.arrivals.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.arrivals.lock().unwrap().len()
    }

    /// Replaces what the server answers from now on.
    pub fn set_script(&self, script: Vec<Step>, then: Step) {
        *self.state.script.lock().unwrap() = script.into();
        *self.state.then.lock().unwrap() = then;
    }

    /// Waits (bounded) until the server has received `n` calls.
    pub async fn wait_for(&self, n: usize) {
        bounded("waiting for calls", async {
            while self.count() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            continue;
        };
        tcp.set_nodelay(true).unwrap();
        let connection = state.connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve(tcp, Arc::clone(&state), tls.clone(), connection));
    }
}

/// What a call knows about its connection.
#[derive(Clone)]
struct Conn {
    id: u64,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    client_certificate: bool,
    /// Closes this connection.
    kill: Arc<Notify>,
}

async fn serve(tcp: TcpStream, state: Arc<State>, tls: Option<tokio_rustls::TlsAcceptor>, id: u64) {
    let kill = Arc::new(Notify::new());
    match tls {
        None => {
            let conn = Conn {
                id,
                sni: None,
                alpn: None,
                client_certificate: false,
                kill,
            };
            serve_http2(TokioIo::new(tcp), state, conn).await;
        }
        Some(acceptor) => {
            // A failed handshake (an untrusted or missing client certificate) just
            // closes the connection, as a real server does.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let (_, session) = stream.get_ref();
            let conn = Conn {
                id,
                sni: session.server_name().map(str::to_owned),
                alpn: session.alpn_protocol().map(<[u8]>::to_vec),
                client_certificate: session.peer_certificates().is_some_and(|c| !c.is_empty()),
                kill,
            };
            serve_http2(TokioIo::new(stream), state, conn).await;
        }
    }
}

async fn serve_http2<I>(io: I, state: Arc<State>, conn: Conn)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let kill = Arc::clone(&conn.kill);
    let service_state = Arc::clone(&state);
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let state = Arc::clone(&service_state);
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(handle(state, conn, request).await) }
    });
    let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(io, service);
    // Dropping the connection closes the socket without a GOAWAY: a crash, as the
    // client sees it.
    tokio::select! {
        _ = connection => {}
        _ = kill.notified() => {}
        _ = state.close_all.notified() => {}
    }
}

async fn handle(
    state: Arc<State>,
    conn: Conn,
    request: http::Request<Incoming>,
) -> http::Response<tonic::body::Body> {
    let path = request.uri().path().to_owned();
    let Some(signal) = Signal::ALL.into_iter().find(|s| s.grpc_path() == path) else {
        return tonic::Status::unimplemented(format!("no service at {path}")).into_http();
    };
    let mut grpc = tonic::server::Grpc::new(BytesCodec)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .accept_compressed(CompressionEncoding::Deflate)
        .max_decoding_message_size(64 * 1024 * 1024);
    if let Some(encoding) = state.send_compressed {
        grpc = grpc.send_compressed(encoding);
    }
    let handler = Handler {
        state: Arc::clone(&state),
        authority: request
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        conn,
        signal,
        path,
        headers: request.headers().clone(),
    };
    grpc.unary(handler, request).await
}

struct Handler {
    state: Arc<State>,
    authority: String,
    conn: Conn,
    signal: Signal,
    path: String,
    headers: HeaderMap,
}

impl tonic::server::UnaryService<Bytes> for Handler {
    type Response = Bytes;
    type Future =
        Pin<Box<dyn Future<Output = Result<tonic::Response<Bytes>, tonic::Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        self.state.arrivals.lock().unwrap().push(Arrival {
            path: self.path.clone(),
            authority: self.authority.clone(),
            headers: self.headers.clone(),
            body: request.into_inner(),
            at: Instant::now(),
            connection: self.conn.id,
            sni: self.conn.sni.clone(),
            alpn: self.conn.alpn.clone(),
            client_certificate: self.conn.client_certificate,
        });
        let step = self.state.next_step();
        let signal = self.signal;
        let kill = Arc::clone(&self.conn.kill);
        Box::pin(answer(step, signal, kill))
    }
}

async fn answer(
    mut step: Step,
    signal: Signal,
    kill: Arc<Notify>,
) -> Result<tonic::Response<Bytes>, tonic::Status> {
    while let Step::Slow(delay, then) = step {
        tokio::time::sleep(delay).await;
        step = *then;
    }
    match step {
        Step::Ok => Ok(tonic::Response::new(Bytes::new())),
        Step::Partial { rejected, message } => {
            let partial = Some(PartialSuccess { rejected, message });
            let body = match signal {
                Signal::Traces => response::<ExportTraceServiceResponse>(partial),
                Signal::Metrics => response::<ExportMetricsServiceResponse>(partial),
                Signal::Logs => response::<ExportLogsServiceResponse>(partial),
            };
            Ok(tonic::Response::new(body))
        }
        Step::Status {
            code,
            message,
            retry_after: None,
        } => Err(tonic::Status::new(code, message)),
        Step::Status {
            code,
            message,
            retry_after: Some(delay),
        } => {
            let details = retry_info_details(code, &message, delay);
            Err(tonic::Status::with_details(code, message, details))
        }
        Step::Drop => {
            kill.notify_one();
            // The connection goes away with this call.
            std::future::pending().await
        }
        Step::Slow(..) => unreachable!("unwrapped above"),
    }
}

fn response<R: OtlpResponse + codec::Message>(partial: Option<PartialSuccess>) -> Bytes {
    codec::encode(Encoding::Protobuf, &R::with_partial_success(partial))
}

// --- TLS ----------------------------------------------------------------------------

/// A rustls server configuration (ring) from PEM, requiring a client certificate signed
/// by `client_ca_pem` when given.
pub fn server_tls(
    cert_pem: &str,
    key_pem: &str,
    client_ca_pem: Option<&str>,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    Arc::new(builder.with_single_cert(chain, key).unwrap())
}

// --- request fixtures ---------------------------------------------------------------

fn attr(key: &str, value: &str) -> KeyValue {
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
        attributes: vec![attr("service.name", "grpc-exporter-test")],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "fixtures".to_owned(),
        version: "1.0.0".to_owned(),
        ..Default::default()
    })
}

/// A traces request with `n` spans (distinct ids, a few attributes each).
pub fn traces(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| {
            let i = i as u64 + 1;
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&i.to_be_bytes());
            trace_id[8..].copy_from_slice(&(i * 7919).to_be_bytes());
            Span {
                trace_id: trace_id.to_vec(),
                span_id: i.to_be_bytes().to_vec(),
                name: format!("GET /orders/{i}"),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + i,
                end_time_unix_nano: 1_700_000_000_100_000_000 + i,
                attributes: vec![
                    attr("http.request.method", "GET"),
                    attr("url.path", &format!("/orders/{i}")),
                    attr("user_agent.original", "fixture/1.0"),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A metrics request with `n` gauge data points.
pub fn metrics(n: usize) -> ExportMetricsServiceRequest {
    let points = (0..n)
        .map(|i| NumberDataPoint {
            attributes: vec![attr("cpu", &i.to_string())],
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            value: Some(number_data_point::Value::AsDouble(i as f64 * 0.5)),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![Metric {
                    name: "system.cpu.utilization".to_owned(),
                    unit: "1".to_owned(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: points,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A logs request with `n` log records.
pub fn logs(n: usize) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000 + i as u64,
            severity_number: 13,
            severity_text: "WARN".to_owned(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "disk {i} almost full"
                ))),
            }),
            attributes: vec![attr("disk", &i.to_string())],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

// --- exporter settings tests use ----------------------------------------------------

/// A retry policy with short backoffs (10 to 50 ms), server delays honoured up to 3 s,
/// no retry budget.
pub fn fast_retry(attempts: u32) -> otlp_resilience::retry::RetryPolicy {
    otlp_resilience::retry::RetryPolicy::builder()
        .name("grpc-exporter-test")
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(50))
        .max_server_delay(Duration::from_secs(3))
        .max_elapsed(Duration::from_secs(20))
        .no_budget()
        .build()
}

/// An exporter builder for `url` without environment, with [`fast_retry`] (5
/// attempts), no circuit breaker and a 5 s timeout.
pub fn test_exporter(url: &str) -> otlp_transport_grpc::exporter::GrpcExporterBuilder {
    otlp_transport_grpc::exporter::GrpcExporter::builder()
        .no_env()
        .endpoint(url)
        .retry(fast_retry(5))
        .no_circuit_breaker()
        .timeout(Duration::from_secs(5))
}
