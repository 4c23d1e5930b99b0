//! The direct limiter: one bucket shared by every request.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use governor::Quota;
use governor::clock::{Clock, Reference};
use governor::state::InMemoryState;
use opentelemetry::metrics::Meter;

use super::clock::TokioClock;
use super::error::{RateLimited, Unkeyed};
use super::gcra::{Decision, Padded, QuotaCell, duration_nanos, step_state};
use super::metrics::{Metrics, default_meter};

/// A GCRA rate limiter with one bucket: `quota` requests per period with a burst.
///
/// Built on governor's [`InMemoryState`] (one atomic, compare-and-swap) and
/// [`Quota`]; the quota can be changed at run time with [`set_quota`](Self::set_quota)
/// and the bucket's state (how much of the burst is used) carries over.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use otlp_resilience::rate_limit::{Quota, RateLimiter};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = RateLimiter::new(Quota::per_second(NonZeroU32::new(2).unwrap()));
/// assert!(limiter.check().is_ok());
/// assert!(limiter.check().is_ok());
/// let limited = limiter.check().unwrap_err();
/// assert_eq!(limited.retry_after(), Duration::from_millis(500));
///
/// // Wait up to 1 s for a cell instead of failing at once.
/// limiter.until_ready(Duration::from_secs(1)).await.unwrap();
/// # }
/// ```
pub struct RateLimiter<C: Clock = TokioClock> {
    state: Padded<InMemoryState>,
    quota: QuotaCell,
    clock: C,
    start: C::Instant,
    name: Cow<'static, str>,
    metrics: Metrics,
}

impl RateLimiter<TokioClock> {
    /// A limiter with `quota`, the tokio clock and default metrics.
    pub fn new(quota: Quota) -> RateLimiter<TokioClock> {
        RateLimiter::builder(quota).build()
    }

    /// A builder to set the name, meter and clock.
    pub fn builder(quota: Quota) -> RateLimiterBuilder<TokioClock> {
        RateLimiterBuilder {
            quota,
            clock: TokioClock::default(),
            name: Cow::Borrowed("rate_limit"),
            meter: None,
        }
    }
}

impl<C: Clock> RateLimiter<C> {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.now().duration_since(self.start).as_u64()
    }

    /// Takes one cell if one is free now.
    #[inline]
    pub fn check(&self) -> Result<(), RateLimited<Unkeyed>> {
        self.reserve(Duration::ZERO).map(|_| ())
    }

    /// Takes one cell, waiting at most `max_wait` for it: `Ok(wait)` says how long the
    /// caller must wait before going ahead (zero: at once). The cell is booked when this
    /// returns, so concurrent waiters never race for it; a caller that gives up after a
    /// non-zero wait leaves its cell unused (the limiter errs on the safe side).
    ///
    /// When even `max_wait` is not enough, nothing is booked and the error says how long
    /// until a cell is free.
    #[inline(always)]
    pub fn reserve(&self, max_wait: Duration) -> Result<Duration, RateLimited<Unkeyed>> {
        // The clock first: the quota is then read right before the compare-and-swap.
        let now = self.now();
        let params = self.quota.load();
        match step_state(&self.state.0, now, params, duration_nanos(max_wait)) {
            Decision::Admit { wait: 0 } => Ok(Duration::ZERO),
            Decision::Admit { wait } => {
                self.metrics.delayed();
                Ok(Duration::from_nanos(wait))
            }
            Decision::Reject { retry_after } => {
                self.metrics.rejected();
                Err(RateLimited::new(
                    Unkeyed,
                    Duration::from_nanos(retry_after),
                    params,
                ))
            }
        }
    }

    /// Waits until a cell is free, at most `max_wait`; refuses at once if that is not
    /// enough (no time is spent waiting for a cell that cannot come in time).
    pub async fn until_ready(&self, max_wait: Duration) -> Result<(), RateLimited<Unkeyed>> {
        let wait = self.reserve(max_wait)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// Replaces the quota. The bucket keeps its state: the requests already admitted still
    /// count against the new quota (GCRA's theoretical arrival time carries over).
    pub fn set_quota(&self, quota: Quota) {
        self.quota.store(quota);
    }

    /// The quota in force.
    pub fn quota(&self) -> Quota {
        self.quota.quota()
    }

    /// The name used in metrics and logs.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<C: Clock> fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("quota", &self.quota())
            .field("state", &self.state.0)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RateLimiter`].
#[must_use]
pub struct RateLimiterBuilder<C> {
    quota: Quota,
    clock: C,
    name: Cow<'static, str>,
    meter: Option<Meter>,
}

impl<C: Clock> RateLimiterBuilder<C> {
    /// The `name` attribute of the metrics (default `"rate_limit"`).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The meter for the instruments (default: the global meter `otlp-resilience`).
    pub fn meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Another clock, e.g. governor's `QuantaClock` (governor feature `quanta`) or
    /// `FakeRelativeClock` (default: [`TokioClock`], which follows paused tokio time).
    pub fn clock<C2: Clock>(self, clock: C2) -> RateLimiterBuilder<C2> {
        RateLimiterBuilder {
            quota: self.quota,
            clock,
            name: self.name,
            meter: self.meter,
        }
    }

    /// The limiter.
    pub fn build(self) -> RateLimiter<C> {
        let meter = self.meter.unwrap_or_else(default_meter);
        let start = self.clock.now();
        RateLimiter {
            state: Padded::default(),
            quota: QuotaCell::new(self.quota),
            metrics: Metrics::new(&meter, self.name.clone()),
            clock: self.clock,
            start,
            name: self.name,
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for RateLimiterBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiterBuilder")
            .field("quota", &self.quota)
            .field("clock", &self.clock)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;
    use tokio::time::{Instant, advance};

    fn quota(per_sec: u32, burst: u32) -> Quota {
        Quota::per_second(NonZeroU32::new(per_sec).expect("non-zero"))
            .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
    }

    #[tokio::test(start_paused = true)]
    async fn burst_then_one_per_interval() {
        let l = RateLimiter::new(quota(10, 3));
        for _ in 0..3 {
            l.check().expect("burst");
        }
        let e = l.check().expect_err("burst used");
        assert_eq!(e.retry_after(), Duration::from_millis(100));
        assert_eq!(e.quota(), quota(10, 3));
        advance(Duration::from_millis(99)).await;
        assert!(l.check().is_err());
        advance(Duration::from_millis(1)).await;
        l.check().expect("one replenished");
        assert!(l.check().is_err());
        // A long idle period refills the burst but never more.
        advance(Duration::from_secs(10)).await;
        for _ in 0..3 {
            l.check().expect("refilled");
        }
        assert!(l.check().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn until_ready_waits_exactly_and_refuses_beyond_bound() {
        let l = RateLimiter::new(quota(10, 1));
        l.check().expect("first");
        let t0 = Instant::now();
        l.until_ready(Duration::from_millis(100))
            .await
            .expect("fits");
        assert_eq!(t0.elapsed(), Duration::from_millis(100));
        // The next cell is 100 ms away: a 50 ms bound refuses at once, without waiting.
        let t1 = Instant::now();
        let e = l
            .until_ready(Duration::from_millis(50))
            .await
            .expect_err("beyond bound");
        assert_eq!(t1.elapsed(), Duration::ZERO);
        assert_eq!(e.retry_after(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waiters_are_spaced_one_interval_apart() {
        let l = std::sync::Arc::new(RateLimiter::new(quota(10, 1)));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let l = l.clone();
            tasks.push(tokio::spawn(async move {
                l.until_ready(Duration::from_secs(1))
                    .await
                    .map(|_| t0.elapsed())
            }));
        }
        let mut done = Vec::new();
        for t in tasks {
            done.push(t.await.expect("task").expect("admitted"));
        }
        done.sort();
        let expected: Vec<_> = (0..5).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(done, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn set_quota_keeps_used_burst() {
        let l = RateLimiter::new(quota(10, 5));
        for _ in 0..5 {
            l.check().expect("burst");
        }
        assert!(l.check().is_err());
        // Doubling the burst gives only the 5 extra cells, not a fresh 10.
        l.set_quota(quota(10, 10));
        assert_eq!(l.quota(), quota(10, 10));
        for _ in 0..5 {
            l.check().expect("extra burst");
        }
        assert!(l.check().is_err());
        // Shrinking the quota: the debt built up counts against the new rate.
        l.set_quota(quota(1, 1));
        let e = l.check().expect_err("in debt");
        assert_eq!(e.quota(), quota(1, 1));
        assert_eq!(e.retry_after(), Duration::from_secs(1));
        advance(Duration::from_secs(1)).await;
        l.check().expect("debt repaid");
    }

    #[tokio::test(start_paused = true)]
    async fn builder_sets_name_and_clock() {
        let l = RateLimiter::builder(quota(1, 1))
            .name("upstream-a")
            .meter(opentelemetry::global::meter("test"))
            .build();
        assert_eq!(l.name(), "upstream-a");
        assert!(format!("{l:?}").contains("upstream-a"));

        let fake = governor::clock::FakeRelativeClock::default();
        let l = RateLimiter::builder(quota(1, 1))
            .clock(fake.clone())
            .build();
        l.check().expect("first");
        assert!(l.check().is_err());
        fake.advance(Duration::from_secs(1));
        l.check().expect("fake clock advanced");
    }
}
