//! The OTLP/gRPC exporter: tonic channels over our own TCP/TLS connector (rustls on
//! ring, `TCP_NODELAY`), encoded requests sent as they are through a pass-through codec,
//! gzip or zstd, retries and a circuit breaker per endpoint address from
//! `otlp-resilience`, balancing across the addresses of one upstream, and the status
//! rules of `otlp-core`.
//!
//! ```no_run
//! use std::time::Duration;
//! use otlp_core::Compression;
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_transport_grpc::exporter::GrpcExporter;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exporter = GrpcExporter::builder()
//!     .endpoint("http://collector:4317")   // plaintext; https:// for TLS
//!     .compression(Compression::Gzip)
//!     .header("api-key", "secret")         // gRPC metadata
//!     .timeout(Duration::from_secs(5))     // per call, also sent as grpc-timeout
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
//! # Public API
//!
//! | item | what it is |
//! |---|---|
//! | [`GrpcExporter`] | the exporter: `export_traces` / `export_metrics` / `export_logs` / `export_request` (typed requests), `export_payload` (encoded bytes, sent as they are), `otlp_core::Exporter`, `stats`, `endpoints`, `refresh_endpoints`, `shutdown_now` |
//! | [`GrpcExporterBuilder`] | endpoints (`endpoint`, `endpoints`, `signal_endpoint`, `insecure`), `header`, `timeout`, `compression`, TLS (`ca_certificate`, `client_identity`), `connect_timeout`, keepalive (`keep_alive_interval`, `keep_alive_timeout`, `keep_alive_while_idle`), `max_encoding_message_size`, `max_decoding_message_size`, `user_agent`, `retry` / `no_retry`, `circuit_breaker` / `no_circuit_breaker`, `resolver`, `resolve_interval`, `env` / `no_env`, `name`, `signal_settings`, `build` |
//! | [`SignalSettings`] | one signal's merged settings |
//! | [`ExportFailure`], [`FailureReason`] | data not delivered, and why (the OTLP/HTTP exporter's types) |
//! | [`ExporterStats`], [`EndpointStatus`] | counters; one address's load and breaker |
//! | [`Resolve`], [`SystemResolver`] | host names to addresses |
//! | [`ConfigError`] | a configuration that cannot work |
//!
//! # What happens to one export
//!
//! 1. The request is encoded once (a [`Payload`] already is: its bytes are sent without
//!    a decode or re-encode, through [`BytesCodec`](crate::codec::BytesCodec)); tonic
//!    frames and compresses it on each attempt.
//! 2. The retry policy ([`otlp_resilience::retry::RetryPolicy`], OTLP rules through
//!    `OtlpClassifier`) runs attempts. Each attempt picks an address of the upstream
//!    (see *Balancing*) whose [`CircuitBreaker`](otlp_resilience::breaker::CircuitBreaker)
//!    admits it, and is one unary call bounded by the timeout.
//! 3. The answer is classified by `otlp-core` ([`ExportError::from_grpc`] with the
//!    `grpc-status-details-bin` trailer, a `google.rpc.Status`):
//!
//! | answer | result | retried |
//! |---|---|---|
//! | OK, empty message or `Export*ServiceResponse` without `partial_success` | full success | - |
//! | OK with `partial_success` | `Accepted` with it; logged at `warn` with the counts | never |
//! | CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS | `ExportError::Grpc` | yes, after `RetryInfo`'s delay when given (up to the policy's cap), else backoff |
//! | RESOURCE_EXHAUSTED with `RetryInfo` | `ExportError::Grpc` | yes, after the delay |
//! | RESOURCE_EXHAUSTED without `RetryInfo`, and every other code (INVALID_ARGUMENT, UNAUTHENTICATED, INTERNAL, UNIMPLEMENTED, ...) | `ExportError::Grpc` naming the code and message | no |
//! | no answer within the timeout | `ExportError::Timeout` | yes |
//! | connection refused, reset or dropped, TLS failure, broken HTTP/2 stream | `ExportError::Transport` | yes |
//! | OK with a response that is not an `Export*ServiceResponse` | `ExportError::InvalidResponse` | no (the server took the data) |
//! | request over [`max_encoding_message_size`](GrpcExporterBuilder::max_encoding_message_size) | `ExportError::InvalidRequest`, nothing sent | no |
//! | every address's circuit breaker open | nothing sent; retried when a breaker lets probes through, if that is soon enough | yes |
//!
//! When the exporter gives up, [`ExportFailure`] says how many items were not delivered,
//! where to, after how many calls, why ([`FailureReason`]), and the last error. Through
//! the [`otlp_core::Exporter`] trait the last [`ExportError`] is returned (so an outer
//! retry or queue can classify it).
//!
//! # Balancing
//!
//! An upstream is the list of endpoint URLs a signal goes to ([`endpoint`](GrpcExporterBuilder::endpoint)
//! or several with [`endpoints`](GrpcExporterBuilder::endpoints)). Each URL's host name
//! is resolved ([`Resolve`]; again every [`resolve_interval`](GrpcExporterBuilder::resolve_interval),
//! 30 s by default), and every address is a backend with its own HTTP/2 connection and
//! its own circuit breaker. A call goes to the less loaded of two backends picked at
//! random (calls in flight) among those whose breaker admits calls; a retry prefers a
//! backend this export has not tried. An address that re-resolution drops gets no new
//! calls while its calls under way finish: nothing is lost. TLS verifies the configured
//! host name, not the address.
//!
//! # Runtime
//!
//! Exports run on the caller's tokio runtime (IO and time enabled). Connections are
//! opened on first use, on the runtime that uses them; an exporter shared by several
//! runtimes keeps a connection per runtime. The SDK adapters in [`crate::sdk`] run
//! exports on a runtime of their own when the SDK calls them from its threads.
//!
//! # Configuration
//!
//! From code and from the `OTEL_EXPORTER_OTLP_*` variables: see [`config`] for the
//! precedence and the endpoint forms. The variables are read with the OTLP/HTTP
//! exporter's helpers (`otlp_transport_http::exporter::env`), plus
//! `OTEL_EXPORTER_OTLP_INSECURE` (and its per-signal forms).

mod balance;
mod call;
pub mod config;
mod connector;
mod error;
pub mod resolve;
mod status_guard;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::sink::{Accepted, BoxFuture};
use otlp_core::{ExportError, Exporter, OtlpRequest, Payload, Signal};
use otlp_resilience::breaker::BreakerError;
use otlp_resilience::classify::{Classify, OtlpClassifier};
use otlp_resilience::retry::RetryPolicy;
use otlp_transport_http::exporter::HttpVersion;
use otlp_transport_http::exporter::config::TlsMaterial;
use otlp_transport_http::exporter::outcome::{AttemptFailure, ExportCounters, GaveUp};

pub use balance::EndpointStatus;
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_ENDPOINT, DEFAULT_KEEP_ALIVE_TIMEOUT,
    DEFAULT_MAX_DECODING_MESSAGE_SIZE, DEFAULT_RESOLVE_INTERVAL, DEFAULT_TIMEOUT,
    GrpcExporterBuilder, SignalSettings,
};
pub use error::ConfigError;
pub use otlp_transport_http::exporter::env::{EnvSource, NoEnv, ProcessEnv};
pub use otlp_transport_http::exporter::{ExportFailure, FailureReason, PemSource};
pub use resolve::{Resolve, SystemResolver};

use balance::Upstream;
use call::CallSettings;
use config::Target;

/// The name of the default retry policy (the `name` attribute of its metrics).
pub const DEFAULT_RETRY_NAME: &str = "otlp-grpc-exporter";

/// An OTLP/gRPC exporter for traces, metrics and logs. Cheap to clone (an `Arc`); clones
/// share connections, the retry budget, the circuit breakers and the counters.
///
/// See the [module docs](self) for what an export does.
#[derive(Clone)]
pub struct GrpcExporter {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    routes: [Route; 3],
    retry: Option<RetryPolicy>,
    counters: ExportCounters,
    shut_down: AtomicBool,
}

/// Where one signal's calls go and how they look.
#[derive(Debug)]
struct Route {
    settings: SignalSettings,
    call: CallSettings,
    upstream: Arc<Upstream>,
    max_encoding_message_size: Option<usize>,
}

impl fmt::Debug for GrpcExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcExporter")
            .field("name", &self.inner.name)
            .field("routes", &self.inner.routes)
            .field("retry", &self.inner.retry)
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

impl GrpcExporter {
    /// A builder, reading the process environment unless told otherwise.
    pub fn builder() -> GrpcExporterBuilder {
        GrpcExporterBuilder::new()
    }

    fn from_builder(builder: GrpcExporterBuilder) -> Result<GrpcExporter, ConfigError> {
        // Signals with the same endpoints and TLS material share an upstream (its
        // connections and breakers).
        let mut upstreams: Vec<(Vec<Target>, TlsMaterial, Arc<Upstream>)> = Vec::new();
        let mut routes = Vec::with_capacity(3);
        for signal in Signal::ALL {
            let settings = builder.signal_settings(signal)?;
            let shared = upstreams
                .iter()
                .find(|(targets, tls, _)| *targets == settings.targets && *tls == settings.tls)
                .map(|(_, _, upstream)| Arc::clone(upstream));
            let upstream = match shared {
                Some(upstream) => upstream,
                None => {
                    let tls = if settings.uses_tls() {
                        let config = otlp_transport_http::exporter::tls::client_config(
                            &settings.tls,
                            HttpVersion::Http2Only,
                        )?;
                        Some(Arc::new(config))
                    } else {
                        None
                    };
                    let upstream =
                        Arc::new(Upstream::new(settings.targets.clone(), tls, &builder)?);
                    upstreams.push((
                        settings.targets.clone(),
                        settings.tls.clone(),
                        Arc::clone(&upstream),
                    ));
                    upstream
                }
            };
            let call = CallSettings::new(
                signal,
                settings.headers().clone(),
                settings.timeout(),
                settings.compression(),
                builder.max_decoding_message_size,
            );
            routes.push(Route {
                settings,
                call,
                upstream,
                max_encoding_message_size: builder.max_encoding_message_size,
            });
        }
        let retry = builder.common.retry.policy(DEFAULT_RETRY_NAME);
        let Ok(routes) = <[Route; 3]>::try_from(routes) else {
            unreachable!("one route per signal");
        };
        let name = builder
            .common
            .name
            .clone()
            .unwrap_or_else(|| routes[0].upstream.name.to_string());
        Ok(GrpcExporter {
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

    /// The settings `signal`'s calls use (endpoints, metadata, timeout, ...).
    pub fn settings(&self, signal: Signal) -> &SignalSettings {
        &self.route(signal).settings
    }

    /// The addresses `signal`'s calls go to now, with their load and circuit breakers
    /// (empty until host names are resolved, on the first export).
    pub fn endpoints(&self, signal: Signal) -> Vec<EndpointStatus> {
        self.route(signal)
            .upstream
            .pool()
            .iter()
            .map(|b| b.status())
            .collect()
    }

    /// Resolves `signal`'s host names now instead of at the next interval.
    ///
    /// # Errors
    ///
    /// `ExportError::Transport` naming the host names that could not be resolved (their
    /// addresses from before are kept).
    pub async fn refresh_endpoints(&self, signal: Signal) -> Result<(), ExportError> {
        self.route(signal).upstream.refresh().await
    }

    /// The retry policy, unless retries are off.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.inner.retry.as_ref()
    }

    /// Counters since the exporter was built.
    pub fn stats(&self) -> ExporterStats {
        let shared = self.inner.counters.snapshot();
        ExporterStats {
            requests: shared.requests,
            exports: shared.exports,
            failed_exports: shared.failed_exports,
            partial_successes: shared.partial_successes,
            items_accepted: shared.items_accepted,
            items_rejected: shared.items_rejected,
            items_failed: shared.items_failed,
        }
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

    /// Export any of the three request messages.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the items could not be delivered.
    pub async fn export_request<T: OtlpRequest>(
        &self,
        request: &T,
    ) -> Result<Accepted, ExportFailure> {
        let payload = Payload::from_request(request);
        self.export_payload(payload).await
    }

    /// Export a pipeline [`Payload`]: its protobuf bytes are sent as they are, without
    /// a decode or re-encode.
    ///
    /// # Errors
    ///
    /// [`ExportFailure`] when the items could not be delivered.
    pub async fn export_payload(&self, payload: Payload) -> Result<Accepted, ExportFailure> {
        let signal = payload.signal();
        let items = payload.items();
        let body = payload.into_parts().1;
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

    /// Send `body` (an encoded request of `signal` holding `items` items) with retries.
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
        if let Some(max) = route.max_encoding_message_size
            && body.len() > max
        {
            return Err(self.failure(
                route,
                items,
                0,
                FailureReason::NotRetryable,
                ExportError::InvalidRequest(format!(
                    "the request is {} bytes, over the {max} bytes allowed (max_encoding_message_size); send smaller batches",
                    body.len()
                )),
            ));
        }
        let attempts = AtomicU32::new(0);
        let tried = Mutex::new(Vec::new());
        let attempt = || self.attempt(route, body.clone(), &attempts, &tried);
        let outcome = match &self.inner.retry {
            Some(policy) => policy
                .run(attempt)
                .await
                .map_err(|e| GaveUp::from_retry(e, from_attempt)),
            None => attempt()
                .await
                .map_err(|e| GaveUp::without_retry(from_attempt(e))),
        };
        let attempts = attempts.load(Ordering::Relaxed);
        let result = self.inner.counters.finish(
            signal,
            items,
            Arc::clone(&route.upstream.name),
            attempts,
            outcome,
        );
        match &result {
            Ok(accepted) => {
                if let Some(partial) = &accepted.partial_success {
                    tracing::warn!(
                        exporter = %self.inner.name,
                        endpoint = %route.upstream.name,
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

    /// One attempt: pick a backend whose breaker admits the call, make the call, report
    /// its outcome to the breaker.
    async fn attempt(
        &self,
        route: &Route,
        body: Bytes,
        attempts: &AtomicU32,
        tried: &Mutex<Vec<u64>>,
    ) -> Result<Accepted, BreakerError<ExportError>> {
        let pool = route
            .upstream
            .backends()
            .await
            .map_err(BreakerError::Inner)?;
        let picked = {
            let mut tried = tried.lock().unwrap_or_else(PoisonError::into_inner);
            let picked = balance::pick(&pool, &tried);
            if let Ok((backend, _)) = &picked {
                tried.push(backend.id);
            }
            picked
        };
        let (backend, permit) = match picked {
            Ok(picked) => picked,
            Err(Some(open)) => return Err(BreakerError::Open(open)),
            Err(None) => {
                return Err(BreakerError::Inner(ExportError::Transport(format!(
                    "{}: no address to call",
                    route.upstream.name
                ))));
            }
        };
        attempts.fetch_add(1, Ordering::Relaxed);
        self.inner.counters.count_request();
        let result = backend.call(&route.call, body).await;
        if let Some(permit) = permit {
            permit.complete(OtlpClassifier.classify(&result));
        }
        if let Err(e) = &result {
            tracing::debug!(exporter = %self.inner.name, backend = %backend.label, "call failed: {e}");
        }
        result.map_err(BreakerError::Inner)
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
            route.settings.signal(),
            items,
            Arc::clone(&route.upstream.name),
            attempts,
            reason,
            error,
        )
    }
}

/// What an attempt's error means: every breaker refusing becomes a retryable transport
/// error saying so (nothing was sent), with when the first breaker lets probes through.
fn from_attempt(error: BreakerError<ExportError>) -> AttemptFailure {
    AttemptFailure::breaker(error, |open| {
        format!("nothing sent: the circuit breaker of every address is open ({open})")
    })
}

impl Exporter for GrpcExporter {
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// [`GrpcExporter::export_payload`], returning the last [`ExportError`] on failure.
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

/// What a [`GrpcExporter`] has done since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExporterStats {
    /// gRPC calls made (retries included).
    pub requests: u64,
    /// Exports, whatever their outcome.
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
