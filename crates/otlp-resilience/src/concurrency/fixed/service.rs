//! The fixed concurrency limit [`Service`].

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::ConcurrencyLimiter;
use super::future::ConcurrencyLimitFuture;
use crate::concurrency::error::ConcurrencyError;

/// Holds a slot of a [`ConcurrencyLimiter`] for the whole of each call; see
/// [`ConcurrencyLimitLayer`](super::ConcurrencyLimitLayer).
///
/// The slot is taken in `call`, not in `poll_ready`. tower's own `ConcurrencyLimit` takes
/// it in `poll_ready`, so a service that is cloned and polled ready but never called
/// (common with `Buffer`, balancers, `Steer`) sits on a slot, and a full limit makes
/// `poll_ready` pend instead of shedding. Here `poll_ready` is the inner service's alone,
/// the slot lives exactly as long as the response future, and a full limit either refuses
/// the call at once or waits inside the response future (with a clone of the inner service
/// taking the ready one's place, hence `S: Clone`).
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    limiter: Arc<ConcurrencyLimiter>,
    max_wait: Duration,
}

impl<S> ConcurrencyLimit<S> {
    /// Wraps `inner`; `max_wait` as in [`ConcurrencyLimitLayer::wait_up_to`](super::ConcurrencyLimitLayer::wait_up_to).
    pub fn new(inner: S, limiter: Arc<ConcurrencyLimiter>, max_wait: Duration) -> Self {
        ConcurrencyLimit {
            inner,
            limiter,
            max_wait,
        }
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<ConcurrencyLimiter> {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, dropping the limit.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for ConcurrencyLimit<S>
where
    S: Service<Req> + Clone,
{
    type Response = S::Response;
    type Error = ConcurrencyError<S::Error>;
    type Future = ConcurrencyLimitFuture<S::Future, S, Req>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ConcurrencyError::Inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        if let Ok(permit) = self.limiter.semaphore().clone().try_acquire_owned() {
            return ConcurrencyLimitFuture::running(self.inner.call(req), permit);
        }
        if self.max_wait.is_zero() {
            return ConcurrencyLimitFuture::overloaded(self.limiter.overloaded(Duration::ZERO));
        }
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ConcurrencyLimitFuture::waiting(self.limiter.clone(), self.max_wait, ready, req)
    }
}
