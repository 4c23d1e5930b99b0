//! Where the memory limiter's thresholds sit, and how often it looks.

use std::fmt;
use std::time::Duration;

use crate::resources::{LimitSource, ResourceError};

/// A threshold: a fixed number of bytes, or a share of the memory limit (the cgroup v2
/// `memory.max`, or the host's memory when no cgroup limit applies).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// This many bytes of used memory.
    Bytes(u64),
    /// This share of the memory limit, in `(0, 1]`.
    Share(f64),
}

impl Threshold {
    /// The threshold in bytes against a limit of `limit_bytes`.
    pub fn resolve(self, limit_bytes: u64) -> u64 {
        match self {
            Threshold::Bytes(bytes) => bytes,
            Threshold::Share(share) => (share * limit_bytes as f64) as u64,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Threshold::Bytes(bytes) => write!(f, "{bytes} bytes"),
            Threshold::Share(share) => write!(f, "{:.1} % of the memory limit", share * 100.0),
        }
    }
}

/// Configuration of a [`MemoryLimiter`](super::MemoryLimiter).
///
/// How the thresholds relate to the limit the kernel enforces: the OOM killer acts when
/// the cgroup's memory reaches `memory.max`. Between *soft* and *hard* the limiter stops
/// taking new data, so memory only grows by what is already in flight; between *hard*
/// and the limit it also makes the queue drop its lowest-priority data. The room above
/// hard has to absorb what no admission check sees in time: memory allocated while
/// decoding requests already admitted, allocator overhead, and growth during one check
/// interval. That is why the defaults are 80 % and 90 %, not 95 % and 99 %.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimiterConfig {
    /// Above this, new data is refused with a retryable throttle (HTTP 429 /
    /// RESOURCE_EXHAUSTED with `RetryInfo`). Default 80 % of the limit.
    pub soft: Threshold,
    /// Above this, the [`Shed`](super::Shed) hooks drop queued work, lowest priority first,
    /// and new data is refused as unavailable (HTTP 503 / UNAVAILABLE). Default 90 % of
    /// the limit. Must be above `soft` and at most the limit.
    pub hard: Threshold,
    /// How often memory is read. Default 1 s: reading `/proc` and the cgroup files costs
    /// tens of microseconds, and data arriving between two readings is counted by
    /// admission anyway, so reading faster buys little.
    pub check_interval: Duration,
    /// The retry delay announced above soft. Default 1 s: a new reading comes every check
    /// interval, so an earlier retry would meet the same answer, while OTLP clients back
    /// off exponentially from this hint on their own, so a longer one would only leave the
    /// gateway idle after memory has recovered.
    pub retry_after: Duration,
    /// The retry delay announced above hard. Default 5 s: getting back under the
    /// threshold takes shedding and the allocator returning pages, several readings; each
    /// early retry costs memory to receive and decode only to be refused again.
    pub hard_retry_after: Duration,
}

impl Default for MemoryLimiterConfig {
    fn default() -> MemoryLimiterConfig {
        MemoryLimiterConfig {
            soft: Threshold::Share(0.8),
            hard: Threshold::Share(0.9),
            check_interval: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
            hard_retry_after: Duration::from_secs(5),
        }
    }
}

/// Why a [`MemoryLimiter`](super::MemoryLimiter) could not be built. Messages name the
/// configuration field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryLimiterError {
    /// A share outside `(0, 1]`.
    #[error(
        "memory_limiter.{field} = {value} is not a share in (0, 1]; write 80 % as 0.8, or give bytes"
    )]
    ShareOutOfRange {
        /// `soft` or `hard`.
        field: &'static str,
        /// The value.
        value: f64,
    },
    /// A threshold of zero bytes.
    #[error("memory_limiter.{field} is 0 bytes; give a positive byte count or a share such as 0.8")]
    ZeroBytes {
        /// `soft` or `hard`.
        field: &'static str,
    },
    /// Soft is not below hard (after resolving shares against the current limit).
    #[error(
        "memory_limiter.soft ({soft}, {soft_bytes} bytes) must be below memory_limiter.hard ({hard}, {hard_bytes} bytes); lower soft or raise hard"
    )]
    SoftNotBelowHard {
        /// The soft threshold as configured.
        soft: Threshold,
        /// It in bytes.
        soft_bytes: u64,
        /// The hard threshold as configured.
        hard: Threshold,
        /// It in bytes.
        hard_bytes: u64,
    },
    /// Hard is above the memory limit: the process would be killed before the limiter
    /// acts.
    #[error(
        "memory_limiter.hard ({hard_bytes} bytes) is above the {} memory limit of {limit_bytes} bytes, so the process would be killed before shedding starts; lower it or give a share such as 0.9",
        match limit_source { LimitSource::Cgroup => "cgroup", LimitSource::Host => "host" }
    )]
    HardAboveLimit {
        /// Hard in bytes.
        hard_bytes: u64,
        /// The limit.
        limit_bytes: u64,
        /// Where the limit comes from.
        limit_source: LimitSource,
    },
    /// `check_interval` is zero.
    #[error("memory_limiter.check_interval is 0; give a period such as 1s")]
    ZeroCheckInterval,
    /// Memory use could not be read at start.
    #[error("memory_limiter: cannot read memory use: {0}")]
    Reading(#[from] ResourceError),
}

impl MemoryLimiterConfig {
    /// Check what can be checked without a reading: shares in `(0, 1]`, byte counts
    /// positive, soft below hard when both are of the same kind, a non-zero interval.
    /// [`MemoryLimiter::new`](super::MemoryLimiter::new) also checks soft < hard <= limit
    /// against the first reading.
    ///
    /// # Errors
    ///
    /// The first problem found.
    pub fn validate(&self) -> Result<(), MemoryLimiterError> {
        for (field, threshold) in [("soft", self.soft), ("hard", self.hard)] {
            match threshold {
                Threshold::Share(value) if !(value > 0.0 && value <= 1.0) => {
                    return Err(MemoryLimiterError::ShareOutOfRange { field, value });
                }
                Threshold::Bytes(0) => return Err(MemoryLimiterError::ZeroBytes { field }),
                _ => {}
            }
        }
        let not_below = match (self.soft, self.hard) {
            (Threshold::Share(s), Threshold::Share(h)) => s >= h,
            (Threshold::Bytes(s), Threshold::Bytes(h)) => s >= h,
            _ => false,
        };
        if not_below {
            // Any positive limit shows the order; 1 GiB gives readable byte counts.
            return Err(self.order_error(1 << 30));
        }
        if self.check_interval.is_zero() {
            return Err(MemoryLimiterError::ZeroCheckInterval);
        }
        Ok(())
    }

    /// Soft and hard in bytes against `limit_bytes`, checked for order and for hard not
    /// exceeding the limit.
    pub(crate) fn resolve(
        &self,
        limit_bytes: u64,
        source: LimitSource,
    ) -> Result<(u64, u64), MemoryLimiterError> {
        let soft = self.soft.resolve(limit_bytes);
        let hard = self.hard.resolve(limit_bytes);
        if soft >= hard {
            return Err(self.order_error(limit_bytes));
        }
        if hard > limit_bytes {
            return Err(MemoryLimiterError::HardAboveLimit {
                hard_bytes: hard,
                limit_bytes,
                limit_source: source,
            });
        }
        Ok((soft, hard))
    }

    fn order_error(&self, limit_bytes: u64) -> MemoryLimiterError {
        MemoryLimiterError::SoftNotBelowHard {
            soft: self.soft,
            soft_bytes: self.soft.resolve(limit_bytes),
            hard: self.hard,
            hard_bytes: self.hard.resolve(limit_bytes),
        }
    }
}
