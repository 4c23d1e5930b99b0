//! The OTLP/HTTP exporter: reqwest (HTTP/1.1 and HTTP/2, pooled connections, rustls on
//! ring), protobuf or OTLP/JSON bodies, gzip or zstd compression, retries and a circuit
//! breaker from `otlp-resilience`, and the status rules of `otlp-core`.
//!
//! ```no_run
//! use std::time::Duration;
//! use otlp_core::Compression;
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_transport_http::exporter::HttpExporter;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = HttpExporter::builder()
//!     .endpoint("http://collector:4318")   // traces go to http://collector:4318/v1/traces
//!     .compression(Compression::Gzip)
//!     .header("api-key", "secret")
//!     .timeout(Duration::from_secs(5))
//!     .build()?;                           // also reads OTEL_EXPORTER_OTLP_* (code wins)
//!
//! let accepted = exporter.export_traces(&ExportTraceServiceRequest::default()).await?;
//! if let Some(partial) = accepted.partial_success {
//!     eprintln!("the collector rejected {} spans: {}", partial.rejected, partial.message);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # What happens to one export
//!
//! 1. The request is encoded once in the configured protocol. A [`Payload`] (protobuf
//!    bytes) is sent as it is for `http/protobuf`, with no decode or re-encode; for
//!    `http/json` it has to be decoded and written as OTLP/JSON (`otlp_core::codec::json`).
//!    Then it is compressed once (`otlp_core::compression::compress`).
//! 2. The retry policy ([`otlp_resilience::retry::RetryPolicy`], OTLP rules through
//!    `OtlpClassifier`) runs attempts; each attempt passes the endpoint's
//!    [`CircuitBreaker`] and is one HTTP request bounded by the timeout.
//! 3. The answer is classified by `otlp-core`:
//!
//! | answer | result | retried |
//! |---|---|---|
//! | 2xx, empty body | full success | - |
//! | 2xx with an `Export*ServiceResponse` (decoded in its content type, else the request's) | `Accepted` with its `partial_success`; logged at `warn` with the counts | never |
//! | 429, 502, 503, 504 | `ExportError::Http` with the `Retry-After` delay (seconds or HTTP-date) | yes, after `Retry-After` when given (up to the policy's cap), else backoff |
//! | any other status (400, 401, 413, 500, ...) | `ExportError::Http` naming the status and the server's `google.rpc.Status` message | no |
//! | no answer within the timeout | `ExportError::Timeout` | yes |
//! | connection refused or reset, TLS failure | `ExportError::Transport` | yes |
//! | circuit breaker open | nothing sent; retried when the breaker lets probes through, if that is soon enough | yes |
//!
//! When the exporter gives up, [`ExportFailure`] says how many items were not
//! delivered, where to, after how many attempts, why ([`FailureReason`]), and the last
//! error. Through the [`otlp_core::Exporter`] trait the last [`ExportError`] is returned
//! (so an outer retry or queue can classify it).
//!
//! # Runtime
//!
//! Exports run on the caller's tokio runtime (reqwest's requirement): call them from
//! async code on a runtime with IO and time enabled. The SDK adapters in
//! [`crate::sdk`] take care of this when the SDK calls them from its own threads.
//!
//! # Configuration
//!
//! From code and from the `OTEL_EXPORTER_OTLP_*` variables: see [`config`] for the
//! precedence and [`env`](mod@env) for the variables.
//!
//! Proxies from `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` apply as in reqwest;
//! redirects are not followed (an OTLP endpoint that redirects is misconfigured, and a
//! redirected POST may become a GET).

mod client;
pub mod config;
pub mod env;
mod error;
pub mod outcome;
pub mod tls;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use bytes::Bytes;
use otlp_core::codec::{self, json};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::sink::{Accepted, BoxFuture};
use otlp_core::{Compression, Encoding, ExportError, Exporter, OtlpRequest, Payload, Signal};
use otlp_resilience::breaker::CircuitBreaker;
use otlp_resilience::retry::RetryPolicy;

pub use crate::receiver::PemSource;
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENDPOINT, DEFAULT_POOL_IDLE_TIMEOUT,
    DEFAULT_POOL_MAX_IDLE_PER_HOST, DEFAULT_TIMEOUT, HttpExporterBuilder, HttpVersion, Protocol,
    SignalSettings,
};
pub use env::{EnvSource, NoEnv, ProcessEnv};
pub use error::{ConfigError, ExportFailure, FailureReason};

use client::Route;
use config::TlsMaterial;
use outcome::{AttemptFailure, ExportCounters, GaveUp};

/// The name of the default retry policy (the `name` attribute of its metrics).
pub const DEFAULT_RETRY_NAME: &str = "otlp-http-exporter";

/// An OTLP/HTTP exporter for traces, metrics and logs. Cheap to clone (an `Arc`); clones
/// share connections, the retry budget, the circuit breakers and the counters.
///
/// See the [module docs](self) for what an export does.
#[derive(Clone)]
pub struct HttpExporter {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    routes: [Route; 3],
    retry: Option<RetryPolicy>,
    counters: ExportCounters,
    shut_down: AtomicBool,
}

impl fmt::Debug for HttpExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpExporter")
            .field("name", &self.inner.name)
            .field("routes", &self.inner.routes)
            .field("retry", &self.inner.retry)
            .field("shut_down", &self.inner.shut_down.load(Ordering::Relaxed))
            .finish()
    }
}

impl HttpExporter {
    /// A builder, reading the process environment unless told otherwise.
    pub fn builder() -> HttpExporterBuilder {
        HttpExporterBuilder::new()
    }

    pub(crate) fn from_builder(builder: HttpExporterBuilder) -> Result<HttpExporter, ConfigError> {
        // One client (and so one connection pool) per distinct TLS configuration, one
        // circuit breaker per distinct URL.
        let mut clients: Vec<(TlsMaterial, reqwest::Client)> = Vec::new();
        let mut breakers: Vec<(String, CircuitBreaker)> = Vec::new();
        let mut routes = Vec::with_capacity(3);
        for signal in Signal::ALL {
            let settings = builder.signal_settings(signal)?;
            let client = match clients.iter().find(|(tls, _)| *tls == settings.tls) {
                Some((_, client)) => client.clone(),
                None => {
                    let tls = tls::client_config(&settings.tls, builder.http_version)?;
                    let client = client::build_client(tls, &builder)?;
                    clients.push((settings.tls.clone(), client.clone()));
                    client
                }
            };
            let breaker = match &builder.common.breaker {
                None => None,
                Some(config) => {
                    let url = settings.endpoint().to_owned();
                    match breakers.iter().find(|(u, _)| *u == url) {
                        Some((_, breaker)) => Some(breaker.clone()),
                        None => {
                            let config = config
                                .clone()
                                .name(url.clone())
                                .build()
                                .map_err(ConfigError::CircuitBreaker)?;
                            let breaker = CircuitBreaker::new(config);
                            breakers.push((url, breaker.clone()));
                            Some(breaker)
                        }
                    }
                }
            };
            routes.push(Route::new(settings, client, breaker, &builder)?);
        }
        let retry = builder.common.retry.policy(DEFAULT_RETRY_NAME);
        let Ok(routes) = <[Route; 3]>::try_from(routes) else {
            unreachable!("one route per signal");
        };
        let name = builder.common.name.clone().unwrap_or_else(|| {
            let url = routes[0].settings.url();
            let host = url.host_str().unwrap_or_default();
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        });
        Ok(HttpExporter {
            inner: Arc::new(Inner {
                name,
                routes,
                retry,
                counters: ExportCounters::default(),
                shut_down: AtomicBool::new(false),
            }),
        })
    }

    fn route(&self, signal: Signal) -> &Route {
        &self.inner.routes[signal.index()]
    }

    /// The settings `signal`'s requests use (endpoint, headers, timeout, ...).
    pub fn settings(&self, signal: Signal) -> &SignalSettings {
        &self.route(signal).settings
    }

    /// The circuit breaker of `signal`'s endpoint (shared by signals with the same URL),
    /// to read its state, subscribe to its events, or force it open.
    pub fn circuit_breaker(&self, signal: Signal) -> Option<&CircuitBreaker> {
        self.route(signal).breaker.as_ref()
    }

    /// The retry policy, unless retries are off.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.inner.retry.as_ref()
    }

    /// Counters since the exporter was built.
    pub fn stats(&self) -> ExporterStats {
        self.inner.counters.snapshot()
    }

    /// Export a traces request.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the spans could not be delivered (see the module docs).
    pub async fn export_traces(
        &self,
        request: &ExportTraceServiceRequest,
    ) -> Result<Accepted, ExportFailure> {
        self.export_request(request).await
    }

    /// Export a metrics request.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the data points could not be delivered.
    pub async fn export_metrics(
        &self,
        request: &ExportMetricsServiceRequest,
    ) -> Result<Accepted, ExportFailure> {
        self.export_request(request).await
    }

    /// Export a logs request.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the log records could not be delivered.
    pub async fn export_logs(
        &self,
        request: &ExportLogsServiceRequest,
    ) -> Result<Accepted, ExportFailure> {
        self.export_request(request).await
    }

    /// Export any of the three request messages, encoded in the configured protocol.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the items could not be delivered.
    pub async fn export_request<T>(&self, request: &T) -> Result<Accepted, ExportFailure>
    where
        T: OtlpRequest + codec::Message,
    {
        let body = codec::encode(self.route(T::SIGNAL).encoding(), request);
        self.send(T::SIGNAL, body, request.item_count()).await
    }

    /// Export a pipeline [`Payload`]: its protobuf bytes are sent as they are (no decode,
    /// no re-encode) for `http/protobuf`; for `http/json` they are decoded and written as
    /// OTLP/JSON.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the items could not be delivered, or (not retryable) when a
    /// payload to be sent as JSON is not valid protobuf.
    pub async fn export_payload(&self, payload: Payload) -> Result<Accepted, ExportFailure> {
        let signal = payload.signal();
        let items = payload.items();
        let route = self.route(signal);
        let body = match route.encoding() {
            Encoding::Protobuf => payload.into_parts().1,
            Encoding::Json => match payload_to_json(&payload) {
                Ok(json) => json,
                Err(e) => {
                    return Err(self.failure(
                        route,
                        items,
                        0,
                        FailureReason::NotRetryable,
                        ExportError::InvalidRequest(format!(
                            "the payload is not a valid protobuf {signal} request, so it cannot be sent as OTLP/JSON: {e}"
                        )),
                    ));
                }
            },
        };
        self.send(signal, body, items).await
    }

    /// Stop exporting: later exports fail at once with [`FailureReason::Shutdown`].
    /// Exports under way finish.
    pub fn shutdown_now(&self) {
        self.inner.shut_down.store(true, Ordering::Release);
    }

    /// Whether [`shutdown_now`](Self::shutdown_now) was called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.shut_down.load(Ordering::Acquire)
    }

    /// Send `body` (encoded in the route's protocol, not yet compressed) with retries.
    pub(crate) async fn send(
        &self,
        signal: Signal,
        body: Bytes,
        items: u64,
    ) -> Result<Accepted, ExportFailure> {
        let route = self.route(signal);
        if self.is_shut_down() {
            return Err(self.failure(
                route,
                items,
                0,
                FailureReason::Shutdown,
                ExportError::Shutdown,
            ));
        }
        let body = match route.settings.compression() {
            Compression::None => body,
            compression => otlp_core::compression::compress(compression, &body),
        };
        let attempts = AtomicU32::new(0);
        let attempt = || {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.inner.counters.count_request();
            route.send_once(body.clone())
        };
        let from_breaker = |e| AttemptFailure::breaker(e, |open| format!("nothing sent: {open}"));
        let outcome = match (&self.inner.retry, &route.breaker) {
            (Some(policy), Some(breaker)) => policy
                .run(|| breaker.call(attempt))
                .await
                .map_err(|e| GaveUp::from_retry(e, from_breaker)),
            (Some(policy), None) => policy
                .run(attempt)
                .await
                .map_err(|e| GaveUp::from_retry(e, AttemptFailure::call)),
            (None, Some(breaker)) => breaker
                .call(attempt)
                .await
                .map_err(|e| GaveUp::without_retry(from_breaker(e))),
            (None, None) => attempt()
                .await
                .map_err(|e| GaveUp::without_retry(AttemptFailure::call(e))),
        };
        let attempts = attempts.load(Ordering::Relaxed);
        let result = self.inner.counters.finish(
            signal,
            items,
            Arc::clone(&route.endpoint),
            attempts,
            outcome,
        );
        match &result {
            Ok(accepted) => {
                if let Some(partial) = &accepted.partial_success {
                    tracing::warn!(
                        exporter = %self.inner.name,
                        endpoint = %route.endpoint,
                        signal = %signal,
                        sent = items,
                        rejected = partial.rejected,
                        message = %partial.message,
                        "partial success: the server rejected {} of {items} {}: {}",
                        partial.rejected,
                        signal.item_name(),
                        partial.message,
                    );
                }
            }
            Err(failure) => tracing::debug!(exporter = %self.inner.name, "{failure}"),
        }
        result
    }

    fn failure(
        &self,
        route: &Route,
        items: u64,
        attempts: u32,
        reason: FailureReason,
        error: ExportError,
    ) -> ExportFailure {
        self.inner.counters.failure(
            route.signal(),
            items,
            Arc::clone(&route.endpoint),
            attempts,
            reason,
            error,
        )
    }
}

fn payload_to_json(payload: &Payload) -> Result<Bytes, codec::DecodeError> {
    Ok(Bytes::from(match payload.signal() {
        Signal::Traces => json::to_vec(&payload.decode::<ExportTraceServiceRequest>()?),
        Signal::Metrics => json::to_vec(&payload.decode::<ExportMetricsServiceRequest>()?),
        Signal::Logs => json::to_vec(&payload.decode::<ExportLogsServiceRequest>()?),
    }))
}

impl Exporter for HttpExporter {
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// [`HttpExporter::export_payload`], returning the last [`ExportError`] on failure.
    fn export(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, ExportError>> {
        Box::pin(async move {
            self.export_payload(payload)
                .await
                .map_err(ExportError::from)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ExportError>> {
        self.shutdown_now();
        Box::pin(async { Ok(()) })
    }
}

/// What an [`HttpExporter`] has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExporterStats {
    /// HTTP requests made (retries included).
    pub requests: u64,
    /// Exports (calls), whatever their outcome.
    pub exports: u64,
    /// Exports that failed ([`ExportFailure`]).
    pub failed_exports: u64,
    /// Exports the server answered with a partial success.
    pub partial_successes: u64,
    /// Items the server accepted.
    pub items_accepted: u64,
    /// Items the server rejected in a partial success (not retried).
    pub items_rejected: u64,
    /// Items in failed exports: not delivered.
    pub items_failed: u64,
}
