//! Queue fill ratio, from gauges the pipeline keeps up to date.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::time::Instant;

use super::{Thresholds, Trigger};

/// How full a queue is: items (or bytes, the unit is the queue's choice) used against a
/// capacity. The queue updates it; the [`QueueTrigger`] reads it. Cheap to clone (one
/// `Arc`); updates are single relaxed atomic operations.
#[derive(Debug, Clone, Default)]
pub struct QueueGauge {
    inner: Arc<GaugeInner>,
}

#[derive(Debug, Default)]
struct GaugeInner {
    used: AtomicU64,
    capacity: AtomicU64,
}

impl QueueGauge {
    /// A gauge for a queue holding at most `capacity`, empty.
    pub fn new(capacity: u64) -> QueueGauge {
        let gauge = QueueGauge::default();
        gauge.set_capacity(capacity);
        gauge
    }

    /// Change the capacity.
    pub fn set_capacity(&self, capacity: u64) {
        self.inner.capacity.store(capacity, Relaxed);
    }

    /// Set what is in the queue.
    pub fn set_used(&self, used: u64) {
        self.inner.used.store(used, Relaxed);
    }

    /// `n` entered the queue.
    pub fn add(&self, n: u64) {
        self.inner.used.fetch_add(n, Relaxed);
    }

    /// `n` left the queue (never below zero).
    pub fn sub(&self, n: u64) {
        // An update racing a `set_used` could otherwise wrap to a huge fill.
        let _ = self
            .inner
            .used
            .fetch_update(Relaxed, Relaxed, |used| Some(used.saturating_sub(n)));
    }

    /// What is in the queue.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Relaxed)
    }

    /// The capacity.
    pub fn capacity(&self) -> u64 {
        self.inner.capacity.load(Relaxed)
    }

    /// `used / capacity`, or `None` when the capacity is zero (not configured yet).
    pub fn fill_ratio(&self) -> Option<f64> {
        let capacity = self.capacity();
        (capacity > 0).then(|| self.used() as f64 / capacity as f64)
    }
}

/// The fill ratio of the fullest of its queues (one exporter falling behind is enough to
/// degrade: its queue is what overflows first).
#[derive(Debug)]
pub struct QueueTrigger {
    name: String,
    gauges: Vec<QueueGauge>,
}

impl QueueTrigger {
    /// A trigger named `queue` watching `gauge`.
    pub fn new(gauge: QueueGauge) -> QueueTrigger {
        QueueTrigger {
            name: "queue".to_owned(),
            gauges: vec![gauge],
        }
    }

    /// Watch one more queue.
    pub fn with_gauge(mut self, gauge: QueueGauge) -> QueueTrigger {
        self.gauges.push(gauge);
        self
    }

    /// Rename the trigger (names are unique within one controller).
    pub fn with_name(mut self, name: impl Into<String>) -> QueueTrigger {
        self.name = name.into();
        self
    }

    /// Defaults: escalate at 0.50, 0.70, 0.85, 0.95 full, recover at 0.30, 0.50, 0.70, 0.85.
    ///
    /// Why: a queue that is half full means export is falling behind intake, the earliest
    /// sign of overload the pipeline has, so degradation starts there to keep the last
    /// part of the queue for bursts. Queues drain fast once intake drops, so the recovery
    /// gap can be wide (20 points for the lower levels) without holding a level for long.
    pub const fn default_thresholds() -> Thresholds {
        Thresholds::new([0.50, 0.70, 0.85, 0.95], [0.30, 0.50, 0.70, 0.85])
    }
}

impl Trigger for QueueTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, _now: Instant) -> Option<f64> {
        self.gauges
            .iter()
            .filter_map(QueueGauge::fill_ratio)
            .reduce(f64::max)
    }
}
