//! The adaptive concurrency limit [`Service`].

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::future::AdaptiveLimitFuture;
use super::{AdaptiveLimiter, LimitAlgorithm};
use crate::classify::Classify;
use crate::concurrency::error::ConcurrencyError;

/// Holds a slot of an [`AdaptiveLimiter`] for each call and reports the call's latency and
/// outcome to it; see [`AdaptiveConcurrencyLimitLayer`](super::AdaptiveConcurrencyLimitLayer).
///
/// As with the fixed limit, the slot is taken in `call`, not `poll_ready`.
#[derive(Debug)]
pub struct AdaptiveConcurrencyLimit<S, A, Cl> {
    inner: S,
    limiter: Arc<AdaptiveLimiter<A>>,
    classifier: Cl,
    max_wait: Duration,
}

impl<S, A, Cl> AdaptiveConcurrencyLimit<S, A, Cl> {
    /// Wraps `inner`.
    pub fn new(
        inner: S,
        limiter: Arc<AdaptiveLimiter<A>>,
        classifier: Cl,
        max_wait: Duration,
    ) -> Self {
        AdaptiveConcurrencyLimit {
            inner,
            limiter,
            classifier,
            max_wait,
        }
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<AdaptiveLimiter<A>> {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Clone, A, Cl: Clone> Clone for AdaptiveConcurrencyLimit<S, A, Cl> {
    fn clone(&self) -> Self {
        AdaptiveConcurrencyLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            classifier: self.classifier.clone(),
            max_wait: self.max_wait,
        }
    }
}

impl<S, A, Cl, Req> Service<Req> for AdaptiveConcurrencyLimit<S, A, Cl>
where
    S: Service<Req> + Clone,
    A: LimitAlgorithm,
    Cl: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = ConcurrencyError<S::Error>;
    type Future = AdaptiveLimitFuture<S::Future, S, Req, A, Cl>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ConcurrencyError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let classifier = self.classifier.clone();
        match self.limiter.try_acquire() {
            Ok(token) => AdaptiveLimitFuture::running(self.inner.call(req), token, classifier),
            Err(overloaded) if self.max_wait.is_zero() => {
                AdaptiveLimitFuture::overloaded(overloaded)
            }
            Err(_) => {
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                let limiter = self.limiter.clone();
                let max_wait = self.max_wait;
                let acquire = Box::pin(async move { limiter.acquire(max_wait).await });
                AdaptiveLimitFuture::waiting(acquire, ready, req, classifier)
            }
        }
    }
}
