//! The cheap, cloneable view of a controller that the pipeline and the admin API hold.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::time::Instant;

use super::history::{self, ControlMode, ControllerSnapshot, State, Transition, TransitionReason};
use crate::level::{AtomicLevel, DegradationLevel};

/// What the controller and its handles share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) level: Arc<AtomicLevel>,
    pub(crate) changes: watch::Sender<DegradationLevel>,
    pub(crate) state: Mutex<State>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere while the
        // lock was held leaves nothing half-done worth refusing to read.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Set the level (the caller holds the lock), record, log.
    pub(crate) fn transition(
        &self,
        state: &mut State,
        at: Instant,
        to: DegradationLevel,
        reason: TransitionReason,
    ) {
        let from = self.level.swap(to);
        if from != to {
            self.changes.send_replace(to);
        }
        let transition = Transition {
            at,
            from,
            to,
            reason,
        };
        history::log(&transition);
        state.record(transition);
    }

    /// Apply an operator action: `change` gives the new mode for the current one, or
    /// `None` when the action does not apply (unpin when not pinned...).
    fn operator(&self, change: impl FnOnce(ControlMode) -> Option<ControlMode>) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        let old = state.mode;
        let Some(mode) = change(old).filter(|&mode| mode != old) else {
            return false;
        };
        let (to, reason) = match (old, mode) {
            (_, ControlMode::Pinned(level)) => (level, TransitionReason::Pinned),
            (_, ControlMode::Disabled) => (DegradationLevel::Normal, TransitionReason::Disabled),
            (ControlMode::Disabled, ControlMode::Automatic) => {
                (DegradationLevel::Normal, TransitionReason::Enabled)
            }
            (_, ControlMode::Automatic) => (self.level.load(), TransitionReason::Unpinned),
        };
        state.mode = mode;
        self.transition(&mut state, now, to, reason);
        true
    }
}

/// A cheap, cloneable handle on a [`Controller`](super::Controller): read the level on the
/// hot path, pin or disable it at run time, read history and counters.
///
/// [`level`](Self::level) is one relaxed atomic load; every other method takes a short
/// lock and is meant for operators and metrics, not for every request.
#[derive(Debug, Clone)]
pub struct DegradationHandle {
    pub(crate) shared: Arc<Shared>,
}

impl DegradationHandle {
    /// The current level (lock-free).
    #[inline]
    pub fn level(&self) -> DegradationLevel {
        self.shared.level.load()
    }

    /// The atomic cell the level lives in, for components that only read the level.
    pub fn level_cell(&self) -> Arc<AtomicLevel> {
        Arc::clone(&self.shared.level)
    }

    /// A receiver that sees every level change (for components that act on change, such
    /// as a batcher resizing its batches, rather than reading per request).
    pub fn subscribe(&self) -> watch::Receiver<DegradationLevel> {
        self.shared.changes.subscribe()
    }

    /// Who decides the level now.
    pub fn mode(&self) -> ControlMode {
        self.shared.lock().mode
    }

    /// Hold the level at `level` until [`unpin`](Self::unpin) (or
    /// [`disable`](Self::disable)); takes effect at once. Triggers keep being read.
    /// Returns whether anything changed.
    pub fn pin(&self, level: DegradationLevel) -> bool {
        self.shared.operator(|_| Some(ControlMode::Pinned(level)))
    }

    /// Give control back to the triggers. The level stays where it was pinned and then
    /// follows the usual rules: up at once if a trigger asks for more, down one level per
    /// cool-down otherwise, so unpinning never releases a burst of load. Returns whether
    /// the level was pinned.
    pub fn unpin(&self) -> bool {
        self.shared
            .operator(|old| matches!(old, ControlMode::Pinned(_)).then_some(ControlMode::Automatic))
    }

    /// Turn degradation off: the level becomes `Normal` at once and stays there; triggers
    /// keep being read so the snapshot still shows the load. Returns whether anything
    /// changed.
    pub fn disable(&self) -> bool {
        self.shared.operator(|_| Some(ControlMode::Disabled))
    }

    /// Turn degradation back on after [`disable`](Self::disable), starting from `Normal`.
    /// Returns whether it was disabled.
    pub fn enable(&self) -> bool {
        self.shared
            .operator(|old| (old == ControlMode::Disabled).then_some(ControlMode::Automatic))
    }

    /// The recorded transitions, oldest first (at most the configured history length).
    pub fn history(&self) -> Vec<Transition> {
        self.shared.lock().history.iter().cloned().collect()
    }

    /// Counters and the last readings, with time spent at the current level counted up to
    /// now.
    pub fn snapshot(&self) -> ControllerSnapshot {
        let now = Instant::now();
        let state = self.shared.lock();
        state.snapshot(self.shared.level.load(), now)
    }
}
