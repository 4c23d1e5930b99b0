//! A small log-linear latency histogram (16 sub-buckets per power of two, microseconds):
//! quantiles within 1/16 of the true value, fixed memory, no dependency for a summary line.

use std::time::Duration;

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Enough for 2^40 µs (12 days).
const BUCKETS: usize = ((40 - SUB_BITS + 1) as usize + 1) * SUB as usize;

/// Latencies recorded with bounded relative error; merge-able.
///
/// ```
/// use std::time::Duration;
/// use otlp_gateway::loadgen::LatencyHistogram;
///
/// let mut h = LatencyHistogram::new();
/// for ms in 1..=100 {
///     h.record(Duration::from_millis(ms));
/// }
/// let p50 = h.quantile(0.5).as_secs_f64() * 1e3;
/// assert!((47.0..=54.0).contains(&p50), "{p50}");
/// ```
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max: Duration,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

fn index(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros(); // >= SUB_BITS
    let sub = (micros >> (exp - SUB_BITS)) & (SUB - 1);
    let i = ((exp - SUB_BITS + 1) as u64 * SUB + sub) as usize;
    i.min(BUCKETS - 1)
}

/// The upper bound (exclusive) of bucket `i`, in microseconds.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i + 1;
    }
    let exp = i / SUB + SUB_BITS as u64 - 1;
    let sub = i % SUB;
    (SUB + sub + 1) << (exp - SUB_BITS as u64)
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: Duration::ZERO,
        }
    }

    /// Record one latency.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(latency);
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The largest latency recorded.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The latency at quantile `q` (0.0 to 1.0): the upper bound of its bucket, capped at
    /// the maximum seen. Zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_micros(upper(i)).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_contain_their_values() {
        for v in [0u64, 1, 15, 16, 17, 31, 32, 100, 1000, 12_345, 1 << 30] {
            let i = index(v);
            assert!(v < upper(i), "{v} bucket {i} upper {}", upper(i));
            if i > 0 {
                assert!(v >= upper(i - 1), "{v} bucket {i} lower {}", upper(i - 1));
            }
        }
    }

    #[test]
    fn quantiles_are_within_a_sixteenth() {
        let mut h = LatencyHistogram::new();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        for (q, want) in [(0.5, 5_000.0), (0.99, 9_900.0)] {
            let got = h.quantile(q).as_micros() as f64;
            assert!(
                (got - want).abs() / want <= 1.0 / 16.0,
                "q{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(LatencyHistogram::new().quantile(0.5), Duration::ZERO);
    }
}
