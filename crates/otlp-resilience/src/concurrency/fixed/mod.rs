//! A fixed concurrency limit over a tokio [`Semaphore`].

mod future;
mod layer;
mod service;

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use opentelemetry::metrics::Meter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::error::Overloaded;
use super::metrics::{Metrics, default_meter};

pub use future::ConcurrencyLimitFuture;
pub use layer::ConcurrencyLimitLayer;
pub use service::ConcurrencyLimit;

/// At most `limit` calls in flight at once.
///
/// A [`Permit`] is a slot: taken with [`try_acquire`](Self::try_acquire) (shed load: refuse
/// at once when full) or [`acquire`](Self::acquire) (wait up to a bound, first come first
/// served), given back when dropped, whether the call finished or was cancelled.
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::concurrency::ConcurrencyLimiter;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = ConcurrencyLimiter::new(2);
/// let a = limiter.try_acquire().unwrap();
/// let _b = limiter.try_acquire().unwrap();
/// assert!(limiter.try_acquire().is_err()); // full: shed
/// assert_eq!(limiter.in_flight(), 2);
/// drop(a);
/// let _c = limiter.acquire(Duration::from_millis(10)).await.unwrap();
///
/// // Or wrap a whole call:
/// let out = limiter.run(Duration::ZERO, async { 42 }).await;
/// assert!(out.is_err()); // still full
/// # }
/// ```
pub struct ConcurrencyLimiter {
    semaphore: Arc<Semaphore>,
    limit: usize,
    name: Cow<'static, str>,
    metrics: Metrics,
}

/// A slot of a [`ConcurrencyLimiter`]; the slot is free again when this is dropped.
#[derive(Debug)]
pub struct Permit {
    _permit: OwnedSemaphorePermit,
}

impl ConcurrencyLimiter {
    /// A limit of `limit` calls (at least 1) with default metrics.
    pub fn new(limit: usize) -> ConcurrencyLimiter {
        ConcurrencyLimiter::builder(limit).build()
    }

    /// A builder for the name and meter.
    pub fn builder(limit: usize) -> ConcurrencyLimiterBuilder {
        ConcurrencyLimiterBuilder {
            limit,
            name: Cow::Borrowed("concurrency"),
            meter: None,
        }
    }

    /// A slot if one is free now, else [`Overloaded`].
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, Overloaded> {
        match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => Ok(Permit { _permit: permit }),
            Err(TryAcquireError::NoPermits | TryAcquireError::Closed) => {
                Err(self.overloaded(Duration::ZERO))
            }
        }
    }

    /// A slot, waiting up to `max_wait` for one (callers are served in order). Refused
    /// with [`Overloaded`] when none came in time.
    pub async fn acquire(&self, max_wait: Duration) -> Result<Permit, Overloaded> {
        if let Ok(permit) = self.semaphore.clone().try_acquire_owned() {
            return Ok(Permit { _permit: permit });
        }
        if max_wait.is_zero() {
            return Err(self.overloaded(Duration::ZERO));
        }
        match tokio::time::timeout(max_wait, self.semaphore.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Permit { _permit: permit }),
            Ok(Err(_)) | Err(_) => Err(self.overloaded(max_wait)),
        }
    }

    /// Runs `future` in a slot (waiting up to `max_wait` for one); the slot is free again
    /// when `future` is done or this future is dropped.
    pub async fn run<F: Future>(
        &self,
        max_wait: Duration,
        future: F,
    ) -> Result<F::Output, Overloaded> {
        let _permit = self.acquire(max_wait).await?;
        Ok(future.await)
    }

    #[cold]
    pub(crate) fn overloaded(&self, waited: Duration) -> Overloaded {
        self.metrics.rejected();
        Overloaded::new(self.limit, waited)
    }

    pub(crate) fn semaphore(&self) -> &Arc<Semaphore> {
        &self.semaphore
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.limit
            .saturating_sub(self.semaphore.available_permits())
    }

    /// The name used in metrics.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for ConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimiter")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ConcurrencyLimiter`].
#[derive(Debug)]
#[must_use]
pub struct ConcurrencyLimiterBuilder {
    limit: usize,
    name: Cow<'static, str>,
    meter: Option<Meter>,
}

impl ConcurrencyLimiterBuilder {
    /// The `name` attribute of the metrics (default `"concurrency"`).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The meter for the instruments (default: the global meter `otlp-resilience`).
    pub fn meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The limiter. The limit is clamped to `1..=Semaphore::MAX_PERMITS`.
    pub fn build(self) -> ConcurrencyLimiter {
        let limit = self.limit.clamp(1, Semaphore::MAX_PERMITS);
        let semaphore = Arc::new(Semaphore::new(limit));
        let meter = self.meter.unwrap_or_else(default_meter);
        let weak: Weak<Semaphore> = Arc::downgrade(&semaphore);
        let metrics = Metrics::new(
            &meter,
            self.name.clone(),
            move || {
                weak.upgrade()
                    .map(|s| limit.saturating_sub(s.available_permits()) as u64)
            },
            move || Some(limit as u64),
        );
        ConcurrencyLimiter {
            semaphore,
            limit,
            name: self.name,
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn shed_when_full_and_release_on_drop() {
        let l = ConcurrencyLimiter::builder(2).name("up").build();
        assert_eq!((l.limit(), l.name()), (2, "up"));
        let a = l.try_acquire().expect("1");
        let b = l.try_acquire().expect("2");
        let e = l.try_acquire().expect_err("full");
        assert_eq!((e.limit(), e.waited()), (2, Duration::ZERO));
        assert_eq!(l.in_flight(), 2);
        drop(a);
        assert_eq!(l.in_flight(), 1);
        drop(b);
        assert_eq!(l.in_flight(), 0);
        assert!(format!("{l:?}").contains("in_flight"));
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_wait_gets_a_released_slot_or_times_out_exactly() {
        let l = Arc::new(ConcurrencyLimiter::new(1));
        let held = l.try_acquire().expect("1");
        let t0 = Instant::now();
        let e = l
            .acquire(Duration::from_millis(50))
            .await
            .expect_err("nobody releases");
        assert_eq!(e.waited(), Duration::from_millis(50));
        assert_eq!(t0.elapsed(), Duration::from_millis(50));

        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(held);
        });
        let t1 = Instant::now();
        let _p = l
            .acquire(Duration::from_millis(50))
            .await
            .expect("released in time");
        assert_eq!(t1.elapsed(), Duration::from_millis(30));
        releaser.await.expect("releaser");
        // A zero bound is shedding.
        assert!(l.acquire(Duration::ZERO).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn run_releases_on_completion_and_cancellation() {
        let l = Arc::new(ConcurrencyLimiter::new(1));
        assert_eq!(l.run(Duration::ZERO, async { 5 }).await, Ok(5));
        assert_eq!(l.in_flight(), 0);
        let l2 = l.clone();
        let task =
            tokio::spawn(async move { l2.run(Duration::ZERO, std::future::pending::<()>()).await });
        tokio::task::yield_now().await;
        assert_eq!(l.in_flight(), 1);
        task.abort();
        let _ = task.await;
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn limit_is_at_least_one() {
        assert_eq!(ConcurrencyLimiter::new(0).limit(), 1);
    }
}
