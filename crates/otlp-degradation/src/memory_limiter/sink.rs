//! A [`Sink`] that admits each payload through a [`MemoryLimiter`] first.

use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{Payload, Refusal};

use super::MemoryLimiter;

/// Passes payloads to `inner` only when the [`MemoryLimiter`] admits their encoded size,
/// holding the bytes as in flight until `inner` has answered. A receiver can hand its
/// requests to this sink and answer the client with the refusal as it comes.
///
/// What `inner` keeps after answering (a queue's contents) shows up in the next memory
/// reading instead.
///
/// ```
/// use std::sync::Arc;
/// use otlp_core::sink::{Accepted, BoxFuture, Sink};
/// use otlp_core::{Payload, Refusal, Signal};
/// use otlp_degradation::memory_limiter::{
///     MemoryLimitedSink, MemoryLimiter, MemoryLimiterConfig, ScriptedMemory,
/// };
///
/// struct Discard;
/// impl Sink for Discard {
///     fn accept(&self, _: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
///         Box::pin(async { Ok(Accepted::full()) })
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let memory = Arc::new(ScriptedMemory::new(850, 1_000)); // between soft (80 %) and hard (90 %)
/// let limiter = MemoryLimiter::new(MemoryLimiterConfig::default(), memory.clone()).unwrap();
/// let sink = MemoryLimitedSink::new(limiter, Discard);
/// let payload = Payload::new(Signal::Logs, bytes::Bytes::from_static(b""), 0);
/// let refusal = sink.accept(payload).await.unwrap_err();
/// assert_eq!(refusal.http_status(), 429);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct MemoryLimitedSink<S> {
    limiter: MemoryLimiter,
    inner: S,
}

impl<S> MemoryLimitedSink<S> {
    /// `inner` behind `limiter`.
    pub fn new(limiter: MemoryLimiter, inner: S) -> MemoryLimitedSink<S> {
        MemoryLimitedSink { limiter, inner }
    }

    /// The limiter.
    pub fn limiter(&self) -> &MemoryLimiter {
        &self.limiter
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Sink> Sink for MemoryLimitedSink<S> {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        let admitted = self.limiter.admit(payload.len() as u64);
        Box::pin(async move {
            let _permit = admitted?;
            self.inner.accept(payload).await
        })
    }
}
