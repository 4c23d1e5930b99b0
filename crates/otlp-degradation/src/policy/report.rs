//! What one `apply` did, and running totals of it.

use std::sync::atomic::{AtomicU64, Ordering};

use otlp_core::PartialSuccess;

use crate::level::DegradationLevel;

/// Exactly what one `apply` did to a request. Items are spans, metric data points or log
/// records; `kept + dropped()` is the number of items that came in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Items left in the request.
    pub kept: u64,
    /// Of `kept`, items a protection rule kept (status ERROR, a critical service, a log
    /// at or above the keep severity) at a level that drops data. Levels that drop
    /// nothing do not look, and report 0.
    pub kept_protected: u64,
    /// Items the trace-id (or record-hash) sampler dropped.
    pub dropped_sampled: u64,
    /// Log records dropped for a severity below the level's `drop_logs_below`.
    pub dropped_severity: u64,
    /// Items dropped because the level keeps errors (and protected items) only.
    pub dropped_emergency: u64,
    /// Attributes removed by the deny and verbose lists.
    pub attributes_removed: u64,
    /// Attribute values cut to the maximum length (nested values count one each).
    pub values_truncated: u64,
    /// Scope entries removed because dropping left them without items.
    pub scopes_removed: u64,
    /// Resource entries removed because dropping left them without items.
    pub resources_removed: u64,
}

impl ApplyReport {
    /// A report for a request passed through untouched.
    pub fn untouched(items: u64) -> ApplyReport {
        ApplyReport {
            kept: items,
            ..ApplyReport::default()
        }
    }

    /// Items dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_sampled + self.dropped_severity + self.dropped_emergency
    }

    /// Items that came in: `kept + dropped()`.
    pub fn received(&self) -> u64 {
        self.kept + self.dropped()
    }

    /// Whether the request was changed at all (items dropped, attributes removed or cut).
    pub fn changed(&self) -> bool {
        self.dropped() > 0 || self.attributes_removed > 0 || self.values_truncated > 0
    }

    /// Add another report (e.g. of the next request) to this one.
    pub fn merge(&mut self, other: &ApplyReport) {
        self.kept += other.kept;
        self.kept_protected += other.kept_protected;
        self.dropped_sampled += other.dropped_sampled;
        self.dropped_severity += other.dropped_severity;
        self.dropped_emergency += other.dropped_emergency;
        self.attributes_removed += other.attributes_removed;
        self.values_truncated += other.values_truncated;
        self.scopes_removed += other.scopes_removed;
        self.resources_removed += other.resources_removed;
    }

    /// The partial-success answer for the client: `None` when nothing was dropped,
    /// otherwise the exact number rejected and why. Removed attributes and cut values are
    /// not rejections (the items were accepted).
    ///
    /// ```
    /// use otlp_degradation::policy::ApplyReport;
    /// use otlp_degradation::DegradationLevel;
    ///
    /// let report = ApplyReport { kept: 10, dropped_sampled: 85, dropped_emergency: 5, ..Default::default() };
    /// let partial = report.partial_success(DegradationLevel::Heavy).unwrap();
    /// assert_eq!(partial.rejected, 90);
    /// assert!(partial.message.contains("heavy"));
    /// assert_eq!(ApplyReport::untouched(3).partial_success(DegradationLevel::Heavy), None);
    /// ```
    pub fn partial_success(&self, level: DegradationLevel) -> Option<PartialSuccess> {
        let rejected = self.dropped();
        if rejected == 0 {
            return None;
        }
        let mut reasons = Vec::with_capacity(3);
        for (count, reason) in [
            (self.dropped_sampled, "sampled out"),
            (self.dropped_severity, "below the severity kept"),
            (self.dropped_emergency, "not errors"),
        ] {
            if count > 0 {
                reasons.push(format!("{count} {reason}"));
            }
        }
        Some(PartialSuccess {
            rejected,
            message: format!(
                "gateway under load (degradation level {level}) dropped {rejected} items on purpose: {}; do not retry them",
                reasons.join(", ")
            ),
        })
    }
}

/// Running totals of [`ApplyReport`]s, safe to update from many tasks (relaxed atomics;
/// each field is exact, a snapshot taken during updates may mix two requests).
#[derive(Debug, Default)]
pub struct ApplyCounters {
    kept: AtomicU64,
    kept_protected: AtomicU64,
    dropped_sampled: AtomicU64,
    dropped_severity: AtomicU64,
    dropped_emergency: AtomicU64,
    attributes_removed: AtomicU64,
    values_truncated: AtomicU64,
    scopes_removed: AtomicU64,
    resources_removed: AtomicU64,
}

impl ApplyCounters {
    /// Zeroed counters.
    pub fn new() -> ApplyCounters {
        ApplyCounters::default()
    }

    /// Add one report.
    pub fn record(&self, report: &ApplyReport) {
        for (counter, value) in [
            (&self.kept, report.kept),
            (&self.kept_protected, report.kept_protected),
            (&self.dropped_sampled, report.dropped_sampled),
            (&self.dropped_severity, report.dropped_severity),
            (&self.dropped_emergency, report.dropped_emergency),
            (&self.attributes_removed, report.attributes_removed),
            (&self.values_truncated, report.values_truncated),
            (&self.scopes_removed, report.scopes_removed),
            (&self.resources_removed, report.resources_removed),
        ] {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        }
    }

    /// The totals so far.
    pub fn snapshot(&self) -> ApplyReport {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ApplyReport {
            kept: load(&self.kept),
            kept_protected: load(&self.kept_protected),
            dropped_sampled: load(&self.dropped_sampled),
            dropped_severity: load(&self.dropped_severity),
            dropped_emergency: load(&self.dropped_emergency),
            attributes_removed: load(&self.attributes_removed),
            values_truncated: load(&self.values_truncated),
            scopes_removed: load(&self.scopes_removed),
            resources_removed: load(&self.resources_removed),
        }
    }
}
