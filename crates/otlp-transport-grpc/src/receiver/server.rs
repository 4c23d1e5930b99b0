//! [`GrpcReceiver`]: [`OtlpGrpcService`] on the shared listener of
//! `otlp-transport-http` (accept loop, TLS, connection limits, keepalive, graceful
//! shutdown).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use otlp_transport_http::receiver::{
    BindError, ReceiverMetrics, RunningReceiver, ServeError, ShutdownHandle, ShutdownReport, Sinks,
    serve, serve_with_shutdown,
};

use super::config::GrpcReceiverConfig;
use super::metrics::GrpcReceiverMetrics;
use super::service::OtlpGrpcService;

/// Starts OTLP/gRPC receivers: listens, accepts and serves [`OtlpGrpcService`] on every
/// connection. See the [module docs](super) for an example.
#[derive(Debug, Clone, Copy)]
pub struct GrpcReceiver;

impl GrpcReceiver {
    /// Listen on `config.addr()` and serve until [`RunningGrpcReceiver::shutdown`] (or
    /// until the [`RunningGrpcReceiver`] is dropped). Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`BindError`] when no signal has a sink or the address cannot be listened on.
    pub async fn bind(
        config: GrpcReceiverConfig,
        sinks: Sinks,
    ) -> Result<RunningGrpcReceiver, BindError> {
        Self::start(config, sinks, None).await
    }

    /// Like [`GrpcReceiver::bind`], and also shut down with
    /// [`GrpcReceiverConfig::shutdown_grace`] when `signal` completes: pass
    /// `token.cancelled_owned()` of a `tokio_util::sync::CancellationToken`, a ctrl-c
    /// future, or any other future.
    ///
    /// # Errors
    ///
    /// As [`GrpcReceiver::bind`].
    pub async fn bind_with_shutdown<F>(
        config: GrpcReceiverConfig,
        sinks: Sinks,
        signal: F,
    ) -> Result<RunningGrpcReceiver, BindError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        Self::start(config, sinks, Some(Box::pin(signal))).await
    }

    async fn start(
        config: GrpcReceiverConfig,
        sinks: Sinks,
        signal: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
    ) -> Result<RunningGrpcReceiver, BindError> {
        if sinks.is_empty() {
            return Err(BindError::NoSinks);
        }
        let service = OtlpGrpcService::new(&config, sinks);
        let metrics = service.metrics();
        // On a shared port the OTLP/HTTP counters and the connection counters are one
        // `ReceiverMetrics`, as on an OTLP/HTTP receiver's own port.
        let listener_metrics = service.http_metrics().unwrap_or_default();
        let listener = config.listener();
        let running = match signal {
            None => serve(listener, service, listener_metrics).await?,
            Some(signal) => {
                serve_with_shutdown(listener, service, listener_metrics, signal).await?
            }
        };
        Ok(RunningGrpcReceiver { running, metrics })
    }
}

/// A receiver that is serving. Dropping it shuts the receiver down with the configured
/// grace period; keep it for as long as the receiver should run.
#[must_use = "dropping a RunningGrpcReceiver shuts the receiver down"]
pub struct RunningGrpcReceiver {
    running: RunningReceiver,
    metrics: Arc<GrpcReceiverMetrics>,
}

impl fmt::Debug for RunningGrpcReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningGrpcReceiver")
            .field("local_addr", &self.running.local_addr())
            .finish_non_exhaustive()
    }
}

impl RunningGrpcReceiver {
    /// The address the receiver listens on (with the real port when the configuration
    /// asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.running.local_addr()
    }

    /// The gRPC call counters.
    pub fn metrics(&self) -> Arc<GrpcReceiverMetrics> {
        self.metrics.clone()
    }

    /// The listener's counters: connections accepted, open, closed at the limit or for
    /// idleness, failed TLS handshakes. When the port also serves OTLP/HTTP, its
    /// request counters are here too.
    pub fn listener_metrics(&self) -> Arc<ReceiverMetrics> {
        self.running.metrics()
    }

    /// A handle that can start the shutdown from elsewhere while this value waits in
    /// [`RunningGrpcReceiver::join`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.running.shutdown_handle()
    }

    /// Stop accepting, let in-flight calls finish for up to `grace`, cut off what is
    /// left, and return when everything is closed.
    ///
    /// The listener is closed first, so new connections are refused; every open
    /// connection gets a GOAWAY and completes its in-flight calls. Connections still
    /// busy when `grace` is over are cut off, their sink calls dropped;
    /// [`ShutdownReport`] counts them.
    ///
    /// # Errors
    ///
    /// [`ServeError`] if the accept loop panicked (a bug).
    pub async fn shutdown(self, grace: Duration) -> Result<ShutdownReport, ServeError> {
        self.running.shutdown(grace).await
    }

    /// Wait until the receiver has stopped (shut down by a [`ShutdownHandle`] or the
    /// signal given to [`GrpcReceiver::bind_with_shutdown`]).
    ///
    /// # Errors
    ///
    /// [`ServeError`] if the accept loop panicked (a bug).
    pub async fn join(self) -> Result<ShutdownReport, ServeError> {
        self.running.join().await
    }
}
