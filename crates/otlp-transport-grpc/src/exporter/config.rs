//! How a [`GrpcExporter`](super::GrpcExporter) is configured: from code, from the
//! standard `OTEL_EXPORTER_OTLP_*` variables, or both.
//!
//! # Precedence
//!
//! For each signal and each setting, the first of these that is set wins:
//!
//! 1. code, for this signal: [`GrpcExporterBuilder::signal_endpoint`];
//! 2. code, for every signal: [`endpoint`](GrpcExporterBuilder::endpoint) or
//!    [`endpoints`](GrpcExporterBuilder::endpoints), [`timeout`](GrpcExporterBuilder::timeout),
//!    [`compression`](GrpcExporterBuilder::compression), ...;
//! 3. the signal-specific variable, e.g. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! 4. the generic variable, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`;
//! 5. the default: `http://localhost:4317`, 10 s, no compression, the operating system's
//!    trust store.
//!
//! Endpoints are used as they are, at every level: OTLP/gRPC has no per-signal path (the
//! gRPC method names the service). Headers are the exception to "first wins", as in the
//! OTLP/HTTP exporter: the headers from the environment (signal-specific variable, else
//! generic) are sent, and headers set in code are added, replacing any of the same name.
//!
//! # Endpoints
//!
//! | written | transport | port when none is given |
//! |---|---|---|
//! | `http://host:port`, `grpc://host:port` | plaintext HTTP/2 (h2c) | 80 (`http`), 4317 (`grpc`) |
//! | `https://host:port` | TLS (rustls, ring), ALPN `h2` | 443 |
//! | `host:port` (no scheme) | TLS, unless `OTEL_EXPORTER_OTLP_INSECURE=true` or [`insecure(true)`](GrpcExporterBuilder::insecure) | 4317 |
//!
//! A path after the port is ignored (a warning is logged unless it is `/`).
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use otlp_core::{Compression, Signal};
//! use otlp_transport_grpc::exporter::GrpcExporterBuilder;
//!
//! let env = HashMap::from([
//!     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
//!     ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "logs.example:4317"),
//!     ("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "true"),
//!     ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
//!     ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
//! ]);
//! let builder = GrpcExporterBuilder::new().env(env).compression(Compression::Gzip);
//!
//! let traces = builder.signal_settings(Signal::Traces)?;
//! assert_eq!(traces.endpoint(), "http://collector:4317"); // as is: no /v1/traces
//! assert_eq!(traces.timeout(), Duration::from_secs(5));
//! assert_eq!(traces.compression(), Compression::Gzip); // code over env
//! assert_eq!(traces.headers()["api-key"], "secret");
//! let logs = builder.signal_settings(Signal::Logs)?;
//! assert_eq!(logs.endpoint(), "http://logs.example:4317"); // no scheme + insecure: plaintext
//! # Ok::<(), otlp_transport_grpc::exporter::ConfigError>(())
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::uri::Authority;
use otlp_core::{Compression, Signal};
use otlp_resilience::breaker::CircuitBreakerConfigBuilder;
use otlp_resilience::retry::RetryPolicy;
use otlp_transport_http::exporter::config::{
    CommonOptions, HeaderKind, RequestSettings, RetrySetting, TlsMaterial,
};
use otlp_transport_http::exporter::env::{EnvSource, NoEnv, Setting};

use super::error::ConfigError;
use super::resolve::{Resolve, SystemResolver};
use crate::exporter::PemSource;

/// The default endpoint: OTLP/gRPC's port on this host, plaintext (the specification's
/// default).
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4317";
/// Default per-call timeout: 10 s, the specification's default for
/// `OTEL_EXPORTER_OTLP_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = otlp_transport_http::exporter::DEFAULT_TIMEOUT;
/// Default time allowed to open a connection (TCP and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration =
    otlp_transport_http::exporter::DEFAULT_CONNECT_TIMEOUT;
/// Default time to wait for a keepalive PING's answer before closing the connection.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default largest response message read: 4 MiB (gRPC's usual receive limit; an OTLP
/// response is a few bytes).
pub const DEFAULT_MAX_DECODING_MESSAGE_SIZE: usize = 4 * 1024 * 1024;
/// Default interval at which host names are resolved again.
pub const DEFAULT_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

/// Builds a [`GrpcExporter`](super::GrpcExporter). See the [module docs](self) for the
/// precedence of code and environment.
pub struct GrpcExporterBuilder {
    pub(crate) common: CommonOptions,
    endpoints: Option<Vec<String>>,
    signal_endpoints: [Option<String>; 3],
    insecure: Option<bool>,
    pub(crate) keep_alive_interval: Option<Duration>,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) keep_alive_while_idle: bool,
    pub(crate) max_encoding_message_size: Option<usize>,
    pub(crate) max_decoding_message_size: usize,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) resolve_interval: Option<Duration>,
}

impl fmt::Debug for GrpcExporterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let common = &self.common;
        f.debug_struct("GrpcExporterBuilder")
            .field("endpoints", &self.endpoints)
            .field("signal_endpoints", &self.signal_endpoints)
            // Header values may be credentials.
            .field(
                "headers",
                &common.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &common.timeout)
            .field("compression", &common.compression)
            .field("insecure", &self.insecure)
            .field("ca", &common.ca)
            .field("client_certificate", &common.client_certificate)
            .field("client_key", &common.client_key.as_ref().map(|_| "..."))
            .field("connect_timeout", &common.connect_timeout)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("retry", &common.retry)
            .field("breaker", &common.breaker)
            .field("resolve_interval", &self.resolve_interval)
            .finish_non_exhaustive()
    }
}

impl Default for GrpcExporterBuilder {
    fn default() -> Self {
        GrpcExporterBuilder::new()
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_INSECURE`, which `Setting` (shared with OTLP/HTTP, where
/// it does not exist) does not name.
const fn insecure_var(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
        Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_INSECURE",
        Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_INSECURE",
    }
}
const INSECURE_VAR: &str = "OTEL_EXPORTER_OTLP_INSECURE";

impl GrpcExporterBuilder {
    /// The defaults, reading the process environment (as the OpenTelemetry SDKs'
    /// exporters do); use [`env`](Self::env) or [`no_env`](Self::no_env) to change that.
    pub fn new() -> GrpcExporterBuilder {
        let mut common = CommonOptions::default();
        // This crate's version, should it ever differ from the HTTP crate's.
        common.user_agent = concat!("otlp-rust/", env!("CARGO_PKG_VERSION")).to_owned();
        GrpcExporterBuilder {
            common,
            endpoints: None,
            signal_endpoints: [None, None, None],
            insecure: None,
            keep_alive_interval: None,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            keep_alive_while_idle: false,
            max_encoding_message_size: None,
            max_decoding_message_size: DEFAULT_MAX_DECODING_MESSAGE_SIZE,
            resolver: Arc::new(SystemResolver),
            resolve_interval: Some(DEFAULT_RESOLVE_INTERVAL),
        }
    }

    /// The exporter's name in logs and `otlp_core::Exporter::name` (default: the traces
    /// endpoint).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.common.name = Some(name.into());
        self
    }

    /// Read the `OTEL_EXPORTER_OTLP_*` variables from `source` instead of the process
    /// environment (a `HashMap` in tests).
    pub fn env(mut self, source: impl EnvSource + 'static) -> Self {
        self.common.env = Box::new(source);
        self
    }

    /// Ignore the environment: configuration from code only.
    pub fn no_env(self) -> Self {
        self.env(NoEnv)
    }

    /// The endpoint for every signal, e.g. `http://collector:4317`, used as is (see the
    /// [module docs](self) for the forms). Replaces [`endpoints`](Self::endpoints).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints = Some(vec![url.into()]);
        self
    }

    /// Several endpoints of one upstream, for every signal: calls are balanced across
    /// them (and across every address their host names resolve to), each with its own
    /// circuit breaker. Replaces [`endpoint`](Self::endpoint).
    pub fn endpoints<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.endpoints = Some(urls.into_iter().map(Into::into).collect());
        self
    }

    /// The endpoint for one signal, over [`endpoint`](Self::endpoint) and the environment.
    pub fn signal_endpoint(mut self, signal: Signal, url: impl Into<String>) -> Self {
        self.signal_endpoints[signal.index()] = Some(url.into());
        self
    }

    /// Sends this metadata entry with every call (added to the headers from the
    /// environment, replacing one of the same name). Checked by [`build`](Self::build).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.common.headers.push((name.into(), value.into()));
        self
    }

    /// How long one call (connect, send, the whole response) may take
    /// (`OTEL_EXPORTER_OTLP_TIMEOUT`); also sent to the server as `grpc-timeout`. A call
    /// that takes longer fails with `ExportError::Timeout` and is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.common.timeout = Some(timeout);
        self
    }

    /// How request messages are compressed (`OTEL_EXPORTER_OTLP_COMPRESSION`): gzip, zstd
    /// or none (deflate works too, though no OTLP exporter sends it). Responses
    /// compressed with any of them are accepted whatever this says.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.common.compression = Some(compression);
        self
    }

    /// For endpoints written without a scheme (`host:port`): plaintext when `true`, TLS
    /// when `false` (`OTEL_EXPORTER_OTLP_INSECURE`; default `false`). Endpoints with a
    /// scheme say it themselves.
    pub fn insecure(mut self, insecure: bool) -> Self {
        self.insecure = Some(insecure);
        self
    }

    /// Trust only the CA certificate(s) in this PEM (`OTEL_EXPORTER_OTLP_CERTIFICATE`)
    /// instead of the operating system's trust store.
    pub fn ca_certificate(mut self, pem: PemSource) -> Self {
        self.common.ca = Some(pem);
        self
    }

    /// Present this client certificate chain and key for mutual TLS
    /// (`OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY`).
    pub fn client_identity(mut self, certificate_chain: PemSource, private_key: PemSource) -> Self {
        self.common.client_certificate = Some(certificate_chain);
        self.common.client_key = Some(private_key);
        self
    }

    /// How long opening a connection (TCP and TLS handshake) may take (default 10 s;
    /// also bounded by the call timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.common.connect_timeout = timeout;
        self
    }

    /// Send an HTTP/2 PING on every connection at this interval and close connections
    /// that do not answer within [`keep_alive_timeout`](Self::keep_alive_timeout)
    /// (default: no keepalive). Keep it above the server's permitted minimum (gRPC
    /// servers commonly refuse PINGs more often than every 5 minutes without calls, or
    /// 10 s with [`keep_alive_while_idle`](Self::keep_alive_while_idle)).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = Some(interval);
        self
    }

    /// How long a keepalive PING may wait for its answer (default 20 s).
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Send keepalive PINGs also while no call is under way (default `false`).
    pub fn keep_alive_while_idle(mut self, enabled: bool) -> Self {
        self.keep_alive_while_idle = enabled;
        self
    }

    /// The largest request message sent, encoded, before compression (default: no
    /// limit). A larger request fails at once, without a call, and is not retried: split
    /// it (the gateway's batcher does).
    pub fn max_encoding_message_size(mut self, max: usize) -> Self {
        self.max_encoding_message_size = Some(max);
        self
    }

    /// The largest response message read, after decompression (default 4 MiB).
    pub fn max_decoding_message_size(mut self, max: usize) -> Self {
        self.max_decoding_message_size = max;
        self
    }

    /// The `User-Agent` prefix (default `otlp-rust/VERSION`; tonic adds its own name).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.common.user_agent = user_agent.into();
        self
    }

    /// The retry policy (default: `RetryPolicy::builder().name("otlp-grpc-exporter")`:
    /// 5 attempts, 1 s to 5 s jittered backoff, `RetryInfo` honoured up to 10 s, 30 s at
    /// most). Every signal shares it, and so its retry budget.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.common.retry = RetrySetting::Policy(policy);
        self
    }

    /// Make each call once: retryable errors are returned to the caller (e.g. when an
    /// outer `otlp_resilience` stack or a durable queue retries).
    pub fn no_retry(mut self) -> Self {
        self.common.retry = RetrySetting::Disabled;
        self
    }

    /// The circuit breaker settings; each endpoint address gets its own breaker, named
    /// after its URL and address (the name set here is replaced). Default:
    /// `CircuitBreakerConfig::default()`.
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfigBuilder) -> Self {
        self.common.breaker = Some(config);
        self
    }

    /// No circuit breakers.
    pub fn no_circuit_breaker(mut self) -> Self {
        self.common.breaker = None;
        self
    }

    /// How host names are turned into addresses (default [`SystemResolver`]:
    /// `tokio::net::lookup_host`).
    pub fn resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Resolve host names again when the last resolution is older than `interval`
    /// (default 30 s): an address that appeared gets calls, one that disappeared gets no
    /// new calls (calls under way on it finish). `None`: resolve once, on first use.
    pub fn resolve_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.resolve_interval = interval.into();
        self
    }

    /// The settings `signal`'s calls will use, merged from code and environment as the
    /// [module docs](self) describe. Certificate files are read here.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that cannot work.
    pub fn signal_settings(&self, signal: Signal) -> Result<SignalSettings, ConfigError> {
        let insecure = match self.insecure {
            Some(insecure) => insecure,
            None => self.env_insecure(signal)?,
        };
        let targets = match (&self.signal_endpoints[signal.index()], &self.endpoints) {
            (Some(url), _) => vec![Target::parse("signal_endpoint()", url, insecure)?],
            (None, Some(urls)) => {
                if urls.is_empty() {
                    return Err(ConfigError::NoEndpoints);
                }
                let key = if urls.len() == 1 {
                    "endpoint()"
                } else {
                    "endpoints()"
                };
                urls.iter()
                    .map(|url| Target::parse(key, url, insecure))
                    .collect::<Result<Vec<_>, _>>()?
            }
            (None, None) => match self.common.lookup(Setting::Endpoint, signal) {
                Some(v) => vec![Target::parse(v.var, &v.value, insecure)?],
                None => vec![Target::parse(
                    "default endpoint",
                    DEFAULT_ENDPOINT,
                    insecure,
                )?],
            },
        };
        let RequestSettings {
            headers,
            timeout,
            compression,
            ..
        } = self
            .common
            .request_settings(signal, HeaderKind::GrpcMetadata)?;
        let tls = self.common.tls_material(signal)?;

        Ok(SignalSettings {
            signal,
            targets,
            headers,
            timeout,
            compression,
            tls,
        })
    }

    fn env_insecure(&self, signal: Signal) -> Result<bool, ConfigError> {
        for var in [insecure_var(signal), INSECURE_VAR] {
            let Some(value) = self.common.env.var(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            return match value.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ConfigError::InvalidInsecure {
                    key: var.to_owned(),
                    value,
                }),
            };
        }
        Ok(false)
    }

    /// The exporter.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that cannot work.
    pub fn build(self) -> Result<super::GrpcExporter, ConfigError> {
        super::GrpcExporter::from_builder(self)
    }
}

/// One configured endpoint URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Target {
    /// The URL as the exporter shows it: `http://host:port` or `https://host:port`.
    pub(crate) url: Arc<str>,
    /// The host name or IP address (no brackets), also the TLS server name.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    /// Set when the host is an IP address: nothing to resolve.
    pub(crate) ip: Option<IpAddr>,
    /// `host:port` as written, for the `:authority` of calls.
    pub(crate) authority: String,
}

impl Target {
    pub(crate) fn parse(key: &str, value: &str, insecure: bool) -> Result<Target, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidEndpoint {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let text = value.trim();
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) => (Some(scheme.to_ascii_lowercase()), rest),
            None => (None, text),
        };
        let (tls, default_port) = match scheme.as_deref() {
            Some("http") => (false, 80),
            Some("grpc") => (false, 4317),
            Some("https") => (true, 443),
            None => (!insecure, 4317),
            Some(other) => {
                return Err(invalid(format!(
                    "scheme {other:?} is not http, https or grpc"
                )));
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.contains('@') {
            return Err(invalid(
                "user information in the URL is not supported; send credentials as headers"
                    .to_owned(),
            ));
        }
        let authority: Authority = authority
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(invalid("no host".to_owned()));
        }
        if !path.is_empty() && path != "/" {
            tracing::warn!(
                setting = key,
                endpoint = value,
                "the path {path:?} of an OTLP/gRPC endpoint is ignored: gRPC calls go to the service's own path"
            );
        }
        let port = match authority.port_u16() {
            Some(port) => port,
            // `Authority` accepts any digits after the colon; `port_u16` is `None` for
            // an out-of-range one, which must not fall back to the default silently.
            None if authority.as_str().len() > authority.host().len() => {
                return Err(invalid(
                    "the port is not a number from 0 to 65535".to_owned(),
                ));
            }
            None => default_port,
        };
        let ip = host.parse::<IpAddr>().ok();
        let authority = match ip {
            Some(IpAddr::V6(_)) => format!("[{host}]:{port}"),
            _ => format!("{host}:{port}"),
        };
        let scheme = if tls { "https" } else { "http" };
        Ok(Target {
            url: Arc::from(format!("{scheme}://{authority}")),
            host,
            port,
            tls,
            ip,
            authority,
        })
    }
}

/// The settings of one signal's calls after merging code, environment and defaults (see
/// [`GrpcExporterBuilder::signal_settings`]).
#[derive(Clone)]
pub struct SignalSettings {
    signal: Signal,
    pub(crate) targets: Vec<Target>,
    headers: HeaderMap,
    timeout: Duration,
    compression: Compression,
    pub(crate) tls: TlsMaterial,
}

impl fmt::Debug for SignalSettings {
    /// Header values and key material are not printed: they may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalSettings")
            .field("signal", &self.signal)
            .field("endpoints", &self.endpoints().collect::<Vec<_>>())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("custom_ca", &self.has_custom_ca())
            .field("client_certificate", &self.has_client_certificate())
            .finish()
    }
}

impl SignalSettings {
    /// The signal.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// The first endpoint (the only one unless several were configured), normalized to
    /// `http://host:port` or `https://host:port`.
    pub fn endpoint(&self) -> &str {
        self.targets.first().map_or("", |t| &t.url)
    }

    /// Every configured endpoint, normalized.
    pub fn endpoints(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|t| &*t.url)
    }

    /// Whether any endpoint uses TLS.
    pub fn uses_tls(&self) -> bool {
        self.targets.iter().any(|t| t.tls)
    }

    /// The metadata sent with every call.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The request compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Whether a CA certificate replaces the operating system's trust store.
    pub fn has_custom_ca(&self) -> bool {
        self.tls.ca.is_some()
    }

    /// Whether a client certificate is presented (mutual TLS).
    pub fn has_client_certificate(&self) -> bool {
        self.tls.client_identity.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(
        env: &[(&'static str, &'static str)],
        b: GrpcExporterBuilder,
        s: Signal,
    ) -> SignalSettings {
        let env: HashMap<&'static str, &'static str> = env.iter().copied().collect();
        b.env(env).signal_settings(s).unwrap()
    }

    #[test]
    fn endpoint_forms() {
        for (written, insecure, url, tls, port) in [
            ("http://c:4317", false, "http://c:4317", false, 4317),
            ("http://c:4317/", false, "http://c:4317", false, 4317),
            (
                "HTTPS://c.example",
                false,
                "https://c.example:443",
                true,
                443,
            ),
            ("grpc://c", false, "http://c:4317", false, 4317),
            ("c:9000", false, "https://c:9000", true, 9000),
            ("c:9000", true, "http://c:9000", false, 9000),
            ("http://[::1]:4317", false, "http://[::1]:4317", false, 4317),
            (
                "http://127.0.0.1:1/v1/traces",
                false,
                "http://127.0.0.1:1",
                false,
                1,
            ),
        ] {
            let t = Target::parse("k", written, insecure).unwrap();
            assert_eq!((&*t.url, t.tls, t.port), (url, tls, port), "{written}");
        }
        let t = Target::parse("k", "http://[::1]:4317", false).unwrap();
        assert_eq!(t.host, "::1");
        assert!(t.ip.is_some());
        let t = Target::parse("k", "https://collector.example:4317", false).unwrap();
        assert_eq!(t.host, "collector.example");
        assert_eq!(t.ip, None);
        for bad in [
            "ftp://c:1",
            "http://",
            "http://u:p@c:1",
            "http://c:99999",
            "not a url",
        ] {
            let err = Target::parse("OTEL_EXPORTER_OTLP_ENDPOINT", bad, false).unwrap_err();
            assert!(
                err.to_string().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn endpoint_precedence() {
        let b = GrpcExporterBuilder::new;
        assert_eq!(
            settings(&[], b(), Signal::Metrics).endpoint(),
            "http://localhost:4317"
        );
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1"),
        ];
        assert_eq!(settings(&env, b(), Signal::Traces).endpoint(), "http://t:1");
        assert_eq!(
            settings(&env, b(), Signal::Logs).endpoint(),
            "http://generic:4317"
        );
        assert_eq!(
            settings(&env, b().endpoint("http://code:2"), Signal::Traces).endpoint(),
            "http://code:2"
        );
        let s = settings(
            &env,
            b().endpoints(["http://a:1", "http://b:2"])
                .signal_endpoint(Signal::Logs, "http://l:3"),
            Signal::Traces,
        );
        assert_eq!(
            s.endpoints().collect::<Vec<_>>(),
            ["http://a:1", "http://b:2"]
        );
        let s = settings(
            &env,
            b().endpoints(["http://a:1", "http://b:2"])
                .signal_endpoint(Signal::Logs, "http://l:3"),
            Signal::Logs,
        );
        assert_eq!(s.endpoints().collect::<Vec<_>>(), ["http://l:3"]);
        let err = b()
            .no_env()
            .endpoints(Vec::<String>::new())
            .signal_settings(Signal::Traces)
            .unwrap_err();
        assert!(matches!(err, ConfigError::NoEndpoints), "{err}");
    }

    #[test]
    fn insecure_from_env() {
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_METRICS_INSECURE", "TRUE"),
        ];
        let b = GrpcExporterBuilder::new;
        assert!(settings(&env, b(), Signal::Traces).uses_tls());
        assert!(!settings(&env, b(), Signal::Metrics).uses_tls());
        assert!(!settings(&env, b().insecure(true), Signal::Traces).uses_tls());
        // A scheme wins over INSECURE.
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317"),
            ("OTEL_EXPORTER_OTLP_INSECURE", "true"),
        ];
        assert!(settings(&env, b(), Signal::Logs).uses_tls());
        let err = b()
            .env(HashMap::from([("OTEL_EXPORTER_OTLP_INSECURE", "yes")]))
            .signal_settings(Signal::Logs)
            .unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_INSECURE"),
            "{err}"
        );
    }

    #[test]
    fn shared_settings_come_from_the_http_helpers() {
        let env = [
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "c=3"),
        ];
        let b = GrpcExporterBuilder::new;
        let t = settings(&env, b(), Signal::Traces);
        assert_eq!(t.timeout(), Duration::from_secs(1));
        assert_eq!(t.compression(), Compression::Gzip);
        assert_eq!(t.headers().len(), 1);
        assert_eq!(t.headers()["c"], "3");
        let l = settings(&env, b(), Signal::Logs);
        assert_eq!(l.timeout(), Duration::from_secs(2));
        assert_eq!(l.headers()["a"], "1");
        assert_eq!(
            settings(&env, b(), Signal::Metrics).compression(),
            Compression::Zstd
        );
        let code = b()
            .timeout(Duration::from_millis(7))
            .compression(Compression::None)
            .header("a", "code")
            .header("d", "4");
        let l = settings(&env, code, Signal::Logs);
        assert_eq!(l.timeout(), Duration::from_millis(7));
        assert_eq!(l.compression(), Compression::None);
        assert_eq!(l.headers()["a"], "code");
        assert_eq!(l.headers()["b"], "2");
        assert_eq!(l.headers()["d"], "4");

        let err = b()
            .env(HashMap::from([("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]))
            .signal_settings(Signal::Logs)
            .unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_TIMEOUT"),
            "{err}"
        );
        let err = b()
            .env(HashMap::from([(
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "/nonexistent/cert.pem",
            )]))
            .signal_settings(Signal::Logs)
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
        let err = b()
            .no_env()
            .header("bad name", "v")
            .signal_settings(Signal::Traces)
            .unwrap_err();
        assert!(err.to_string().contains("header()"), "{err}");
    }
}
