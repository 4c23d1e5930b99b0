//! Export latency: a tracker exporters record into, and the trigger that reads it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use tokio::time::Instant;

use super::{Thresholds, Trigger, TriggerConfigError};

/// Settings of a [`LatencyTracker`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyConfig {
    /// Samples kept for the percentile (the most recent ones). Default 1024: enough for a
    /// stable p99 at a few hundred exports a second, small enough to sort every evaluation.
    pub capacity: usize,
    /// Weight of a new sample in the EWMA, in (0, 1]. Default 0.2: about the last ten
    /// exports shape the average, so one slow export does not move it much.
    pub alpha: f64,
    /// Samples older than this are ignored, and with none left the reading is `None`.
    /// Default 30 s: when exports stop (nothing to send, or the level already cut the
    /// volume), old slow samples must not hold the level up.
    pub max_age: Duration,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig {
            capacity: 1024,
            alpha: 0.2,
            max_age: Duration::from_secs(30),
        }
    }
}

/// Export latencies, recorded by exporters and read by a [`LatencyTrigger`]: an EWMA and
/// a percentile over a ring of recent samples.
///
/// Recording is lock-free (a few relaxed atomic operations), so exporters on any thread
/// can record every export. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct LatencyTracker {
    inner: Arc<LatencyInner>,
}

#[derive(Debug)]
struct LatencyInner {
    epoch: Instant,
    alpha: f64,
    max_age_ms: u64,
    /// Microseconds of each sample.
    micros: Box<[AtomicU64]>,
    /// Milliseconds since `epoch` plus one when each sample was recorded (0 = empty slot).
    at: Box<[AtomicU64]>,
    next: AtomicU64,
    /// EWMA in microseconds, as `f64` bits.
    ewma_bits: AtomicU64,
    /// When the EWMA was last updated, as in `at` (0 = never).
    ewma_at: AtomicU64,
}

impl Default for LatencyTracker {
    fn default() -> Self {
        LatencyTracker::build(LatencyConfig::default())
    }
}

impl LatencyTracker {
    /// A tracker with the default [`LatencyConfig`].
    pub fn new() -> LatencyTracker {
        LatencyTracker::default()
    }

    /// A tracker with `config`; an error names the setting out of range.
    pub fn with_config(config: LatencyConfig) -> Result<LatencyTracker, TriggerConfigError> {
        if config.capacity == 0 {
            return Err(TriggerConfigError {
                setting: "latency capacity",
                value: "0".to_owned(),
                expected: "keep at least one sample",
            });
        }
        if !(config.alpha > 0.0 && config.alpha <= 1.0) {
            return Err(TriggerConfigError {
                setting: "latency alpha",
                value: config.alpha.to_string(),
                expected: "a weight above 0 and at most 1",
            });
        }
        if config.max_age.is_zero() {
            return Err(TriggerConfigError {
                setting: "latency max_age",
                value: "0s".to_owned(),
                expected: "a duration above zero",
            });
        }
        Ok(LatencyTracker::build(config))
    }

    fn build(config: LatencyConfig) -> LatencyTracker {
        LatencyTracker {
            inner: Arc::new(LatencyInner {
                epoch: Instant::now(),
                alpha: config.alpha,
                max_age_ms: u64::try_from(config.max_age.as_millis()).unwrap_or(u64::MAX),
                micros: (0..config.capacity).map(|_| AtomicU64::new(0)).collect(),
                at: (0..config.capacity).map(|_| AtomicU64::new(0)).collect(),
                next: AtomicU64::new(0),
                ewma_bits: AtomicU64::new(0),
                ewma_at: AtomicU64::new(0),
            }),
        }
    }

    /// Record one export that took `latency`, now.
    pub fn record(&self, latency: Duration) {
        self.record_at(latency, Instant::now());
    }

    /// Record one export that took `latency`, finished at `now`.
    pub fn record_at(&self, latency: Duration, now: Instant) {
        let inner = &*self.inner;
        let at = inner.stamp(now);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let slot = (inner.next.fetch_add(1, Relaxed) % inner.micros.len() as u64) as usize;
        // A reader racing this write may pair the new latency with the old time or the
        // other way round; either is one plausible sample, so no lock is worth it.
        inner.micros[slot].store(micros, Relaxed);
        inner.at[slot].store(at, Relaxed);

        let sample = micros as f64;
        let fresh = inner.ewma_at.swap(at, Relaxed);
        let _ = inner.ewma_bits.fetch_update(Relaxed, Relaxed, |bits| {
            let old = f64::from_bits(bits);
            // The first sample, or the first after a silence longer than max_age, starts
            // the average afresh rather than blending with stale history.
            let restart = fresh == 0 || at.saturating_sub(fresh) > inner.max_age_ms;
            let new = if restart {
                sample
            } else {
                old + inner.alpha * (sample - old)
            };
            Some(new.to_bits())
        });
    }

    /// The EWMA of the latencies, or `None` when nothing was recorded within `max_age`.
    pub fn ewma(&self, now: Instant) -> Option<Duration> {
        let inner = &*self.inner;
        let at = inner.ewma_at.load(Relaxed);
        if at == 0 || inner.stamp(now).saturating_sub(at) > inner.max_age_ms {
            return None;
        }
        let micros = f64::from_bits(inner.ewma_bits.load(Relaxed));
        Some(Duration::from_secs_f64(micros.max(0.0) / 1e6))
    }

    /// The `quantile` (0.0 ..= 1.0, e.g. 0.99) of the samples recorded within `max_age`,
    /// by nearest rank; `None` when there are none.
    pub fn percentile(&self, quantile: f64, now: Instant) -> Option<Duration> {
        let inner = &*self.inner;
        let now = inner.stamp(now);
        let mut samples: Vec<u64> = inner
            .at
            .iter()
            .zip(inner.micros.iter())
            .filter_map(|(at, micros)| {
                let at = at.load(Relaxed);
                (at != 0 && now.saturating_sub(at) <= inner.max_age_ms)
                    .then(|| micros.load(Relaxed))
            })
            .collect();
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let quantile = if quantile.is_nan() {
            1.0
        } else {
            quantile.clamp(0.0, 1.0)
        };
        let rank = (quantile * samples.len() as f64).ceil() as usize;
        let micros = samples[rank.clamp(1, samples.len()) - 1];
        Some(Duration::from_micros(micros))
    }

    /// Samples recorded since the tracker was made.
    pub fn recorded(&self) -> u64 {
        self.inner.next.load(Relaxed)
    }
}

impl LatencyInner {
    fn stamp(&self, now: Instant) -> u64 {
        let ms = u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX - 1);
        ms + 1
    }
}

/// Which figure of a [`LatencyTracker`] a [`LatencyTrigger`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyStat {
    /// The EWMA: follows sustained slowness, ignores single slow exports.
    Ewma,
    /// A percentile such as 0.99: reacts when a tail of exports is slow.
    Percentile(f64),
}

impl Default for LatencyStat {
    /// The 99th percentile.
    fn default() -> Self {
        LatencyStat::Percentile(0.99)
    }
}

/// Export latency in milliseconds, from a [`LatencyTracker`].
#[derive(Debug)]
pub struct LatencyTrigger {
    name: String,
    tracker: LatencyTracker,
    stat: LatencyStat,
}

impl LatencyTrigger {
    /// A trigger named `export_latency` reporting the p99 of `tracker`.
    pub fn new(tracker: LatencyTracker) -> LatencyTrigger {
        LatencyTrigger {
            name: "export_latency".to_owned(),
            tracker,
            stat: LatencyStat::default(),
        }
    }

    /// Report `stat` instead of the p99.
    pub fn with_stat(mut self, stat: LatencyStat) -> LatencyTrigger {
        self.stat = stat;
        self
    }

    /// Rename the trigger (names are unique within one controller).
    pub fn with_name(mut self, name: impl Into<String>) -> LatencyTrigger {
        self.name = name.into();
        self
    }

    /// Defaults, in milliseconds: escalate at 1000, 2000, 4000, 8000, recover below half
    /// of each (500, 1000, 2000, 4000).
    ///
    /// Why: an export to a healthy collector takes tens of milliseconds; a p99 of a second
    /// means the upstream is struggling and more volume only makes it worse. 8 s is close
    /// to the usual 10 s export timeout, past which exports fail and are retried, which
    /// doubles the load. Latency swings widely, so recovery waits until it has halved.
    /// Tune these to the upstream: they are the thresholds most worth changing.
    pub const fn default_thresholds() -> Thresholds {
        Thresholds::new(
            [1000.0, 2000.0, 4000.0, 8000.0],
            [500.0, 1000.0, 2000.0, 4000.0],
        )
    }
}

impl Trigger for LatencyTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, now: Instant) -> Option<f64> {
        let latency = match self.stat {
            LatencyStat::Ewma => self.tracker.ewma(now),
            LatencyStat::Percentile(q) => self.tracker.percentile(q, now),
        }?;
        Some(latency.as_secs_f64() * 1000.0)
    }
}
