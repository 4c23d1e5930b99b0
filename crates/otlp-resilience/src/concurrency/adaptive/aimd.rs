//! Additive increase, multiplicative decrease.

use std::time::Duration;

use tokio::time::Instant;

use super::{LimitAlgorithm, Sample};

/// AIMD, as TCP congestion control and Netflix `AIMDLimit`: each successful call faster
/// than the latency threshold adds `increase` to the limit; a failed call, or one slower
/// than the threshold, multiplies it by `backoff` (default ½).
///
/// Two guards keep it stable:
/// - **one decrease per window**: after a decrease, failures of calls that had already
///   started are ignored, so a burst of N concurrent failures halves the limit once, not N
///   times (TCP reacts once per round trip the same way);
/// - **grow only when busy** (default on): the limit grows only when the call ran with at
///   least half the limit in use, so an idle service does not inflate a limit it never
///   tested.
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::concurrency::{Aimd, LimitAlgorithm, Sample};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut aimd = Aimd::builder().initial_limit(10).min_limit(2).max_limit(100).build();
/// let now = tokio::time::Instant::now();
/// assert_eq!(aimd.update(Sample::new(now, Duration::from_millis(5), 10, false)), 11);
/// assert_eq!(aimd.update(Sample::new(now, Duration::from_millis(5), 10, true)), 5);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Aimd {
    limit: usize,
    min_limit: usize,
    max_limit: usize,
    increase: usize,
    backoff: f64,
    latency_threshold: Duration,
    grow_only_when_busy: bool,
    /// When the last decrease happened; failures of calls started before are ignored.
    last_decrease: Option<Instant>,
}

impl Aimd {
    /// AIMD with the defaults (see [`AimdBuilder`]).
    pub fn new() -> Aimd {
        Aimd::builder().build()
    }

    /// A builder for the knobs.
    pub fn builder() -> AimdBuilder {
        AimdBuilder {
            initial_limit: 20,
            min_limit: 1,
            max_limit: 1000,
            increase: 1,
            backoff: 0.5,
            latency_threshold: Duration::from_secs(5),
            grow_only_when_busy: true,
        }
    }
}

impl Default for Aimd {
    fn default() -> Aimd {
        Aimd::new()
    }
}

impl LimitAlgorithm for Aimd {
    fn limit(&self) -> usize {
        self.limit
    }

    fn update(&mut self, sample: Sample) -> usize {
        if sample.dropped || sample.rtt > self.latency_threshold {
            if self.last_decrease.is_some_and(|at| sample.started < at) {
                return self.limit;
            }
            let reduced = (self.limit as f64 * self.backoff).floor() as usize;
            self.limit = reduced.clamp(self.min_limit, self.max_limit);
            self.last_decrease = Some(sample.completed());
        } else if !self.grow_only_when_busy || sample.in_flight.saturating_mul(2) >= self.limit {
            self.limit = self
                .limit
                .saturating_add(self.increase)
                .clamp(self.min_limit, self.max_limit);
        }
        self.limit
    }
}

/// Builds an [`Aimd`].
#[derive(Debug, Clone)]
#[must_use]
pub struct AimdBuilder {
    initial_limit: usize,
    min_limit: usize,
    max_limit: usize,
    increase: usize,
    backoff: f64,
    latency_threshold: Duration,
    grow_only_when_busy: bool,
}

impl AimdBuilder {
    /// The limit to start from (default 20), clamped to `[min, max]`.
    pub fn initial_limit(mut self, limit: usize) -> Self {
        self.initial_limit = limit;
        self
    }

    /// The lowest limit (default 1; at least 1).
    pub fn min_limit(mut self, limit: usize) -> Self {
        self.min_limit = limit.max(1);
        self
    }

    /// The highest limit (default 1000).
    pub fn max_limit(mut self, limit: usize) -> Self {
        self.max_limit = limit;
        self
    }

    /// Added per fast successful call (default 1).
    pub fn increase_by(mut self, step: usize) -> Self {
        self.increase = step;
        self
    }

    /// Factor applied on a failure or slow call (default 0.5), clamped to `[0.0, 1.0]`.
    pub fn backoff_ratio(mut self, ratio: f64) -> Self {
        self.backoff = if ratio.is_finite() {
            ratio.clamp(0.0, 1.0)
        } else {
            0.5
        };
        self
    }

    /// A call slower than this counts as a failure (default 5 s). Set it to a little
    /// under the call timeout, so the limit drops before calls start timing out.
    pub fn latency_threshold(mut self, threshold: Duration) -> Self {
        self.latency_threshold = threshold;
        self
    }

    /// Grow only when at least half of the limit was in use (default true).
    pub fn grow_only_when_busy(mut self, yes: bool) -> Self {
        self.grow_only_when_busy = yes;
        self
    }

    /// The algorithm.
    pub fn build(self) -> Aimd {
        let max_limit = self.max_limit.max(self.min_limit);
        Aimd {
            limit: self.initial_limit.clamp(self.min_limit, max_limit),
            min_limit: self.min_limit,
            max_limit,
            increase: self.increase,
            backoff: self.backoff,
            latency_threshold: self.latency_threshold,
            grow_only_when_busy: self.grow_only_when_busy,
            last_decrease: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn grows_by_step_when_busy_and_fast() {
        let mut a = Aimd::builder()
            .initial_limit(10)
            .increase_by(2)
            .max_limit(15)
            .build();
        let now = Instant::now();
        assert_eq!(a.update(Sample::new(now, ms(1), 10, false)), 12);
        assert_eq!(a.update(Sample::new(now, ms(1), 6, false)), 14);
        // Idle (in flight below half the limit): no growth.
        assert_eq!(a.update(Sample::new(now, ms(1), 6, false)), 14);
        // Never above max.
        assert_eq!(a.update(Sample::new(now, ms(1), 14, false)), 15);
        assert_eq!(a.update(Sample::new(now, ms(1), 15, false)), 15);
    }

    #[tokio::test(start_paused = true)]
    async fn grows_when_idle_if_guard_is_off() {
        let mut a = Aimd::builder()
            .initial_limit(10)
            .grow_only_when_busy(false)
            .build();
        assert_eq!(a.update(Sample::new(Instant::now(), ms(1), 1, false)), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn halves_on_failure_and_on_slow_calls_once_per_window() {
        let mut a = Aimd::builder()
            .initial_limit(40)
            .latency_threshold(ms(100))
            .build();
        let t0 = Instant::now();
        tokio::time::advance(ms(10)).await;
        // A failure halves...
        assert_eq!(a.update(Sample::new(t0, ms(10), 40, true)), 20);
        // ...and other calls that were already running when it happened do not halve again.
        assert_eq!(a.update(Sample::new(t0, ms(10), 40, true)), 20);
        // A call started after the decrease that is slower than the threshold halves.
        let t1 = Instant::now();
        tokio::time::advance(ms(101)).await;
        assert_eq!(a.update(Sample::new(t1, ms(101), 20, false)), 10);
        // Exactly at the threshold is still fine.
        let t2 = Instant::now();
        assert_eq!(a.update(Sample::new(t2, ms(100), 10, false)), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_ratio_and_min_limit() {
        let mut a = Aimd::builder()
            .initial_limit(10)
            .min_limit(4)
            .backoff_ratio(0.9)
            .build();
        let mut at = Instant::now();
        let mut fail = |a: &mut Aimd| {
            at += ms(1);
            a.update(Sample::new(at, Duration::ZERO, 10, true))
        };
        assert_eq!(fail(&mut a), 9);
        assert_eq!(fail(&mut a), 8);
        for _ in 0..20 {
            fail(&mut a);
        }
        assert_eq!(a.limit(), 4, "never below min");
    }

    #[test]
    fn builder_clamps() {
        let a = Aimd::builder()
            .min_limit(0)
            .max_limit(5)
            .initial_limit(50)
            .backoff_ratio(f64::NAN)
            .build();
        assert_eq!((a.limit(), a.min_limit, a.max_limit), (5, 1, 5));
        assert_eq!(a.backoff, 0.5);
        assert_eq!(Aimd::default().limit(), 20);
    }
}
