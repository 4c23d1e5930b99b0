//! How an [`HttpExporter`](super::HttpExporter) is configured: from code, from the
//! standard `OTEL_EXPORTER_OTLP_*` variables, or both.
//!
//! # Precedence
//!
//! For each signal and each setting, the first of these that is set wins:
//!
//! 1. code, for this signal: [`HttpExporterBuilder::signal_endpoint`] (used as is);
//! 2. code, for every signal: [`HttpExporterBuilder::endpoint`] (gets `/v1/traces`,
//!    `/v1/metrics` or `/v1/logs` appended), [`timeout`](HttpExporterBuilder::timeout),
//!    [`compression`](HttpExporterBuilder::compression), ...;
//! 3. the signal-specific variable, e.g. `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is);
//! 4. the generic variable, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT` (path appended);
//! 5. the default: `http://localhost:4318` + the signal's path, 10 s, no compression,
//!    `http/protobuf`, the operating system's trust store.
//!
//! Headers are the exception: the headers from the environment (signal-specific
//! variable, else generic) are sent, and headers set in code are added to them,
//! replacing any of the same name.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Duration;
//! use otlp_core::{Compression, Signal};
//! use otlp_transport_http::exporter::{HttpExporterBuilder, Protocol};
//!
//! let env = HashMap::from([
//!     ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
//!     ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs.example:9000/ingest"),
//!     ("OTEL_EXPORTER_OTLP_TIMEOUT", "5000"),
//!     ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
//!     ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
//! ]);
//! let builder = HttpExporterBuilder::new().env(env).compression(Compression::Gzip);
//!
//! let traces = builder.signal_settings(Signal::Traces)?;
//! assert_eq!(traces.endpoint(), "http://collector:4318/v1/traces");
//! assert_eq!(traces.timeout(), Duration::from_secs(5));
//! assert_eq!(traces.compression(), Compression::Gzip); // code over env
//! assert_eq!(traces.protocol(), Protocol::HttpJson);
//! assert_eq!(traces.headers()["api-key"], "secret");
//! let logs = builder.signal_settings(Signal::Logs)?;
//! assert_eq!(logs.endpoint(), "http://logs.example:9000/ingest"); // as is
//! # Ok::<(), otlp_transport_http::exporter::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use otlp_core::{Compression, Encoding, Signal};
use otlp_resilience::breaker::CircuitBreakerConfigBuilder;
use otlp_resilience::retry::RetryPolicy;
use reqwest::Url;

use super::env::{self, EnvSource, ProcessEnv, Setting};
use super::error::ConfigError;
use crate::receiver::PemSource;

/// The default endpoint (OTLP/HTTP's port on this host); the signal's path is appended.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318";
/// Default per-request timeout: 10 s, the specification's default for
/// `OTEL_EXPORTER_OTLP_TIMEOUT`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed to open a connection (TCP and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Default number of idle connections kept per host.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 32;

/// The OTLP/HTTP body encoding, as the `OTEL_EXPORTER_OTLP_PROTOCOL` values name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// `http/protobuf`: binary protobuf, `application/x-protobuf` (the default).
    #[default]
    HttpProtobuf,
    /// `http/json`: OTLP/JSON, `application/json`.
    HttpJson,
}

impl Protocol {
    /// The body encoding.
    pub const fn encoding(self) -> Encoding {
        match self {
            Protocol::HttpProtobuf => Encoding::Protobuf,
            Protocol::HttpJson => Encoding::Json,
        }
    }

    /// The value as `OTEL_EXPORTER_OTLP_PROTOCOL` writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::HttpProtobuf => "http/protobuf",
            Protocol::HttpJson => "http/json",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which HTTP versions the exporter speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HttpVersion {
    /// HTTP/1.1 over plain TCP; over TLS, HTTP/2 when the server offers it by ALPN,
    /// else HTTP/1.1 (the default).
    #[default]
    Auto,
    /// HTTP/1.1 only.
    Http1Only,
    /// HTTP/2 only: h2c with prior knowledge over plain TCP, ALPN `h2` over TLS. The
    /// server must speak HTTP/2 (our receiver does, on the same port as HTTP/1.1).
    Http2Only,
}

/// What an exporter does about retries.
#[derive(Debug, Clone, Default)]
pub enum RetrySetting {
    /// The default policy: `RetryPolicy::builder()` with the exporter's name for it.
    #[default]
    Default,
    /// This policy.
    Policy(RetryPolicy),
    /// Each request is sent once.
    Disabled,
}

impl RetrySetting {
    /// The policy to run, `None` when retries are off; `default_name` names the default
    /// policy (the `name` attribute of its metrics).
    pub fn policy(&self, default_name: &str) -> Option<RetryPolicy> {
        match self {
            RetrySetting::Default => Some(RetryPolicy::builder().name(default_name).build()),
            RetrySetting::Policy(policy) => Some(policy.clone()),
            RetrySetting::Disabled => None,
        }
    }
}

/// What a header is called in errors about one set in code: an HTTP header, or an entry
/// of gRPC metadata (which travels as an HTTP/2 header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeaderKind {
    /// An HTTP header: "not a valid HTTP header name".
    Http,
    /// gRPC metadata: "not a valid metadata key".
    GrpcMetadata,
}

impl HeaderKind {
    fn invalid_name(self) -> &'static str {
        match self {
            HeaderKind::Http => "not a valid HTTP header name",
            HeaderKind::GrpcMetadata => "not a valid metadata key",
        }
    }

    fn invalid_value(self) -> &'static str {
        match self {
            HeaderKind::Http => "not a valid HTTP header value",
            HeaderKind::GrpcMetadata => "not a valid metadata value",
        }
    }
}

/// The settings every OTLP exporter builder keeps, whatever the transport: where the
/// `OTEL_EXPORTER_OTLP_*` variables are read, what code set for headers, timeout,
/// compression and TLS, and the connection, retry and circuit breaker settings. The
/// OTLP/HTTP builder and the OTLP/gRPC builder of `otlp-transport-grpc` both keep one,
/// so the two merge code and environment the same way
/// ([`request_settings`](Self::request_settings), [`tls_material`](Self::tls_material)).
///
/// ```
/// use std::collections::HashMap;
/// use std::time::Duration;
/// use otlp_core::{Compression, Signal};
/// use otlp_transport_http::exporter::config::{CommonOptions, HeaderKind};
///
/// let mut options = CommonOptions::default();
/// options.env = Box::new(HashMap::from([
///     ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret"),
///     ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2000"),
/// ]));
/// options.compression = Some(Compression::Gzip);
/// let logs = options.request_settings(Signal::Logs, HeaderKind::Http)?;
/// assert_eq!(logs.headers["api-key"], "secret");
/// assert_eq!(logs.timeout, Duration::from_secs(2));
/// assert_eq!(logs.compression, Compression::Gzip);
/// # Ok::<(), otlp_transport_http::exporter::ConfigError>(())
/// ```
#[non_exhaustive]
pub struct CommonOptions {
    /// Where the `OTEL_EXPORTER_OTLP_*` variables are read (default: the process
    /// environment).
    pub env: Box<dyn EnvSource>,
    /// Headers set in code, in the order given; they replace environment headers of the
    /// same name.
    pub headers: Vec<(String, String)>,
    /// The timeout set in code.
    pub timeout: Option<Duration>,
    /// The compression set in code.
    pub compression: Option<Compression>,
    /// The CA certificate(s) set in code.
    pub ca: Option<PemSource>,
    /// The client certificate chain set in code.
    pub client_certificate: Option<PemSource>,
    /// The client private key set in code.
    pub client_key: Option<PemSource>,
    /// How long opening a connection may take (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// The `User-Agent` (default `otlp-rust/VERSION`).
    pub user_agent: String,
    /// What to do about retries.
    pub retry: RetrySetting,
    /// The circuit breaker settings; `None`: no breaker (default
    /// `CircuitBreakerConfig::builder()`).
    pub breaker: Option<CircuitBreakerConfigBuilder>,
    /// The exporter's name, if set.
    pub name: Option<String>,
}

impl Default for CommonOptions {
    fn default() -> Self {
        CommonOptions {
            env: Box::new(ProcessEnv),
            headers: Vec::new(),
            timeout: None,
            compression: None,
            ca: None,
            client_certificate: None,
            client_key: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: concat!("otlp-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetrySetting::Default,
            breaker: Some(otlp_resilience::breaker::CircuitBreakerConfig::builder()),
            name: None,
        }
    }
}

impl fmt::Debug for CommonOptions {
    /// Header values and the client key are not printed: they may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommonOptions")
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("ca", &self.ca)
            .field("client_certificate", &self.client_certificate)
            .field("client_key", &self.client_key.as_ref().map(|_| "..."))
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// Headers, timeout and compression of one signal's requests, merged from code,
/// environment and defaults by [`CommonOptions::request_settings`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestSettings {
    /// The environment's headers (signal-specific variable, else generic), with the
    /// ones set in code added or replacing.
    pub headers: HeaderMap,
    /// Code, else environment, else [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Code, else environment, else none.
    pub compression: Compression,
}

impl CommonOptions {
    /// The value of `setting` for `signal` in the environment (the signal-specific
    /// variable, else the generic one).
    pub fn lookup(&self, setting: Setting, signal: Signal) -> Option<env::EnvValue> {
        env::lookup(self.env.as_ref(), setting, signal)
    }

    /// `signal`'s headers, timeout and compression: code first, then the signal-specific
    /// variable, then the generic one, then the default; headers from code are added to
    /// the environment's. `kind` says what headers are called in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the variable or builder method whose value is invalid.
    pub fn request_settings(
        &self,
        signal: Signal,
        kind: HeaderKind,
    ) -> Result<RequestSettings, ConfigError> {
        let look = |setting| self.lookup(setting, signal);
        let mut headers = match look(Setting::Headers) {
            Some(v) => env::parse_headers(v.var, &v.value)?,
            None => HeaderMap::new(),
        };
        for (name, value) in &self.headers {
            let invalid = |reason: &str| ConfigError::InvalidHeader {
                key: "header()".to_owned(),
                entry: name.clone(),
                reason: reason.to_owned(),
            };
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(kind.invalid_name()))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid(kind.invalid_value()))?;
            headers.insert(name, value);
        }

        let timeout = match (self.timeout, look(Setting::Timeout)) {
            (Some(t), _) => t,
            (None, Some(v)) => env::parse_timeout(v.var, &v.value)?,
            (None, None) => DEFAULT_TIMEOUT,
        };
        let compression = match (self.compression, look(Setting::Compression)) {
            (Some(c), _) => c,
            (None, Some(v)) => env::parse_compression(v.var, &v.value)?,
            (None, None) => Compression::None,
        };
        Ok(RequestSettings {
            headers,
            timeout,
            compression,
        })
    }

    /// `signal`'s CA certificate(s) and client identity, from code, else the
    /// environment; the PEM files are read here.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ReadFile`] for a file that cannot be read, [`ConfigError::Tls`]
    /// when only one of the client certificate and key is set.
    pub fn tls_material(&self, signal: Signal) -> Result<TlsMaterial, ConfigError> {
        let pem = |code: &Option<PemSource>, setting: Setting, method: &str| match (
            code,
            self.lookup(setting, signal),
        ) {
            (Some(source), _) => read_pem(method, source).map(Some),
            (None, Some(v)) => read_pem(v.var, &PemSource::file(v.value)).map(Some),
            (None, None) => Ok(None),
        };
        let ca = pem(&self.ca, Setting::Certificate, "ca_certificate()")?;
        let certificate = pem(
            &self.client_certificate,
            Setting::ClientCertificate,
            "client_identity()",
        )?;
        let key = pem(&self.client_key, Setting::ClientKey, "client_identity()")?;
        let client_identity = match (certificate, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Tls {
                    key: Setting::ClientKey.signal_var(signal).to_owned(),
                    reason: "a client certificate is set but no client key; set both or neither"
                        .to_owned(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Tls {
                    key: Setting::ClientCertificate.signal_var(signal).to_owned(),
                    reason: "a client key is set but no client certificate; set both or neither"
                        .to_owned(),
                });
            }
        };
        Ok(TlsMaterial {
            ca,
            client_identity,
        })
    }
}

/// Builds an [`HttpExporter`](super::HttpExporter). See the [module docs](self) for
/// the precedence of code and environment.
pub struct HttpExporterBuilder {
    pub(crate) common: CommonOptions,
    endpoint: Option<String>,
    signal_endpoints: [Option<String>; 3],
    protocol: Option<Protocol>,
    pub(crate) http_version: HttpVersion,
    pub(crate) pool_idle_timeout: Duration,
    pub(crate) pool_max_idle_per_host: usize,
    pub(crate) max_response_bytes: usize,
}

impl fmt::Debug for HttpExporterBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let common = &self.common;
        f.debug_struct("HttpExporterBuilder")
            .field("endpoint", &self.endpoint)
            .field("signal_endpoints", &self.signal_endpoints)
            // Header values may be credentials.
            .field(
                "headers",
                &common.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &common.timeout)
            .field("compression", &common.compression)
            .field("protocol", &self.protocol)
            .field("ca", &common.ca)
            .field("client_certificate", &common.client_certificate)
            .field("client_key", &common.client_key.as_ref().map(|_| "..."))
            .field("http_version", &self.http_version)
            .field("connect_timeout", &common.connect_timeout)
            .field("retry", &common.retry)
            .field("breaker", &common.breaker)
            .finish_non_exhaustive()
    }
}

impl Default for HttpExporterBuilder {
    fn default() -> Self {
        HttpExporterBuilder::new()
    }
}

impl HttpExporterBuilder {
    /// The defaults, reading the process environment (as the OpenTelemetry SDKs'
    /// exporters do); use [`env`](Self::env) or [`no_env`](Self::no_env) to change that.
    pub fn new() -> HttpExporterBuilder {
        HttpExporterBuilder {
            common: CommonOptions::default(),
            endpoint: None,
            signal_endpoints: [None, None, None],
            protocol: None,
            http_version: HttpVersion::Auto,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            max_response_bytes: 4 * 1024 * 1024,
        }
    }

    /// The exporter's name in logs and `otlp_core::Exporter::name` (default: the traces
    /// endpoint's scheme, host and port).
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
        self.env(env::NoEnv)
    }

    /// The base endpoint for every signal, e.g. `http://collector:4318`; the signal's
    /// path (`/v1/traces`, ...) is appended, after the base's own path (a trailing slash
    /// is ignored), so `https://gw.example/otlp/` sends traces to
    /// `https://gw.example/otlp/v1/traces`.
    pub fn endpoint(mut self, base: impl Into<String>) -> Self {
        self.endpoint = Some(base.into());
        self
    }

    /// The full URL for one signal, used as is (no path appended).
    pub fn signal_endpoint(mut self, signal: Signal, url: impl Into<String>) -> Self {
        self.signal_endpoints[signal.index()] = Some(url.into());
        self
    }

    /// Sends this header with every request (added to the headers from the environment,
    /// replacing one of the same name). Checked by [`build`](super::HttpExporter::builder).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.common.headers.push((name.into(), value.into()));
        self
    }

    /// How long one HTTP request (connect, send, the whole response) may take
    /// (`OTEL_EXPORTER_OTLP_TIMEOUT`). A request that takes longer fails with
    /// `ExportError::Timeout` and is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.common.timeout = Some(timeout);
        self
    }

    /// How request bodies are compressed (`OTEL_EXPORTER_OTLP_COMPRESSION`): gzip, zstd or
    /// none. Deflate is accepted too, though no OTLP exporter sends it.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.common.compression = Some(compression);
        self
    }

    /// Protobuf or OTLP/JSON bodies (`OTEL_EXPORTER_OTLP_PROTOCOL`).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
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

    /// Which HTTP versions to speak (default [`HttpVersion::Auto`]).
    pub fn http_version(mut self, version: HttpVersion) -> Self {
        self.http_version = version;
        self
    }

    /// How long opening a connection may take (default 10 s; also bounded by the
    /// request timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.common.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections are kept per host (default 32).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The `User-Agent` header (default `otlp-rust/VERSION`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.common.user_agent = user_agent.into();
        self
    }

    /// The retry policy (default: `RetryPolicy::builder().name("otlp-http-exporter")`:
    /// 5 attempts, 1 s to 5 s jittered backoff, `Retry-After` honoured up to 10 s, 30 s
    /// at most). Every signal shares it, and so its retry budget.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.common.retry = RetrySetting::Policy(policy);
        self
    }

    /// Send each request once: retryable errors are returned to the caller (e.g. when an
    /// outer `otlp_resilience` stack or a durable queue retries).
    pub fn no_retry(mut self) -> Self {
        self.common.retry = RetrySetting::Disabled;
        self
    }

    /// The circuit breaker settings; each endpoint gets its own breaker, named after its
    /// URL (the name set here is replaced). Default: `CircuitBreakerConfig::default()`.
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfigBuilder) -> Self {
        self.common.breaker = Some(config);
        self
    }

    /// No circuit breaker.
    pub fn no_circuit_breaker(mut self) -> Self {
        self.common.breaker = None;
        self
    }

    /// The largest success response body read (default 4 MiB); a larger one is an
    /// invalid response.
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// The settings `signal`'s requests will use, merged from code and environment as
    /// the [module docs](self) describe. Certificate files are read here.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that cannot work.
    pub fn signal_settings(&self, signal: Signal) -> Result<SignalSettings, ConfigError> {
        let look = |setting| self.common.lookup(setting, signal);

        let url = match (&self.signal_endpoints[signal.index()], &self.endpoint) {
            (Some(url), _) => parse_url("signal_endpoint()", url, None)?,
            (None, Some(base)) => parse_url("endpoint()", base, Some(signal))?,
            (None, None) => match look(Setting::Endpoint) {
                Some(v) if v.var == Setting::Endpoint.signal_var(signal) => {
                    parse_url(v.var, &v.value, None)?
                }
                Some(v) => parse_url(v.var, &v.value, Some(signal))?,
                None => parse_url("default endpoint", DEFAULT_ENDPOINT, Some(signal))?,
            },
        };
        let RequestSettings {
            headers,
            timeout,
            compression,
            ..
        } = self.common.request_settings(signal, HeaderKind::Http)?;
        let protocol = match (self.protocol, look(Setting::Protocol)) {
            (Some(p), _) => p,
            (None, Some(v)) => env::parse_protocol(v.var, &v.value)?,
            (None, None) => Protocol::HttpProtobuf,
        };
        let tls = self.common.tls_material(signal)?;

        Ok(SignalSettings {
            signal,
            url,
            headers,
            timeout,
            compression,
            protocol,
            tls,
        })
    }

    /// The exporter.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the setting that cannot work.
    pub fn build(self) -> Result<super::HttpExporter, ConfigError> {
        super::HttpExporter::from_builder(self)
    }
}

fn parse_url(key: &str, value: &str, append_for: Option<Signal>) -> Result<Url, ConfigError> {
    let invalid = |reason: String| ConfigError::InvalidEndpoint {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let mut url = Url::parse(value.trim()).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host".to_owned()));
    }
    if let Some(signal) = append_for {
        let path = format!("{}{}", url.path().trim_end_matches('/'), signal.http_path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Reads the PEM document `source` names (a file or bytes in memory); `key` names the
/// setting it came from in errors (e.g. `OTEL_EXPORTER_OTLP_CERTIFICATE`). Public for the
/// OTLP/gRPC exporter, which shares this TLS setup.
///
/// # Errors
///
/// [`ConfigError::ReadFile`] naming `key` and the path when the file cannot be read.
pub fn read_pem(key: &str, source: &PemSource) -> Result<Pem, ConfigError> {
    let bytes = match source {
        PemSource::File(path) => std::fs::read(path).map_err(|source| ConfigError::ReadFile {
            key: key.to_owned(),
            path: path.clone(),
            source,
        })?,
        PemSource::Memory(bytes) => bytes.clone(),
    };
    Ok(Pem {
        bytes: Arc::from(bytes),
        from: key.to_owned(),
    })
}

/// A PEM document and the setting it came from (for errors). See [`read_pem`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Pem {
    /// The PEM text.
    pub bytes: Arc<[u8]>,
    /// The variable or builder method it came from.
    pub from: String,
}

impl fmt::Debug for Pem {
    /// The bytes are not printed: they may be a private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pem")
            .field("from", &self.from)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// PEM documents for TLS, read from files or memory: the input of
/// [`tls::client_config`](super::tls::client_config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TlsMaterial {
    /// The CA certificate(s) to trust instead of the operating system's trust store.
    pub ca: Option<Pem>,
    /// The client certificate chain and private key, for mutual TLS.
    pub client_identity: Option<(Pem, Pem)>,
}

/// The settings of one signal's requests after merging code, environment and defaults
/// (see [`HttpExporterBuilder::signal_settings`]).
#[derive(Clone)]
pub struct SignalSettings {
    signal: Signal,
    url: Url,
    headers: HeaderMap,
    timeout: Duration,
    compression: Compression,
    protocol: Protocol,
    pub(crate) tls: TlsMaterial,
}

impl fmt::Debug for SignalSettings {
    /// Header values and key material are not printed: they may be credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalSettings")
            .field("signal", &self.signal)
            .field("endpoint", &self.url.as_str())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("protocol", &self.protocol)
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

    /// The URL requests are sent to.
    pub fn endpoint(&self) -> &str {
        self.url.as_str()
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The headers sent besides `Content-Type`, `Content-Encoding` and `User-Agent`.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The request body compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The body encoding.
    pub fn protocol(&self) -> Protocol {
        self.protocol
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
        b: HttpExporterBuilder,
        s: Signal,
    ) -> SignalSettings {
        let env: HashMap<&'static str, &'static str> = env.iter().copied().collect();
        b.env(env).signal_settings(s).unwrap()
    }

    #[test]
    fn endpoint_rules() {
        let b = || HttpExporterBuilder::new();
        // Default.
        assert_eq!(
            settings(&[], b(), Signal::Metrics).endpoint(),
            "http://localhost:4318/v1/metrics"
        );
        // Generic env: path appended, with or without a trailing slash, after a prefix.
        for (base, want) in [
            ("http://c:4318", "http://c:4318/v1/traces"),
            ("http://c:4318/", "http://c:4318/v1/traces"),
            (
                "https://gw.example/otlp/",
                "https://gw.example/otlp/v1/traces",
            ),
            (
                "https://gw.example/otlp",
                "https://gw.example/otlp/v1/traces",
            ),
        ] {
            let s = settings(
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", base)],
                b(),
                Signal::Traces,
            );
            assert_eq!(s.endpoint(), want, "{base}");
            let s = settings(&[], b().endpoint(base), Signal::Traces);
            assert_eq!(s.endpoint(), want, "code {base}");
        }
        // Signal-specific env: as is, over the generic one.
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://t:1/custom/path",
            ),
        ];
        assert_eq!(
            settings(&env, b(), Signal::Traces).endpoint(),
            "http://t:1/custom/path"
        );
        assert_eq!(
            settings(&env, b(), Signal::Logs).endpoint(),
            "http://generic:4318/v1/logs"
        );
        // Code over env, even the generic code endpoint over the specific variable.
        assert_eq!(
            settings(&env, b().endpoint("http://code:2"), Signal::Traces).endpoint(),
            "http://code:2/v1/traces"
        );
        assert_eq!(
            settings(
                &env,
                b().endpoint("http://code:2")
                    .signal_endpoint(Signal::Traces, "http://code-t:3/x"),
                Signal::Traces
            )
            .endpoint(),
            "http://code-t:3/x"
        );
    }

    #[test]
    fn bad_endpoints_name_the_key() {
        for (env, needle) in [
            ("localhost:4318", "OTEL_EXPORTER_OTLP_ENDPOINT"),
            ("ftp://x", "OTEL_EXPORTER_OTLP_ENDPOINT"),
            ("not a url", "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ] {
            let env = HashMap::from([("OTEL_EXPORTER_OTLP_ENDPOINT", env)]);
            let err = HttpExporterBuilder::new()
                .env(env)
                .signal_settings(Signal::Traces)
                .unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn scalar_precedence() {
        let env = [
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=2"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "c=3"),
        ];
        let b = || HttpExporterBuilder::new();
        let t = settings(&env, b(), Signal::Traces);
        assert_eq!(t.timeout(), Duration::from_secs(1));
        assert_eq!(t.compression(), Compression::Gzip);
        assert_eq!(t.protocol(), Protocol::HttpJson);
        assert_eq!(
            t.headers().len(),
            1,
            "specific headers replace generic ones"
        );
        assert_eq!(t.headers()["c"], "3");
        let l = settings(&env, b(), Signal::Logs);
        assert_eq!(l.timeout(), Duration::from_secs(2));
        assert_eq!(l.headers()["a"], "1");
        let m = settings(&env, b(), Signal::Metrics);
        assert_eq!(m.compression(), Compression::Zstd);

        let code = b()
            .timeout(Duration::from_millis(7))
            .compression(Compression::None)
            .protocol(Protocol::HttpProtobuf)
            .header("a", "code")
            .header("d", "4");
        let l = settings(&env, code, Signal::Logs);
        assert_eq!(l.timeout(), Duration::from_millis(7));
        assert_eq!(l.compression(), Compression::None);
        assert_eq!(l.protocol(), Protocol::HttpProtobuf);
        assert_eq!(l.headers()["a"], "code");
        assert_eq!(l.headers()["b"], "2");
        assert_eq!(l.headers()["d"], "4");

        let d = settings(&[], b(), Signal::Logs);
        assert_eq!(d.timeout(), DEFAULT_TIMEOUT);
        assert_eq!(d.compression(), Compression::None);
        assert_eq!(d.protocol(), Protocol::HttpProtobuf);
        assert!(d.headers().is_empty());
        assert!(!d.has_custom_ca() && !d.has_client_certificate());
    }

    #[test]
    fn grpc_protocol_points_to_the_grpc_crate() {
        let env = HashMap::from([("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc")]);
        let err = HttpExporterBuilder::new()
            .env(env)
            .signal_settings(Signal::Metrics)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"),
            "{text}"
        );
        assert!(text.contains("otlp-transport-grpc"), "{text}");
    }

    #[test]
    fn tls_files() {
        let dir = std::env::temp_dir().join(format!("otlp-http-exporter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let ca_str: &'static str = Box::leak(ca.display().to_string().into_boxed_str());
        let s = settings(
            &[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_str)],
            HttpExporterBuilder::new(),
            Signal::Traces,
        );
        assert!(s.has_custom_ca());
        let err = HttpExporterBuilder::new()
            .env(HashMap::from([(
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                "/nonexistent/ca.pem",
            )]))
            .signal_settings(Signal::Traces)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
            "{err}"
        );
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = HttpExporterBuilder::new()
            .env(HashMap::from([(
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ca_str,
            )]))
            .signal_settings(Signal::Logs)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn code_headers_are_checked() {
        let err = HttpExporterBuilder::new()
            .no_env()
            .header("bad name", "v")
            .signal_settings(Signal::Traces)
            .unwrap_err();
        assert!(err.to_string().contains("header()"), "{err}");
    }
}
