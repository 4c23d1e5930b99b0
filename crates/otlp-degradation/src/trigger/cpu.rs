//! Process CPU use as a share of the cores the process may use.

use std::time::Duration;

use tokio::time::Instant;

use super::{FailureLog, Thresholds, Trigger};
use crate::resources::{CpuLimit, Resources};

/// CPU used by this process between two reads, as a share of the cores available to it:
/// the cgroup `cpu.max` quota in a container, the host's cores otherwise. 1.0 means every
/// available core was busy for the whole interval.
///
/// The first read only takes a baseline and gives `None`. The limit is read again on
/// every read, so a container resized in place is followed; if it cannot be read the last
/// known limit is used.
#[derive(Debug)]
pub struct CpuTrigger {
    name: String,
    resources: Resources,
    previous: Option<(Instant, Duration)>,
    limit: Option<CpuLimit>,
    failures: FailureLog,
}

impl CpuTrigger {
    /// A trigger named `cpu` reading through `resources`.
    pub fn new(resources: Resources) -> CpuTrigger {
        CpuTrigger {
            name: "cpu".to_owned(),
            resources,
            previous: None,
            limit: None,
            failures: FailureLog::default(),
        }
    }

    /// Rename the trigger (names are unique within one controller).
    pub fn with_name(mut self, name: impl Into<String>) -> CpuTrigger {
        self.name = name.into();
        self
    }

    /// The last limit read, if any.
    pub fn limit(&self) -> Option<CpuLimit> {
        self.limit
    }

    /// Defaults: escalate at 0.75, 0.85, 0.92, 0.97 of the available cores, recover 10
    /// points lower (0.65, 0.75, 0.82, 0.87).
    ///
    /// Why: below about 75 % busy, queueing delay on the cores stays small, so there is
    /// nothing to gain from dropping data. Past it delay grows quickly (and a cgroup quota
    /// starts throttling whole periods), so each step sheds more before the process is
    /// pinned at 100 %, where it can no longer keep up with its own receive path. The
    /// 10-point gap is larger than the second-to-second noise of a busy process, so the
    /// level holds while load is steady.
    pub const fn default_thresholds() -> Thresholds {
        Thresholds::new([0.75, 0.85, 0.92, 0.97], [0.65, 0.75, 0.82, 0.87])
    }
}

impl Trigger for CpuTrigger {
    fn name(&self) -> &str {
        &self.name
    }

    fn read(&mut self, now: Instant) -> Option<f64> {
        let used = match self.resources.cpu_time() {
            Ok(used) => used,
            Err(e) => {
                self.failures.failed(&self.name, &e);
                return None;
            }
        };
        match self.resources.cpu_limit() {
            Ok(limit) => self.limit = Some(limit),
            Err(e) if self.limit.is_none() => {
                self.failures.failed(&self.name, &e);
                return None;
            }
            // Keep the last known limit: it rarely changes.
            Err(e) => {
                tracing::debug!(trigger = %self.name, error = %e, "cpu limit unreadable, using the last one")
            }
        }
        self.failures.succeeded(&self.name);
        let previous = self.previous.replace((now, used));
        let (then, used_then) = previous?;
        let wall = now.saturating_duration_since(then).as_secs_f64();
        let cores = self.limit?.cores;
        if wall <= 0.0 || cores <= 0.0 {
            return None;
        }
        let cpu = used.saturating_sub(used_then).as_secs_f64();
        Some(cpu / wall / cores)
    }
}
