//! The adaptive concurrency limit [`Layer`].

use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::service::AdaptiveConcurrencyLimit;
use super::{AdaptiveLimiter, LimitAlgorithm};
use crate::classify::AnyError;

/// Wraps services in an [`AdaptiveConcurrencyLimit`] sharing one [`AdaptiveLimiter`].
///
/// Calls are admitted while fewer than the current limit are in flight; over it they are
/// refused at once with [`Overloaded`](crate::concurrency::Overloaded), or wait up to
/// [`wait_up_to`](Self::wait_up_to). Each completed call is a sample for the limit
/// algorithm, classified by `Cl` (default [`AnyError`]: every error is a drop; use
/// [`OtlpClassifier`](crate::classify::OtlpClassifier) so 400-class answers are ignored).
#[derive(Debug)]
pub struct AdaptiveConcurrencyLimitLayer<A, Cl = AnyError> {
    limiter: Arc<AdaptiveLimiter<A>>,
    classifier: Cl,
    max_wait: Duration,
}

impl<A: LimitAlgorithm> AdaptiveConcurrencyLimitLayer<A, AnyError> {
    /// Limits by `limiter`, shedding at once when full, every error a drop.
    pub fn new(limiter: Arc<AdaptiveLimiter<A>>) -> Self {
        AdaptiveConcurrencyLimitLayer {
            limiter,
            classifier: AnyError,
            max_wait: Duration::ZERO,
        }
    }
}

impl<A: LimitAlgorithm, Cl> AdaptiveConcurrencyLimitLayer<A, Cl> {
    /// Classifies results with `classifier`: `Failure` is a drop signal, `Ignored` is no
    /// sample.
    pub fn classify<Cl2>(self, classifier: Cl2) -> AdaptiveConcurrencyLimitLayer<A, Cl2> {
        AdaptiveConcurrencyLimitLayer {
            limiter: self.limiter,
            classifier,
            max_wait: self.max_wait,
        }
    }

    /// A call over the limit waits up to `max_wait` for a slot before it is refused.
    pub fn wait_up_to(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The shared limiter (read its current limit with `limit()`).
    pub fn limiter(&self) -> &Arc<AdaptiveLimiter<A>> {
        &self.limiter
    }
}

impl<A, Cl: Clone> Clone for AdaptiveConcurrencyLimitLayer<A, Cl> {
    fn clone(&self) -> Self {
        AdaptiveConcurrencyLimitLayer {
            limiter: self.limiter.clone(),
            classifier: self.classifier.clone(),
            max_wait: self.max_wait,
        }
    }
}

impl<S, A: LimitAlgorithm, Cl: Clone> Layer<S> for AdaptiveConcurrencyLimitLayer<A, Cl> {
    type Service = AdaptiveConcurrencyLimit<S, A, Cl>;

    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveConcurrencyLimit::new(
            inner,
            self.limiter.clone(),
            self.classifier.clone(),
            self.max_wait,
        )
    }
}
