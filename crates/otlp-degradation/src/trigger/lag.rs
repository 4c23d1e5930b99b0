//! Tokio scheduling lag: how late a probe task wakes from a timer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::{Thresholds, Trigger, TriggerConfigError};

/// Samples kept: enough for the default window at the default period.
const MAX_SAMPLES: usize = 128;

/// A task that sleeps for `period` again and again and records how late it wakes. When
/// the runtime's workers are all busy (or blocked), timers fire late and so does the
/// probe: the lag is how long any task waits before it runs.
///
/// Cheap to clone; the probe task stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LagProbe {
    inner: Arc<LagInner>,
}

#[derive(Debug)]
struct LagInner {
    period: Duration,
    window: Duration,
    alpha: f64,
    state: Mutex<LagState>,
    task: Mutex<Option<AbortHandle>>,
}

#[derive(Debug, Default)]
struct LagState {
    /// When each lag was measured, and the lag.
    samples: VecDeque<(Instant, Duration)>,
    /// EWMA in milliseconds.
    ewma_ms: Option<f64>,
}

impl Drop for LagInner {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

impl LagProbe {
    /// Start a probe on the current tokio runtime that wakes every `period` (100 ms is a
    /// good choice: fine enough to see stalls, negligible cost), keeping lags measured
    /// within the last `window` (10 s is a good choice). The EWMA weighs each new lag
    /// 0.3.
    ///
    /// Must be called from within a tokio runtime; the probe measures the runtime it runs
    /// on.
    pub fn spawn(period: Duration, window: Duration) -> Result<LagProbe, TriggerConfigError> {
        if period.is_zero() {
            return Err(TriggerConfigError {
                setting: "lag probe period",
                value: "0s".to_owned(),
                expected: "a duration above zero (100 ms is a good choice)",
            });
        }
        if window < period {
            return Err(TriggerConfigError {
                setting: "lag probe window",
                value: format!("{window:?}"),
                expected: "at least one probe period",
            });
        }
        let inner = Arc::new(LagInner {
            period,
            window,
            alpha: 0.3,
            state: Mutex::new(LagState::default()),
            task: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let task = tokio::spawn(probe(weak, period));
        *inner.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task.abort_handle());
        Ok(LagProbe { inner })
    }

    /// The probe period.
    pub fn period(&self) -> Duration {
        self.inner.period
    }

    /// The largest lag measured within the window ending at `now`, or `None` if none was.
    pub fn max(&self, now: Instant) -> Option<Duration> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state
            .samples
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= self.inner.window)
            .map(|&(_, lag)| lag)
            .max()
    }

    /// The EWMA of the lags, or `None` when no lag was measured within the window ending
    /// at `now` (the probe has not woken yet, or its runtime is gone).
    pub fn ewma(&self, now: Instant) -> Option<Duration> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let &(last, _) = state.samples.back()?;
        if now.saturating_duration_since(last) > self.inner.window {
            return None;
        }
        state
            .ewma_ms
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
    }

    /// Lags measured so far (up to the last 128).
    pub fn samples(&self) -> Vec<Duration> {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.samples.iter().map(|&(_, lag)| lag).collect()
    }

    fn record(inner: &LagInner, at: Instant, lag: Duration) {
        let mut state = inner.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.samples.len() == MAX_SAMPLES {
            state.samples.pop_front();
        }
        state.samples.push_back((at, lag));
        let ms = lag.as_secs_f64() * 1000.0;
        state.ewma_ms = Some(match state.ewma_ms {
            Some(old) => old + inner.alpha * (ms - old),
            None => ms,
        });
    }
}

async fn probe(inner: Weak<LagInner>, period: Duration) {
    loop {
        let deadline = Instant::now() + period;
        tokio::time::sleep_until(deadline).await;
        let woke = Instant::now();
        let Some(inner) = inner.upgrade() else {
            return;
        };
        LagProbe::record(&inner, woke, woke.saturating_duration_since(deadline));
    }
}

/// Which figure of a [`LagProbe`] a [`LagTrigger`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagStat {
    /// The EWMA (the default): sustained lag from a saturated runtime, not one stall.
    #[default]
    Ewma,
    /// The largest lag in the window: reacts to a single long stall.
    Max,
}

/// Tokio scheduling lag in milliseconds, from a [`LagProbe`].
#[derive(Debug)]
pub struct LagTrigger {
    name: String,
    probe: LagProbe,
    stat: LagStat,
}

impl LagTrigger {
    /// A trigger named `scheduler_lag` reporting the EWMA of `probe`.
    pub fn new(probe: LagProbe) -> LagTrigger {
        LagTrigger {
            name: "scheduler_lag".to_owned(),
            probe,
            stat: LagStat::Ewma,
        }
    }

    /// Report `stat` instead of the EWMA.
    pub fn with_stat(mut self, stat: LagStat) -> LagTrigger {
        self.stat = stat;
        self
    }

    /// Rename the trigger (names are unique within one controller).
    pub fn with_name(mut self, name: impl Into<String>) -> LagTrigger {
        self.name = name.into();
        self
    }

    /// Defaults, in milliseconds: escalate at 20, 50, 100, 250, recover below 10, 25, 50,
    /// 150.
    ///
    /// Why: an idle runtime wakes a timer within about a millisecond, and on a shared
    /// machine a few milliseconds are noise. 20 ms of sustained lag means ready tasks wait
    /// for a worker, so every request takes that much longer; at 100 ms receivers begin to
    /// time out and keepalives are late; at 250 ms clients retry and add load. Recovery
    /// waits for about half the lag.
    pub const fn default_thresholds() -> Thresholds {
        Thresholds::new([20.0, 50.0, 100.0, 250.0], [10.0, 25.0, 50.0, 150.0])
    }
}

impl Trigger for LagTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, now: Instant) -> Option<f64> {
        let lag = match self.stat {
            LagStat::Ewma => self.probe.ewma(now),
            LagStat::Max => self.probe.max(now),
        }?;
        Some(lag.as_secs_f64() * 1000.0)
    }
}
