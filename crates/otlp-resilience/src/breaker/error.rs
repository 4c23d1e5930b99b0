//! The breaker's errors: a rejection, a wrapped inner error, a bad configuration.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::{BreakerName, BreakerState};
use crate::classify::{OtlpError, Outcome, RetryDecision};

/// The breaker refused the call without running it: the downstream is considered
/// unhealthy. Send the call elsewhere, fail fast, or try again after
/// [`retry_after`](Self::retry_after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    /// The state that refused the call: `Open`, `ForcedOpen` (an operator opened it;
    /// only an operator closes it) or `HalfOpen` (every probe permit is taken).
    pub state: BreakerState,
    /// When an `Open` breaker will let probes through; `None` when unknown (forced
    /// open, half-open, or a transition under way).
    pub until: Option<Instant>,
    /// The breaker's name.
    pub name: BreakerName,
}

impl BreakerOpen {
    /// How long until the breaker lets probes through, if known (zero once passed).
    pub fn retry_after(&self) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(Instant::now()))
    }
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker `{}` is {}", self.name, self.state)?;
        match self.state {
            BreakerState::HalfOpen => f.write_str(" and all its probe calls are taken"),
            BreakerState::ForcedOpen => f.write_str(" until an operator resets it"),
            _ => match self.retry_after() {
                Some(after) => write!(f, "; probes allowed in {after:?}"),
                None => Ok(()),
            },
        }
    }
}

impl StdError for BreakerOpen {}

/// The error of a call through the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError<E> {
    /// The breaker refused the call; the inner service was not called.
    Open(BreakerOpen),
    /// The inner service was called and failed; its error is unchanged.
    Inner(E),
}

impl<E> BreakerError<E> {
    /// The rejection, if the breaker refused the call.
    pub fn as_open(&self) -> Option<&BreakerOpen> {
        match self {
            BreakerError::Open(open) => Some(open),
            BreakerError::Inner(_) => None,
        }
    }

    /// The inner error, if the call ran and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            BreakerError::Open(_) => None,
            BreakerError::Inner(e) => Some(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for BreakerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open(open) => fmt::Display::fmt(open, f),
            BreakerError::Inner(e) => fmt::Display::fmt(e, f),
        }
    }
}

/// The inner error is the source, so classifiers that search a boxed error's source
/// chain (like [`OtlpClassifier`](crate::classify::OtlpClassifier)) find it.
impl<E: StdError + 'static> StdError for BreakerError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            BreakerError::Open(open) => Some(open),
            BreakerError::Inner(e) => Some(e),
        }
    }
}

/// A rejection says nothing about the downstream's health ([`Outcome::Ignored`]) and
/// may be retried once the breaker lets probes through (the call was never sent); an
/// inner error means what it means under the OTLP rules.
impl<E: OtlpError> OtlpError for BreakerError<E> {
    fn otlp_outcome(&self) -> Outcome {
        match self {
            BreakerError::Open(_) => Outcome::Ignored,
            BreakerError::Inner(e) => e.otlp_outcome(),
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        match self {
            BreakerError::Open(open) => RetryDecision::Retry {
                after: open.retry_after(),
            },
            BreakerError::Inner(e) => e.otlp_retry_decision(),
        }
    }
}

/// A [`CircuitBreakerConfig`](super::CircuitBreakerConfig) knob is out of range; the
/// message names the knob. Fix the configuration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A rate threshold is not in (0, 100].
    Threshold {
        /// The knob.
        key: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A duration that must be positive is zero.
    ZeroDuration {
        /// The knob.
        key: &'static str,
    },
    /// The sliding window holds no calls (zero calls or zero duration).
    EmptyWindow,
    /// The window's bucket count is 0, above the maximum, or more than its duration
    /// in nanoseconds.
    Buckets {
        /// The rejected count.
        buckets: u16,
        /// The maximum.
        max: u16,
    },
    /// `minimum_calls` is zero.
    ZeroMinimumCalls,
    /// `permitted_calls_in_half_open` is 0 or above the maximum.
    PermittedCalls {
        /// The rejected value.
        value: u32,
        /// The maximum.
        max: u32,
    },
    /// The wait multiplier is below 1 or not finite.
    WaitMultiplier {
        /// The rejected value.
        value: f64,
    },
    /// `max_wait_in_open` is below `wait_in_open`.
    MaxWaitBelowWait {
        /// `wait_in_open`.
        wait: Duration,
        /// `max_wait_in_open`.
        max: Duration,
    },
    /// `event_capacity` is zero.
    ZeroEventCapacity,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Threshold { key, value } => {
                write!(
                    f,
                    "circuit breaker {key} must be above 0 and at most 100 (percent), got {value}"
                )
            }
            ConfigError::ZeroDuration { key } => {
                write!(f, "circuit breaker {key} must be above zero")
            }
            ConfigError::EmptyWindow => f.write_str(
                "circuit breaker sliding_window must hold at least one call or a positive duration",
            ),
            ConfigError::Buckets { buckets, max } => write!(
                f,
                "circuit breaker sliding window buckets must be 1 to {max} (and at most the window's nanoseconds), got {buckets}"
            ),
            ConfigError::ZeroMinimumCalls => {
                f.write_str("circuit breaker minimum_calls must be at least 1")
            }
            ConfigError::PermittedCalls { value, max } => write!(
                f,
                "circuit breaker permitted_calls_in_half_open must be 1 to {max}, got {value}"
            ),
            ConfigError::WaitMultiplier { value } => write!(
                f,
                "circuit breaker wait_multiplier must be a finite number >= 1, got {value}"
            ),
            ConfigError::MaxWaitBelowWait { wait, max } => write!(
                f,
                "circuit breaker max_wait_in_open ({max:?}) must be at least wait_in_open ({wait:?})"
            ),
            ConfigError::ZeroEventCapacity => {
                f.write_str("circuit breaker event_capacity must be at least 1")
            }
        }
    }
}

impl StdError for ConfigError {}
