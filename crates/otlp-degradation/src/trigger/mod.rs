//! Load triggers: readings the controller turns into a degradation level.
//!
//! A [`Trigger`] gives one number per evaluation (a CPU share, a fill ratio, a latency in
//! milliseconds...). [`Thresholds`] say, for that trigger, at which reading each level is
//! asked for and below which reading the controller may step down again.
//!
//! Built-in triggers, each with default thresholds documented on its type:
//!
//! | trigger | reading | shared with the pipeline through |
//! |---------|---------|-----------------------------------|
//! | [`CpuTrigger`] | share of the cores available to the process (cgroup `cpu.max` aware) | - |
//! | [`MemoryTrigger`] | share of the memory limit (cgroup `memory.max` or host) | - |
//! | [`QueueTrigger`] | fill ratio of the fullest queue | [`QueueGauge`] |
//! | [`LatencyTrigger`] | export latency in ms (EWMA or a recent percentile) | [`LatencyTracker`] |
//! | [`ErrorRateTrigger`] | share of failed exports over a time window | [`ErrorRateTracker`] |
//! | [`LagTrigger`] | tokio scheduling lag in ms | [`LagProbe`] |

use std::fmt;

use tokio::time::Instant;

use crate::level::DegradationLevel;

mod cpu;
mod errors;
mod lag;
mod latency;
mod memory;
mod queue;

pub use cpu::CpuTrigger;
pub use errors::{ErrorRateConfig, ErrorRateTracker, ErrorRateTrigger};
pub use lag::{LagProbe, LagStat, LagTrigger};
pub use latency::{LatencyConfig, LatencyStat, LatencyTracker, LatencyTrigger};
pub use memory::MemoryTrigger;
pub use queue::{QueueGauge, QueueTrigger};

/// A source of load readings.
///
/// The controller calls [`read`](Trigger::read) once per evaluation, from one task, so an
/// implementation may keep state between reads (the CPU trigger keeps the previous CPU
/// time). Reads should be cheap and must not block for long: they run on the
/// controller's task.
pub trait Trigger: Send {
    /// A short, stable name for logs, history and the snapshot (`cpu`, `memory`, ...).
    /// Names are unique within one controller.
    fn name(&self) -> &str;

    /// The reading at `now`, or `None` when there is nothing to report this round (no
    /// samples yet, a file that could not be read). `None` readings are ignored: they
    /// neither raise the level nor hold it up. Non-finite readings count as `None`.
    fn read(&mut self, now: Instant) -> Option<f64>;
}

impl<T: Trigger + ?Sized> Trigger for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn read(&mut self, now: Instant) -> Option<f64> {
        (**self).read(now)
    }
}

/// The levels that have thresholds, in order: the index into the threshold arrays.
const THRESHOLD_LEVELS: [DegradationLevel; 4] = [
    DegradationLevel::Light,
    DegradationLevel::Moderate,
    DegradationLevel::Heavy,
    DegradationLevel::Emergency,
];

/// Per-level thresholds of one trigger.
///
/// `escalate` holds the readings at which `Light`, `Moderate`, `Heavy` and `Emergency` are
/// asked for, ascending; a reading at or above a threshold asks for that level.
/// `recover` holds, for each of those levels, the reading every trigger must stay below
/// before the controller steps down from it; each is below its escalate threshold, and
/// the gap between the two is the hysteresis that keeps the level from flapping.
///
/// `f64::INFINITY` as an escalate threshold means "this trigger never asks for this level"
/// (only allowed for the top levels, once it starts it must continue to `Emergency`).
///
/// Thresholds are checked when the controller is built ([`Thresholds::validate`]), so the
/// error can name the trigger.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    escalate: [f64; 4],
    recover: [f64; 4],
}

impl Thresholds {
    /// Thresholds for `Light`, `Moderate`, `Heavy`, `Emergency`, in that order.
    pub const fn new(escalate: [f64; 4], recover: [f64; 4]) -> Thresholds {
        Thresholds { escalate, recover }
    }

    /// Escalate thresholds with each recovery threshold `gap` below its escalate
    /// threshold (`with_gap([0.75, 0.85, 0.92, 0.97], 0.10)` recovers below 0.65, 0.75,
    /// 0.82, 0.87).
    pub fn with_gap(escalate: [f64; 4], gap: f64) -> Thresholds {
        Thresholds {
            escalate,
            recover: escalate.map(|e| e - gap),
        }
    }

    /// The reading at which `level` is asked for; `None` for `Normal`.
    pub fn escalate_at(&self, level: DegradationLevel) -> Option<f64> {
        level.index().checked_sub(1).map(|i| self.escalate[i])
    }

    /// The reading to stay below before stepping down from `level`; `None` for `Normal`.
    pub fn recover_below(&self, level: DegradationLevel) -> Option<f64> {
        level.index().checked_sub(1).map(|i| self.recover[i])
    }

    /// The highest level whose escalate threshold `reading` reaches (`Normal` if none).
    pub fn level_for(&self, reading: f64) -> DegradationLevel {
        THRESHOLD_LEVELS
            .into_iter()
            .zip(self.escalate)
            .rev()
            .find(|&(_, threshold)| reading >= threshold)
            .map_or(DegradationLevel::Normal, |(level, _)| level)
    }

    /// Whether `reading` is below the recovery threshold of `level` (always true for
    /// `Normal`, which has nothing to recover from).
    pub fn allows_recovery_from(&self, level: DegradationLevel, reading: f64) -> bool {
        self.recover_below(level).is_none_or(|r| reading < r)
    }

    /// Check the thresholds; errors name `trigger` and the level at fault.
    pub fn validate(&self, trigger: &str) -> Result<(), ThresholdError> {
        let err = |kind: ThresholdProblem, i: usize| ThresholdError {
            trigger: trigger.to_owned(),
            level: THRESHOLD_LEVELS[i],
            problem: kind,
        };
        for i in 0..4 {
            let (e, r) = (self.escalate[i], self.recover[i]);
            if e.is_nan() || e == f64::NEG_INFINITY {
                return Err(err(ThresholdProblem::EscalateNotANumber { value: e }, i));
            }
            if !r.is_finite() {
                return Err(err(ThresholdProblem::RecoverNotFinite { value: r }, i));
            }
            if r >= e {
                return Err(err(
                    ThresholdProblem::RecoverNotBelowEscalate {
                        recover: r,
                        escalate: e,
                    },
                    i,
                ));
            }
            if i > 0 {
                let (pe, pr) = (self.escalate[i - 1], self.recover[i - 1]);
                let both_never = pe == f64::INFINITY && e == f64::INFINITY;
                if e <= pe && !both_never {
                    return Err(err(
                        ThresholdProblem::EscalateNotAscending {
                            value: e,
                            previous: THRESHOLD_LEVELS[i - 1],
                            previous_value: pe,
                        },
                        i,
                    ));
                }
                if r < pr {
                    return Err(err(
                        ThresholdProblem::RecoverDescending {
                            value: r,
                            previous: THRESHOLD_LEVELS[i - 1],
                            previous_value: pr,
                        },
                        i,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A trigger's thresholds are inconsistent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("thresholds of trigger {trigger:?} at level {level}: {problem}")]
pub struct ThresholdError {
    /// The trigger's name.
    pub trigger: String,
    /// The level whose threshold is wrong.
    pub level: DegradationLevel,
    /// What is wrong.
    pub problem: ThresholdProblem,
}

/// What is wrong with a threshold.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdProblem {
    /// An escalate threshold is NaN or minus infinity.
    #[error(
        "escalate threshold {value} is not a number; use a finite value, or infinity for \"never\""
    )]
    EscalateNotANumber {
        /// The value given.
        value: f64,
    },
    /// A recovery threshold is not finite.
    #[error(
        "recovery threshold {value} is not finite; use a finite value below the escalate threshold"
    )]
    RecoverNotFinite {
        /// The value given.
        value: f64,
    },
    /// A recovery threshold is not below its escalate threshold (no hysteresis).
    #[error(
        "recovery threshold {recover} is not below the escalate threshold {escalate}; lower it so the level cannot flap"
    )]
    RecoverNotBelowEscalate {
        /// The recovery threshold.
        recover: f64,
        /// The escalate threshold.
        escalate: f64,
    },
    /// Escalate thresholds do not ascend with the level.
    #[error(
        "escalate threshold {value} is not above the one for {previous} ({previous_value}); list thresholds in ascending order"
    )]
    EscalateNotAscending {
        /// The value given.
        value: f64,
        /// The level below.
        previous: DegradationLevel,
        /// Its escalate threshold.
        previous_value: f64,
    },
    /// Recovery thresholds descend with the level.
    #[error(
        "recovery threshold {value} is below the one for {previous} ({previous_value}); recovery thresholds must not decrease with the level"
    )]
    RecoverDescending {
        /// The value given.
        value: f64,
        /// The level below.
        previous: DegradationLevel,
        /// Its recovery threshold.
        previous_value: f64,
    },
}

/// A configuration value of a tracker or trigger is out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{setting} = {value}: {expected}")]
pub struct TriggerConfigError {
    /// The setting.
    pub setting: &'static str,
    /// The value given, as text.
    pub value: String,
    /// What is accepted.
    pub expected: &'static str,
}

/// Logs a trigger's read failure once per run of failures, so a missing file does not
/// log every second.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    failing: bool,
}

impl FailureLog {
    pub(crate) fn failed(&mut self, trigger: &str, error: &dyn fmt::Display) {
        if !self.failing {
            self.failing = true;
            tracing::warn!(trigger, %error, "degradation trigger cannot read; its readings are ignored until it can");
        } else {
            tracing::debug!(trigger, %error, "degradation trigger still cannot read");
        }
    }

    pub(crate) fn succeeded(&mut self, trigger: &str) {
        if self.failing {
            self.failing = false;
            tracing::info!(trigger, "degradation trigger reads again");
        }
    }
}
