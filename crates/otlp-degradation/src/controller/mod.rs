//! The degradation controller: turns trigger readings into a [`DegradationLevel`].
//!
//! Every interval (1 s by default) the controller reads each trigger and applies these
//! rules:
//!
//! - the highest level any trigger asks for wins ([`Thresholds::level_for`]);
//! - escalation is immediate: the level jumps straight to what is asked for;
//! - recovery goes down one level at a time, and only when every trigger has been below
//!   its recovery threshold for the current level for a whole cool-down (10 s by
//!   default) and a cool-down has passed since the last transition. A reading between a
//!   level's recovery and escalate thresholds holds the level, and any reading at or above
//!   the recovery threshold restarts the cool-down, so a load that oscillates around a
//!   threshold keeps the level up instead of flapping;
//! - triggers that give no reading (`None`) are ignored.
//!
//! Operators can pin a level or disable degradation at run time through the
//! [`DegradationHandle`]; every transition is recorded in a bounded history, emitted as a
//! `tracing` event and counted in the [`ControllerSnapshot`].
//!
//! ```
//! use std::time::Duration;
//! use otlp_degradation::controller::Controller;
//! use otlp_degradation::trigger::{QueueGauge, QueueTrigger};
//! use otlp_degradation::DegradationLevel;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let queue = QueueGauge::new(1000);
//! let mut controller = Controller::builder()
//!     .cool_down(Duration::from_secs(10))
//!     .trigger(QueueTrigger::new(queue.clone()), QueueTrigger::default_thresholds())
//!     .build()?;
//! let handle = controller.handle();
//!
//! queue.set_used(900); // 90 % full: Heavy
//! controller.evaluate_once(tokio::time::Instant::now());
//! assert_eq!(handle.level(), DegradationLevel::Heavy);
//!
//! // Or let it run on its own timer:
//! let task = controller.spawn();
//! task.stop().await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, MissedTickBehavior};

use crate::level::{AtomicLevel, DegradationLevel};
use crate::trigger::{ThresholdError, Thresholds, Trigger};

mod handle;
mod history;

pub use handle::DegradationHandle;
pub use history::{ControlMode, ControllerSnapshot, Transition, TransitionReason, TriggerSnapshot};

use handle::Shared;
use history::State;

/// Default evaluation interval: once a second follows load closely enough (escalation
/// happens within a second of a trigger crossing its threshold) while reading `/proc`
/// costs nothing measurable.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Default cool-down: ten evaluations of calm before each step down, long enough to ride
/// out the lulls between bursts of a load that has not really gone away.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(10);

/// Default history length: enough to see a whole incident of escalations, recoveries and
/// operator actions.
pub const DEFAULT_HISTORY_LEN: usize = 64;

/// The controller could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControllerError {
    /// A trigger's thresholds are inconsistent.
    #[error(transparent)]
    Thresholds(#[from] ThresholdError),
    /// Two triggers have the same name.
    #[error(
        "two triggers are named {0:?}; give each a distinct name (the built-in triggers have with_name)"
    )]
    DuplicateTrigger(String),
    /// The evaluation interval is zero.
    #[error("the evaluation interval is zero; use a positive interval (1 s is the default)")]
    ZeroInterval,
    /// The history length is zero.
    #[error("the history length is zero; keep at least one transition (64 is the default)")]
    ZeroHistory,
}

/// Builds a [`Controller`]: [`Controller::builder`].
pub struct ControllerBuilder {
    interval: Duration,
    cool_down: Duration,
    history_len: usize,
    triggers: Vec<(Box<dyn Trigger>, Thresholds)>,
}

impl fmt::Debug for ControllerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerBuilder")
            .field("interval", &self.interval)
            .field("cool_down", &self.cool_down)
            .field("history_len", &self.history_len)
            .field(
                "triggers",
                &self
                    .triggers
                    .iter()
                    .map(|(t, _)| t.name())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for ControllerBuilder {
    fn default() -> Self {
        ControllerBuilder {
            interval: DEFAULT_INTERVAL,
            cool_down: DEFAULT_COOL_DOWN,
            history_len: DEFAULT_HISTORY_LEN,
            triggers: Vec::new(),
        }
    }
}

impl ControllerBuilder {
    /// How often [`Controller::spawn`] evaluates (default [`DEFAULT_INTERVAL`]).
    pub fn interval(mut self, interval: Duration) -> ControllerBuilder {
        self.interval = interval;
        self
    }

    /// How long all triggers must stay calm, and how long since the last transition,
    /// before each step down (default [`DEFAULT_COOL_DOWN`]).
    pub fn cool_down(mut self, cool_down: Duration) -> ControllerBuilder {
        self.cool_down = cool_down;
        self
    }

    /// How many transitions the history keeps (default [`DEFAULT_HISTORY_LEN`]).
    pub fn history_len(mut self, history_len: usize) -> ControllerBuilder {
        self.history_len = history_len;
        self
    }

    /// Add a trigger with its thresholds (checked by [`build`](Self::build)).
    pub fn trigger(
        mut self,
        trigger: impl Trigger + 'static,
        thresholds: Thresholds,
    ) -> ControllerBuilder {
        self.triggers.push((Box::new(trigger), thresholds));
        self
    }

    /// Check the settings and build the controller, at `Normal`.
    pub fn build(self) -> Result<Controller, ControllerError> {
        if self.interval.is_zero() {
            return Err(ControllerError::ZeroInterval);
        }
        if self.history_len == 0 {
            return Err(ControllerError::ZeroHistory);
        }
        let mut names = HashSet::new();
        for (trigger, thresholds) in &self.triggers {
            thresholds.validate(trigger.name())?;
            if !names.insert(trigger.name().to_owned()) {
                return Err(ControllerError::DuplicateTrigger(trigger.name().to_owned()));
            }
        }
        let snapshots = self
            .triggers
            .iter()
            .map(|(t, _)| TriggerSnapshot {
                name: t.name().to_owned(),
                reading: None,
                read_at: None,
                asks: DegradationLevel::Normal,
                readings: 0,
                missed: 0,
            })
            .collect();
        let (changes, _) = watch::channel(DegradationLevel::Normal);
        let shared = Arc::new(Shared {
            level: Arc::new(AtomicLevel::new(DegradationLevel::Normal)),
            changes,
            state: Mutex::new(State::new(Instant::now(), self.history_len, snapshots)),
        });
        Ok(Controller {
            triggers: self
                .triggers
                .into_iter()
                .map(|(trigger, thresholds)| Slot {
                    trigger,
                    thresholds,
                    reading: None,
                })
                .collect(),
            shared,
            interval: self.interval,
            cool_down: self.cool_down,
        })
    }
}

struct Slot {
    trigger: Box<dyn Trigger>,
    thresholds: Thresholds,
    /// This evaluation's reading.
    reading: Option<f64>,
}

/// Decides the degradation level from its triggers; see the [module docs](self) for the
/// rules.
///
/// Drive it with [`evaluate_once`](Self::evaluate_once) from your own timer (and in
/// tests), or [`spawn`](Self::spawn) it on its own interval. Hand
/// [`DegradationHandle`]s to whatever reads or steers the level.
pub struct Controller {
    triggers: Vec<Slot>,
    shared: Arc<Shared>,
    interval: Duration,
    cool_down: Duration,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("level", &self.level())
            .field("interval", &self.interval)
            .field("cool_down", &self.cool_down)
            .field("triggers", &self.trigger_names())
            .finish()
    }
}

impl Controller {
    /// A builder with the defaults and no triggers.
    pub fn builder() -> ControllerBuilder {
        ControllerBuilder::default()
    }

    /// A handle for reading and steering the level.
    pub fn handle(&self) -> DegradationHandle {
        DegradationHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The current level.
    pub fn level(&self) -> DegradationLevel {
        self.shared.level.load()
    }

    /// The triggers' names, in the order they were added.
    pub fn trigger_names(&self) -> Vec<&str> {
        self.triggers.iter().map(|s| s.trigger.name()).collect()
    }

    /// The evaluation interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The cool-down.
    pub fn cool_down(&self) -> Duration {
        self.cool_down
    }

    /// Read every trigger once at `now` and apply the rules; the level afterwards.
    ///
    /// Deterministic given the readings and `now`: tests and callers with their own timer
    /// call this instead of [`spawn`](Self::spawn). `now` should not go backwards between
    /// calls.
    pub fn evaluate_once(&mut self, now: Instant) -> DegradationLevel {
        for slot in &mut self.triggers {
            slot.reading = slot.trigger.read(now).filter(|r| r.is_finite());
        }
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        state.evaluations += 1;
        state.last_evaluation = Some(now);
        for (snapshot, slot) in state.triggers.iter_mut().zip(&self.triggers) {
            match slot.reading {
                Some(reading) => {
                    snapshot.reading = Some(reading);
                    snapshot.read_at = Some(now);
                    snapshot.asks = slot.thresholds.level_for(reading);
                    snapshot.readings += 1;
                }
                None => snapshot.missed += 1,
            }
        }
        let current = shared.level.load();
        if state.mode != ControlMode::Automatic {
            return current;
        }

        // The highest level asked for; the first trigger added wins a tie.
        let mut asked: Option<(DegradationLevel, &Slot, f64)> = None;
        for slot in &self.triggers {
            if let Some(reading) = slot.reading {
                let level = slot.thresholds.level_for(reading);
                if asked.is_none_or(|(best, _, _)| level > best) {
                    asked = Some((level, slot, reading));
                }
            }
        }
        if let Some((level, slot, reading)) = asked.filter(|&(level, _, _)| level > current) {
            let reason = TransitionReason::Escalated {
                trigger: slot.trigger.name().to_owned(),
                reading,
                threshold: slot.thresholds.escalate_at(level).unwrap_or(reading),
            };
            shared.transition(&mut state, now, level, reason);
            return level;
        }

        if current == DegradationLevel::Normal || !self.calm(current) {
            state.calm_since = None;
            return current;
        }
        let calm_since = *state.calm_since.get_or_insert(now);
        let calm_for = now.saturating_duration_since(calm_since);
        let settled = state
            .last_transition
            .is_none_or(|t| now.saturating_duration_since(t) >= self.cool_down);
        if calm_for < self.cool_down || !settled {
            return current;
        }
        let to = current.down();
        shared.transition(
            &mut state,
            now,
            to,
            TransitionReason::Recovered { calm_for },
        );
        // The same readings may already be calm for the new level: the cool-down towards
        // the next step starts now, not at the next evaluation.
        if to != DegradationLevel::Normal && self.calm(to) {
            state.calm_since = Some(now);
        }
        to
    }

    /// Whether every trigger with a reading this round is below its recovery threshold
    /// for `level`.
    fn calm(&self, level: DegradationLevel) -> bool {
        self.triggers.iter().all(|slot| {
            slot.reading
                .is_none_or(|r| slot.thresholds.allows_recovery_from(level, r))
        })
    }

    /// Evaluate every interval until `stop` completes; the controller afterwards.
    ///
    /// The first evaluation runs at once. A late tick (a busy runtime) delays the
    /// following ones instead of bursting to catch up.
    pub async fn run_until(mut self, stop: impl Future<Output = ()>) -> Controller {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                biased;
                () = &mut stop => return self,
                _ = ticker.tick() => {
                    self.evaluate_once(Instant::now());
                }
            }
        }
    }

    /// Run on the current tokio runtime, evaluating every interval, until the returned
    /// task is stopped or dropped.
    pub fn spawn(self) -> ControllerTask {
        let handle = self.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let join = tokio::spawn(self.run_until(async move {
            // A dropped sender stops the loop as well as a sent one.
            let _ = stopped.await;
        }));
        ControllerTask {
            handle,
            stop: Some(stop),
            join,
        }
    }
}

/// A controller running on its own task ([`Controller::spawn`]).
///
/// Dropping it stops the controller (the level stays where it was); keep it for as long as
/// degradation should run. [`DegradationHandle`]s stay valid after it stops.
#[derive(Debug)]
#[must_use = "dropping the task stops the controller"]
pub struct ControllerTask {
    handle: DegradationHandle,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<Controller>,
}

impl ControllerTask {
    /// A handle on the running controller.
    pub fn handle(&self) -> DegradationHandle {
        self.handle.clone()
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Stop evaluating and wait for the task; the controller, to inspect or run again.
    /// Fails only if the task panicked (a trigger panicked) or the runtime is shutting
    /// down.
    pub async fn stop(mut self) -> Result<Controller, JoinError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.join).await
    }
}
