//! What the controller did and what it measured: transitions, counters, readings.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::level::DegradationLevel;

/// Who decides the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ControlMode {
    /// The triggers (the default).
    #[default]
    Automatic,
    /// An operator pinned this level; triggers are still read but change nothing.
    Pinned(DegradationLevel),
    /// An operator disabled degradation: the level is `Normal`; triggers are still read.
    Disabled,
}

impl fmt::Display for ControlMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlMode::Automatic => f.write_str("automatic"),
            ControlMode::Pinned(level) => write!(f, "pinned at {level}"),
            ControlMode::Disabled => f.write_str("disabled"),
        }
    }
}

/// Why the level changed (or why an operator action was recorded).
#[derive(Debug, Clone, PartialEq)]
pub enum TransitionReason {
    /// A trigger's reading reached the escalate threshold of the new level.
    Escalated {
        /// The trigger that asked for the highest level.
        trigger: String,
        /// Its reading.
        reading: f64,
        /// The escalate threshold it reached.
        threshold: f64,
    },
    /// Every trigger stayed below its recovery threshold for the old level for a whole
    /// cool-down.
    Recovered {
        /// How long they had been below.
        calm_for: Duration,
    },
    /// An operator pinned the level.
    Pinned,
    /// An operator unpinned it; the triggers decide again, starting from the pinned level.
    Unpinned,
    /// An operator disabled degradation.
    Disabled,
    /// An operator enabled degradation again, starting from `Normal`.
    Enabled,
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::Escalated {
                trigger,
                reading,
                threshold,
            } => write!(
                f,
                "trigger {trigger} read {reading} (threshold {threshold})"
            ),
            TransitionReason::Recovered { calm_for } => {
                write!(
                    f,
                    "all triggers below their recovery thresholds for {calm_for:?}"
                )
            }
            TransitionReason::Pinned => f.write_str("pinned by operator"),
            TransitionReason::Unpinned => f.write_str("unpinned by operator"),
            TransitionReason::Disabled => f.write_str("disabled by operator"),
            TransitionReason::Enabled => f.write_str("enabled by operator"),
        }
    }
}

/// One entry of the transition history.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// When it happened.
    pub at: Instant,
    /// The level before.
    pub from: DegradationLevel,
    /// The level after (equal to `from` for an operator action that did not change it).
    pub to: DegradationLevel,
    /// Why.
    pub reason: TransitionReason,
}

/// The last state of one trigger, as the controller saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerSnapshot {
    /// The trigger's name.
    pub name: String,
    /// Its last reading (`None` until it gives one).
    pub reading: Option<f64>,
    /// When that reading was taken.
    pub read_at: Option<Instant>,
    /// The level that reading asks for.
    pub asks: DegradationLevel,
    /// Readings taken.
    pub readings: u64,
    /// Evaluations at which it gave no reading.
    pub missed: u64,
}

/// Counters and state of a controller at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSnapshot {
    /// The current level.
    pub level: DegradationLevel,
    /// Who decides it.
    pub mode: ControlMode,
    /// Since when the level has been what it is.
    pub level_since: Instant,
    /// Evaluations run.
    pub evaluations: u64,
    /// When the last evaluation ran.
    pub last_evaluation: Option<Instant>,
    /// Level changes into each level, indexed by [`DegradationLevel::index`].
    pub transitions_into: [u64; 5],
    /// Time spent at each level, including the current stretch, indexed by
    /// [`DegradationLevel::index`].
    pub time_in_level: [Duration; 5],
    /// History entries ever recorded (level changes and operator actions), including
    /// those the bounded history has let go.
    pub history_recorded: u64,
    /// Each trigger, in the order they were added.
    pub triggers: Vec<TriggerSnapshot>,
}

impl ControllerSnapshot {
    /// Level changes into `level`.
    pub fn transitions_into(&self, level: DegradationLevel) -> u64 {
        self.transitions_into[level.index()]
    }

    /// Level changes in all.
    pub fn transitions(&self) -> u64 {
        self.transitions_into.iter().sum()
    }

    /// Time spent at `level`.
    pub fn time_in(&self, level: DegradationLevel) -> Duration {
        self.time_in_level[level.index()]
    }

    /// The trigger named `name`.
    pub fn trigger(&self, name: &str) -> Option<&TriggerSnapshot> {
        self.triggers.iter().find(|t| t.name == name)
    }
}

/// Everything behind the controller's lock.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) mode: ControlMode,
    pub(crate) history: VecDeque<Transition>,
    pub(crate) history_len: usize,
    pub(crate) history_recorded: u64,
    pub(crate) transitions_into: [u64; 5],
    pub(crate) time_in_level: [Duration; 5],
    pub(crate) level_since: Instant,
    pub(crate) last_transition: Option<Instant>,
    /// Since when every trigger has been below its recovery threshold for the current
    /// level (`None` if one is not, or the level is `Normal`).
    pub(crate) calm_since: Option<Instant>,
    pub(crate) evaluations: u64,
    pub(crate) last_evaluation: Option<Instant>,
    pub(crate) triggers: Vec<TriggerSnapshot>,
}

impl State {
    pub(crate) fn new(now: Instant, history_len: usize, triggers: Vec<TriggerSnapshot>) -> State {
        State {
            mode: ControlMode::Automatic,
            history: VecDeque::with_capacity(history_len.min(1024)),
            history_len,
            history_recorded: 0,
            transitions_into: [0; 5],
            time_in_level: [Duration::ZERO; 5],
            level_since: now,
            last_transition: None,
            calm_since: None,
            evaluations: 0,
            last_evaluation: None,
            triggers,
        }
    }

    /// Account for a move from `from` to `to` at `at` and remember it.
    pub(crate) fn record(&mut self, transition: Transition) {
        let Transition { at, from, to, .. } = transition;
        if from != to {
            self.time_in_level[from.index()] += at.saturating_duration_since(self.level_since);
            self.level_since = self.level_since.max(at);
            self.transitions_into[to.index()] += 1;
        }
        self.last_transition = Some(at);
        self.calm_since = None;
        self.history_recorded += 1;
        if self.history.len() == self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(transition);
    }

    pub(crate) fn snapshot(&self, level: DegradationLevel, now: Instant) -> ControllerSnapshot {
        let mut time_in_level = self.time_in_level;
        time_in_level[level.index()] += now.saturating_duration_since(self.level_since);
        ControllerSnapshot {
            level,
            mode: self.mode,
            level_since: self.level_since,
            evaluations: self.evaluations,
            last_evaluation: self.last_evaluation,
            transitions_into: self.transitions_into,
            time_in_level,
            history_recorded: self.history_recorded,
            triggers: self.triggers.clone(),
        }
    }
}

/// Emit the `tracing` event for a transition: `warn` when it enters `Heavy` or
/// `Emergency`, `info` otherwise.
pub(crate) fn log(transition: &Transition) {
    let Transition {
        from, to, reason, ..
    } = transition;
    let (from, to) = (from.as_str(), to.as_str());
    let message = match reason {
        TransitionReason::Escalated { .. } => "degradation level raised",
        TransitionReason::Recovered { .. } => "degradation level lowered",
        _ => "degradation control changed by operator",
    };
    if transition.to >= DegradationLevel::Heavy && transition.to != transition.from {
        tracing::warn!(from, to, %reason, "{message}");
    } else {
        tracing::info!(from, to, %reason, "{message}");
    }
}
