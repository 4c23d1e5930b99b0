//! What the canary split decided, when, and on which numbers.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::window::WindowStats;

/// The kind of a [`CanaryDecision`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// The rollout began at its first step.
    Started,
    /// A step passed; the canary moved to the next step's weight.
    Advanced,
    /// The last step passed; the canary takes all traffic for good.
    Promoted,
    /// The canary regressed (or an operator aborted); it gets no more traffic.
    RolledBack,
}

impl DecisionKind {
    /// Lower-case name for logs and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Started => "started",
            DecisionKind::Advanced => "advanced",
            DecisionKind::Promoted => "promoted",
            DecisionKind::RolledBack => "rolled_back",
        }
    }
}

/// Why a decision was taken, with the numbers that decided it.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionReason {
    /// The split was created.
    Start,
    /// The step was held long enough, saw enough canary calls and no regression.
    StepPassed {
        /// How long the step was held.
        held: Duration,
    },
    /// The canary's error rate exceeded the stable one by more than allowed.
    ErrorRateRegression {
        /// Canary error rate in the step.
        canary: f64,
        /// The stable error rate it was compared with.
        stable: f64,
        /// The allowed increase (`max_error_rate_increase`).
        max_increase: f64,
    },
    /// The canary's latency statistic exceeded the stable one by more than allowed.
    LatencyRegression {
        /// Canary latency statistic in the step.
        canary: Duration,
        /// The stable latency statistic it was compared with.
        stable: Duration,
        /// `canary / stable`.
        ratio: f64,
        /// The allowed ratio (`max_latency_ratio`).
        max_ratio: f64,
    },
    /// An operator called [`CanarySplit::roll_back`](super::CanarySplit::roll_back).
    Operator(String),
}

impl fmt::Display for DecisionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecisionReason::Start => f.write_str("rollout started"),
            DecisionReason::StepPassed { held } => {
                write!(f, "step passed after {held:?} without regression")
            }
            DecisionReason::ErrorRateRegression {
                canary,
                stable,
                max_increase,
            } => write!(
                f,
                "canary error rate {:.2} % exceeds stable {:.2} % by more than {:.2} points",
                canary * 100.0,
                stable * 100.0,
                max_increase * 100.0
            ),
            DecisionReason::LatencyRegression {
                canary,
                stable,
                ratio,
                max_ratio,
            } => write!(
                f,
                "canary latency {canary:?} is {ratio:.2}x stable {stable:?} (allowed {max_ratio:.2}x)"
            ),
            DecisionReason::Operator(why) => write!(f, "rolled back by operator: {why}"),
        }
    }
}

/// One decision of a [`CanarySplit`](super::CanarySplit): kept in its bounded history and
/// emitted as a `tracing` event (target `otlp_degradation::canary`).
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryDecision {
    /// When (from `tokio::time`).
    pub at: Instant,
    /// What was decided.
    pub kind: DecisionKind,
    /// Why, with numbers.
    pub reason: DecisionReason,
    /// The step before the decision (equal to `to_step` for `Started`).
    pub from_step: usize,
    /// The step after it (for `Promoted` and `RolledBack`, the step it ended at).
    pub to_step: usize,
    /// Canary weight before.
    pub from_weight: f64,
    /// Canary weight after.
    pub to_weight: f64,
    /// The canary's calls in the step that was judged.
    pub canary: WindowStats,
    /// The stable numbers the canary was compared with: this step's stable calls, or the
    /// last earlier step with enough of them (at 100 % the stable target gets none).
    pub stable: WindowStats,
}
