//! Export error rate over a sliding time window.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::{Thresholds, Trigger, TriggerConfigError};

/// Settings of an [`ErrorRateTracker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRateConfig {
    /// How far back outcomes count. Default 30 s: long enough to hold tens of exports at
    /// the default batch wait, short enough that the rate falls soon after the upstream
    /// recovers.
    pub window: Duration,
    /// The window moves in this many steps. Default 10 (3 s each): outcomes leave the
    /// window a step at a time instead of all at once.
    pub buckets: usize,
    /// Fewer outcomes than this in the window give no reading. Default 20: with 2 exports,
    /// 1 failure would read as 50 % and jump straight to a high level.
    pub min_samples: u64,
}

impl Default for ErrorRateConfig {
    fn default() -> Self {
        ErrorRateConfig {
            window: Duration::from_secs(30),
            buckets: 10,
            min_samples: 20,
        }
    }
}

/// Export outcomes, recorded by exporters and read by an [`ErrorRateTrigger`]: the share
/// of failed exports within a sliding window.
///
/// Exporters record once per export (not per item), so a short mutex is cheap here and
/// keeps the counts exact. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct ErrorRateTracker {
    inner: Arc<ErrorInner>,
}

#[derive(Debug)]
struct ErrorInner {
    epoch: Instant,
    bucket_len: Duration,
    min_samples: u64,
    buckets: Mutex<Vec<Bucket>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which step since `epoch` this bucket counts (`u64::MAX` = unused).
    step: u64,
    ok: u64,
    failed: u64,
}

impl Default for ErrorRateTracker {
    fn default() -> Self {
        ErrorRateTracker::build(ErrorRateConfig::default())
    }
}

impl ErrorRateTracker {
    /// A tracker with the default [`ErrorRateConfig`].
    pub fn new() -> ErrorRateTracker {
        ErrorRateTracker::default()
    }

    /// A tracker with `config`; an error names the setting out of range.
    pub fn with_config(config: ErrorRateConfig) -> Result<ErrorRateTracker, TriggerConfigError> {
        if config.buckets == 0 {
            return Err(TriggerConfigError {
                setting: "error rate buckets",
                value: "0".to_owned(),
                expected: "at least 1",
            });
        }
        if config.window.is_zero()
            || config.window / (config.buckets as u32).max(1) < Duration::from_millis(1)
        {
            return Err(TriggerConfigError {
                setting: "error rate window",
                value: format!("{:?}", config.window),
                expected: "at least 1 ms per bucket",
            });
        }
        Ok(ErrorRateTracker::build(config))
    }

    fn build(config: ErrorRateConfig) -> ErrorRateTracker {
        let buckets = config.buckets.max(1);
        ErrorRateTracker {
            inner: Arc::new(ErrorInner {
                epoch: Instant::now(),
                bucket_len: (config.window / u32::try_from(buckets).unwrap_or(u32::MAX))
                    .max(Duration::from_millis(1)),
                min_samples: config.min_samples,
                buckets: Mutex::new(vec![
                    Bucket {
                        step: u64::MAX,
                        ..Bucket::default()
                    };
                    buckets
                ]),
            }),
        }
    }

    /// Record one export, now: `ok` if it succeeded.
    pub fn record(&self, ok: bool) {
        self.record_at(Instant::now(), u64::from(ok), u64::from(!ok));
    }

    /// Record `ok` successful and `failed` failed exports at `now`.
    pub fn record_at(&self, now: Instant, ok: u64, failed: u64) {
        let step = self.inner.step(now);
        let mut buckets = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let len = buckets.len() as u64;
        let bucket = &mut buckets[(step % len) as usize];
        if bucket.step != step {
            *bucket = Bucket {
                step,
                ok: 0,
                failed: 0,
            };
        }
        bucket.ok = bucket.ok.saturating_add(ok);
        bucket.failed = bucket.failed.saturating_add(failed);
    }

    /// Successful and failed exports in the window ending at `now`.
    pub fn counts(&self, now: Instant) -> (u64, u64) {
        let step = self.inner.step(now);
        let buckets = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let len = buckets.len() as u64;
        buckets
            .iter()
            .filter(|b| b.step != u64::MAX && b.step <= step && step - b.step < len)
            .fold((0, 0), |(ok, failed), b| (ok + b.ok, failed + b.failed))
    }

    /// Failed exports as a share of all exports in the window ending at `now`, or `None`
    /// when there were fewer than `min_samples`.
    pub fn rate(&self, now: Instant) -> Option<f64> {
        let (ok, failed) = self.counts(now);
        let total = ok + failed;
        (total > 0 && total >= self.inner.min_samples).then(|| failed as f64 / total as f64)
    }
}

impl ErrorInner {
    fn step(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_nanos() / self.bucket_len.as_nanos()).unwrap_or(u64::MAX - 1)
    }
}

/// Share of failed exports (0.0 ..= 1.0), from an [`ErrorRateTracker`].
#[derive(Debug)]
pub struct ErrorRateTrigger {
    name: String,
    tracker: ErrorRateTracker,
}

impl ErrorRateTrigger {
    /// A trigger named `export_errors` reading `tracker`.
    pub fn new(tracker: ErrorRateTracker) -> ErrorRateTrigger {
        ErrorRateTrigger {
            name: "export_errors".to_owned(),
            tracker,
        }
    }

    /// Rename the trigger (names are unique within one controller).
    pub fn with_name(mut self, name: impl Into<String>) -> ErrorRateTrigger {
        self.name = name.into();
        self
    }

    /// Defaults: escalate at 0.05, 0.15, 0.30, 0.50 of exports failing, recover below
    /// 0.02, 0.08, 0.20, 0.35.
    ///
    /// Why: a few percent of failures (a throttle, a restart of one upstream instance) is
    /// normal and retried; beyond 5 % the upstream is in trouble and every failed export
    /// is retried, adding load, so sending less helps it recover. At half failing the
    /// pipeline keeps only what matters most. Recovery waits until the rate has clearly
    /// fallen, because an upstream that just came back often fails again under the
    /// backlog.
    pub const fn default_thresholds() -> Thresholds {
        Thresholds::new([0.05, 0.15, 0.30, 0.50], [0.02, 0.08, 0.20, 0.35])
    }
}

impl Trigger for ErrorRateTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, now: Instant) -> Option<f64> {
        self.tracker.rate(now)
    }
}
