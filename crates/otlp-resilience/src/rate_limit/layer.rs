//! The rate limiting [`Layer`].

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use tower::Layer;

use super::keyed::KeyedRateLimiter;
use super::request::Keyed;
use super::service::RateLimit;

/// Wraps a service in a [`RateLimit`]: each request takes a cell from the limiter `L`
/// ([`RateLimiter`](super::RateLimiter), [`Keyed`], or an `Arc` of either) before the inner
/// service is called.
///
/// By default a request without a free cell is refused at once with
/// [`RateLimitError::Limited`](super::RateLimitError::Limited);
/// [`wait_up_to`](Self::wait_up_to) lets it wait for a cell up to a bound instead.
/// Services made by one layer share its limiter (and so its buckets).
#[derive(Debug, Clone)]
pub struct RateLimitLayer<L> {
    limiter: L,
    max_wait: Duration,
}

impl<L> RateLimitLayer<L> {
    /// Refuses at once when `limiter` has no free cell.
    pub fn new(limiter: L) -> RateLimitLayer<L> {
        RateLimitLayer {
            limiter,
            max_wait: Duration::ZERO,
        }
    }

    /// Waits up to `max_wait` for a cell (the cell is booked on arrival, so waiters are
    /// served in order) and refuses at once those that would wait longer. Zero (the
    /// default) refuses every request without a free cell.
    pub fn wait_up_to(mut self, max_wait: Duration) -> RateLimitLayer<L> {
        self.max_wait = max_wait;
        self
    }
}

impl<K: Hash + Eq + Clone, F, C: Clock> RateLimitLayer<Keyed<K, F, C>> {
    /// Limits each request under the key `key_fn` picks (see [`KeyFn`](super::KeyFn);
    /// `None` lets the request through unlimited).
    pub fn keyed(limiter: Arc<KeyedRateLimiter<K, C>>, key_fn: F) -> Self {
        RateLimitLayer::new(Keyed::new(limiter, key_fn))
    }
}

impl<S, L: Clone> Layer<S> for RateLimitLayer<L> {
    type Service = RateLimit<S, L>;

    fn layer(&self, inner: S) -> RateLimit<S, L> {
        RateLimit::new(inner, self.limiter.clone(), self.max_wait)
    }
}
