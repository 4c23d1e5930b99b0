//! A concurrency limit that finds itself from observed latency.

mod aimd;
mod future;
mod gradient;
mod layer;
mod service;

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::metrics::Meter;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::error::Overloaded;
use super::metrics::{Metrics, default_meter};
use crate::classify::{Classify, Outcome};

pub use aimd::{Aimd, AimdBuilder};
pub use future::AdaptiveLimitFuture;
pub use gradient::{Gradient, GradientBuilder};
pub use layer::AdaptiveConcurrencyLimitLayer;
pub use service::AdaptiveConcurrencyLimit;

/// One completed call, as a limit algorithm sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the call started (got its slot).
    pub started: Instant,
    /// How long it took.
    pub rtt: Duration,
    /// Calls in flight when it started, itself included.
    pub in_flight: usize,
    /// Whether it failed (by the classifier: [`Outcome::Failure`]), a timeout included.
    pub dropped: bool,
}

impl Sample {
    /// A sample.
    pub fn new(started: Instant, rtt: Duration, in_flight: usize, dropped: bool) -> Sample {
        Sample {
            started,
            rtt,
            in_flight,
            dropped,
        }
    }

    /// When the call completed.
    pub fn completed(&self) -> Instant {
        self.started + self.rtt
    }
}

/// How an adaptive limit moves: [`Aimd`], [`Gradient`], or your own.
///
/// Called under a mutex with each sample, in completion order; returns the new limit,
/// which the limiter clamps to at least 1.
pub trait LimitAlgorithm: Send + 'static {
    /// The current limit.
    fn limit(&self) -> usize;
    /// Takes one sample into account and returns the new limit.
    fn update(&mut self, sample: Sample) -> usize;
}

impl LimitAlgorithm for Box<dyn LimitAlgorithm> {
    fn limit(&self) -> usize {
        (**self).limit()
    }

    fn update(&mut self, sample: Sample) -> usize {
        (**self).update(sample)
    }
}

/// A concurrency limit whose value a [`LimitAlgorithm`] sets from completed calls, in the
/// manner of Netflix concurrency-limits and Envoy's adaptive concurrency filter.
///
/// Admission is lock-free (a compare-and-swap on the in-flight count against the current
/// limit, an atomic); a completed call takes the algorithm's mutex once to record its
/// sample. A call that is cancelled (its [`Token`] dropped unsettled) frees its slot and
/// records nothing; so does one classified [`Outcome::Ignored`].
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::classify::Outcome;
/// use otlp_resilience::concurrency::{AdaptiveLimiter, Aimd};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let limiter = AdaptiveLimiter::new(Aimd::builder().initial_limit(4).build());
/// let token = limiter.try_acquire().unwrap();
/// tokio::time::sleep(Duration::from_millis(3)).await; // the call
/// token.record(Outcome::Failure);
/// assert_eq!(limiter.limit(), 2);
/// # }
/// ```
pub struct AdaptiveLimiter<A> {
    algorithm: Mutex<A>,
    limit: AtomicUsize,
    in_flight: AtomicUsize,
    waiters: AtomicUsize,
    notify: Notify,
    name: Cow<'static, str>,
    metrics: Metrics,
}

impl<A: LimitAlgorithm> AdaptiveLimiter<A> {
    /// A limiter driven by `algorithm`, with default metrics.
    pub fn new(algorithm: A) -> Arc<AdaptiveLimiter<A>> {
        AdaptiveLimiter::builder(algorithm).build()
    }

    /// A builder for the name and meter.
    pub fn builder(algorithm: A) -> AdaptiveLimiterBuilder<A> {
        AdaptiveLimiterBuilder {
            algorithm,
            name: Cow::Borrowed("adaptive_concurrency"),
            meter: None,
        }
    }

    /// A slot if fewer than [`limit`](Self::limit) calls are in flight, else [`Overloaded`].
    #[inline]
    pub fn try_acquire(self: &Arc<Self>) -> Result<Token<A>, Overloaded> {
        self.try_take()
            .map(|in_flight| Token::new(self.clone(), in_flight))
            .ok_or_else(|| self.overloaded(Duration::ZERO))
    }

    /// A slot, waiting up to `max_wait` for one to free up (or for the limit to grow).
    pub async fn acquire(self: &Arc<Self>, max_wait: Duration) -> Result<Token<A>, Overloaded> {
        if let Some(n) = self.try_take() {
            return Ok(Token::new(self.clone(), n));
        }
        if max_wait.is_zero() {
            return Err(self.overloaded(Duration::ZERO));
        }
        let deadline = Instant::now() + max_wait;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let _unregister = WaiterGuard(&self.waiters);
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            // Checked after registering, so a release in between is not missed.
            if let Some(n) = self.try_take() {
                return Ok(Token::new(self.clone(), n));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                // One last look: a slot freed exactly at the deadline still counts.
                return match self.try_take() {
                    Some(n) => Ok(Token::new(self.clone(), n)),
                    None => Err(self.overloaded(max_wait)),
                };
            }
        }
    }

    /// Runs `future` in a slot (waiting up to `max_wait` for one) and records its outcome
    /// by `classifier`; cancelling the returned future frees the slot without a sample.
    pub async fn run<F, T, E, C>(
        self: &Arc<Self>,
        max_wait: Duration,
        classifier: &C,
        future: F,
    ) -> Result<Result<T, E>, Overloaded>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E> + ?Sized,
    {
        let token = self.acquire(max_wait).await?;
        let result = future.await;
        token.record(classifier.classify(&result));
        Ok(result)
    }

    /// Takes a slot if below the limit; returns the in-flight count including it.
    #[inline]
    fn try_take(&self) -> Option<usize> {
        self.in_flight
            .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| {
                (n < self.limit.load(Ordering::Relaxed)).then_some(n + 1)
            })
            .ok()
            .map(|prev| prev + 1)
    }

    fn release(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    fn record(&self, sample: Sample) {
        let new = {
            let mut algorithm = self.algorithm.lock().unwrap_or_else(|e| e.into_inner());
            algorithm.update(sample).max(1)
        };
        let old = self.limit.swap(new, Ordering::SeqCst);
        if new > old && self.waiters.load(Ordering::SeqCst) > 0 {
            for _ in 0..(new - old).min(self.waiters.load(Ordering::Relaxed)) {
                self.notify.notify_one();
            }
        }
        if new != old {
            tracing::debug!(name = %self.name, old, new, "adaptive concurrency limit changed");
        }
    }

    #[cold]
    fn overloaded(&self, waited: Duration) -> Overloaded {
        self.metrics.rejected();
        Overloaded::new(self.limit(), waited)
    }

    /// The current limit (an atomic read).
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Calls in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The name used in metrics and logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on the algorithm (e.g. to read its state), under its mutex.
    pub fn with_algorithm<R>(&self, f: impl FnOnce(&A) -> R) -> R {
        f(&self.algorithm.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

struct WaiterGuard<'a>(&'a AtomicUsize);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<A> fmt::Debug for AdaptiveLimiter<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiter")
            .field("name", &self.name)
            .field("limit", &self.limit.load(Ordering::Relaxed))
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A slot of an [`AdaptiveLimiter`]. Settle it with [`record`](Self::record) (or
/// [`success`](Self::success) / [`failure`](Self::failure)) when the call completes;
/// dropping it unsettled frees the slot without a sample (a cancelled call says nothing).
pub struct Token<A: LimitAlgorithm> {
    limiter: Arc<AdaptiveLimiter<A>>,
    started: Instant,
    in_flight: usize,
    released: bool,
}

impl<A: LimitAlgorithm> Token<A> {
    fn new(limiter: Arc<AdaptiveLimiter<A>>, in_flight: usize) -> Token<A> {
        Token {
            limiter,
            started: Instant::now(),
            in_flight,
            released: false,
        }
    }

    /// Frees the slot and records the call by its outcome: a success is a sample, a
    /// failure a dropped sample, an ignored call no sample.
    pub fn record(mut self, outcome: Outcome) {
        let dropped = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => return,
        };
        let sample = Sample::new(
            self.started,
            self.started.elapsed(),
            self.in_flight,
            dropped,
        );
        // Free the slot first, then let the algorithm move the limit.
        self.released = true;
        self.limiter.release();
        self.limiter.record(sample);
    }

    /// `record(Outcome::Success)`.
    pub fn success(self) {
        self.record(Outcome::Success)
    }

    /// `record(Outcome::Failure)`.
    pub fn failure(self) {
        self.record(Outcome::Failure)
    }

    /// When the slot was taken.
    pub fn started(&self) -> Instant {
        self.started
    }
}

impl<A: LimitAlgorithm> Drop for Token<A> {
    fn drop(&mut self) {
        if !self.released {
            self.limiter.release();
        }
    }
}

impl<A: LimitAlgorithm> fmt::Debug for Token<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("started", &self.started)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AdaptiveLimiter`].
#[must_use]
pub struct AdaptiveLimiterBuilder<A> {
    algorithm: A,
    name: Cow<'static, str>,
    meter: Option<Meter>,
}

impl<A: LimitAlgorithm> AdaptiveLimiterBuilder<A> {
    /// The `name` attribute of the metrics (default `"adaptive_concurrency"`).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    /// The meter for the instruments (default: the global meter `otlp-resilience`).
    pub fn meter(mut self, meter: Meter) -> Self {
        self.meter = Some(meter);
        self
    }

    /// The limiter, shared (tokens hold a reference to it).
    pub fn build(self) -> Arc<AdaptiveLimiter<A>> {
        let meter = self.meter.unwrap_or_else(default_meter);
        let initial = self.algorithm.limit().max(1);
        Arc::new_cyclic(|weak: &std::sync::Weak<AdaptiveLimiter<A>>| {
            let w1 = weak.clone();
            let w2 = weak.clone();
            let metrics = Metrics::new(
                &meter,
                self.name.clone(),
                move || w1.upgrade().map(|l| l.in_flight() as u64),
                move || w2.upgrade().map(|l| l.limit() as u64),
            );
            AdaptiveLimiter {
                algorithm: Mutex::new(self.algorithm),
                limit: AtomicUsize::new(initial),
                in_flight: AtomicUsize::new(0),
                waiters: AtomicUsize::new(0),
                notify: Notify::new(),
                name: self.name,
                metrics,
            }
        })
    }
}

impl<A: fmt::Debug> fmt::Debug for AdaptiveLimiterBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLimiterBuilder")
            .field("algorithm", &self.algorithm)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::AnyError;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn admits_up_to_the_limit_and_releases_on_drop() {
        let l = AdaptiveLimiter::builder(Aimd::builder().initial_limit(2).build())
            .name("up")
            .meter(opentelemetry::global::meter("test"))
            .build();
        assert_eq!(l.name(), "up");
        let a = l.try_acquire().expect("1");
        let _b = l.try_acquire().expect("2");
        let e = l.try_acquire().expect_err("full");
        assert_eq!(e.limit(), 2);
        assert_eq!(l.in_flight(), 2);
        drop(a); // cancelled: no sample
        assert_eq!((l.in_flight(), l.limit()), (1, 2));
        assert!(format!("{l:?}").contains("in_flight"));
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_drive_the_algorithm() {
        let l = AdaptiveLimiter::new(Aimd::builder().initial_limit(8).build());
        let t = l.try_acquire().expect("slot");
        t.record(Outcome::Ignored);
        assert_eq!(l.limit(), 8);
        let tokens: Vec<_> = (0..8).map(|_| l.try_acquire().expect("slot")).collect();
        for t in tokens {
            t.success();
        }
        // Tokens started with 1..=8 in flight; the first three ran with less than half
        // of the limit in use and do not grow it, the other five add one each.
        assert_eq!(l.limit(), 13);
        let t = l.try_acquire().expect("slot");
        tokio::time::advance(ms(1)).await;
        t.failure();
        assert_eq!(l.limit(), 6);
        assert_eq!(l.with_algorithm(|a| a.limit()), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn waiter_gets_released_slot_or_gives_up_at_the_bound() {
        let l = AdaptiveLimiter::new(Aimd::builder().initial_limit(1).max_limit(1).build());
        let held = l.try_acquire().expect("1");
        let t0 = Instant::now();
        let e = l.acquire(ms(20)).await.expect_err("nobody releases");
        assert_eq!((e.waited(), t0.elapsed()), (ms(20), ms(20)));
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.acquire(ms(50)).await.map(|t| t.started()) });
        tokio::time::sleep(ms(10)).await;
        held.success();
        let started = waiter.await.expect("task").expect("slot");
        assert_eq!(started, t0 + ms(30));
        assert_eq!(l.in_flight(), 0);
        assert!(l.acquire(Duration::ZERO).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_wake_when_the_limit_grows() {
        let l = AdaptiveLimiter::new(
            Aimd::builder()
                .initial_limit(1)
                .grow_only_when_busy(false)
                .build(),
        );
        let held = l.try_acquire().expect("1");
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move { l.acquire(ms(50)).await })
            })
            .collect();
        tokio::time::sleep(ms(5)).await;
        // The call completes: its slot goes to one waiter, and the limit growing to 2
        // wakes the other at once (not at its deadline).
        let t0 = Instant::now();
        held.success();
        let mut tokens = Vec::new();
        for w in waiters {
            tokens.push(w.await.expect("task").expect("slot"));
        }
        assert_eq!(t0.elapsed(), Duration::ZERO);
        assert_eq!((l.limit(), l.in_flight()), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn run_records_by_classifier() {
        let l = AdaptiveLimiter::new(Aimd::builder().initial_limit(4).build());
        let r = l
            .run(Duration::ZERO, &AnyError, async {
                tokio::time::sleep(ms(1)).await;
                Err::<(), _>("boom")
            })
            .await;
        assert_eq!(r, Ok(Err("boom")));
        assert_eq!(l.limit(), 2);
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn boxed_algorithm_and_sample() {
        let mut b: Box<dyn LimitAlgorithm> = Box::new(Gradient::new());
        assert_eq!(b.limit(), 20);
        let now = Instant::now();
        let s = Sample::new(now, ms(3), 20, false);
        assert_eq!(s.completed(), now + ms(3));
        assert!(b.update(s) >= 20);
    }
}
