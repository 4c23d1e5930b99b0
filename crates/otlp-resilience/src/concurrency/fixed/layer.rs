//! The fixed concurrency limit [`Layer`].

use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::ConcurrencyLimiter;
use super::service::ConcurrencyLimit;

/// Wraps services in a [`ConcurrencyLimit`]. Every service this layer makes shares one
/// [`ConcurrencyLimiter`], so the limit holds across clones and across the services the
/// layer wraps (unlike `tower::limit::ConcurrencyLimitLayer`, which gives each wrapped
/// service its own semaphore).
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    limiter: Arc<ConcurrencyLimiter>,
    max_wait: Duration,
}

impl ConcurrencyLimitLayer {
    /// At most `limit` calls in flight; a call over the limit is refused at once (load
    /// shedding) with [`Overloaded`](crate::concurrency::Overloaded).
    pub fn new(limit: usize) -> ConcurrencyLimitLayer {
        ConcurrencyLimitLayer::with_limiter(Arc::new(ConcurrencyLimiter::new(limit)))
    }

    /// Shares an existing limiter (e.g. one limit over several services).
    pub fn with_limiter(limiter: Arc<ConcurrencyLimiter>) -> ConcurrencyLimitLayer {
        ConcurrencyLimitLayer {
            limiter,
            max_wait: Duration::ZERO,
        }
    }

    /// A call over the limit waits up to `max_wait` for a slot (first come, first
    /// served) before it is refused. Zero (the default) sheds at once.
    pub fn wait_up_to(mut self, max_wait: Duration) -> ConcurrencyLimitLayer {
        self.max_wait = max_wait;
        self
    }

    /// The shared limiter.
    pub fn limiter(&self) -> &Arc<ConcurrencyLimiter> {
        &self.limiter
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;

    fn layer(&self, inner: S) -> ConcurrencyLimit<S> {
        ConcurrencyLimit::new(inner, self.limiter.clone(), self.max_wait)
    }
}
