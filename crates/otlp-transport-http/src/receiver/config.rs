//! [`HttpReceiverConfig`] and its builder: every receiver setting, checked once when
//! built.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use otlp_core::limits::InvalidLimit;
use otlp_core::{Limits, Refusal, Signal};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::auth::{AuthConfig, Credentials};
use super::tls::{TlsConfig, TlsError};

/// Default listen address: OTLP/HTTP's port on loopback. Listening on all interfaces is
/// an explicit choice (`0.0.0.0:4318`).
pub const DEFAULT_ADDR: &str = "127.0.0.1:4318";
/// Default for [`HttpReceiverConfigBuilder::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`HttpReceiverConfigBuilder::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`HttpReceiverConfigBuilder::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`HttpReceiverConfigBuilder::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default for [`HttpReceiverConfigBuilder::listen_backlog`].
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// Default for [`HttpReceiverConfigBuilder::max_concurrent_streams`].
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Default for [`HttpReceiverConfigBuilder::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How far the receiver checks a body before handing it to the sink.
///
/// The trade-off: a pipeline joins the requests of many clients into shared batches by
/// concatenating their bytes. A body that is valid framing but invalid inside (bad UTF-8
/// in a span name, a truncated attribute) passes [`Validation::Framing`] and is batched
/// with everyone else's data; the exporter's upstream then refuses the *whole* batch as
/// bad data, losing the other clients' items too. [`Validation::Full`] decodes every
/// request, so such a body is refused with 400 to the client that sent it and never
/// poisons a batch. It costs a full protobuf decode per request (about 0.57 M spans/s per
/// core on this project's reference machine, against several times that for the framing
/// walk).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Validation {
    /// Decode every protobuf body completely with prost (the default). OTLP/JSON is
    /// always decoded completely.
    #[default]
    Full,
    /// Trust senders: for protobuf bodies only walk the framing down to the items
    /// (counting them, `otlp_core::Payload::from_encoded`), which rejects truncated or
    /// mis-framed bodies but not invalid contents inside an item. Use it when every
    /// client is a known, correct OTLP SDK or collector. OTLP/JSON is still decoded
    /// completely: it has to be turned into protobuf anyway.
    Framing,
}

/// What the receiver does with a new connection while `max_connections` are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnectionLimitPolicy {
    /// Stop accepting until a connection closes (the default). New connections wait in
    /// the kernel's listen backlog ([`HttpReceiverConfigBuilder::listen_backlog`]); when
    /// that is full too, the kernel drops connection attempts and clients time out or
    /// retry. Nothing is accepted that cannot be served, so memory stays bounded.
    #[default]
    Wait,
    /// Accept and close at once. Clients see the connection closed (a transport error,
    /// which OTLP exporters retry with backoff) instead of waiting; counted in
    /// `connections.closed_at_limit`.
    Close,
}

/// Computes a request's tenant from its head (method, path, headers, extensions such as
/// [`AuthenticatedKey`](super::AuthenticatedKey)); a refusal is answered as-is.
pub type TenantFn =
    Arc<dyn Fn(&http::request::Parts) -> Result<Option<Arc<str>>, Refusal> + Send + Sync>;

/// Where a request's tenant comes from; the gateway's hook. The tenant is put into
/// [`otlp_core::PayloadHeader::tenant`].
#[derive(Clone, Default)]
pub enum TenantSource {
    /// No tenant (`None` on every payload): the default.
    #[default]
    None,
    /// The value of this header, when present and valid UTF-8; `None` otherwise.
    Header(HeaderName),
    /// A function of the request head.
    Custom(TenantFn),
}

impl fmt::Debug for TenantSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantSource::None => f.write_str("None"),
            TenantSource::Header(h) => f.debug_tuple("Header").field(h).finish(),
            TenantSource::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// Cross-origin settings for browser clients (OpenTelemetry JS in a web page).
///
/// With CORS on, preflight `OPTIONS` requests are answered by tower-http's `CorsLayer`
/// (before authentication: browsers send no credentials with a preflight) with the
/// allowed origins, `POST` and the allowed headers. Without it, `OPTIONS` is a 405.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    allowed_origins: Vec<String>,
    allowed_headers: Vec<String>,
    max_age: Option<Duration>,
}

impl CorsConfig {
    /// Allow these origins (`https://app.example.com`), or every origin with `"*"`.
    pub fn new<I, O>(allowed_origins: I) -> CorsConfig
    where
        I: IntoIterator<Item = O>,
        O: Into<String>,
    {
        CorsConfig {
            allowed_origins: allowed_origins.into_iter().map(Into::into).collect(),
            allowed_headers: Vec::new(),
            max_age: None,
        }
    }

    /// Allow these request headers besides the ones always allowed (`Content-Type`,
    /// `Content-Encoding`, `Authorization` and the API key header).
    #[must_use]
    pub fn allowed_headers<I, H>(mut self, headers: I) -> CorsConfig
    where
        I: IntoIterator<Item = H>,
        H: Into<String>,
    {
        self.allowed_headers = headers.into_iter().map(Into::into).collect();
        self
    }

    /// How long browsers may cache a preflight answer (`Access-Control-Max-Age`).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> CorsConfig {
        self.max_age = Some(max_age);
        self
    }

    fn layer(&self, api_key_header: Option<&HeaderName>) -> Result<CorsLayer, ConfigError> {
        if self.allowed_origins.is_empty() {
            return Err(ConfigError::NoCorsOrigins);
        }
        let origin = if self.allowed_origins.iter().any(|o| o.trim() == "*") {
            AllowOrigin::any()
        } else {
            let origins = self
                .allowed_origins
                .iter()
                .map(|o| {
                    let o = o.trim().trim_end_matches('/');
                    let valid = o.parse::<http::Uri>().is_ok_and(|uri| {
                        matches!(uri.scheme_str(), Some("http" | "https"))
                            && uri.authority().is_some()
                            && uri.path_and_query().is_none_or(|p| p.as_str() == "/")
                    });
                    valid
                        .then(|| HeaderValue::from_str(o).ok())
                        .flatten()
                        .ok_or_else(|| ConfigError::CorsOrigin {
                            value: o.to_owned(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            AllowOrigin::list(origins)
        };
        let mut headers = vec![
            http::header::CONTENT_TYPE,
            http::header::CONTENT_ENCODING,
            http::header::AUTHORIZATION,
        ];
        headers.extend(api_key_header.cloned());
        for h in &self.allowed_headers {
            headers.push(HeaderName::from_bytes(h.trim().as_bytes()).map_err(|_| {
                ConfigError::HeaderName {
                    field: "cors.allowed_headers",
                    value: h.clone(),
                }
            })?);
        }
        let mut layer = CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::POST])
            .allow_headers(headers);
        if let Some(max_age) = self.max_age {
            layer = layer.max_age(max_age);
        }
        Ok(layer)
    }
}

/// A receiver's settings, checked. Make one with [`HttpReceiverConfig::builder`]; every
/// setting has a default (see [`HttpReceiverConfigBuilder`]), and
/// [`HttpReceiverConfigBuilder::build`] checks them all, naming the setting that is
/// wrong.
///
/// ```
/// use std::time::Duration;
/// use otlp_core::Signal;
/// use otlp_transport_http::receiver::{AuthConfig, HttpReceiverConfig, Validation};
///
/// let config = HttpReceiverConfig::builder()
///     .addr("0.0.0.0:4318")
///     .path(Signal::Logs, "/ingest/logs")
///     .max_body_bytes(16 << 20)
///     .validation(Validation::Full)
///     .body_read_timeout(Duration::from_secs(10))
///     .auth(AuthConfig::bearer(["token-a", "token-b"]))
///     .build()?;
/// assert_eq!(config.path(Signal::Logs), "/ingest/logs");
/// assert_eq!(config.path(Signal::Traces), "/v1/traces");
///
/// // Errors name the setting and say what to write instead.
/// let err = HttpReceiverConfig::builder().addr("localhost").build().unwrap_err();
/// assert!(err.to_string().starts_with("`addr`"));
/// # Ok::<(), otlp_transport_http::receiver::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct HttpReceiverConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) paths: [String; 3],
    pub(crate) limits: Limits,
    pub(crate) validation: Validation,
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) connection_limit_policy: ConnectionLimitPolicy,
    pub(crate) listen_backlog: u32,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) shutdown_grace: Duration,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) mutual_tls: bool,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) cors: Option<CorsLayer>,
    pub(crate) tenant: TenantSource,
}

impl fmt::Debug for HttpReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpReceiverConfig")
            .field("addr", &self.addr)
            .field("paths", &self.paths)
            .field("limits", &self.limits)
            .field("validation", &self.validation)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("connection_limit_policy", &self.connection_limit_policy)
            .field("listen_backlog", &self.listen_backlog)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls", &self.tls.is_some())
            .field("mutual_tls", &self.mutual_tls)
            .field("auth", &self.credentials)
            .field("cors", &self.cors.is_some())
            .field("tenant", &self.tenant)
            .finish()
    }
}

impl Default for HttpReceiverConfig {
    /// Every default: 127.0.0.1:4318, the specification's paths, 64 MiB bodies, full
    /// validation, no TLS, no auth, no CORS.
    fn default() -> Self {
        HttpReceiverConfig::builder()
            .build()
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

impl HttpReceiverConfig {
    /// A builder holding every default.
    pub fn builder() -> HttpReceiverConfigBuilder {
        HttpReceiverConfigBuilder::default()
    }

    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The path served for `signal`.
    pub fn path(&self, signal: Signal) -> &str {
        &self.paths[signal.index()]
    }

    /// The body limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// How bodies are validated.
    pub fn validation(&self) -> Validation {
        self.validation
    }

    /// Whether TLS is on.
    pub fn tls_enabled(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether clients must present a certificate.
    pub fn mutual_tls(&self) -> bool {
        self.mutual_tls
    }

    /// The grace period used when shutdown is triggered by the signal passed to
    /// [`HttpReceiver::bind_with_shutdown`](super::HttpReceiver::bind_with_shutdown).
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The listener half of this configuration (address, connection limits, TLS,
    /// timeouts), for serving this receiver's [`OtlpHttpService`](super::OtlpHttpService)
    /// next to other services with [`serve`](super::serve).
    pub fn listener(&self) -> super::ListenerConfig {
        let mut listener = super::ListenerConfig::new(self.addr);
        listener.listen_backlog = self.listen_backlog;
        listener.max_connections = self.max_connections;
        listener.connection_limit_policy = self.connection_limit_policy;
        listener.tls = self.tls.clone();
        listener.header_read_timeout = self.header_read_timeout;
        listener.idle_timeout = self.idle_timeout;
        listener.max_concurrent_streams = self.max_concurrent_streams;
        listener.shutdown_grace = self.shutdown_grace;
        listener
    }
}

/// Collects settings as given; [`HttpReceiverConfigBuilder::build`] checks them all.
#[derive(Debug, Clone)]
pub struct HttpReceiverConfigBuilder {
    addr: String,
    paths: [String; 3],
    max_body_bytes: usize,
    max_compressed_bytes: Option<usize>,
    validation: Validation,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    connection_limit_policy: ConnectionLimitPolicy,
    listen_backlog: u32,
    max_concurrent_streams: u32,
    shutdown_grace: Duration,
    tls: Option<TlsConfig>,
    auth: Option<AuthConfig>,
    cors: Option<CorsConfig>,
    tenant: TenantSource,
}

impl Default for HttpReceiverConfigBuilder {
    fn default() -> Self {
        HttpReceiverConfigBuilder {
            addr: DEFAULT_ADDR.to_owned(),
            paths: Signal::ALL.map(|s| s.http_path().to_owned()),
            max_body_bytes: otlp_core::limits::DEFAULT_MAX_BODY_BYTES,
            max_compressed_bytes: None,
            validation: Validation::default(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_limit_policy: ConnectionLimitPolicy::default(),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tls: None,
            auth: None,
            cors: None,
            tenant: TenantSource::None,
        }
    }
}

impl HttpReceiverConfigBuilder {
    /// Listen on `addr` (`IP:PORT`; port 0 picks a free port, see
    /// [`RunningReceiver::local_addr`](super::RunningReceiver::local_addr)). Default
    /// [`DEFAULT_ADDR`].
    #[must_use]
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// Serve `signal` at `path` instead of the specification's `/v1/...`.
    #[must_use]
    pub fn path(mut self, signal: Signal, path: impl Into<String>) -> Self {
        self.paths[signal.index()] = path.into();
        self
    }

    /// The largest body after decompression (413 beyond). Default 64 MiB.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The most bytes read off the wire for a compressed body (413 beyond). Default: the
    /// body limit.
    #[must_use]
    pub fn max_compressed_bytes(mut self, bytes: usize) -> Self {
        self.max_compressed_bytes = Some(bytes);
        self
    }

    /// How far bodies are validated; see [`Validation`]. Default [`Validation::Full`].
    #[must_use]
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// Time allowed for the TLS handshake and the request line and headers of the first
    /// request (HTTP/1.1: of every request; hyper also applies it while a kept-alive
    /// connection waits for its next request). A client slower than that is
    /// disconnected. Default 10 s.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Time allowed to receive a whole request body, from the moment the receiver starts
    /// reading it; 408 and the connection closed beyond it. Default 30 s.
    #[must_use]
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// A connection without a request in flight for this long is closed gracefully
    /// (HTTP/2: GOAWAY). Default 60 s. For HTTP/1.1 the effective idle time is the
    /// smaller of this and the header read timeout.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// At most this many connections open at once. Default 1024.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// What happens to connections beyond `max_connections`. Default
    /// [`ConnectionLimitPolicy::Wait`].
    #[must_use]
    pub fn connection_limit_policy(mut self, policy: ConnectionLimitPolicy) -> Self {
        self.connection_limit_policy = policy;
        self
    }

    /// The listen backlog: connections the kernel completes and holds before they are
    /// accepted. Default 1024 (the kernel may cap it, `net.core.somaxconn`).
    #[must_use]
    pub fn listen_backlog(mut self, backlog: u32) -> Self {
        self.listen_backlog = backlog;
        self
    }

    /// HTTP/2: at most this many requests in flight on one connection. Default 100.
    #[must_use]
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_concurrent_streams = max;
        self
    }

    /// How long in-flight requests may take to finish when shutdown is triggered by the
    /// signal given to `bind_with_shutdown`. Default 10 s.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serve over TLS (HTTPS, HTTP/2 by ALPN).
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Require credentials on every request.
    #[must_use]
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Answer CORS preflights and add CORS headers.
    #[must_use]
    pub fn cors(mut self, cors: CorsConfig) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Where the tenant of a request comes from. Default: none.
    #[must_use]
    pub fn tenant(mut self, tenant: TenantSource) -> Self {
        self.tenant = tenant;
        self
    }

    /// Check every setting; loads the TLS files.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first setting that is wrong.
    pub fn build(self) -> Result<HttpReceiverConfig, ConfigError> {
        let addr = self
            .addr
            .trim()
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::Addr {
                value: self.addr.clone(),
            })?;
        for signal in Signal::ALL {
            let path = &self.paths[signal.index()];
            let valid = path.starts_with('/')
                && !path.contains(['?', '#'])
                && path.parse::<http::uri::PathAndQuery>().is_ok();
            if !valid {
                return Err(ConfigError::Path {
                    signal,
                    value: path.clone(),
                });
            }
        }
        for (i, a) in Signal::ALL.iter().enumerate() {
            for b in &Signal::ALL[i + 1..] {
                if self.paths[a.index()] == self.paths[b.index()] {
                    return Err(ConfigError::DuplicatePath {
                        first: *a,
                        second: *b,
                        path: self.paths[a.index()].clone(),
                    });
                }
            }
        }
        let limits = Limits::default()
            .with_max_body_bytes(self.max_body_bytes)?
            .with_max_compressed_bytes(self.max_compressed_bytes.unwrap_or(self.max_body_bytes))?;
        for (field, value) in [
            ("header_read_timeout", self.header_read_timeout),
            ("body_read_timeout", self.body_read_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        for (field, value) in [
            ("max_connections", self.max_connections as u64),
            ("listen_backlog", u64::from(self.listen_backlog)),
            (
                "max_concurrent_streams",
                u64::from(self.max_concurrent_streams),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        // tokio's semaphore holds at most usize::MAX >> 3 permits.
        if self.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::TooLarge {
                field: "max_connections",
                max: tokio::sync::Semaphore::MAX_PERMITS as u64,
            });
        }
        let credentials = self.auth.as_ref().map(AuthConfig::validate).transpose()?;
        let api_key_header = credentials.as_ref().and_then(Credentials::api_key_header);
        let cors = self
            .cors
            .as_ref()
            .map(|c| c.layer(api_key_header))
            .transpose()?;
        let tls = self.tls.as_ref().map(TlsConfig::build).transpose()?;
        Ok(HttpReceiverConfig {
            addr,
            paths: self.paths,
            limits,
            validation: self.validation,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            connection_limit_policy: self.connection_limit_policy,
            listen_backlog: self.listen_backlog,
            max_concurrent_streams: self.max_concurrent_streams,
            shutdown_grace: self.shutdown_grace,
            mutual_tls: self
                .tls
                .as_ref()
                .is_some_and(TlsConfig::requires_client_certificate),
            tls,
            credentials,
            cors,
            tenant: self.tenant,
        })
    }
}

/// A receiver setting is wrong; each variant names the setting and says what to write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The listen address does not parse.
    #[error(
        "`addr`: {value:?} is not a socket address; write IP:PORT, e.g. 127.0.0.1:4318 or [::1]:4318"
    )]
    Addr {
        /// The value given.
        value: String,
    },
    /// A signal's path is not an absolute path.
    #[error("`paths.{signal}`: {value:?} is not a path; write an absolute path without query, e.g. {}", signal.http_path())]
    Path {
        /// Which signal.
        signal: Signal,
        /// The value given.
        value: String,
    },
    /// Two signals share a path.
    #[error(
        "`paths.{first}` and `paths.{second}` are both {path:?}; give each signal its own path"
    )]
    DuplicatePath {
        /// One signal.
        first: Signal,
        /// The other.
        second: Signal,
        /// The shared path.
        path: String,
    },
    /// A body limit is zero.
    #[error("`limits`: {0}")]
    Limit(#[from] InvalidLimit),
    /// A timeout or count is zero.
    #[error("`{field}` must be greater than zero; remove it to keep the default")]
    Zero {
        /// The setting.
        field: &'static str,
    },
    /// A count is beyond what the implementation supports.
    #[error("`{field}` must be at most {max}")]
    TooLarge {
        /// The setting.
        field: &'static str,
        /// The largest value allowed.
        max: u64,
    },
    /// A header name is not a valid HTTP header name.
    #[error(
        "`{field}`: {value:?} is not a valid HTTP header name; use letters, digits and `-`, e.g. x-api-key"
    )]
    HeaderName {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// Authentication is on without keys.
    #[error(
        "`auth.keys`: no keys given; add at least one key, or remove `auth` to accept every request"
    )]
    NoAuthKeys,
    /// An authentication key is empty.
    #[error("`auth.keys[{index}]` is empty; every key must have characters other than spaces")]
    EmptyAuthKey {
        /// Its position in the list.
        index: usize,
    },
    /// CORS is on without origins.
    #[error(
        "`cors.allowed_origins`: no origins given; list origins like https://app.example.com, or \"*\" for any"
    )]
    NoCorsOrigins,
    /// A CORS origin is malformed.
    #[error(
        "`cors.allowed_origins`: {value:?} is not an origin; write scheme://host[:port] like https://app.example.com, or \"*\""
    )]
    CorsOrigin {
        /// The value given.
        value: String,
    },
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_specification() {
        let config = HttpReceiverConfig::default();
        assert_eq!(config.addr().to_string(), "127.0.0.1:4318");
        for s in Signal::ALL {
            assert_eq!(config.path(s), s.http_path());
        }
        assert_eq!(config.limits(), Limits::default());
        assert_eq!(config.validation(), Validation::Full);
        assert!(!config.tls_enabled());
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(HttpReceiverConfigBuilder, &str)> = vec![
            (HttpReceiverConfig::builder().addr("nope"), "`addr`"),
            (
                HttpReceiverConfig::builder().path(Signal::Metrics, "v1/metrics"),
                "`paths.metrics`",
            ),
            (
                HttpReceiverConfig::builder().path(Signal::Logs, "/v1/traces"),
                "`paths.traces` and `paths.logs`",
            ),
            (
                HttpReceiverConfig::builder().max_body_bytes(0),
                "max_body_bytes",
            ),
            (
                HttpReceiverConfig::builder().idle_timeout(Duration::ZERO),
                "`idle_timeout`",
            ),
            (
                HttpReceiverConfig::builder().max_connections(0),
                "`max_connections`",
            ),
            (
                HttpReceiverConfig::builder().auth(AuthConfig::api_key("x y", ["k"])),
                "`auth.api_key_header`",
            ),
            (
                HttpReceiverConfig::builder().cors(CorsConfig::new(["app.example.com"])),
                "`cors.allowed_origins`",
            ),
            (
                HttpReceiverConfig::builder().cors(CorsConfig::new(Vec::<String>::new())),
                "`cors.allowed_origins`",
            ),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err().to_string();
            assert!(err.contains(field), "{err:?} should name {field}");
        }
    }

    #[test]
    fn compressed_limit_defaults_to_body_limit() {
        let config = HttpReceiverConfig::builder()
            .max_body_bytes(1000)
            .build()
            .unwrap();
        assert_eq!(config.limits().max_compressed_bytes(), 1000);
    }
}
