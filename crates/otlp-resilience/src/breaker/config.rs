//! Configuration of a [`CircuitBreaker`](super::CircuitBreaker), checked when built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::metrics::Meter;

use super::error::ConfigError;
use super::event::BreakerEvent;
use super::name::BreakerName;
use super::state::MAX_PROBES;
use super::window::MAX_BUCKETS;

/// Which calls the breaker computes its failure and slow-call rates over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The latest `calls` calls (between `calls` and `calls + calls / buckets` of them:
    /// the window moves one bucket at a time).
    Count {
        /// How many calls the window holds.
        calls: u32,
        /// How many steps the window moves in (more buckets: finer, slower to read).
        buckets: u16,
    },
    /// The calls of the last `duration` (between `duration - duration / buckets` and
    /// `duration` of history). Recording a call reads the clock once.
    Time {
        /// How much history the window holds.
        duration: Duration,
        /// How many steps the window moves in.
        buckets: u16,
    },
}

impl SlidingWindow {
    /// The latest `calls` calls, in 10 buckets.
    pub const fn count(calls: u32) -> SlidingWindow {
        SlidingWindow::Count { calls, buckets: 10 }
    }

    /// The calls of the last `duration`, in 10 buckets.
    pub const fn time(duration: Duration) -> SlidingWindow {
        SlidingWindow::Time {
            duration,
            buckets: 10,
        }
    }

    /// The same window in `buckets` buckets (1 to 1024).
    pub const fn with_buckets(self, buckets: u16) -> SlidingWindow {
        match self {
            SlidingWindow::Count { calls, .. } => SlidingWindow::Count { calls, buckets },
            SlidingWindow::Time { duration, .. } => SlidingWindow::Time { duration, buckets },
        }
    }
}

/// Called with every state change, on the thread that made it.
pub type EventCallback = Arc<dyn Fn(&BreakerEvent) + Send + Sync>;

/// The settings of a [`CircuitBreaker`](super::CircuitBreaker). Build with
/// [`CircuitBreakerConfig::builder`]; [`Default`] gives the defaults listed there.
#[derive(Clone)]
pub struct CircuitBreakerConfig {
    pub(crate) name: BreakerName,
    pub(crate) failure_rate_threshold: f64,
    pub(crate) slow_call_rate_threshold: f64,
    pub(crate) slow_call_duration: Option<Duration>,
    pub(crate) window: SlidingWindow,
    pub(crate) minimum_calls: u32,
    pub(crate) wait_in_open: Duration,
    pub(crate) wait_multiplier: f64,
    pub(crate) max_wait_in_open: Duration,
    pub(crate) permitted_calls_in_half_open: u32,
    pub(crate) automatic_half_open: bool,
    pub(crate) event_capacity: usize,
    pub(crate) on_event: Option<EventCallback>,
    pub(crate) meter: Option<Meter>,
}

impl fmt::Debug for CircuitBreakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerConfig")
            .field("name", &self.name)
            .field("failure_rate_threshold", &self.failure_rate_threshold)
            .field("slow_call_rate_threshold", &self.slow_call_rate_threshold)
            .field("slow_call_duration", &self.slow_call_duration)
            .field("window", &self.window)
            .field("minimum_calls", &self.minimum_calls)
            .field("wait_in_open", &self.wait_in_open)
            .field("wait_multiplier", &self.wait_multiplier)
            .field("max_wait_in_open", &self.max_wait_in_open)
            .field(
                "permitted_calls_in_half_open",
                &self.permitted_calls_in_half_open,
            )
            .field("automatic_half_open", &self.automatic_half_open)
            .field("event_capacity", &self.event_capacity)
            .field(
                "on_event",
                &self.on_event.as_ref().map(|_| "Fn(&BreakerEvent)"),
            )
            .field("meter", &self.meter.as_ref().map(|_| "Meter"))
            .finish()
    }
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        CircuitBreakerConfig {
            name: BreakerName::from("circuit-breaker"),
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: None,
            window: SlidingWindow::count(100),
            minimum_calls: 20,
            wait_in_open: Duration::from_secs(30),
            wait_multiplier: 1.0,
            max_wait_in_open: Duration::from_secs(30),
            permitted_calls_in_half_open: 5,
            automatic_half_open: false,
            event_capacity: 64,
            on_event: None,
            meter: None,
        }
    }
}

impl CircuitBreakerConfig {
    /// Starts from the defaults:
    ///
    /// | knob | default | why |
    /// |---|---|---|
    /// | `name` | `"circuit-breaker"` | name each breaker after its upstream |
    /// | `failure_rate_threshold` | 50 % | an upstream failing half its calls is down for practical purposes |
    /// | `slow_call_duration` | off | slow-call detection reads the clock twice per call; turn it on with a threshold above the upstream's normal p99 |
    /// | `slow_call_rate_threshold` | 100 % | with detection on, opens only when every call in the window was slow |
    /// | `sliding_window` | last 100 calls, 10 buckets | a count window reacts as fast at low traffic as at high traffic |
    /// | `minimum_calls` | 20 | a handful of errors at low traffic must not open the breaker |
    /// | `wait_in_open` | 30 s | within OTLP exporters' usual retry horizon (minutes) |
    /// | `wait_multiplier` | 1.0 (no growth) | growth is opt-in: it delays recovery detection |
    /// | `max_wait_in_open` | 30 s (set above `wait_in_open` to let waits grow) | |
    /// | `permitted_calls_in_half_open` | 5 | enough to tell a recovered upstream from a lucky call, few enough to spare a sick one |
    /// | `automatic_half_open` | off | on: a timer task moves an open breaker to half-open when the wait is over and rejections skip the clock read (about 2.5x cheaper); off by default because the transition then waits for the task to run (see [`automatic_half_open`](CircuitBreakerConfigBuilder::automatic_half_open)) |
    /// | `event_capacity` | 64 | broadcast buffer per subscriber; a slow subscriber loses the oldest events |
    /// | `meter` | `global::meter("otlp-resilience")` | a no-op until an SDK is installed |
    pub fn builder() -> CircuitBreakerConfigBuilder {
        CircuitBreakerConfigBuilder {
            config: CircuitBreakerConfig::default(),
        }
    }

    /// The breaker's name (used in events, errors, logs and metrics).
    pub fn name(&self) -> &BreakerName {
        &self.name
    }

    /// The sliding window.
    pub fn sliding_window(&self) -> SlidingWindow {
        self.window
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ] {
            if !(value > 0.0 && value <= 100.0) {
                return Err(ConfigError::Threshold { key, value });
            }
        }
        if self.slow_call_duration == Some(Duration::ZERO) {
            return Err(ConfigError::ZeroDuration {
                key: "slow_call_duration",
            });
        }
        let buckets = match self.window {
            SlidingWindow::Count { calls, buckets } => {
                if calls == 0 {
                    return Err(ConfigError::EmptyWindow);
                }
                buckets
            }
            SlidingWindow::Time { duration, buckets } => {
                if duration.is_zero() {
                    return Err(ConfigError::EmptyWindow);
                }
                if buckets > 0 && duration.as_nanos() < u128::from(buckets) {
                    return Err(ConfigError::Buckets {
                        buckets,
                        max: MAX_BUCKETS,
                    });
                }
                buckets
            }
        };
        if buckets == 0 || buckets > MAX_BUCKETS {
            return Err(ConfigError::Buckets {
                buckets,
                max: MAX_BUCKETS,
            });
        }
        if self.minimum_calls == 0 {
            return Err(ConfigError::ZeroMinimumCalls);
        }
        if self.permitted_calls_in_half_open == 0 || self.permitted_calls_in_half_open > MAX_PROBES
        {
            return Err(ConfigError::PermittedCalls {
                value: self.permitted_calls_in_half_open,
                max: MAX_PROBES,
            });
        }
        if !(self.wait_multiplier.is_finite() && self.wait_multiplier >= 1.0) {
            return Err(ConfigError::WaitMultiplier {
                value: self.wait_multiplier,
            });
        }
        if self.max_wait_in_open < self.wait_in_open {
            return Err(ConfigError::MaxWaitBelowWait {
                wait: self.wait_in_open,
                max: self.max_wait_in_open,
            });
        }
        if self.event_capacity == 0 {
            return Err(ConfigError::ZeroEventCapacity);
        }
        Ok(())
    }
}

/// Builds a [`CircuitBreakerConfig`]; [`build`](Self::build) checks every knob.
#[derive(Debug, Clone)]
pub struct CircuitBreakerConfigBuilder {
    config: CircuitBreakerConfig,
}

impl CircuitBreakerConfigBuilder {
    /// The breaker's name, e.g. the upstream it protects. A `&'static str` name makes
    /// rejections cheapest (an owned name costs a reference-count increment per
    /// rejection).
    pub fn name(mut self, name: impl Into<BreakerName>) -> Self {
        self.config.name = name.into();
        self
    }

    /// Opens when at least this percentage (0 < p <= 100) of the window's calls failed.
    pub fn failure_rate_threshold(mut self, percent: f64) -> Self {
        self.config.failure_rate_threshold = percent;
        self
    }

    /// Opens when at least this percentage (0 < p <= 100) of the window's calls were slow.
    pub fn slow_call_rate_threshold(mut self, percent: f64) -> Self {
        self.config.slow_call_rate_threshold = percent;
        self
    }

    /// Calls that take longer than `threshold` are slow (whatever their outcome).
    /// Off by default: measuring a call's duration reads the clock twice.
    pub fn slow_call_duration(mut self, threshold: Duration) -> Self {
        self.config.slow_call_duration = Some(threshold);
        self
    }

    /// The window the rates are computed over.
    pub fn sliding_window(mut self, window: SlidingWindow) -> Self {
        self.config.window = window;
        self
    }

    /// The rates count only once the window holds at least this many calls (>= 1).
    pub fn minimum_calls(mut self, calls: u32) -> Self {
        self.config.minimum_calls = calls;
        self
    }

    /// How long the breaker stays open before it lets probes through. Also sets
    /// `max_wait_in_open` to the same value if it was lower.
    pub fn wait_in_open(mut self, wait: Duration) -> Self {
        self.config.wait_in_open = wait;
        if self.config.max_wait_in_open < wait {
            self.config.max_wait_in_open = wait;
        }
        self
    }

    /// Grows the open wait on consecutive trips (a failed half-open trial is a trip):
    /// the n-th consecutive trip waits `wait_in_open * multiplier^(n-1)`, capped at `max`.
    /// Closing the breaker (probes succeeded, or [`reset`](super::CircuitBreaker::reset))
    /// starts over.
    pub fn exponential_wait(mut self, multiplier: f64, max: Duration) -> Self {
        self.config.wait_multiplier = multiplier;
        self.config.max_wait_in_open = max;
        self
    }

    /// How many probe calls a half-open breaker lets through (1 to 1000): exactly this
    /// many run, the next concurrent caller is rejected. Cancelled or ignored probes
    /// free their place.
    pub fn permitted_calls_in_half_open(mut self, calls: u32) -> Self {
        self.config.permitted_calls_in_half_open = calls;
        self
    }

    /// Whether an open breaker moves to half-open by itself when the wait is over (off by
    /// default).
    ///
    /// On: when the breaker opens on a thread inside a tokio runtime
    /// (`Handle::try_current`), it spawns one task on that runtime that sleeps until the
    /// wait is over, moves the breaker to half-open (a [`BreakerEvent`] with
    /// [`WaitElapsed`](super::TransitionReason::WaitElapsed), even if nobody calls) and
    /// ends. Until 50 ms before the end of the wait, a rejection is two atomic loads
    /// without a clock read; in the last 50 ms it checks the clock again, so a caller
    /// who waits exactly [`retry_after`](super::BreakerOpen::retry_after) is admitted
    /// even if the task runs a little late. A breaker that changed state before the task
    /// fires (reset, forced open, ...) makes it do nothing. Without a runtime the
    /// breaker works as when off.
    ///
    /// Off: each rejection of an open breaker reads the clock to check the wait, and the
    /// first call after it moves the breaker to half-open (taking the first probe).
    ///
    /// The costs of on:
    /// * The runtime must have its time driver (`enable_time` or `enable_all`): the task
    ///   panics otherwise (and the breaker falls back to the clock check).
    /// * The clock-free stretch ends only when the task runs: while the runtime's
    ///   threads are all blocked, or after paused time jumped past it with
    ///   `tokio::time::advance` and the caller did not yield, the breaker keeps
    ///   rejecting past the wait. A runtime that shuts down hands the breaker back to
    ///   the clock check.
    pub fn automatic_half_open(mut self, enabled: bool) -> Self {
        self.config.automatic_half_open = enabled;
        self
    }

    /// How many events each [`subscribe`](super::CircuitBreaker::subscribe)r may lag
    /// behind before it loses the oldest.
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.config.event_capacity = capacity;
        self
    }

    /// Calls `callback` with every state change, on the thread that made it, right
    /// after the change (keep it short; it may call back into the breaker). Changes
    /// made at once by two threads may reach it out of order;
    /// [`subscribe`](super::CircuitBreaker::subscribe) keeps the order.
    pub fn on_event(mut self, callback: impl Fn(&BreakerEvent) + Send + Sync + 'static) -> Self {
        self.config.on_event = Some(Arc::new(callback));
        self
    }

    /// The meter to create the breaker's instruments with.
    pub fn meter(mut self, meter: Meter) -> Self {
        self.config.meter = Some(meter);
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<CircuitBreakerConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(CircuitBreakerConfig::default().validate().is_ok());
        assert!(CircuitBreakerConfig::builder().build().is_ok());
    }

    #[test]
    fn every_invalid_knob_is_named() {
        let b = CircuitBreakerConfig::builder;
        let cases: Vec<(CircuitBreakerConfigBuilder, &str)> = vec![
            (b().failure_rate_threshold(0.0), "failure_rate_threshold"),
            (b().failure_rate_threshold(100.5), "failure_rate_threshold"),
            (
                b().slow_call_rate_threshold(f64::NAN),
                "slow_call_rate_threshold",
            ),
            (b().slow_call_duration(Duration::ZERO), "slow_call_duration"),
            (
                b().sliding_window(SlidingWindow::count(0)),
                "sliding_window",
            ),
            (
                b().sliding_window(SlidingWindow::time(Duration::ZERO)),
                "sliding_window",
            ),
            (
                b().sliding_window(SlidingWindow::count(10).with_buckets(0)),
                "buckets",
            ),
            (
                b().sliding_window(SlidingWindow::count(10).with_buckets(2000)),
                "buckets",
            ),
            (
                b().sliding_window(SlidingWindow::time(Duration::from_nanos(5)).with_buckets(10)),
                "buckets",
            ),
            (b().minimum_calls(0), "minimum_calls"),
            (
                b().permitted_calls_in_half_open(0),
                "permitted_calls_in_half_open",
            ),
            (
                b().permitted_calls_in_half_open(1001),
                "permitted_calls_in_half_open",
            ),
            (
                b().exponential_wait(0.5, Duration::from_secs(60)),
                "wait_multiplier",
            ),
            (
                b().exponential_wait(2.0, Duration::from_secs(1)),
                "max_wait_in_open",
            ),
            (b().event_capacity(0), "event_capacity"),
        ];
        for (builder, key) in cases {
            let err = builder.build().expect_err(key);
            assert!(err.to_string().contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn wait_in_open_raises_the_cap() {
        let c = CircuitBreakerConfig::builder()
            .wait_in_open(Duration::from_secs(90))
            .build()
            .expect("valid");
        assert_eq!(c.max_wait_in_open, Duration::from_secs(90));
        let c = CircuitBreakerConfig::builder()
            .wait_in_open(Duration::from_secs(1))
            .exponential_wait(2.0, Duration::from_secs(8))
            .build()
            .expect("valid");
        assert_eq!(c.max_wait_in_open, Duration::from_secs(8));
    }
}
