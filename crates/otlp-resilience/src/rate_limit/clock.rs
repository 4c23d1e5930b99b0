//! A governor [`Clock`] that reads `tokio::time`, so paused-time tests drive the limiter.

use governor::clock::{Clock, ReasonablyRealtime};
use governor::nanos::Nanos;
use tokio::time::Instant;

use super::gcra::duration_nanos;

/// A [`governor::clock::Clock`] over [`tokio::time::Instant`]: nanoseconds since the clock
/// was created.
///
/// It follows `tokio::time::pause` and `advance`, so limiters built on it can be tested
/// without sleeping on real time. Outside a paused runtime it costs what
/// `std::time::Instant::now()` costs (one `clock_gettime` through the vDSO on Linux, plus
/// one relaxed atomic load when tokio's `test-util` feature is compiled in); the bench
/// `rate_limit/clock` compares it with governor's clocks. It is the default clock of every
/// limiter in this module.
///
/// ```
/// use governor::clock::Clock;
/// use otlp_resilience::rate_limit::TokioClock;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let clock = TokioClock::default();
/// let before = clock.now();
/// tokio::time::advance(std::time::Duration::from_millis(5)).await;
/// assert_eq!(clock.now().as_u64() - before.as_u64(), 5_000_000);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose zero is now.
    pub fn new() -> TokioClock {
        TokioClock {
            origin: Instant::now(),
        }
    }

    /// A clock whose zero is `origin`.
    pub fn with_origin(origin: Instant) -> TokioClock {
        TokioClock { origin }
    }
}

impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock::new()
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        Nanos::new(duration_nanos(
            Instant::now().saturating_duration_since(self.origin),
        ))
    }
}

impl ReasonablyRealtime for TokioClock {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_time() {
        let clock = TokioClock::new();
        assert_eq!(clock.now().as_u64(), 0);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(clock.now().as_u64(), 2_000_000_000);
        let later = TokioClock::with_origin(Instant::now());
        assert_eq!(later.now().as_u64(), 0);
    }
}
