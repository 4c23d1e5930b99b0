//! How the layer asks a limiter about one request: which bucket, and may it go.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;

use super::direct::RateLimiter;
use super::error::{RateLimited, Unkeyed};
use super::keyed::KeyedRateLimiter;

/// Picks the bucket of a request for a keyed limiter: the tenant, the client IP, the
/// route. Any `Fn(&Req) -> Option<K>` is one.
///
/// `None` means **the request is not limited by this layer** (it passes through without
/// taking a cell). That keeps the choice with the caller: to limit requests without a key
/// (say, no tenant header) under a shared bucket, return a default key instead
/// (`Some(tenant.unwrap_or("anonymous"))`); to refuse them, do it in a layer before.
pub trait KeyFn<Req> {
    /// The key type.
    type Key;
    /// The request's key, or `None` to let it through unlimited.
    fn key(&self, req: &Req) -> Option<Self::Key>;
}

impl<Req, K, F> KeyFn<Req> for F
where
    F: Fn(&Req) -> Option<K>,
{
    type Key = K;
    #[inline]
    fn key(&self, req: &Req) -> Option<K> {
        self(req)
    }
}

/// What the [`RateLimit`](super::RateLimit) service asks of its limiter for each request.
///
/// Implemented by [`RateLimiter`] (one bucket for all requests), by [`Keyed`] (a
/// [`KeyedRateLimiter`] plus a [`KeyFn`]) and by `Arc`s of either.
pub trait RequestLimit<Req> {
    /// The key reported in [`RateLimited`].
    type Key;

    /// Takes a cell for `req`, waiting at most `max_wait`: `Ok(wait)` is how long to wait
    /// before calling the inner service (zero: at once), with the cell already booked.
    fn reserve_request(
        &self,
        req: &Req,
        max_wait: Duration,
    ) -> Result<Duration, RateLimited<Self::Key>>;
}

impl<Req, C: Clock> RequestLimit<Req> for RateLimiter<C> {
    type Key = Unkeyed;

    #[inline]
    fn reserve_request(
        &self,
        _req: &Req,
        max_wait: Duration,
    ) -> Result<Duration, RateLimited<Unkeyed>> {
        self.reserve(max_wait)
    }
}

impl<Req, L: RequestLimit<Req> + ?Sized> RequestLimit<Req> for Arc<L> {
    type Key = L::Key;

    #[inline]
    fn reserve_request(
        &self,
        req: &Req,
        max_wait: Duration,
    ) -> Result<Duration, RateLimited<L::Key>> {
        (**self).reserve_request(req, max_wait)
    }
}

/// A [`KeyedRateLimiter`] with the function that picks each request's key.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// use otlp_resilience::rate_limit::{Keyed, KeyedRateLimiter, Quota, RequestLimit};
///
/// struct Request { tenant: Option<String> }
///
/// let limiter = Arc::new(KeyedRateLimiter::<String>::new(Quota::per_second(NonZeroU32::new(1).unwrap())));
/// let by_tenant = Keyed::new(limiter, |r: &Request| r.tenant.clone());
/// let req = Request { tenant: Some("acme".into()) };
/// assert!(by_tenant.reserve_request(&req, Default::default()).is_ok());
/// assert!(by_tenant.reserve_request(&req, Default::default()).is_err());
/// // No tenant: not limited.
/// assert!(by_tenant.reserve_request(&Request { tenant: None }, Default::default()).is_ok());
/// ```
pub struct Keyed<K: Hash + Eq + Clone, F, C: Clock = super::TokioClock> {
    limiter: Arc<KeyedRateLimiter<K, C>>,
    key_fn: F,
}

impl<K: Hash + Eq + Clone, F, C: Clock> Keyed<K, F, C> {
    /// Limits each request under the key `key_fn` picks.
    pub fn new(limiter: Arc<KeyedRateLimiter<K, C>>, key_fn: F) -> Keyed<K, F, C> {
        Keyed { limiter, key_fn }
    }

    /// The limiter.
    pub fn limiter(&self) -> &Arc<KeyedRateLimiter<K, C>> {
        &self.limiter
    }
}

impl<K: Hash + Eq + Clone, F: Clone, C: Clock> Clone for Keyed<K, F, C> {
    fn clone(&self) -> Self {
        Keyed {
            limiter: self.limiter.clone(),
            key_fn: self.key_fn.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone, F, C: Clock> fmt::Debug for Keyed<K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<Req, K, F, C> RequestLimit<Req> for Keyed<K, F, C>
where
    K: Hash + Eq + Clone,
    F: KeyFn<Req, Key = K>,
    C: Clock,
{
    type Key = K;

    #[inline]
    fn reserve_request(&self, req: &Req, max_wait: Duration) -> Result<Duration, RateLimited<K>> {
        match self.key_fn.key(req) {
            Some(key) => self.limiter.reserve_key(&key, max_wait),
            None => Ok(Duration::ZERO),
        }
    }
}
