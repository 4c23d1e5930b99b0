//! The listener: accept loop, connection limit, TLS, HTTP/1.1 and h2c on one port,
//! idle connections, graceful shutdown.
//!
//! Per connection: `TCP_NODELAY` is set (hyper leaves it off, and HTTP/2 then waits on
//! delayed ACKs), the TLS handshake and the first request's headers must arrive within
//! `header_read_timeout`, hyper's `auto` builder picks HTTP/1.1 or HTTP/2 (prior
//! knowledge, or ALPN `h2` over TLS) from the first bytes, and the connection is closed
//! gracefully once it has had no request in flight for `idle_timeout`.
//!
//! Shutdown: the listener is closed first (new connections are refused), every open
//! connection is told to finish (HTTP/1.1: close after the current response; HTTP/2:
//! GOAWAY, in-flight streams complete), and the receiver waits up to the grace period
//! for them. Connections still busy then are cut off, and their in-flight sink calls
//! dropped; [`ShutdownReport`] counts them.
//!
//! Graceful shutdown is driven here rather than by
//! `hyper_util::server::graceful::GracefulShutdown`, which takes ownership of each
//! connection: the receiver must also be able to shut a connection down gracefully for
//! idleness, so each connection task selects over its own shutdown reasons and calls
//! `graceful_shutdown` itself.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::{Service, ServiceExt};

use super::config::{ConnectionLimitPolicy, HttpReceiverConfig};
use super::metrics::ReceiverMetrics;
use super::routes::Sinks;
use super::service::OtlpHttpService;

/// Starts OTLP/HTTP receivers: listens, accepts and serves [`OtlpHttpService`] on every
/// connection. See the [module docs](super) for an example.
///
/// Per connection: `TCP_NODELAY` is set (hyper leaves it off, and HTTP/2 then waits on
/// delayed ACKs), the TLS handshake and the first request's headers must arrive within
/// `header_read_timeout`, hyper's `auto` builder picks HTTP/1.1 or HTTP/2 from the
/// first bytes, and the connection is closed gracefully once it has had no request in
/// flight for `idle_timeout`. At most `max_connections` are open at once
/// ([`ConnectionLimitPolicy`](super::ConnectionLimitPolicy) says what happens to more).
#[derive(Debug, Clone, Copy)]
pub struct HttpReceiver;

impl HttpReceiver {
    /// Listen on `config.addr()` and serve until [`RunningReceiver::shutdown`] (or until
    /// the [`RunningReceiver`] is dropped). Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`BindError`] when there is nothing to serve or the address cannot be listened on.
    pub async fn bind(
        config: HttpReceiverConfig,
        sinks: Sinks,
    ) -> Result<RunningReceiver, BindError> {
        Self::start(config, sinks, None).await
    }

    /// Like [`HttpReceiver::bind`], and also shut down with
    /// [`HttpReceiverConfig::shutdown_grace`] when `signal` completes: pass
    /// `token.cancelled_owned()` of a `tokio_util::sync::CancellationToken`, a ctrl-c
    /// future, or any other future.
    ///
    /// # Errors
    ///
    /// As [`HttpReceiver::bind`].
    pub async fn bind_with_shutdown<F>(
        config: HttpReceiverConfig,
        sinks: Sinks,
        signal: F,
    ) -> Result<RunningReceiver, BindError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self::start(config, sinks, Some(Box::pin(signal))).await
    }

    async fn start(
        config: HttpReceiverConfig,
        sinks: Sinks,
        signal: Option<ShutdownSignal>,
    ) -> Result<RunningReceiver, BindError> {
        if sinks.is_empty() {
            return Err(BindError::NoSinks);
        }
        let service = OtlpHttpService::new(&config, sinks);
        let metrics = service.metrics();
        start(config.listener(), service, metrics, signal).await
    }
}

/// A future that starts a listener's shutdown when it completes.
type ShutdownSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// How a listener accepts and keeps connections: everything but the service it serves.
/// Shared by the OTLP/HTTP receiver (built from [`HttpReceiverConfig`]) and by other
/// receivers that serve their own tower service on the same kind of listener (the
/// OTLP/gRPC receiver of `otlp-transport-grpc`), through [`serve`].
#[derive(Clone)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Backlog of the listening socket.
    pub listen_backlog: u32,
    /// Connections open at once; see [`ConnectionLimitPolicy`] for what happens to more.
    pub max_connections: usize,
    /// What happens to connections beyond `max_connections`.
    pub connection_limit_policy: ConnectionLimitPolicy,
    /// TLS (rustls) for every connection, or plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The TLS handshake and the first request's headers must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// HTTP/2 streams a client may open at once on one connection.
    pub max_concurrent_streams: u32,
    /// Serve HTTP/1.1 as well as HTTP/2 (`false`: HTTP/2 only, as gRPC needs).
    pub http1: bool,
    /// HTTP/2 keepalive: send a PING after this long without frames from the peer, and
    /// close the connection if no answer comes within `http2_keepalive_timeout`.
    /// `None`: no pings (idle connections are still closed after `idle_timeout`).
    pub http2_keepalive_interval: Option<Duration>,
    /// How long to wait for the answer to a keepalive PING.
    pub http2_keepalive_timeout: Duration,
    /// Grace period for in-flight requests when the listener is dropped.
    pub shutdown_grace: Duration,
    /// What the listener serves, for log lines: "OTLP/HTTP", "OTLP/gRPC".
    pub name: &'static str,
}

impl ListenerConfig {
    /// The OTLP/HTTP receiver's defaults for everything but the address.
    pub fn new(addr: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            addr,
            listen_backlog: super::config::DEFAULT_LISTEN_BACKLOG,
            max_connections: super::config::DEFAULT_MAX_CONNECTIONS,
            connection_limit_policy: ConnectionLimitPolicy::default(),
            tls: None,
            header_read_timeout: super::config::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: super::config::DEFAULT_IDLE_TIMEOUT,
            max_concurrent_streams: super::config::DEFAULT_MAX_CONCURRENT_STREAMS,
            http1: true,
            http2_keepalive_interval: None,
            http2_keepalive_timeout: Duration::from_secs(20),
            shutdown_grace: super::config::DEFAULT_SHUTDOWN_GRACE,
            name: "OTLP/HTTP",
        }
    }
}

impl fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("addr", &self.addr)
            .field("listen_backlog", &self.listen_backlog)
            .field("max_connections", &self.max_connections)
            .field("connection_limit_policy", &self.connection_limit_policy)
            .field("tls", &self.tls.is_some())
            .field("header_read_timeout", &self.header_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("http1", &self.http1)
            .field("http2_keepalive_interval", &self.http2_keepalive_interval)
            .field("http2_keepalive_timeout", &self.http2_keepalive_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("name", &self.name)
            .finish()
    }
}

/// A tower service [`serve`] can run on every connection: takes hyper's requests, never
/// fails (every problem is an answer), cloneable and shareable across connections.
/// Implemented for every such service.
pub trait ServeService<B>:
    Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S, B> ServeService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// A response body [`serve`] can send: `Bytes` frames, errors that box. Implemented for
/// every such body.
pub trait ServeBody:
    http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + 'static
{
}

impl<B> ServeBody for B where
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static
{
}

/// Listen as `config` says and serve `service` on every connection, with the same
/// accept loop, connection limit, TLS, slow-client and idle handling and graceful
/// shutdown as [`HttpReceiver`]. `metrics` receives the connection counters.
///
/// # Errors
///
/// [`BindError::Listen`] when the address cannot be listened on.
pub async fn serve<S, B>(
    config: ListenerConfig,
    service: S,
    metrics: Arc<ReceiverMetrics>,
) -> Result<RunningReceiver, BindError>
where
    S: ServeService<B>,
    B: ServeBody,
{
    start(config, service, metrics, None).await
}

/// Like [`serve`], and also shut down with `config.shutdown_grace` when `signal`
/// completes.
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_with_shutdown<S, B, F>(
    config: ListenerConfig,
    service: S,
    metrics: Arc<ReceiverMetrics>,
    signal: F,
) -> Result<RunningReceiver, BindError>
where
    S: ServeService<B>,
    B: ServeBody,
    F: Future<Output = ()> + Send + 'static,
{
    start(config, service, metrics, Some(Box::pin(signal))).await
}

async fn start<S, B>(
    config: ListenerConfig,
    service: S,
    metrics: Arc<ReceiverMetrics>,
    signal: Option<ShutdownSignal>,
) -> Result<RunningReceiver, BindError>
where
    S: ServeService<B>,
    B: ServeBody,
{
    let addr = config.addr;
    let listener =
        listen(addr, config.listen_backlog).map_err(|source| BindError::Listen { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| BindError::Listen { addr, source })?;

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_concurrent_streams)
        .keep_alive_interval(config.http2_keepalive_interval)
        .keep_alive_timeout(config.http2_keepalive_timeout);
    if !config.http1 {
        builder = builder.http2_only();
    }
    let settings = Arc::new(ConnectionSettings {
        builder,
        service,
        tls: config.tls.clone().map(TlsAcceptor::from),
        header_read_timeout: config.header_read_timeout,
        idle_timeout: config.idle_timeout,
        metrics: metrics.clone(),
    });

    let (control, commands) = watch::channel(None);
    let control = Arc::new(control);
    if let Some(signal) = signal {
        let control = control.clone();
        let grace = config.shutdown_grace;
        tokio::spawn(async move {
            tokio::select! {
                () = signal => request_shutdown(&control, grace),
                // The receiver stopped some other way: stop waiting for the signal.
                () = control.closed() => {}
            }
        });
    }
    let name = config.name;
    let task = tokio::spawn(accept_loop(
        listener,
        settings,
        Arc::new(Semaphore::new(config.max_connections)),
        config.connection_limit_policy,
        commands,
        name,
    ));
    tracing::info!(%local_addr, tls = config.tls.is_some(), "{name} receiver listening");
    Ok(RunningReceiver {
        local_addr,
        metrics,
        control,
        default_grace: config.shutdown_grace,
        task: Some(task),
    })
}

fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // A restarted receiver can listen again while its old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// A receiver that is serving. Dropping it shuts the receiver down with the configured
/// grace period; keep it for as long as the receiver should run.
#[must_use = "dropping a RunningReceiver shuts the receiver down"]
pub struct RunningReceiver {
    local_addr: SocketAddr,
    metrics: Arc<ReceiverMetrics>,
    control: Arc<watch::Sender<Option<Duration>>>,
    default_grace: Duration,
    task: Option<JoinHandle<ShutdownReport>>,
}

impl fmt::Debug for RunningReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningReceiver")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl RunningReceiver {
    /// The address the receiver listens on (with the real port when the configuration
    /// asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The receiver's counters.
    pub fn metrics(&self) -> Arc<ReceiverMetrics> {
        self.metrics.clone()
    }

    /// A handle that can start the shutdown from elsewhere (a signal handler, an admin
    /// endpoint) while this value waits in [`RunningReceiver::join`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            control: self.control.clone(),
        }
    }

    /// Stop accepting, let in-flight requests finish for up to `grace`, cut off what is
    /// left, and return when everything is closed.
    ///
    /// The listener is closed first, so new connections are refused. Every open
    /// connection is told to finish: HTTP/1.1 closes after the response in progress (an
    /// idle one at once), HTTP/2 sends GOAWAY and completes its in-flight streams.
    /// Connections still busy when `grace` is over are cut off, their in-flight sink
    /// calls dropped; [`ShutdownReport`] counts them.
    ///
    /// # Errors
    ///
    /// [`ServeError`] if the accept loop panicked (a bug).
    pub async fn shutdown(self, grace: Duration) -> Result<ShutdownReport, ServeError> {
        request_shutdown(&self.control, grace);
        self.join().await
    }

    /// Wait until the receiver has stopped (shut down by a [`ShutdownHandle`] or the
    /// signal given to [`HttpReceiver::bind_with_shutdown`]).
    ///
    /// # Errors
    ///
    /// [`ServeError`] if the accept loop panicked (a bug).
    pub async fn join(mut self) -> Result<ShutdownReport, ServeError> {
        let Some(task) = self.task.take() else {
            return Ok(ShutdownReport::default());
        };
        // If this future is dropped half-way, the receiver still shuts down (Drop).
        let guard = DropShutdown {
            control: self.control.clone(),
            grace: self.default_grace,
        };
        let result = task.await;
        drop(guard);
        result.map_err(|e| ServeError(e.to_string()))
    }
}

impl Drop for RunningReceiver {
    fn drop(&mut self) {
        if self.task.is_some() {
            request_shutdown(&self.control, self.default_grace);
        }
    }
}

struct DropShutdown {
    control: Arc<watch::Sender<Option<Duration>>>,
    grace: Duration,
}

impl Drop for DropShutdown {
    fn drop(&mut self) {
        request_shutdown(&self.control, self.grace);
    }
}

/// Start the shutdown; the shortest grace period asked for wins.
fn request_shutdown(control: &watch::Sender<Option<Duration>>, grace: Duration) {
    control.send_if_modified(|current| match current {
        Some(g) if *g <= grace => false,
        _ => {
            *current = Some(grace);
            true
        }
    });
}

/// Starts a receiver's shutdown from anywhere; cheap to clone.
#[derive(Clone)]
pub struct ShutdownHandle {
    control: Arc<watch::Sender<Option<Duration>>>,
}

impl ShutdownHandle {
    /// Start the shutdown with `grace` for in-flight requests (the shortest grace asked
    /// for wins). Returns at once; [`RunningReceiver::join`] waits for the end.
    pub fn shutdown(&self, grace: Duration) {
        request_shutdown(&self.control, grace);
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle")
            .field("requested", &*self.control.borrow())
            .finish()
    }
}

/// What the shutdown did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections that closed within the grace period.
    pub connections_closed: usize,
    /// Connections still busy when the grace period ended, cut off with their requests.
    pub connections_aborted: usize,
}

/// The receiver could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// No signal has a sink.
    #[error(
        "no sinks: give at least one signal a sink (Sinks::all or Sinks::with), otherwise every request would be refused"
    )]
    NoSinks,
    /// The address cannot be listened on.
    #[error(
        "cannot listen on {addr}: {source}; choose a free port or address, or stop the process that holds it"
    )]
    Listen {
        /// The configured address.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

/// The accept loop ended abnormally (it panicked): a bug, please report it.
#[derive(Debug, thiserror::Error)]
#[error("the receiver's accept loop failed: {0}; this is a bug, please report it")]
pub struct ServeError(String);

struct ConnectionSettings<S> {
    builder: auto::Builder<TokioExecutor>,
    service: S,
    tls: Option<TlsAcceptor>,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    metrics: Arc<ReceiverMetrics>,
}

/// Wait until a shutdown is asked for; its grace period. If every handle is gone the
/// receiver can never be told to stop, so it stops now with no grace.
async fn shutdown_requested(commands: &mut watch::Receiver<Option<Duration>>) -> Duration {
    loop {
        if let Some(grace) = *commands.borrow_and_update() {
            return grace;
        }
        if commands.changed().await.is_err() {
            return Duration::ZERO;
        }
    }
}

async fn accept_loop<S, B>(
    listener: TcpListener,
    settings: Arc<ConnectionSettings<S>>,
    limit: Arc<Semaphore>,
    policy: ConnectionLimitPolicy,
    mut commands: watch::Receiver<Option<Duration>>,
    name: &'static str,
) -> ShutdownReport
where
    S: ServeService<B>,
    B: ServeBody,
{
    let stop = CancellationToken::new();
    let mut connections = JoinSet::new();
    let grace = loop {
        // Wait: take a connection slot before accepting, so excess connections stay in
        // the kernel's backlog. Close: accept, then close if no slot is free.
        let reserved = match policy {
            ConnectionLimitPolicy::Wait => tokio::select! {
                biased;
                grace = shutdown_requested(&mut commands) => break grace,
                permit = limit.clone().acquire_owned() => permit.ok(),
            },
            ConnectionLimitPolicy::Close => None,
        };
        let accepted = tokio::select! {
            biased;
            grace = shutdown_requested(&mut commands) => break grace,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources; accepting again at
                // once would spin. Errors about one connection (ECONNABORTED) are not.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::Interrupted
                ) {
                    tracing::warn!(error = %e, "accept failed; pausing 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let permit = match reserved {
            Some(permit) => permit,
            None => match limit.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    settings.metrics.connection_closed_at_limit();
                    tracing::debug!(%peer, "connection limit reached; closing");
                    drop(stream);
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(
            stream,
            peer,
            settings.clone(),
            stop.clone(),
            permit,
        ));
    };

    // Refuse new connections, ask the open ones to finish, wait for them up to the grace.
    drop(listener);
    stop.cancel();
    tracing::info!(
        ?grace,
        open = connections.len(),
        "{name} receiver shutting down"
    );
    let deadline = Instant::now() + grace;
    let mut report = ShutdownReport::default();
    loop {
        tokio::select! {
            joined = connections.join_next() => match joined {
                Some(_) => report.connections_closed += 1,
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => {
                // Aborting a connection task drops its HTTP/1 request with it; hyper
                // runs HTTP/2 requests in tasks of their own, which drop the request
                // (and its sink call) once they see the connection gone.
                report.connections_aborted = connections.len();
                connections.shutdown().await;
                break;
            }
        }
    }
    tracing::info!(?report, "{name} receiver stopped");
    report
}

/// Counts the connection as active for as long as its task lives (aborts included).
struct ActiveConnection(Arc<ReceiverMetrics>);

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// Socket options for every accepted connection. TCP_NODELAY: hyper leaves it off, and
/// then an HTTP/2 response waits on the peer's delayed ACK (about 40 ms a request on
/// loopback, against 0.3 ms with it on; DESIGN.md, Known traps).
fn configure_accepted(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
    }
}

async fn serve_connection<S, B>(
    stream: TcpStream,
    peer: SocketAddr,
    settings: Arc<ConnectionSettings<S>>,
    stop: CancellationToken,
    permit: OwnedSemaphorePermit,
) where
    S: ServeService<B>,
    B: ServeBody,
{
    let _permit = permit;
    settings.metrics.connection_opened();
    let _active = ActiveConnection(settings.metrics.clone());
    configure_accepted(&stream, peer);
    let started = Instant::now();
    let Some(acceptor) = &settings.tls else {
        drive(TokioIo::new(stream), &settings, &stop, started).await;
        return;
    };
    let handshake = tokio::time::timeout_at(
        started + settings.header_read_timeout,
        acceptor.accept(stream),
    );
    let tls = tokio::select! {
        () = stop.cancelled() => return,
        tls = handshake => tls,
    };
    match tls {
        Ok(Ok(stream)) => drive(TokioIo::new(stream), &settings, &stop, started).await,
        Ok(Err(e)) => {
            settings.metrics.tls_handshake_failed();
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
        }
        Err(_elapsed) => {
            settings.metrics.tls_handshake_failed();
            tracing::debug!(%peer, "TLS handshake timed out");
        }
    }
}

/// Serve HTTP on `io` until the peer closes, the receiver shuts down or the connection
/// idles out.
async fn drive<I, S, B>(
    io: I,
    settings: &ConnectionSettings<S>,
    stop: &CancellationToken,
    started: Instant,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: ServeService<B>,
    B: ServeBody,
{
    let activity = Arc::new(Activity::new(started));
    let service = settings.service.clone();
    let tracked = activity.clone();
    let hyper_service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let in_flight = tracked.begin();
        let response = service.clone().oneshot(request);
        async move {
            let response = response.await;
            drop(in_flight);
            response
        }
    });
    let connection = settings.builder.serve_connection(io, hyper_service);
    tokio::pin!(connection);
    let first_request_by = started + settings.header_read_timeout;
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = activity.idle(settings.idle_timeout, first_request_by), if !closing => {
                settings.metrics.connection_idle_closed();
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Requests in flight on one connection and when that last changed.
struct Activity {
    in_flight: AtomicUsize,
    seen_request: AtomicBool,
    last_change: Mutex<Instant>,
    /// Notified when a request starts or ends.
    changed: Notify,
}

impl Activity {
    fn new(now: Instant) -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            seen_request: AtomicBool::new(false),
            last_change: Mutex::new(now),
            changed: Notify::new(),
        }
    }

    fn touch(&self) {
        *self
            .last_change
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.seen_request.store(true, Ordering::SeqCst);
        self.touch();
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Resolves once the connection has had no request in flight for `idle` (or, before
    /// its first request, once `first_request_by` has passed).
    async fn idle(&self, idle: Duration, first_request_by: Instant) {
        loop {
            // Registered before the state is read, so no change in between is missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                changed.await;
                continue;
            }
            let deadline = if self.seen_request.load(Ordering::SeqCst) {
                *self
                    .last_change
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    + idle
            } else {
                first_request_by
            };
            if Instant::now() >= deadline {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                () = changed => {}
            }
        }
    }
}

/// One request in flight; dropping it ends the request (also when it is cancelled).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_waits_for_requests_to_finish() {
        let started = Instant::now();
        let activity = Arc::new(Activity::new(started));
        let idle = Duration::from_secs(5);
        let first_by = started + Duration::from_secs(1);

        // No request by the first deadline: idle.
        activity.idle(idle, first_by).await;
        assert_eq!(Instant::now(), first_by);

        // A waiter created before a request starts sees it start and end.
        let fresh = Arc::new(Activity::new(Instant::now()));
        let waiter = {
            let fresh = fresh.clone();
            tokio::spawn(async move {
                fresh
                    .idle(idle, Instant::now() + Duration::from_secs(60))
                    .await
            })
        };
        tokio::task::yield_now().await;
        let request = fresh.begin();
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(request);
        let ended = Instant::now();
        waiter.await.unwrap();
        assert_eq!(
            Instant::now(),
            ended + idle,
            "idle counts from the request's end"
        );

        let request = activity.begin();
        let waiter = {
            let activity = activity.clone();
            tokio::spawn(async move { activity.idle(idle, first_by).await })
        };
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!waiter.is_finished(), "a request in flight is not idle");
        drop(request);
        let ended = Instant::now();
        waiter.await.unwrap();
        assert_eq!(Instant::now(), ended + idle);
    }

    #[tokio::test]
    async fn accepted_sockets_get_nodelay() {
        let listener = listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (accepted, client) = tokio::join!(listener.accept(), client);
        let (stream, peer) = accepted.unwrap();
        drop(client);
        configure_accepted(&stream, peer);
        assert!(stream.nodelay().unwrap());
    }

    #[test]
    fn shortest_grace_wins() {
        let (control, rx) = watch::channel(None);
        request_shutdown(&control, Duration::from_secs(5));
        request_shutdown(&control, Duration::from_secs(9));
        assert_eq!(*rx.borrow(), Some(Duration::from_secs(5)));
        request_shutdown(&control, Duration::from_secs(1));
        assert_eq!(*rx.borrow(), Some(Duration::from_secs(1)));
    }
}
