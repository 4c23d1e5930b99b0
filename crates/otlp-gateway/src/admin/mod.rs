//! The admin listener: health, readiness, Prometheus metrics, a JSON status document and
//! a status page people read at a glance.
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /healthz` | `200 ok` while the process serves |
//! | `GET /readyz` | `200 ready` while [`Phase::Running`]; `503` with the phase (`starting`, `draining`) otherwise |
//! | `GET /metrics` | Prometheus text format 0.0.4, every name prefixed `otlp_gateway_` |
//! | `GET /api/status` | JSON ([`StatusReport`]): counters, routes, exporters, queues, recent errors, sparkline history |
//! | `GET /status` | one self-contained HTML page (inline CSS and JS, no internet) that refreshes itself from `api/status` every 2 s |
//!
//! `HEAD` works wherever `GET` does; other methods get `405`, other paths `404`, and `/`
//! redirects to `status`.
//!
//! The listener is the one the OTLP/HTTP receiver uses
//! ([`otlp_transport_http::receiver::serve`]): `TCP_NODELAY` on, a client must send its
//! request headers within [`AdminOptions::header_read_timeout`] (a slow client cannot
//! hold a connection), at most [`AdminOptions::max_connections`] at once, graceful
//! shutdown.
//!
//! The Prometheus text is written by hand ([`PrometheusWriter`]): the registry already
//! holds every counter as an atomic, and a client library would add a second registry
//! for a format that is a few lines of text. Timestamps on the status page are formatted
//! here too ([`rfc3339`]) rather than with a date crate, for one format.
//!
//! ```no_run
//! # async fn run() -> Result<(), otlp_gateway::admin::AdminError> {
//! use std::time::Duration;
//! use otlp_gateway::admin::{AdminServer, AdminState};
//! use otlp_gateway::metrics::{GatewayMetrics, Phase};
//!
//! let metrics = GatewayMetrics::new();
//! let admin = AdminServer::bind("127.0.0.1:8888".parse().unwrap(), AdminState::new(metrics.clone())).await?;
//! metrics.set_phase(Phase::Running); // /readyz now answers 200
//! // ...
//! admin.shutdown(Duration::from_secs(1)).await?;
//! # Ok(()) }
//! ```

mod history;
mod page;
mod prometheus;
mod registry;
pub mod sources;
mod status;

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use otlp_transport_http::receiver::{
    BindError, ListenerConfig, ReceiverMetrics, RunningReceiver, ServeError, serve,
};
use serde::Serialize;

pub use history::{
    HISTORY_POINTS, History, HistorySnapshot, HistoryTask, QueueHistory, SAMPLE_INTERVAL,
};
pub use prometheus::{CONTENT_TYPE, METRIC_PREFIX, MetricType, PrometheusWriter, Value};
pub use registry::VERSION;
pub use sources::{DegradationSource, GrpcReceiverSource, HttpReceiverSource};
pub use status::{
    DegradationStatus, ErrorEntry, ExporterStatus, QueueStatus, Refused, RouteStatus, SignalStatus,
    SignalsStatus, StatusReport, Totals, rfc3339,
};

use crate::metrics::{GatewayMetrics, Phase};

/// Something that adds samples to `/metrics` beside the gateway's registry: the
/// receivers' counters, the degradation controller ([`sources`] has ready-made ones).
pub trait MetricsSource: Send + Sync + fmt::Debug {
    /// Add this source's samples (names without the `otlp_gateway_` prefix).
    fn render(&self, out: &mut PrometheusWriter);

    /// A few numbers for `/api/status` and the status page (receivers show as the first
    /// stage of the pipeline diagram). `None` (the default): nothing to show.
    fn summary(&self) -> Option<SourceSummary> {
        None
    }
}

/// What a [`MetricsSource`] shows on the status page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSummary {
    /// `receiver` (a box in the pipeline diagram's first stage), `degradation`, or
    /// anything else (listed in `/api/status` only).
    pub kind: &'static str,
    /// The source's name, e.g. `http`, `grpc`.
    pub name: String,
    /// Its numbers; receivers give `protocol`, `requests`, `accepted_items`.
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// What the admin listener shows.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The gateway's registry.
    pub metrics: Arc<GatewayMetrics>,
    /// More samples for `/metrics`, rendered after the registry's in this order. Shared
    /// by the clones of this state, so sources added after the listener started (the
    /// receivers, which bind after the queues are replayed) show up too.
    extra: Arc<std::sync::RwLock<Vec<Arc<dyn MetricsSource>>>>,
}

impl AdminState {
    /// The registry and no extra sources.
    pub fn new(metrics: Arc<GatewayMetrics>) -> AdminState {
        AdminState {
            metrics,
            extra: Arc::default(),
        }
    }

    /// Add a source.
    pub fn with_source(self, source: impl MetricsSource + 'static) -> AdminState {
        self.add_source(source);
        self
    }

    /// Add a source to this state and every clone of it (also while serving).
    pub fn add_source(&self, source: impl MetricsSource + 'static) {
        self.extra
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(source));
    }

    /// The extra sources now.
    pub fn sources(&self) -> Vec<Arc<dyn MetricsSource>> {
        self.extra.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The `/metrics` text.
    pub fn render_prometheus(&self) -> String {
        let mut out = PrometheusWriter::new();
        MetricsSource::render(&*self.metrics, &mut out);
        for source in self.sources() {
            source.render(&mut out);
        }
        out.finish()
    }
}

/// How the admin listener treats connections.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// A client must send its request headers within this (default 5 s).
    pub header_read_timeout: Duration,
    /// A connection without requests for this long is closed (default 60 s).
    pub idle_timeout: Duration,
    /// Connections open at once (default 64); more wait in the listen backlog.
    pub max_connections: usize,
    /// Grace period for requests in flight when the [`RunningAdmin`] is dropped
    /// (default 1 s).
    pub shutdown_grace: Duration,
}

impl Default for AdminOptions {
    fn default() -> Self {
        AdminOptions {
            header_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 64,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// The admin listener could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The address cannot be listened on.
    #[error("admin listener: {0}")]
    Bind(#[from] BindError),
    /// The accept loop panicked (a bug).
    #[error("admin listener: {0}")]
    Serve(#[from] ServeError),
}

/// Starts the admin listener.
#[derive(Debug, Clone, Copy)]
pub struct AdminServer;

impl AdminServer {
    /// Listen on `addr` with the default [`AdminOptions`] and serve until
    /// [`RunningAdmin::shutdown`] (or until the [`RunningAdmin`] is dropped). Also starts
    /// the [`History`] sampler behind the sparklines. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`AdminError::Bind`] when the address cannot be listened on.
    pub async fn bind(addr: SocketAddr, state: AdminState) -> Result<RunningAdmin, AdminError> {
        AdminServer::bind_with(addr, state, AdminOptions::default()).await
    }

    /// Like [`bind`](Self::bind) with `options`.
    ///
    /// # Errors
    ///
    /// [`AdminError::Bind`] when the address cannot be listened on.
    pub async fn bind_with(
        addr: SocketAddr,
        state: AdminState,
        options: AdminOptions,
    ) -> Result<RunningAdmin, AdminError> {
        let mut listener = ListenerConfig::new(addr);
        listener.header_read_timeout = options.header_read_timeout;
        listener.idle_timeout = options.idle_timeout;
        listener.max_connections = options.max_connections.max(1);
        listener.shutdown_grace = options.shutdown_grace;
        listener.listen_backlog = 128;
        listener.name = "admin";
        let history = History::new();
        let service = AdminService {
            shared: Arc::new(Shared {
                state,
                history: history.clone(),
            }),
        };
        let sampler = history.spawn(service.shared.state.metrics.clone());
        let connections = Arc::new(ReceiverMetrics::default());
        let running = serve(listener, service, connections).await?;
        Ok(RunningAdmin {
            local_addr: running.local_addr(),
            running,
            history,
            _sampler: sampler,
        })
    }
}

/// The admin listener, serving. Dropping it shuts it down with the configured grace.
#[derive(Debug)]
#[must_use = "dropping a RunningAdmin shuts the admin listener down"]
pub struct RunningAdmin {
    local_addr: SocketAddr,
    running: RunningReceiver,
    history: Arc<History>,
    _sampler: HistoryTask,
}

impl RunningAdmin {
    /// The address it listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The sparkline history it samples.
    pub fn history(&self) -> Arc<History> {
        self.history.clone()
    }

    /// Stop accepting, let requests in flight finish for up to `grace`, and return when
    /// every connection is closed.
    ///
    /// # Errors
    ///
    /// [`AdminError::Serve`] if the accept loop panicked (a bug).
    pub async fn shutdown(self, grace: Duration) -> Result<(), AdminError> {
        let RunningAdmin {
            running, _sampler, ..
        } = self;
        drop(_sampler);
        running.shutdown(grace).await?;
        Ok(())
    }
}

#[derive(Debug)]
struct Shared {
    state: AdminState,
    history: Arc<History>,
}

/// Answers every admin request (rendering is synchronous: a few hundred atomic loads).
#[derive(Debug, Clone)]
struct AdminService {
    shared: Arc<Shared>,
}

type AdminResponse = Response<Full<Bytes>>;

impl tower::Service<Request<Incoming>> for AdminService {
    type Response = AdminResponse;
    type Error = Infallible;
    type Future = std::future::Ready<Result<AdminResponse, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        std::future::ready(Ok(self
            .shared
            .respond(request.method(), request.uri().path())))
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";
/// The page may run its own inline script and style and talk to this server only.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

impl Shared {
    fn respond(&self, method: &Method, path: &str) -> AdminResponse {
        const PATHS: [&str; 6] = [
            "/",
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/status",
            "/status",
        ];
        if !PATHS.contains(&path) {
            return reply(
                StatusCode::NOT_FOUND,
                TEXT,
                format!("no such page: {path}\n"),
            );
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                TEXT,
                format!("{path} answers GET and HEAD only\n"),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let metrics = &self.state.metrics;
        match path {
            "/healthz" => reply(StatusCode::OK, TEXT, "ok\n".into()),
            "/readyz" => match metrics.phase() {
                Phase::Running => reply(StatusCode::OK, TEXT, "ready\n".into()),
                phase => reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    TEXT,
                    format!("{}\n", phase.as_str()),
                ),
            },
            "/metrics" => reply(
                StatusCode::OK,
                prometheus::CONTENT_TYPE,
                self.state.render_prometheus(),
            ),
            "/api/status" => {
                let report = StatusReport::collect(&self.state, self.history.snapshot());
                match serde_json::to_string(&report) {
                    Ok(json) => reply(StatusCode::OK, JSON, json),
                    Err(e) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        TEXT,
                        format!("cannot encode the status: {e}\n"),
                    ),
                }
            }
            "/status" => {
                let report = StatusReport::collect(&self.state, self.history.snapshot());
                let mut response = reply(StatusCode::OK, HTML, page::render(&report));
                response.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(PAGE_POLICY),
                );
                response
            }
            _ => {
                // "/": people type the bare address.
                let mut response = reply(StatusCode::FOUND, TEXT, "see status\n".into());
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("status"));
                response
            }
        }
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> AdminResponse {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
