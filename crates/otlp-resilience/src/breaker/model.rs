//! The breaker with its atomics chosen by the caller, for model checking.
//!
//! [`ModelBreaker<A>`] runs exactly the code of [`CircuitBreaker`](super::CircuitBreaker)
//! (same state machine, window and permits), with `A` as its atomics. The public breaker
//! is `ModelBreaker<std::sync::atomic::AtomicU64>` in all but name;
//! `tests/breaker_loom.rs` instantiates it with `loom`'s atomics so `loom` explores
//! every interleaving of the state machine and the window. Not a stable API.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use super::sync::AtomicCell;
use super::{Admission, BreakerOpen, BreakerSnapshot, BreakerState, CircuitBreakerConfig, Inner};
use super::{Kind, TransitionReason, nanos, state};
use crate::classify::Outcome;

/// A circuit breaker over the atomics `A` (see the module docs).
pub struct ModelBreaker<A> {
    inner: Arc<Inner<A>>,
}

impl<A> Clone for ModelBreaker<A> {
    fn clone(&self) -> Self {
        ModelBreaker {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<A: AtomicCell> fmt::Debug for ModelBreaker<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl<A: AtomicCell> ModelBreaker<A> {
    /// Like [`CircuitBreaker::new`](super::CircuitBreaker::new), always with the lazy
    /// open-to-half-open check (the automatic half-open timer is a tokio task, outside
    /// the model).
    pub fn new(mut config: CircuitBreakerConfig) -> Self {
        config.automatic_half_open = false;
        ModelBreaker {
            inner: Inner::new(config),
        }
    }

    /// Like [`CircuitBreaker::try_acquire`](super::CircuitBreaker::try_acquire).
    pub fn try_acquire(&self) -> Result<ModelPermit<'_, A>, BreakerOpen> {
        self.inner.acquire().map(|admission| ModelPermit {
            inner: &self.inner,
            admission,
            finished: false,
        })
    }

    /// Like [`CircuitBreaker::state`](super::CircuitBreaker::state).
    pub fn state(&self) -> BreakerState {
        self.inner.state()
    }

    /// Like [`CircuitBreaker::snapshot`](super::CircuitBreaker::snapshot).
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.inner.snapshot()
    }

    /// Like [`CircuitBreaker::force_open`](super::CircuitBreaker::force_open).
    pub fn force_open(&self) {
        self.inner
            .operator_transition(state::FORCED_OPEN, TransitionReason::Forced);
    }

    /// Like [`CircuitBreaker::reset`](super::CircuitBreaker::reset).
    pub fn reset(&self) {
        self.inner
            .operator_transition(state::CLOSED, TransitionReason::Reset);
    }
}

/// Like [`Permit`](super::Permit).
#[must_use = "dropping a permit counts the call as cancelled"]
pub struct ModelPermit<'a, A: AtomicCell> {
    inner: &'a Inner<A>,
    admission: Admission,
    finished: bool,
}

impl<A: AtomicCell> ModelPermit<'_, A> {
    /// Like [`Permit::record`](super::Permit::record).
    pub fn record(mut self, outcome: Outcome, elapsed: Duration) {
        self.finished = true;
        self.inner
            .finish(&self.admission, outcome, Some(nanos(elapsed)));
    }

    /// Like [`Permit::is_probe`](super::Permit::is_probe).
    pub fn is_probe(&self) -> bool {
        self.admission.kind() == Kind::Probe
    }
}

impl<A: AtomicCell> Drop for ModelPermit<'_, A> {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.cancel(&self.admission);
        }
    }
}

impl<A: AtomicCell> fmt::Debug for ModelPermit<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelPermit")
            .field("kind", &self.admission.kind())
            .finish()
    }
}
