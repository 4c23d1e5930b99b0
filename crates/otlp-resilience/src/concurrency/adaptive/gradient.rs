//! A latency-gradient limit in the manner of Netflix `Gradient2Limit`.

use super::{LimitAlgorithm, Sample};

/// Gradient (Netflix `Gradient2Limit`): compares each call's round-trip time with a
/// long-term average (an EWMA over `long_window` samples) and moves the limit by their
/// ratio:
///
/// ```text
/// gradient = clamp(tolerance * long_rtt / rtt, 0.5, 1.0)
/// target   = limit * gradient + queue_size
/// limit    = limit * (1 - smoothing) + target * smoothing     (then clamped to [min, max])
/// ```
///
/// While latency stays within `tolerance` times the baseline the gradient is 1 and the
/// limit grows by `queue_size * smoothing` per call (probing for capacity); when latency
/// rises above that, the gradient falls below 1 and the limit shrinks, by at most half per
/// step before smoothing. When latency returns to normal after a long overload (the
/// long-term average more than twice the current RTT), the average decays by 5% per call
/// so the limit recovers quickly instead of waiting for the EWMA.
///
/// Like Netflix's, calls that ran with less than half the limit in use do not move the
/// limit (the service is not the bottleneck). A failed call is a drop: its RTT is not
/// used (failures are often fast and would make latency look good), and the limit moves
/// towards half its value (a factor `1 - smoothing / 2` per failure).
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::concurrency::{Gradient, LimitAlgorithm, Sample};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let mut g = Gradient::builder().initial_limit(50).build();
/// let now = tokio::time::Instant::now();
/// for _ in 0..100 {
///     g.update(Sample::new(now, Duration::from_millis(10), 50, false));
/// }
/// let steady = g.limit();
/// for _ in 0..20 {
///     g.update(Sample::new(now, Duration::from_millis(40), steady, false));
/// }
/// assert!(g.limit() < steady);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Gradient {
    limit: f64,
    min_limit: usize,
    max_limit: usize,
    smoothing: f64,
    tolerance: f64,
    queue_size: f64,
    long_rtt: Ewma,
}

/// An exponentially weighted moving average with a warm-up: the first `warmup` samples
/// are averaged plainly so the first sample does not dominate.
#[derive(Debug, Clone)]
struct Ewma {
    value: f64,
    count: u32,
    warmup: u32,
    factor: f64,
}

impl Ewma {
    fn new(window: u32, warmup: u32) -> Ewma {
        Ewma {
            value: 0.0,
            count: 0,
            warmup,
            factor: 2.0 / (f64::from(window) + 1.0),
        }
    }

    fn add(&mut self, x: f64) -> f64 {
        if self.count < self.warmup {
            self.count += 1;
            self.value += (x - self.value) / f64::from(self.count);
        } else {
            self.value = self.value * (1.0 - self.factor) + x * self.factor;
        }
        self.value
    }
}

impl Gradient {
    /// Gradient with the defaults (see [`GradientBuilder`]).
    pub fn new() -> Gradient {
        Gradient::builder().build()
    }

    /// A builder for the knobs.
    pub fn builder() -> GradientBuilder {
        GradientBuilder {
            initial_limit: 20,
            min_limit: 1,
            max_limit: 1000,
            smoothing: 0.2,
            tolerance: 1.5,
            queue_size: 4,
            long_window: 600,
        }
    }

    /// The long-term RTT average, in nanoseconds (0 before the first sample).
    pub fn long_rtt_nanos(&self) -> f64 {
        self.long_rtt.value
    }

    fn clamp(&self, limit: f64) -> f64 {
        limit.clamp(self.min_limit as f64, self.max_limit as f64)
    }
}

impl Default for Gradient {
    fn default() -> Gradient {
        Gradient::new()
    }
}

impl LimitAlgorithm for Gradient {
    fn limit(&self) -> usize {
        self.limit as usize
    }

    fn update(&mut self, sample: Sample) -> usize {
        if sample.dropped {
            let target = self.limit * 0.5;
            self.limit = self.clamp(self.limit * (1.0 - self.smoothing) + target * self.smoothing);
            return self.limit();
        }
        let short = (sample.rtt.as_nanos() as f64).max(1.0);
        let mut long = self.long_rtt.add(short);
        if long / short > 2.0 {
            self.long_rtt.value *= 0.95;
            long = self.long_rtt.value;
        }
        if (sample.in_flight as f64) < self.limit / 2.0 {
            return self.limit();
        }
        let gradient = (self.tolerance * long / short).clamp(0.5, 1.0);
        let target = self.limit * gradient + self.queue_size;
        self.limit = self.clamp(self.limit * (1.0 - self.smoothing) + target * self.smoothing);
        self.limit()
    }
}

/// Builds a [`Gradient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct GradientBuilder {
    initial_limit: usize,
    min_limit: usize,
    max_limit: usize,
    smoothing: f64,
    tolerance: f64,
    queue_size: usize,
    long_window: u32,
}

impl GradientBuilder {
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

    /// How far each step moves towards the new target, in `(0, 1]` (default 0.2).
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = if smoothing.is_finite() {
            smoothing.clamp(0.01, 1.0)
        } else {
            0.2
        };
        self
    }

    /// How much slower than the long-term average a call may be before the limit
    /// shrinks (default 1.5, at least 1).
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = if tolerance.is_finite() {
            tolerance.max(1.0)
        } else {
            1.5
        };
        self
    }

    /// Calls allowed to queue beyond the no-queue estimate; the growth per step while
    /// latency is normal (default 4).
    pub fn queue_size(mut self, size: usize) -> Self {
        self.queue_size = size;
        self
    }

    /// Samples in the long-term RTT average (default 600, at least 1).
    pub fn long_window(mut self, samples: u32) -> Self {
        self.long_window = samples.max(1);
        self
    }

    /// The algorithm.
    pub fn build(self) -> Gradient {
        let max_limit = self.max_limit.max(self.min_limit);
        Gradient {
            limit: self.initial_limit.clamp(self.min_limit, max_limit) as f64,
            min_limit: self.min_limit,
            max_limit,
            smoothing: self.smoothing,
            tolerance: self.tolerance,
            queue_size: self.queue_size as f64,
            long_rtt: Ewma::new(self.long_window, 10.min(self.long_window)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::Instant;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `n` busy samples (in flight = the limit) of `rtt`; returns the limits seen.
    fn feed(g: &mut Gradient, n: usize, rtt: Duration) -> Vec<usize> {
        let now = Instant::now();
        (0..n)
            .map(|_| {
                let in_flight = g.limit();
                g.update(Sample::new(now, rtt, in_flight, false))
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn grows_under_steady_latency_up_to_max() {
        let mut g = Gradient::builder().initial_limit(10).max_limit(30).build();
        let seen = feed(&mut g, 100, ms(10));
        assert!(
            seen.windows(2).all(|w| w[1] >= w[0]),
            "monotonic growth {seen:?}"
        );
        assert_eq!(g.limit(), 30, "never above max");
        // queue_size 4 * smoothing 0.2 = 0.8 per step.
        let mut g = Gradient::builder().initial_limit(10).build();
        feed(&mut g, 5, ms(10));
        assert_eq!(g.limit(), 14);
    }

    #[tokio::test(start_paused = true)]
    async fn shrinks_when_latency_rises_and_recovers_when_it_falls() {
        let mut g = Gradient::builder().initial_limit(50).max_limit(200).build();
        feed(&mut g, 50, ms(10));
        let before = g.limit();
        let during = feed(&mut g, 30, ms(50));
        assert!(
            *during.last().expect("samples") < before / 2,
            "{before} -> {during:?}"
        );
        assert!(
            during.windows(2).all(|w| w[1] <= w[0]),
            "monotonic shrink {during:?}"
        );
        let low = g.limit();
        let after = feed(&mut g, 30, ms(10));
        assert!(
            *after.last().expect("samples") > low + 10,
            "{low} -> {after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn within_tolerance_latency_does_not_shrink() {
        let mut g = Gradient::builder().initial_limit(50).tolerance(2.0).build();
        feed(&mut g, 50, ms(10));
        let before = g.limit();
        // 1.8x the baseline is within a tolerance of 2.
        feed(&mut g, 10, ms(18));
        assert!(g.limit() >= before, "{before} -> {}", g.limit());
        // With the default tolerance 1.5 it shrinks.
        let mut g = Gradient::builder().initial_limit(50).build();
        feed(&mut g, 50, ms(10));
        let before = g.limit();
        feed(&mut g, 10, ms(18));
        assert!(g.limit() < before, "{before} -> {}", g.limit());
    }

    #[tokio::test(start_paused = true)]
    async fn never_below_min_and_failures_shrink() {
        let mut g = Gradient::builder()
            .initial_limit(20)
            .min_limit(8)
            .smoothing(1.0)
            .build();
        feed(&mut g, 20, ms(10));
        feed(&mut g, 50, ms(1000));
        assert_eq!(g.limit(), 8);
        let mut g = Gradient::builder().initial_limit(100).build();
        let now = Instant::now();
        // smoothing 0.2: each failure moves 10% down.
        assert_eq!(g.update(Sample::new(now, ms(1), 100, true)), 90);
        assert_eq!(g.update(Sample::new(now, ms(1), 100, true)), 81);
        assert_eq!(g.long_rtt_nanos(), 0.0, "failed calls' RTT is not used");
    }

    #[tokio::test(start_paused = true)]
    async fn app_limited_calls_do_not_move_the_limit() {
        let mut g = Gradient::builder().initial_limit(40).build();
        let now = Instant::now();
        for _ in 0..20 {
            assert_eq!(g.update(Sample::new(now, ms(500), 5, false)), 40);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queue_size_and_long_window_knobs() {
        let mut g = Gradient::builder()
            .initial_limit(10)
            .queue_size(10)
            .smoothing(0.5)
            .build();
        feed(&mut g, 1, ms(10));
        assert_eq!(g.limit(), 15);

        // A short window adapts the baseline quickly: after latency doubles, the limit
        // stops shrinking sooner than with the default window.
        let run = |window: u32| {
            let mut g = Gradient::builder()
                .initial_limit(100)
                .long_window(window)
                .build();
            feed(&mut g, 20, ms(10));
            feed(&mut g, 40, ms(20));
            g.limit()
        };
        assert!(run(5) > run(600), "{} vs {}", run(5), run(600));
    }

    #[test]
    fn ewma_warms_up_with_a_plain_average() {
        let mut e = Ewma::new(600, 10);
        assert_eq!(e.add(10.0), 10.0);
        assert_eq!(e.add(20.0), 15.0);
        let mut e = Ewma::new(1, 0);
        assert_eq!(e.add(7.0), 7.0);
        assert_eq!(e.add(9.0), 9.0);
        let g = Gradient::builder()
            .smoothing(f64::NAN)
            .tolerance(0.5)
            .build();
        assert_eq!((g.smoothing, g.tolerance), (0.2, 1.0));
        assert_eq!(Gradient::default().limit(), 20);
    }
}
