//! `/api/status`: everything `/metrics` has, shaped for people and the status page.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use otlp_core::Signal;
use serde::Serialize;

use super::history::HistorySnapshot;
use super::registry::{VERSION, seconds_since};
use super::{AdminState, SourceSummary};
use crate::metrics::{DropReason, ExporterMetrics, GatewayMetrics, QueueMetrics, RefuseReason};

/// The document `/api/status` serves (and `/status` embeds for its first paint).
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The gateway's version.
    pub version: &'static str,
    /// `starting`, `running` or `draining`.
    pub phase: &'static str,
    /// Whether `/readyz` answers 200.
    pub ready: bool,
    /// When the gateway started (UTC, RFC 3339).
    pub started_at: String,
    /// When this report was made (UTC, RFC 3339).
    pub now: String,
    /// Seconds since the start.
    pub uptime_seconds: f64,
    /// The degradation level.
    pub degradation: DegradationStatus,
    /// Resident memory in bytes, as last measured.
    pub memory_bytes: u64,
    /// Configuration reloads that succeeded.
    pub reloads: u64,
    /// Configuration reloads refused.
    pub reload_failures: u64,
    /// Sums over the signals (and over the exporters for `exported_items`).
    pub totals: Totals,
    /// Ingress counters per signal.
    pub signals: SignalsStatus,
    /// The routes: queue and exporters.
    pub routes: Vec<RouteStatus>,
    /// What the extra metrics sources say about themselves (receivers, the degradation
    /// controller).
    pub sources: Vec<SourceSummary>,
    /// Recent errors, newest first.
    pub recent_errors: Vec<ErrorEntry>,
    /// Sparkline series.
    pub history: HistorySnapshot,
}

/// The degradation level, as number and name.
#[derive(Debug, Clone, Serialize)]
pub struct DegradationStatus {
    /// 0 (normal) ..= 4 (emergency).
    pub level: u8,
    /// `normal`, `light`, `moderate`, `heavy`, `emergency`.
    pub name: &'static str,
}

/// Counter sums.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Requests that reached the pipeline.
    pub requests: u64,
    /// Items received.
    pub received_items: u64,
    /// Bytes received.
    pub received_bytes: u64,
    /// Items acknowledged to clients.
    pub accepted_items: u64,
    /// Requests refused.
    pub refused_requests: u64,
    /// Items in refused requests.
    pub refused_items: u64,
    /// Items dropped on purpose.
    pub dropped_items: u64,
    /// Items delivered upstream by all exporters.
    pub exported_items: u64,
}

/// Ingress counters of each signal, in this order.
#[derive(Debug, Clone, Serialize)]
pub struct SignalsStatus {
    /// Spans.
    pub traces: SignalStatus,
    /// Data points.
    pub metrics: SignalStatus,
    /// Log records.
    pub logs: SignalStatus,
}

impl SignalsStatus {
    /// `(name, counters)` of each signal.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &SignalStatus)> {
        [
            ("traces", &self.traces),
            ("metrics", &self.metrics),
            ("logs", &self.logs),
        ]
        .into_iter()
    }

    /// The counters of each signal.
    pub fn values(&self) -> impl Iterator<Item = &SignalStatus> {
        self.iter().map(|(_, s)| s)
    }
}

/// Ingress counters of one signal.
#[derive(Debug, Clone, Serialize)]
pub struct SignalStatus {
    /// Requests that reached the pipeline.
    pub requests: u64,
    /// Items received.
    pub received_items: u64,
    /// Bytes received.
    pub received_bytes: u64,
    /// Items acknowledged to clients.
    pub accepted_items: u64,
    /// Refused requests and items by reason (every reason listed).
    pub refused: BTreeMap<&'static str, Refused>,
    /// Dropped items by reason (every reason listed).
    pub dropped: BTreeMap<&'static str, u64>,
}

/// Refusals for one reason.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Refused {
    /// Requests.
    pub requests: u64,
    /// Items in them.
    pub items: u64,
}

/// One route.
#[derive(Debug, Clone, Serialize)]
pub struct RouteStatus {
    /// Route name.
    pub name: String,
    /// `single`, `failover` or `load_balance`.
    pub mode: &'static str,
    /// Signals routed here.
    pub signals: Vec<&'static str>,
    /// Its queue.
    pub queue: QueueStatus,
    /// Its exporters.
    pub exporters: Vec<ExporterStatus>,
}

/// A route's queue.
#[derive(Debug, Clone, Serialize)]
pub struct QueueStatus {
    /// `disk` or `memory`.
    pub kind: &'static str,
    /// Entries waiting or in flight.
    pub depth: u64,
    /// Bytes waiting or in flight.
    pub bytes: u64,
    /// The byte bound.
    pub capacity_bytes: u64,
    /// bytes / capacity, 0..=1.
    pub fill: f64,
    /// Entries appended.
    pub pushed: u64,
    /// Entries acknowledged.
    pub acked: u64,
    /// Entries replayed from disk at start.
    pub replayed: u64,
    /// Bytes written to segment files.
    pub written_bytes: u64,
    /// fsync calls.
    pub fsyncs: u64,
}

/// One exporter.
#[derive(Debug, Clone, Serialize)]
pub struct ExporterStatus {
    /// Its configured name.
    pub name: String,
    /// `grpc`, `http` or `file`.
    pub kind: &'static str,
    /// Where it sends.
    pub endpoint: String,
    /// `closed`, `open`, `half_open` or `disabled`.
    pub breaker: &'static str,
    /// Items delivered, keyed by signal.
    pub exported_items: BTreeMap<&'static str, u64>,
    /// Items delivered, all signals.
    pub exported_total: u64,
    /// Requests delivered.
    pub exported_requests: u64,
    /// Bytes delivered.
    pub exported_bytes: u64,
    /// Failed attempts that will be retried.
    pub retryable_failures: u64,
    /// Failed attempts that cannot succeed.
    pub permanent_failures: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// Requests in flight.
    pub in_flight: i64,
    /// The latest error.
    pub last_error: Option<ErrorEntry>,
}

/// An error and when it happened.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorEntry {
    /// UTC, RFC 3339 with milliseconds.
    pub at: String,
    /// What went wrong.
    pub message: String,
}

impl StatusReport {
    /// Read everything now.
    pub fn collect(state: &AdminState, history: HistorySnapshot) -> StatusReport {
        let m = &state.metrics;
        let phase = m.phase();
        let level = m.degradation_level();
        let mut totals = Totals::default();
        let signals = SignalsStatus {
            traces: signal_status(m, Signal::Traces),
            metrics: signal_status(m, Signal::Metrics),
            logs: signal_status(m, Signal::Logs),
        };
        for s in signals.values() {
            totals.requests += s.requests;
            totals.received_items += s.received_items;
            totals.received_bytes += s.received_bytes;
            totals.accepted_items += s.accepted_items;
            totals.refused_requests += s.refused.values().map(|r| r.requests).sum::<u64>();
            totals.refused_items += s.refused.values().map(|r| r.items).sum::<u64>();
            totals.dropped_items += s.dropped.values().sum::<u64>();
        }
        let routes: Vec<RouteStatus> = m
            .routes()
            .iter()
            .map(|r| RouteStatus {
                name: r.name.clone(),
                mode: r.mode,
                signals: r.signals.iter().map(|s| s.as_str()).collect(),
                queue: queue_status(&r.queue),
                exporters: r.exporters.iter().map(|e| exporter_status(e)).collect(),
            })
            .collect();
        totals.exported_items = routes
            .iter()
            .flat_map(|r| &r.exporters)
            .map(|e| e.exported_total)
            .sum();
        let mut recent_errors: Vec<ErrorEntry> = m
            .recent_errors()
            .into_iter()
            .map(|(at, message)| ErrorEntry {
                at: rfc3339(at),
                message,
            })
            .collect();
        recent_errors.reverse();
        StatusReport {
            version: VERSION,
            phase: phase.as_str(),
            ready: phase == crate::metrics::Phase::Running,
            started_at: rfc3339(m.started()),
            now: rfc3339(SystemTime::now()),
            uptime_seconds: seconds_since(m.started()),
            degradation: DegradationStatus {
                level,
                name: level_name(level),
            },
            memory_bytes: m.memory_bytes.load(Relaxed),
            reloads: m.reloads.load(Relaxed),
            reload_failures: m.reload_failures.load(Relaxed),
            totals,
            signals,
            routes,
            sources: state.sources().iter().filter_map(|s| s.summary()).collect(),
            recent_errors,
            history,
        }
    }
}

/// Name of degradation level `level` (levels past 4 are `emergency`).
pub(crate) fn level_name(level: u8) -> &'static str {
    otlp_degradation::DegradationLevel::from_index(usize::from(level)).as_str()
}

fn signal_status(m: &GatewayMetrics, signal: Signal) -> SignalStatus {
    let c = m.signal(signal);
    SignalStatus {
        requests: c.requests.load(Relaxed),
        received_items: c.received_items.load(Relaxed),
        received_bytes: c.received_bytes.load(Relaxed),
        accepted_items: c.accepted_items.load(Relaxed),
        refused: RefuseReason::ALL
            .iter()
            .map(|&r| {
                (
                    r.as_str(),
                    Refused {
                        requests: c.refused_requests(r),
                        items: c.refused_items(r),
                    },
                )
            })
            .collect(),
        dropped: DropReason::ALL
            .iter()
            .map(|&r| (r.as_str(), c.dropped_items(r)))
            .collect(),
    }
}

fn queue_status(q: &QueueMetrics) -> QueueStatus {
    QueueStatus {
        kind: q.kind,
        depth: q.depth.load(Relaxed),
        bytes: q.bytes.load(Relaxed),
        capacity_bytes: q.capacity_bytes.load(Relaxed),
        fill: q.fill(),
        pushed: q.pushed.load(Relaxed),
        acked: q.acked.load(Relaxed),
        replayed: q.replayed.load(Relaxed),
        written_bytes: q.written_bytes.load(Relaxed),
        fsyncs: q.fsyncs.load(Relaxed),
    }
}

fn exporter_status(e: &ExporterMetrics) -> ExporterStatus {
    ExporterStatus {
        name: e.name.clone(),
        kind: e.kind,
        endpoint: e.endpoint(),
        breaker: e.breaker().as_str(),
        exported_items: Signal::ALL
            .iter()
            .map(|s| (s.as_str(), e.exported_items[s.index()].load(Relaxed)))
            .collect(),
        exported_total: e.exported_total(),
        exported_requests: e.exported_requests.load(Relaxed),
        exported_bytes: e.exported_bytes.load(Relaxed),
        retryable_failures: e.retryable_failures.load(Relaxed),
        permanent_failures: e.permanent_failures.load(Relaxed),
        retries: e.retries.load(Relaxed),
        in_flight: e.in_flight.load(Relaxed),
        last_error: e.last_error().map(|(at, message)| ErrorEntry {
            at: rfc3339(at),
            message,
        }),
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC). Times before the epoch print as the epoch.
///
/// Written here rather than taken from a date crate: this is the only date the gateway
/// prints, and the conversion is a dozen lines (days to a civil date, after Howard
/// Hinnant's `civil_from_days`).
pub fn rfc3339(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let millis = since.subsec_millis();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    #[test]
    fn formats_utc_timestamps() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z"); // leap day of a /400 year
        assert_eq!(at(951_868_799, 999), "2000-02-29T23:59:59.999Z");
        assert_eq!(at(1_709_251_199, 0), "2024-02-29T23:59:59.000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z"); // 2100 is no leap year
        assert_eq!(at(1_735_689_599, 123), "2024-12-31T23:59:59.123Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Count days forward by the calendar's rules and compare.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(400 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][(m - 1) as usize];
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
