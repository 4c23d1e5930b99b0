//! Consistent probabilistic sampling by trace id.
//!
//! [`TraceIdRatioSampler`] makes the decision of the OpenTelemetry `TraceIdRatioBased`
//! sampler as the Rust SDK (`opentelemetry_sdk` 0.33) defines it, and the Go SDK computes
//! it the same way: read the last 8 bytes of the 16-byte trace id as a big-endian `u64`,
//! shift it right by one bit, and keep the trace when that number is below
//! `ratio * 2^63`. A ratio of 1 or more keeps everything, 0 or less (or NaN) nothing.
//!
//! The decision is a pure function of the trace id and the ratio, so every span of a
//! trace, every log record carrying that trace id, and every gateway instance behind a
//! load balancer decide the same without talking to each other; and a trace an SDK
//! sampled at ratio `r` survives a gateway sampling at any ratio `>= r`, because the
//! kept ids form nested ranges.
//!
//! Items without a usable trace id are sampled with
//! [`TraceIdRatioSampler::should_keep_random`] on a stable 64-bit hash of their content
//! (see `crate::policy`).
//!
//! ```
//! use otlp_degradation::sampler::TraceIdRatioSampler;
//!
//! let sampler = TraceIdRatioSampler::new(0.25);
//! // The decision reads bytes 8..16: 0x3f.. >> 1 is below 2^63 / 4, 0x80.. >> 1 is not.
//! let low = [0, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
//! let high = [0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0];
//! assert!(sampler.should_keep(&low));
//! assert!(!sampler.should_keep(&high));
//! ```

/// `2^63` as a float: the SDK scales the ratio by this before truncating to an integer.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// Keeps a fraction `ratio` of traces, chosen by trace id, exactly as the OpenTelemetry
/// `TraceIdRatioBased` sampler of the Rust SDK does.
///
/// The bound is computed once in [`TraceIdRatioSampler::new`]; a decision is one load,
/// one shift and one comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceIdRatioSampler {
    ratio: f64,
    /// Keep when `low64 >> 1 < bound`. `u64::MAX` keeps every id (the shifted value is
    /// at most `2^63 - 1`), `0` keeps none.
    bound: u64,
}

impl TraceIdRatioSampler {
    /// A sampler that keeps everything.
    pub const KEEP_ALL: TraceIdRatioSampler = TraceIdRatioSampler {
        ratio: 1.0,
        bound: u64::MAX,
    };

    /// A sampler that keeps nothing.
    pub const KEEP_NONE: TraceIdRatioSampler = TraceIdRatioSampler {
        ratio: 0.0,
        bound: 0,
    };

    /// A sampler keeping the fraction `ratio` of trace ids: `>= 1.0` keeps all, `<= 0.0`
    /// or NaN keeps none (the SDK's treatment of out-of-range ratios).
    pub fn new(ratio: f64) -> TraceIdRatioSampler {
        if ratio >= 1.0 {
            return TraceIdRatioSampler {
                ratio,
                bound: u64::MAX,
            };
        }
        // Same arithmetic as the SDK: `f64::max` turns NaN into 0, multiplying by a power
        // of two is exact, and `as u64` truncates toward zero. Any other rounding would
        // disagree with the SDK for ids at the bound.
        let bound = (ratio.max(0.0) * TWO_POW_63) as u64;
        TraceIdRatioSampler { ratio, bound }
    }

    /// The ratio this sampler was built with.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// The precomputed bound: ids whose shifted low half is below it are kept.
    pub fn bound(&self) -> u64 {
        self.bound
    }

    /// Whether every id is kept (ratio `>= 1`).
    pub fn keeps_all(&self) -> bool {
        self.bound == u64::MAX
    }

    /// Whether no id is kept (ratio `<= 0` or NaN).
    pub fn keeps_none(&self) -> bool {
        self.bound == 0
    }

    /// The decision for a 16-byte trace id.
    #[inline]
    pub fn should_keep(&self, trace_id: &[u8; 16]) -> bool {
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        self.should_keep_random(u64::from_be_bytes(low))
    }

    /// The decision for a trace id as OTLP carries it (`bytes`); `None` when it is not
    /// 16 bytes long (absent or malformed), so the caller can fall back to another rule.
    #[inline]
    pub fn should_keep_id(&self, trace_id: &[u8]) -> Option<bool> {
        let id: &[u8; 16] = trace_id.try_into().ok()?;
        Some(self.should_keep(id))
    }

    /// The decision for a uniformly distributed 64-bit value (the low half of a trace
    /// id, or a well-mixed hash): kept with probability `ratio`.
    #[inline]
    pub fn should_keep_random(&self, value: u64) -> bool {
        (value >> 1) < self.bound
    }
}

impl Default for TraceIdRatioSampler {
    /// Keeps everything.
    fn default() -> TraceIdRatioSampler {
        TraceIdRatioSampler::KEEP_ALL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(low: u64) -> [u8; 16] {
        let mut id = [0xabu8; 16];
        id[8..].copy_from_slice(&low.to_be_bytes());
        id
    }

    #[test]
    fn bounds() {
        assert_eq!(TraceIdRatioSampler::new(1.0).bound(), u64::MAX);
        assert_eq!(TraceIdRatioSampler::new(7.0).bound(), u64::MAX);
        assert_eq!(TraceIdRatioSampler::new(0.5).bound(), 1 << 62);
        assert_eq!(TraceIdRatioSampler::new(0.0).bound(), 0);
        assert_eq!(TraceIdRatioSampler::new(-1.0).bound(), 0);
        assert_eq!(TraceIdRatioSampler::new(f64::NAN).bound(), 0);
        assert!(TraceIdRatioSampler::new(f64::NAN).keeps_none());
        assert!(TraceIdRatioSampler::new(f64::INFINITY).keeps_all());
        assert_eq!(
            TraceIdRatioSampler::default(),
            TraceIdRatioSampler::KEEP_ALL
        );
    }

    #[test]
    fn decision_at_the_bound() {
        let half = TraceIdRatioSampler::new(0.5);
        // (2^63 - 2) >> 1 = 2^62 - 1 < 2^62: kept; 2^63 >> 1 = 2^62: dropped.
        assert!(half.should_keep(&id((1 << 63) - 2)));
        assert!(half.should_keep(&id((1 << 63) - 1)));
        assert!(!half.should_keep(&id(1 << 63)));
        assert!(TraceIdRatioSampler::KEEP_ALL.should_keep(&id(u64::MAX)));
        assert!(!TraceIdRatioSampler::KEEP_NONE.should_keep(&id(0)));
        assert_eq!(half.should_keep_id(&[1, 2, 3]), None);
        assert_eq!(half.should_keep_id(&id(0)), Some(true));
    }
}
