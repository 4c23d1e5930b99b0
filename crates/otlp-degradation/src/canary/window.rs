//! The calls of one target during one step: counts and a latency histogram.

use std::time::Duration;

use super::config::LatencyStatistic;

/// Sub-buckets per power of two: 16 gives about 6 % resolution, enough to tell a 1.5x
/// slowdown from noise, in under 8 KiB per window.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets for every `u64` nanosecond value.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Numbers about one target's calls in one window, as decisions report them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowStats {
    /// Calls recorded.
    pub calls: u64,
    /// Of those, failed calls.
    pub errors: u64,
    /// `errors / calls` (0 without calls).
    pub error_rate: f64,
    /// The configured latency statistic ([`LatencyStatistic`]), `None` without calls.
    pub latency: Option<Duration>,
    /// Mean latency, `None` without calls.
    pub mean_latency: Option<Duration>,
    /// Slowest call, `None` without calls.
    pub max_latency: Option<Duration>,
}

/// Log-linear latency histogram plus exact count, error count, sum and maximum.
#[derive(Clone)]
pub(crate) struct Window {
    calls: u64,
    errors: u64,
    sum_nanos: u128,
    max_nanos: u64,
    buckets: Box<[u64]>,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("calls", &self.calls)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

fn bucket_of(nanos: u64) -> usize {
    if nanos < SUB {
        return nanos as usize;
    }
    let exp = 63 - nanos.leading_zeros(); // >= SUB_BITS
    let sub = (nanos >> (exp - SUB_BITS)) & (SUB - 1);
    ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize
}

/// The smallest and largest nanosecond values of a bucket.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB {
        return (index, index);
    }
    let exp = index / SUB + u64::from(SUB_BITS) - 1;
    let sub = index % SUB;
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    let low = (1u64 << exp) + sub * width;
    (low, low + (width - 1))
}

impl Window {
    pub(crate) fn new() -> Window {
        Window {
            calls: 0,
            errors: 0,
            sum_nanos: 0,
            max_nanos: 0,
            buckets: vec![0; BUCKETS].into_boxed_slice(),
        }
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls
    }

    pub(crate) fn record(&mut self, success: bool, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.calls += 1;
        self.errors += u64::from(!success);
        self.sum_nanos += u128::from(nanos);
        self.max_nanos = self.max_nanos.max(nanos);
        self.buckets[bucket_of(nanos)] += 1;
    }

    pub(crate) fn reset(&mut self) {
        self.calls = 0;
        self.errors = 0;
        self.sum_nanos = 0;
        self.max_nanos = 0;
        self.buckets.fill(0);
    }

    fn quantile(&self, q: f64) -> Option<Duration> {
        if self.calls == 0 {
            return None;
        }
        // The rank-th smallest call (1-based, nearest-rank definition).
        let rank = ((q * self.calls as f64).ceil() as u64).clamp(1, self.calls);
        let mut seen = 0;
        for (index, &count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let (low, high) = bucket_range(index);
                // The bucket's middle, but never above the slowest call actually seen.
                let mid = low + (high - low) / 2;
                return Some(Duration::from_nanos(mid.min(self.max_nanos)));
            }
        }
        Some(Duration::from_nanos(self.max_nanos))
    }

    pub(crate) fn stats(&self, statistic: LatencyStatistic) -> WindowStats {
        if self.calls == 0 {
            return WindowStats::default();
        }
        let mean = Duration::from_nanos(
            u64::try_from(self.sum_nanos / u128::from(self.calls)).unwrap_or(u64::MAX),
        );
        WindowStats {
            calls: self.calls,
            errors: self.errors,
            error_rate: self.errors as f64 / self.calls as f64,
            latency: match statistic {
                LatencyStatistic::Mean => Some(mean),
                LatencyStatistic::Quantile(q) => self.quantile(q),
            },
            mean_latency: Some(mean),
            max_latency: Some(Duration::from_nanos(self.max_nanos)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for nanos in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let b = bucket_of(nanos);
            assert!(b < BUCKETS, "{nanos}");
            assert!(b >= last, "buckets must not decrease ({nanos})");
            last = b;
            let (low, high) = bucket_range(b);
            assert!(
                low <= nanos && nanos <= high,
                "{nanos} not in {low}..={high}"
            );
        }
        // Resolution: a bucket is at most 1/16 of its lower bound wide.
        for nanos in [1_000u64, 1_000_000, 1_000_000_000] {
            let (low, high) = bucket_range(bucket_of(nanos));
            assert!((high - low) * 16 <= low, "{low}..{high}");
        }
    }

    #[test]
    fn statistics() {
        let mut w = Window::new();
        assert_eq!(w.stats(LatencyStatistic::Mean), WindowStats::default());
        for ms in 1..=100u64 {
            w.record(ms % 10 != 0, Duration::from_millis(ms));
        }
        let s = w.stats(LatencyStatistic::Quantile(0.9));
        assert_eq!((s.calls, s.errors), (100, 10));
        assert!((s.error_rate - 0.1).abs() < 1e-12);
        let p90 = s.latency.unwrap().as_secs_f64() * 1000.0;
        assert!((85.0..=95.0).contains(&p90), "p90 {p90} ms");
        assert_eq!(s.mean_latency, Some(Duration::from_micros(50_500)));
        assert_eq!(s.max_latency, Some(Duration::from_millis(100)));
        let p100 = w.stats(LatencyStatistic::Quantile(1.0)).latency.unwrap();
        assert!(p100 <= Duration::from_millis(100) && p100 >= Duration::from_millis(94));
        w.reset();
        assert_eq!(w.calls(), 0);
    }
}
