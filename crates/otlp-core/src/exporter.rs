//! The [`Exporter`] trait: send a unit of work upstream and classify the outcome.
//!
//! Transports implement it (OTLP/HTTP, OTLP/gRPC); the gateway wraps each exporter in
//! retry, circuit breaking and concurrency limits from `otlp-resilience`, which read
//! [`ExportError::is_retryable`] and [`ExportError::retry_delay`].

use std::sync::Arc;

use crate::error::ExportError;
use crate::payload::Payload;
use crate::sink::{Accepted, BoxFuture};

/// Sends encoded OTLP requests to one upstream.
///
/// ```
/// use otlp_core::sink::{Accepted, BoxFuture};
/// use otlp_core::{ExportError, Exporter, Payload};
///
/// /// Counts what it is given; stands in for an upstream in a unit test of a pipeline stage.
/// #[derive(Default)]
/// struct Counting(std::sync::atomic::AtomicU64);
///
/// impl Exporter for Counting {
///     fn name(&self) -> &str { "counting" }
///     fn export(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, ExportError>> {
///         self.0.fetch_add(payload.items(), std::sync::atomic::Ordering::Relaxed);
///         Box::pin(async { Ok(Accepted::full()) })
///     }
/// }
/// ```
pub trait Exporter: Send + Sync {
    /// A short name for logs and metric labels (e.g. the upstream's address).
    fn name(&self) -> &str;

    /// Send one payload. `Ok` means the upstream acknowledged it (perhaps with a partial
    /// success, which must not be retried); `Err` is classified per the OTLP specification.
    fn export(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, ExportError>>;

    /// Release resources; later exports fail with [`ExportError::Shutdown`].
    /// The default does nothing.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), ExportError>> {
        Box::pin(async { Ok(()) })
    }
}

impl<E: Exporter + ?Sized> Exporter for Arc<E> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn export(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, ExportError>> {
        (**self).export(payload)
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ExportError>> {
        (**self).shutdown()
    }
}

impl<E: Exporter + ?Sized> Exporter for Box<E> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn export(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, ExportError>> {
        (**self).export(payload)
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), ExportError>> {
        (**self).shutdown()
    }
}
