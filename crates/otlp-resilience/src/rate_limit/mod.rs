//! Rate limiting with GCRA (governor): direct and keyed, rate plus burst, quotas that
//! change at run time, refuse-at-once or bounded wait, bounded memory.
//!
//! - [`RateLimiter`]: one bucket for every request (an exporter's outbound rate).
//! - [`KeyedRateLimiter`]: one bucket per key (tenant, client IP, route), at most
//!   `max_keys` keys, stale keys evicted ([`KeyOverflow`] says what happens when full).
//! - [`RateLimitLayer`] / [`RateLimit`]: the tower middleware over either; [`KeyFn`] picks
//!   a request's key. Refused requests fail with [`RateLimitError::Limited`] carrying a
//!   [`RateLimited`] (key, quota, [`retry_after`](RateLimited::retry_after)), which
//!   converts into [`otlp_core::Refusal::Throttled`] for a 429 + `Retry-After` or a
//!   RESOURCE_EXHAUSTED + `RetryInfo` answer.
//!
//! # Quota
//!
//! A governor [`Quota`]: `Quota::per_second(n)` admits one request every `1/n` s with a
//! burst of `n`; `.allow_burst(b)` sets the burst. An idle bucket refills to the burst and
//! no further.
//!
//! # Changing the quota at run time
//!
//! governor fixes a limiter's quota when it is built, and rebuilding would reset every
//! key. Here [`set_quota`](KeyedRateLimiter::set_quota) swaps the quota in place: the state
//! of each key (GCRA's theoretical arrival time, kept in governor's state cells) does not
//! depend on the quota, so it carries over. A key that had used up its burst gets only the
//! difference when the burst grows, and owes its debt at the new rate when the rate falls.
//! Readers never lock: the quota sits behind a sequence lock (two atomics and a version),
//! which costs four plain loads per check. The alternative (a governor limiter per quota
//! behind an `RwLock`, sharing the state store) costs a read lock per check; the bench
//! `rate_limit` measures both.
//!
//! # Waiting
//!
//! With [`RateLimitLayer::wait_up_to`] a request that would conform within the bound is
//! admitted with a *booked* cell and sleeps until its time; requests that would wait longer
//! are refused at once (no time is wasted on a wait that cannot succeed). Booking makes
//! waiters first come, first served, with no retry loop or thundering herd. A waiter that
//! is cancelled does not give its cell back: the limiter errs on the side of admitting
//! less, never more.
//!
//! # Time
//!
//! Limiters read time through a governor [`Clock`](governor::clock::Clock); the default
//! [`TokioClock`] follows `tokio::time`, so tests can pause and advance time. Any governor
//! clock can be plugged in with the builders' `clock` method.
//!
//! ```
//! use std::num::NonZeroU32;
//! use std::sync::Arc;
//! use std::time::Duration;
//! use otlp_resilience::rate_limit::{KeyedRateLimiter, Quota, RateLimitError, RateLimitLayer};
//! use tower::{Layer, Service, ServiceExt};
//!
//! struct Request { tenant: &'static str }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let per_tenant = Arc::new(KeyedRateLimiter::<&'static str>::new(
//!     Quota::per_second(NonZeroU32::new(10).unwrap()).allow_burst(NonZeroU32::new(2).unwrap()),
//! ));
//! let layer = RateLimitLayer::keyed(per_tenant.clone(), |r: &Request| Some(r.tenant));
//! let mut svc = layer.layer(tower::service_fn(|_r: Request| async { Ok::<_, ()>("ok") }));
//!
//! for _ in 0..2 {
//!     assert_eq!(svc.ready().await.unwrap().call(Request { tenant: "acme" }).await, Ok("ok"));
//! }
//! let Err(RateLimitError::Limited(limited)) = svc.ready().await.unwrap().call(Request { tenant: "acme" }).await
//! else { panic!("expected a refusal") };
//! assert_eq!(limited.retry_after(), Duration::from_millis(100));
//! let refusal = otlp_core::Refusal::from(limited);
//! assert_eq!(refusal.http_status(), 429);
//!
//! // Another tenant has its own bucket; operators can raise the quota live.
//! assert!(svc.ready().await.unwrap().call(Request { tenant: "other" }).await.is_ok());
//! per_tenant.set_quota(Quota::per_second(NonZeroU32::new(10).unwrap()).allow_burst(NonZeroU32::new(3).unwrap()));
//! assert!(svc.ready().await.unwrap().call(Request { tenant: "acme" }).await.is_ok());
//! # }
//! ```

mod clock;
mod direct;
mod error;
mod future;
mod gcra;
mod keyed;
mod layer;
mod metrics;
mod request;
mod service;

pub use clock::TokioClock;
pub use direct::{RateLimiter, RateLimiterBuilder};
pub use error::{RateLimitError, RateLimited, Unkeyed};
pub use future::RateLimitFuture;
pub use governor::Quota;
pub use keyed::{
    DEFAULT_MAX_KEYS, DEFAULT_SWEEP_INTERVAL, KeyOverflow, KeyedRateLimiter,
    KeyedRateLimiterBuilder,
};
pub use layer::RateLimitLayer;
pub use request::{KeyFn, Keyed, RequestLimit};
pub use service::RateLimit;
