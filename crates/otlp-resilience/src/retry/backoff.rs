//! Exponential backoff with full jitter.
//!
//! The delay before retry `n` (the first retry is `n = 1`) is drawn uniformly from
//! `[0, min(max, initial * multiplier^(n-1))]`: "full jitter" in the terms of the AWS
//! architecture note on backoff. Full jitter spreads the retries of many clients that
//! failed together over the whole window, which is what breaks up a retry storm; the
//! price is that a single retry may come quickly.

use std::time::Duration;

/// Exponential backoff with full jitter.
///
/// ```
/// use std::time::Duration;
/// use otlp_resilience::retry::Backoff;
///
/// let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 2.0);
/// assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(400));
/// assert_eq!(backoff.ceiling(10), Duration::from_secs(1)); // capped
///
/// let mut rng = fastrand::Rng::with_seed(7);
/// let delay = backoff.delay(2, &mut rng);
/// assert!(delay <= Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
}

impl Default for Backoff {
    /// 1 s initial, 5 s cap, doubling: the OpenTelemetry SDKs' exporter retry defaults
    /// (initial 1 s, max 5 s), with the doubling of classic exponential backoff.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            multiplier: 2.0,
        }
    }
}

impl Backoff {
    /// A backoff starting at `initial`, growing by `multiplier` per retry, capped at `max`.
    ///
    /// A `multiplier` below 1 (or NaN) is taken as 1 (constant backoff); a `max` below
    /// `initial` caps every delay at `max`.
    pub fn new(initial: Duration, max: Duration, multiplier: f64) -> Backoff {
        let multiplier = if multiplier.is_nan() || multiplier < 1.0 {
            1.0
        } else {
            multiplier
        };
        Backoff {
            initial,
            max,
            multiplier,
        }
    }

    /// The initial ceiling (for the first retry).
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap on every delay.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The growth factor per retry.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The upper bound of the jittered delay before retry number `retry` (1-based):
    /// `min(max, initial * multiplier^(retry - 1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1);
        let exponent = i32::try_from(exponent).unwrap_or(i32::MAX);
        let grown = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        let max = self.max.as_secs_f64();
        if !grown.is_finite() || grown >= max {
            self.max
        } else {
            // `grown` is finite and below `max`, so the conversion cannot fail.
            Duration::try_from_secs_f64(grown)
                .unwrap_or(self.max)
                .min(self.max)
        }
    }

    /// The delay before retry number `retry` (1-based): uniform in `[0, ceiling(retry)]`,
    /// with nanosecond resolution.
    pub fn delay(&self, retry: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.u64(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_grows_and_caps() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100), 2.0);
        let ceilings: Vec<u128> = (1..=6).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, vec![10, 20, 40, 80, 100, 100]);
        assert_eq!(b.ceiling(0), Duration::from_millis(10));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(100));
    }

    #[test]
    fn odd_parameters_are_tamed() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10), 0.5);
        assert_eq!(b.multiplier(), 1.0);
        assert_eq!(b.ceiling(5), Duration::from_secs(1));
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10), f64::NAN);
        assert_eq!(b.ceiling(5), Duration::from_secs(1));
        let b = Backoff::new(Duration::from_secs(5), Duration::from_secs(1), 2.0);
        assert_eq!(b.ceiling(1), Duration::from_secs(1));
        let b = Backoff::new(Duration::MAX, Duration::MAX, f64::INFINITY);
        assert_eq!(b.ceiling(3), Duration::MAX);
        let mut rng = fastrand::Rng::with_seed(1);
        assert!(b.delay(3, &mut rng) <= Duration::MAX);
        let zero = Backoff::new(Duration::ZERO, Duration::ZERO, 2.0);
        assert_eq!(zero.delay(4, &mut rng), Duration::ZERO);
    }

    #[test]
    fn full_jitter_covers_the_whole_window() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 2.0);
        let mut rng = fastrand::Rng::with_seed(42);
        for retry in 1..=6 {
            let ceiling = b.ceiling(retry);
            let draws: Vec<Duration> = (0..2000).map(|_| b.delay(retry, &mut rng)).collect();
            assert!(draws.iter().all(|d| *d <= ceiling), "retry {retry}");
            // Uniform over [0, ceiling]: both the bottom and the top tenth are hit.
            assert!(draws.iter().any(|d| *d < ceiling / 10), "retry {retry}");
            assert!(draws.iter().any(|d| *d > ceiling * 9 / 10), "retry {retry}");
            let mean = draws.iter().sum::<Duration>() / 2000;
            assert!(
                mean > ceiling * 4 / 10 && mean < ceiling * 6 / 10,
                "mean {mean:?}"
            );
        }
    }

    #[test]
    fn same_seed_same_delays() {
        let b = Backoff::default();
        let mut a = fastrand::Rng::with_seed(9);
        let mut c = fastrand::Rng::with_seed(9);
        for n in 1..10 {
            assert_eq!(b.delay(n, &mut a), b.delay(n, &mut c));
        }
    }

    proptest::proptest! {
        #[test]
        fn delay_never_exceeds_the_ceiling_nor_the_cap(
            initial_ms in 0u64..10_000,
            max_ms in 0u64..100_000,
            multiplier in 0.0f64..10.0,
            retry in 0u32..200,
            seed: u64,
        ) {
            let b = Backoff::new(
                Duration::from_millis(initial_ms),
                Duration::from_millis(max_ms),
                multiplier,
            );
            let mut rng = fastrand::Rng::with_seed(seed);
            let ceiling = b.ceiling(retry);
            proptest::prop_assert!(ceiling <= b.max());
            proptest::prop_assert!(b.delay(retry, &mut rng) <= ceiling);
            // The ceiling never shrinks from one retry to the next.
            proptest::prop_assert!(b.ceiling(retry + 1) >= ceiling);
        }
    }
}
