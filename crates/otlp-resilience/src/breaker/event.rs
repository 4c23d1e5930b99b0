//! State-change events.

use std::fmt;

use tokio::time::Instant;

use super::{BreakerName, BreakerState};

/// A state change of a breaker, sent to [`subscribe`](super::CircuitBreaker::subscribe)rs
/// and to the `on_event` callback, and logged with `tracing`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerEvent {
    /// The breaker's name.
    pub name: BreakerName,
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// When it changed.
    pub at: Instant,
    /// Why it changed.
    pub reason: TransitionReason,
    /// The sliding window at the moment of the change (before a closing breaker
    /// clears it).
    pub window: WindowSnapshot,
}

/// Why a breaker changed state.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum TransitionReason {
    /// Closed -> open: the window's failure rate reached the threshold.
    FailureRate {
        /// The failure rate, in percent.
        rate: f64,
        /// The threshold, in percent.
        threshold: f64,
    },
    /// Closed -> open: the window's slow-call rate reached the threshold.
    SlowCallRate {
        /// The slow-call rate, in percent.
        rate: f64,
        /// The threshold, in percent.
        threshold: f64,
    },
    /// Open -> half-open: the open wait elapsed.
    WaitElapsed,
    /// Half-open -> closed: the probes' failure and slow rates are below the thresholds.
    ProbesSucceeded {
        /// Probes completed.
        completed: u32,
        /// Of which failed.
        failed: u32,
        /// Of which slow.
        slow: u32,
    },
    /// Half-open -> open: enough probes failed or were slow to reach a threshold.
    ProbesFailed {
        /// Probes completed.
        completed: u32,
        /// Of which failed.
        failed: u32,
        /// Of which slow.
        slow: u32,
    },
    /// An operator forced the breaker open.
    Forced,
    /// An operator disabled the breaker.
    Disabled,
    /// An operator reset the breaker.
    Reset,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::FailureRate { rate, threshold } => {
                write!(f, "failure rate {rate:.1}% >= {threshold:.1}%")
            }
            TransitionReason::SlowCallRate { rate, threshold } => {
                write!(f, "slow-call rate {rate:.1}% >= {threshold:.1}%")
            }
            TransitionReason::WaitElapsed => f.write_str("open wait elapsed"),
            TransitionReason::ProbesSucceeded {
                completed,
                failed,
                slow,
            } => write!(
                f,
                "probes ok ({failed} failed, {slow} slow of {completed} completed)"
            ),
            TransitionReason::ProbesFailed {
                completed,
                failed,
                slow,
            } => write!(
                f,
                "probes failed ({failed} failed, {slow} slow of {completed} completed)"
            ),
            TransitionReason::Forced => f.write_str("forced open"),
            TransitionReason::Disabled => f.write_str("disabled"),
            TransitionReason::Reset => f.write_str("reset"),
        }
    }
}

/// The sliding window's counts and rates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowSnapshot {
    /// Calls in the window (ignored and cancelled calls are not counted).
    pub calls: u64,
    /// Failed calls in the window.
    pub failures: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// `failures / calls` in percent (0 with no calls).
    pub failure_rate: f64,
    /// `slow_calls / calls` in percent (0 with no calls).
    pub slow_call_rate: f64,
}
