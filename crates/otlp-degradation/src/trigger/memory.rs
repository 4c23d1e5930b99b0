//! Memory use as a share of the memory limit.

use tokio::time::Instant;

use super::{FailureLog, Thresholds, Trigger};
use crate::resources::{MemoryReading, Resources};

/// Memory used as a share of the limit: the cgroup's working set against `memory.max` in
/// a container, the process's RSS against the host's memory otherwise (see
/// [`MemoryReading::used_bytes`]). An absolute limit can replace either with
/// [`with_limit_bytes`](MemoryTrigger::with_limit_bytes).
#[derive(Debug)]
pub struct MemoryTrigger {
    name: String,
    resources: Resources,
    limit_bytes: Option<u64>,
    last: Option<MemoryReading>,
    failures: FailureLog,
}

impl MemoryTrigger {
    /// A trigger named `memory` reading through `resources`.
    pub fn new(resources: Resources) -> MemoryTrigger {
        MemoryTrigger {
            name: "memory".to_owned(),
            resources,
            limit_bytes: None,
            last: None,
            failures: FailureLog::default(),
        }
    }

    /// Rename the trigger (names are unique within one controller).
    pub fn with_name(mut self, name: impl Into<String>) -> MemoryTrigger {
        self.name = name.into();
        self
    }

    /// Compare this process's RSS with `bytes` instead of the cgroup or host limit (for a
    /// process that shares its container and must stay within its own budget). Zero is
    /// ignored.
    pub fn with_limit_bytes(mut self, bytes: u64) -> MemoryTrigger {
        self.limit_bytes = (bytes > 0).then_some(bytes);
        self
    }

    /// The last reading, if any.
    pub fn last_reading(&self) -> Option<MemoryReading> {
        self.last
    }

    /// Defaults: escalate at 0.60, 0.70, 0.80, 0.90 of the limit, recover 5 points lower
    /// (0.55, 0.65, 0.75, 0.85).
    ///
    /// Why: memory must be cut before the memory limiter starts refusing data and long
    /// before the OOM killer acts, so degradation starts at 60 %, leaving room for the
    /// spike of one large batch. The gap is smaller than for CPU because memory falls
    /// slowly: allocators keep freed pages, so a wide gap could hold a level long after
    /// the load went away.
    pub const fn default_thresholds() -> Thresholds {
        Thresholds::new([0.60, 0.70, 0.80, 0.90], [0.55, 0.65, 0.75, 0.85])
    }
}

impl Trigger for MemoryTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, _now: Instant) -> Option<f64> {
        if let Some(limit) = self.limit_bytes {
            return match self.resources.rss_bytes() {
                Ok(rss) => {
                    self.failures.succeeded(&self.name);
                    Some(rss as f64 / limit as f64)
                }
                Err(e) => {
                    self.failures.failed(&self.name, &e);
                    None
                }
            };
        }
        match self.resources.memory() {
            Ok(reading) => {
                self.failures.succeeded(&self.name);
                self.last = Some(reading);
                Some(reading.share())
            }
            Err(e) => {
                self.failures.failed(&self.name, &e);
                None
            }
        }
    }
}
