//! [`GrpcReceiverConfig`] and its builder: every receiver setting, checked once when
//! built.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otlp_core::Compression;
use otlp_transport_http::receiver::{
    AuthConfig, ConfigError, ConnectionLimitPolicy, Credentials, HttpReceiverConfig,
    ListenerConfig, TenantSource, TlsConfig, TlsError, Validation,
};

/// Default listen address: OTLP/gRPC's port on loopback. Listening on all interfaces is
/// an explicit choice (`0.0.0.0:4317`).
pub const DEFAULT_ADDR: &str = "127.0.0.1:4317";
/// Default for [`GrpcReceiverConfigBuilder::max_message_bytes`]: the OTLP
/// specification's recommended 64 MiB, counted after decompression.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = otlp_core::limits::DEFAULT_MAX_BODY_BYTES;
/// Default for [`GrpcReceiverConfigBuilder::message_read_timeout`].
pub const DEFAULT_MESSAGE_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for [`GrpcReceiverConfigBuilder::max_concurrent_calls`].
pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 1024;
/// Default for [`GrpcReceiverConfigBuilder::overload_retry_after`].
pub const DEFAULT_OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Default for [`GrpcReceiverConfigBuilder::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`GrpcReceiverConfigBuilder::idle_timeout`]. Longer than OTLP/HTTP's:
/// a gRPC client keeps one connection and exports every few seconds over it, so closing
/// it sooner only adds reconnects.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Default for [`GrpcReceiverConfigBuilder::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default for [`GrpcReceiverConfigBuilder::listen_backlog`].
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// Default for [`GrpcReceiverConfigBuilder::max_concurrent_streams`].
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Default keepalive interval, see [`GrpcReceiverConfigBuilder::keepalive`].
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
/// Default keepalive timeout, see [`GrpcReceiverConfigBuilder::keepalive`].
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Default for [`GrpcReceiverConfigBuilder::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// An OTLP/gRPC receiver's settings, checked. Make one with
/// [`GrpcReceiverConfig::builder`]; every setting has a default (see
/// [`GrpcReceiverConfigBuilder`]), and [`GrpcReceiverConfigBuilder::build`] checks them
/// all, naming the setting that is wrong.
///
/// ```
/// use std::time::Duration;
/// use otlp_transport_grpc::receiver::{AuthConfig, GrpcReceiverConfig, Validation};
///
/// let config = GrpcReceiverConfig::builder()
///     .addr("0.0.0.0:4317")
///     .max_message_bytes(16 << 20)
///     .validation(Validation::Framing)
///     .max_concurrent_calls(256)
///     .auth(AuthConfig::bearer(["token-a", "token-b"]))
///     .build()?;
/// assert_eq!(config.max_message_bytes(), 16 << 20);
///
/// // Errors name the setting and say what to write instead.
/// let err = GrpcReceiverConfig::builder().addr("localhost").build().unwrap_err();
/// assert!(err.to_string().starts_with("`addr`"));
/// # Ok::<(), otlp_transport_grpc::receiver::GrpcReceiverConfigError>(())
/// ```
#[derive(Clone)]
pub struct GrpcReceiverConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) max_message_bytes: usize,
    pub(crate) validation: Validation,
    pub(crate) accept_compression: Vec<Compression>,
    pub(crate) compress_responses: bool,
    pub(crate) message_read_timeout: Duration,
    pub(crate) max_concurrent_calls: usize,
    pub(crate) overload_retry_after: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) connection_limit_policy: ConnectionLimitPolicy,
    pub(crate) listen_backlog: u32,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) keepalive: Option<(Duration, Duration)>,
    pub(crate) shutdown_grace: Duration,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) mutual_tls: bool,
    pub(crate) credentials: Option<Credentials>,
    pub(crate) tenant: TenantSource,
    pub(crate) http: Option<HttpReceiverConfig>,
}

impl fmt::Debug for GrpcReceiverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcReceiverConfig")
            .field("addr", &self.addr)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("validation", &self.validation)
            .field("accept_compression", &self.accept_compression)
            .field("compress_responses", &self.compress_responses)
            .field("message_read_timeout", &self.message_read_timeout)
            .field("max_concurrent_calls", &self.max_concurrent_calls)
            .field("overload_retry_after", &self.overload_retry_after)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("connection_limit_policy", &self.connection_limit_policy)
            .field("listen_backlog", &self.listen_backlog)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("keepalive", &self.keepalive)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("tls", &self.tls.is_some())
            .field("mutual_tls", &self.mutual_tls)
            .field("auth", &self.credentials)
            .field("tenant", &self.tenant)
            .field("http", &self.http)
            .finish()
    }
}

impl Default for GrpcReceiverConfig {
    /// Every default: 127.0.0.1:4317, 64 MiB messages, full validation, gzip, zstd and
    /// deflate accepted, no TLS, no auth, gRPC only.
    fn default() -> Self {
        GrpcReceiverConfig::builder()
            .build()
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e}"))
    }
}

impl GrpcReceiverConfig {
    /// A builder holding every default.
    pub fn builder() -> GrpcReceiverConfigBuilder {
        GrpcReceiverConfigBuilder::default()
    }

    /// The address to listen on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The largest request message, after decompression.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// How messages are validated.
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

    /// Whether the port serves OTLP/HTTP too.
    pub fn serves_http(&self) -> bool {
        self.http.is_some()
    }

    /// The grace period used when shutdown is triggered by the signal passed to
    /// [`GrpcReceiver::bind_with_shutdown`](super::GrpcReceiver::bind_with_shutdown) or
    /// by dropping the running receiver.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// The listener half of this configuration (address, connection limits, TLS,
    /// timeouts, HTTP/2 settings), for serving an [`OtlpGrpcService`](super::OtlpGrpcService)
    /// with [`otlp_transport_http::receiver::serve`].
    ///
    /// HTTP/2 only, unless the port also serves OTLP/HTTP
    /// ([`GrpcReceiverConfigBuilder::serve_http`]). Over TLS, ALPN then offers only `h2`,
    /// which gRPC requires.
    pub fn listener(&self) -> ListenerConfig {
        let mut listener = ListenerConfig::new(self.addr);
        listener.listen_backlog = self.listen_backlog;
        listener.max_connections = self.max_connections;
        listener.connection_limit_policy = self.connection_limit_policy;
        listener.header_read_timeout = self.header_read_timeout;
        listener.idle_timeout = self.idle_timeout;
        listener.max_concurrent_streams = self.max_concurrent_streams;
        listener.http1 = self.http.is_some();
        listener.http2_keepalive_interval = self.keepalive.map(|(interval, _)| interval);
        if let Some((_, timeout)) = self.keepalive {
            listener.http2_keepalive_timeout = timeout;
        }
        listener.shutdown_grace = self.shutdown_grace;
        listener.name = if self.http.is_some() {
            "OTLP/gRPC+HTTP"
        } else {
            "OTLP/gRPC"
        };
        listener.tls = self.tls.as_ref().map(|tls| {
            if self.http.is_some() {
                tls.clone()
            } else {
                // A TLS client that negotiated http/1.1 would then fail against an
                // HTTP/2-only server; refusing it in the handshake says why.
                let mut h2_only = (**tls).clone();
                h2_only.alpn_protocols = vec![b"h2".to_vec()];
                Arc::new(h2_only)
            }
        });
        listener
    }
}

/// Collects settings as given; [`GrpcReceiverConfigBuilder::build`] checks them all.
#[derive(Debug, Clone)]
pub struct GrpcReceiverConfigBuilder {
    addr: String,
    max_message_bytes: usize,
    validation: Validation,
    accept_compression: Vec<Compression>,
    compress_responses: bool,
    message_read_timeout: Duration,
    max_concurrent_calls: usize,
    overload_retry_after: Duration,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: usize,
    connection_limit_policy: ConnectionLimitPolicy,
    listen_backlog: u32,
    max_concurrent_streams: u32,
    keepalive: Option<(Duration, Duration)>,
    shutdown_grace: Duration,
    tls: Option<TlsConfig>,
    auth: Option<AuthConfig>,
    tenant: TenantSource,
    http: Option<HttpReceiverConfig>,
}

impl Default for GrpcReceiverConfigBuilder {
    fn default() -> Self {
        GrpcReceiverConfigBuilder {
            addr: DEFAULT_ADDR.to_owned(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            validation: Validation::default(),
            accept_compression: vec![Compression::Gzip, Compression::Zstd, Compression::Deflate],
            compress_responses: false,
            message_read_timeout: DEFAULT_MESSAGE_READ_TIMEOUT,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            overload_retry_after: DEFAULT_OVERLOAD_RETRY_AFTER,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connection_limit_policy: ConnectionLimitPolicy::default(),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            keepalive: Some((DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT)),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            tls: None,
            auth: None,
            tenant: TenantSource::None,
            http: None,
        }
    }
}

impl GrpcReceiverConfigBuilder {
    /// Listen on `addr` (`IP:PORT`; port 0 picks a free port, see
    /// [`RunningGrpcReceiver::local_addr`](super::RunningGrpcReceiver::local_addr)).
    /// Default [`DEFAULT_ADDR`].
    #[must_use]
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// The largest request message after decompression; larger ones are answered
    /// `RESOURCE_EXHAUSTED` without `RetryInfo` (final: the client must send smaller
    /// batches). Compressed messages are limited to the same size on the wire, and
    /// decompression stops at this size, so a compression bomb costs at most about this
    /// much memory. Default 64 MiB.
    #[must_use]
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// How far messages are validated before the sink sees them; see [`Validation`].
    /// Default [`Validation::Full`].
    #[must_use]
    pub fn validation(mut self, validation: Validation) -> Self {
        self.validation = validation;
        self
    }

    /// The `grpc-encoding`s accepted besides `identity` (which is always accepted).
    /// Default gzip, zstd and deflate; an empty list accepts uncompressed messages only.
    /// Others are answered `UNIMPLEMENTED` with `grpc-accept-encoding`, as gRPC says.
    #[must_use]
    pub fn accept_compression<I>(mut self, codings: I) -> Self
    where
        I: IntoIterator<Item = Compression>,
    {
        self.accept_compression = codings
            .into_iter()
            .filter(|c| *c != Compression::None)
            .collect();
        self
    }

    /// Compress responses with a coding the client accepts (`grpc-accept-encoding`).
    /// Default off: an `Export*ServiceResponse` is a few bytes, which compression makes
    /// larger and slower.
    #[must_use]
    pub fn compress_responses(mut self, compress: bool) -> Self {
        self.compress_responses = compress;
        self
    }

    /// Time allowed to receive a call's request message, from the moment the call
    /// starts; beyond it the call is answered `DEADLINE_EXCEEDED`. Bounds how long a
    /// slow client holds a call slot. Default 30 s.
    #[must_use]
    pub fn message_read_timeout(mut self, timeout: Duration) -> Self {
        self.message_read_timeout = timeout;
        self
    }

    /// At most this many calls being read or in the sink at once, over all
    /// connections; more are answered `UNAVAILABLE` with `RetryInfo` (delay
    /// [`overload_retry_after`](Self::overload_retry_after)) at once, without reading
    /// their message. This bounds the memory held by messages to about this many times
    /// [`max_message_bytes`](Self::max_message_bytes). Default 1024.
    ///
    /// `UNAVAILABLE` rather than `RESOURCE_EXHAUSTED`: the receiver as a whole is busy,
    /// which is what `UNAVAILABLE` means, and every OTLP client retries it, while
    /// `RESOURCE_EXHAUSTED` is retried only by clients that read `RetryInfo`. Calls are
    /// not queued: a queue would hold connections and memory while the client's own
    /// deadline runs out, and the client's backoff spreads the load better.
    #[must_use]
    pub fn max_concurrent_calls(mut self, max: usize) -> Self {
        self.max_concurrent_calls = max;
        self
    }

    /// The retry delay announced when [`max_concurrent_calls`](Self::max_concurrent_calls)
    /// are in flight. Default 1 s.
    #[must_use]
    pub fn overload_retry_after(mut self, delay: Duration) -> Self {
        self.overload_retry_after = delay;
        self
    }

    /// Time allowed for the TLS handshake and the first request's headers; a slower
    /// client is disconnected. Default 10 s.
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// A connection without a call in flight for this long is closed gracefully
    /// (GOAWAY). Default 5 minutes.
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

    /// The listen backlog. Default 1024 (the kernel may cap it, `net.core.somaxconn`).
    #[must_use]
    pub fn listen_backlog(mut self, backlog: u32) -> Self {
        self.listen_backlog = backlog;
        self
    }

    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: calls in flight on one connection.
    /// Clients queue calls beyond it; streams opened past it are refused
    /// (`REFUSED_STREAM`). Default 100.
    #[must_use]
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.max_concurrent_streams = max;
        self
    }

    /// HTTP/2 keepalive: after `interval` without frames from the client, send a PING;
    /// close the connection if no answer comes within `timeout`. Finds dead peers (a
    /// crashed host, a NAT that forgot the flow) while calls are in flight. Default
    /// 60 s and 20 s.
    #[must_use]
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive = Some((interval, timeout));
        self
    }

    /// Send no keepalive PINGs (idle connections are still closed after
    /// [`idle_timeout`](Self::idle_timeout)).
    #[must_use]
    pub fn no_keepalive(mut self) -> Self {
        self.keepalive = None;
        self
    }

    /// How long in-flight calls may take to finish when shutdown is triggered by the
    /// signal given to `bind_with_shutdown` or by dropping the running receiver.
    /// Default 10 s.
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serve over TLS; with a client CA, mutual TLS.
    #[must_use]
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Require credentials in the call metadata (`authorization: Bearer ...` or an API
    /// key header); calls without valid ones are answered `UNAUTHENTICATED`.
    #[must_use]
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Where the tenant of a call comes from: a metadata key
    /// ([`TenantSource::Header`]) or a function of the request head
    /// ([`TenantSource::Custom`], which also sees the
    /// [`AuthenticatedKey`](otlp_transport_http::receiver::AuthenticatedKey)). Default:
    /// none.
    #[must_use]
    pub fn tenant(mut self, tenant: TenantSource) -> Self {
        self.tenant = tenant;
        self
    }

    /// Also serve OTLP/HTTP on this port: requests whose `content-type` is not
    /// `application/grpc...` go to an [`OtlpHttpService`](otlp_transport_http::receiver::OtlpHttpService)
    /// built from `http` (its paths, limits, validation, auth, CORS, tenant and body
    /// timeout; its address, TLS and connection settings are not used, the listener is
    /// this receiver's). The port then speaks HTTP/1.1 as well as HTTP/2.
    #[must_use]
    pub fn serve_http(mut self, http: HttpReceiverConfig) -> Self {
        self.http = Some(http);
        self
    }

    /// Check every setting; loads the TLS files.
    ///
    /// # Errors
    ///
    /// [`GrpcReceiverConfigError`] naming the first setting that is wrong.
    pub fn build(self) -> Result<GrpcReceiverConfig, GrpcReceiverConfigError> {
        let addr =
            self.addr
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| GrpcReceiverConfigError::Addr {
                    value: self.addr.clone(),
                })?;
        let zero_durations = [
            ("message_read_timeout", self.message_read_timeout),
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("overload_retry_after", self.overload_retry_after),
        ];
        for (field, value) in zero_durations {
            if value.is_zero() {
                return Err(GrpcReceiverConfigError::Zero { field });
            }
        }
        if let Some((interval, timeout)) = self.keepalive {
            if interval.is_zero() {
                return Err(GrpcReceiverConfigError::Zero {
                    field: "keepalive.interval",
                });
            }
            if timeout.is_zero() {
                return Err(GrpcReceiverConfigError::Zero {
                    field: "keepalive.timeout",
                });
            }
        }
        let counts = [
            ("max_message_bytes", self.max_message_bytes as u64),
            ("max_concurrent_calls", self.max_concurrent_calls as u64),
            ("max_connections", self.max_connections as u64),
            ("listen_backlog", u64::from(self.listen_backlog)),
            (
                "max_concurrent_streams",
                u64::from(self.max_concurrent_streams),
            ),
        ];
        for (field, value) in counts {
            if value == 0 {
                return Err(GrpcReceiverConfigError::Zero { field });
            }
        }
        // gRPC frames a message's length in 32 bits.
        if self.max_message_bytes > u32::MAX as usize {
            return Err(GrpcReceiverConfigError::TooLarge {
                field: "max_message_bytes",
                max: u64::from(u32::MAX),
            });
        }
        // tokio's semaphore holds at most usize::MAX >> 3 permits.
        for (field, value) in [
            ("max_connections", self.max_connections),
            ("max_concurrent_calls", self.max_concurrent_calls),
        ] {
            if value > tokio::sync::Semaphore::MAX_PERMITS {
                return Err(GrpcReceiverConfigError::TooLarge {
                    field,
                    max: tokio::sync::Semaphore::MAX_PERMITS as u64,
                });
            }
        }
        let credentials = self
            .auth
            .as_ref()
            .map(AuthConfig::validate)
            .transpose()
            .map_err(GrpcReceiverConfigError::Auth)?;
        let tls = self.tls.as_ref().map(TlsConfig::build).transpose()?;
        let mut accept_compression = self.accept_compression;
        accept_compression.dedup();
        Ok(GrpcReceiverConfig {
            addr,
            max_message_bytes: self.max_message_bytes,
            validation: self.validation,
            accept_compression,
            compress_responses: self.compress_responses,
            message_read_timeout: self.message_read_timeout,
            max_concurrent_calls: self.max_concurrent_calls,
            overload_retry_after: self.overload_retry_after,
            header_read_timeout: self.header_read_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections,
            connection_limit_policy: self.connection_limit_policy,
            listen_backlog: self.listen_backlog,
            max_concurrent_streams: self.max_concurrent_streams,
            keepalive: self.keepalive,
            shutdown_grace: self.shutdown_grace,
            mutual_tls: self
                .tls
                .as_ref()
                .is_some_and(TlsConfig::requires_client_certificate),
            tls,
            credentials,
            tenant: self.tenant,
            http: self.http,
        })
    }
}

/// An OTLP/gRPC receiver setting is wrong; each variant names the setting and says what
/// to write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcReceiverConfigError {
    /// The listen address does not parse.
    #[error(
        "`addr`: {value:?} is not a socket address; write IP:PORT, e.g. 127.0.0.1:4317 or [::1]:4317"
    )]
    Addr {
        /// The value given.
        value: String,
    },
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
    /// The authentication settings are wrong (the message names the `auth.*` key).
    #[error(transparent)]
    Auth(ConfigError),
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_specification() {
        let config = GrpcReceiverConfig::default();
        assert_eq!(config.addr().to_string(), "127.0.0.1:4317");
        assert_eq!(config.max_message_bytes(), 64 * 1024 * 1024);
        assert_eq!(config.validation(), Validation::Full);
        assert!(!config.tls_enabled());
        assert!(!config.serves_http());
        let listener = config.listener();
        assert!(!listener.http1, "gRPC needs HTTP/2 only");
        assert_eq!(listener.addr, config.addr());
        assert_eq!(
            listener.http2_keepalive_interval,
            Some(DEFAULT_KEEPALIVE_INTERVAL)
        );
    }

    #[test]
    fn shared_port_speaks_http1_too() {
        let config = GrpcReceiverConfig::builder()
            .serve_http(HttpReceiverConfig::default())
            .no_keepalive()
            .build()
            .unwrap();
        let listener = config.listener();
        assert!(listener.http1);
        assert_eq!(listener.http2_keepalive_interval, None);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(GrpcReceiverConfigBuilder, &str)> = vec![
            (GrpcReceiverConfig::builder().addr("nope"), "`addr`"),
            (
                GrpcReceiverConfig::builder().max_message_bytes(0),
                "`max_message_bytes`",
            ),
            (
                GrpcReceiverConfig::builder().max_message_bytes(usize::MAX),
                "`max_message_bytes`",
            ),
            (
                GrpcReceiverConfig::builder().max_concurrent_calls(0),
                "`max_concurrent_calls`",
            ),
            (
                GrpcReceiverConfig::builder().message_read_timeout(Duration::ZERO),
                "`message_read_timeout`",
            ),
            (
                GrpcReceiverConfig::builder().keepalive(Duration::ZERO, Duration::from_secs(1)),
                "`keepalive.interval`",
            ),
            (
                GrpcReceiverConfig::builder().auth(AuthConfig::bearer(Vec::<String>::new())),
                "`auth.keys`",
            ),
            (
                GrpcReceiverConfig::builder().auth(AuthConfig::api_key("x y", ["k"])),
                "`auth.api_key_header`",
            ),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err().to_string();
            assert!(err.contains(field), "{err:?} should name {field}");
        }
    }

    #[test]
    fn identity_is_implied() {
        let config = GrpcReceiverConfig::builder()
            .accept_compression([Compression::None, Compression::Zstd])
            .build()
            .unwrap();
        assert_eq!(config.accept_compression, vec![Compression::Zstd]);
    }
}
