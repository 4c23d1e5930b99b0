//! `/metrics` for the gateway's own registry.

use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use otlp_core::Signal;

use super::MetricsSource;
use super::prometheus::PrometheusWriter;
use crate::metrics::{BreakerView, DropReason, GatewayMetrics, Phase, RefuseReason};

/// The gateway's version, as `build_info` and the status page show it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const BREAKER_STATES: [BreakerView; 4] = [
    BreakerView::Closed,
    BreakerView::Open,
    BreakerView::HalfOpen,
    BreakerView::Disabled,
];

/// Seconds since `since`, 0 if the clock went back.
pub(crate) fn seconds_since(since: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(since)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl MetricsSource for GatewayMetrics {
    fn render(&self, out: &mut PrometheusWriter) {
        process(self, out);
        ingress(self, out);
        routes(self, out);
    }
}

fn process(m: &GatewayMetrics, out: &mut PrometheusWriter) {
    out.gauge(
        "build_info",
        "Always 1; the version label says which gateway this is.",
        &[("version", VERSION)],
        1u64,
    );
    let phase = m.phase();
    for p in [Phase::Starting, Phase::Running, Phase::Draining] {
        out.gauge(
            "phase",
            "1 for the lifecycle phase the gateway is in (starting, running, draining), 0 for the others.",
            &[("phase", p.as_str())],
            p == phase,
        );
    }
    out.gauge(
        "ready",
        "1 while the gateway is running and /readyz answers 200.",
        &[],
        phase == Phase::Running,
    );
    let started = m.started();
    out.gauge(
        "start_time_seconds",
        "When the gateway started, in seconds since the Unix epoch.",
        &[],
        started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    );
    out.gauge(
        "uptime_seconds",
        "Seconds since the gateway started.",
        &[],
        seconds_since(started),
    );
    out.gauge(
        "memory_bytes",
        "Resident memory of the gateway in bytes, as last measured.",
        &[],
        m.memory_bytes.load(Relaxed),
    );
    out.gauge(
        "degradation_level",
        "Degradation level: 0 normal, 1 light, 2 moderate, 3 heavy, 4 emergency.",
        &[],
        u64::from(m.degradation_level()),
    );
    out.counter(
        "config_reloads_total",
        "Configuration reloads that succeeded.",
        &[],
        m.reloads.load(Relaxed),
    );
    out.counter(
        "config_reload_failures_total",
        "Configuration reloads refused because the new configuration was invalid.",
        &[],
        m.reload_failures.load(Relaxed),
    );
    out.gauge(
        "recent_errors",
        "Errors kept for the status page (the newest few).",
        &[],
        m.recent_errors().len() as u64,
    );
}

fn ingress(m: &GatewayMetrics, out: &mut PrometheusWriter) {
    for signal in Signal::ALL {
        let c = m.signal(signal);
        let s = [("signal", signal.as_str())];
        out.counter(
            "received_requests_total",
            "Export requests that reached the pipeline, by signal.",
            &s,
            c.requests.load(Relaxed),
        );
        out.counter(
            "received_items_total",
            "Items (spans, data points, log records) received, by signal.",
            &s,
            c.received_items.load(Relaxed),
        );
        out.counter(
            "received_bytes_total",
            "Bytes of encoded protobuf received, by signal.",
            &s,
            c.received_bytes.load(Relaxed),
        );
        out.counter(
            "accepted_items_total",
            "Items acknowledged to clients (queued for every matching exporter), by signal.",
            &s,
            c.accepted_items.load(Relaxed),
        );
    }
    for signal in Signal::ALL {
        let c = m.signal(signal);
        for reason in RefuseReason::ALL {
            out.counter(
                "refused_requests_total",
                "Requests refused (the client got an error), by signal and reason.",
                &[("signal", signal.as_str()), ("reason", reason.as_str())],
                c.refused_requests(reason),
            );
        }
    }
    for signal in Signal::ALL {
        let c = m.signal(signal);
        for reason in RefuseReason::ALL {
            out.counter(
                "refused_items_total",
                "Items in refused requests, by signal and reason.",
                &[("signal", signal.as_str()), ("reason", reason.as_str())],
                c.refused_items(reason),
            );
        }
    }
    for signal in Signal::ALL {
        let c = m.signal(signal);
        for reason in DropReason::ALL {
            out.counter(
                "dropped_items_total",
                "Accepted items dropped on purpose, by signal and reason (never silently).",
                &[("signal", signal.as_str()), ("reason", reason.as_str())],
                c.dropped_items(reason),
            );
        }
    }
}

fn routes(m: &GatewayMetrics, out: &mut PrometheusWriter) {
    let routes = m.routes();
    out.gauge(
        "routes",
        "Routes (a queue and the exporters that drain it) configured.",
        &[],
        routes.len() as u64,
    );
    for route in &routes {
        let q = &route.queue;
        let l = [("route", route.name.as_str()), ("kind", q.kind)];
        out.gauge(
            "queue_depth",
            "Entries waiting or in flight in a route's queue.",
            &l,
            q.depth.load(Relaxed),
        );
        out.gauge(
            "queue_bytes",
            "Bytes waiting or in flight in a route's queue.",
            &l,
            q.bytes.load(Relaxed),
        );
        out.gauge(
            "queue_capacity_bytes",
            "The byte bound of a route's queue.",
            &l,
            q.capacity_bytes.load(Relaxed),
        );
        out.gauge(
            "queue_fill_ratio",
            "queue_bytes / queue_capacity_bytes, 0 to 1.",
            &l,
            q.fill(),
        );
        out.counter(
            "queue_pushed_total",
            "Entries appended to a route's queue.",
            &l,
            q.pushed.load(Relaxed),
        );
        out.counter(
            "queue_acked_total",
            "Entries acknowledged (delivered or dropped by reason) from a route's queue.",
            &l,
            q.acked.load(Relaxed),
        );
        out.counter(
            "queue_replayed_total",
            "Entries found on disk at start and replayed.",
            &l,
            q.replayed.load(Relaxed),
        );
        out.counter(
            "queue_written_bytes_total",
            "Bytes written to a disk queue's segment files.",
            &l,
            q.written_bytes.load(Relaxed),
        );
        out.counter(
            "queue_fsyncs_total",
            "fsync calls of a disk queue.",
            &l,
            q.fsyncs.load(Relaxed),
        );
    }
    for route in &routes {
        for e in &route.exporters {
            let l = [
                ("route", route.name.as_str()),
                ("exporter", e.name.as_str()),
                ("kind", e.kind),
            ];
            for signal in Signal::ALL {
                out.counter(
                    "exporter_exported_items_total",
                    "Items delivered upstream, by exporter and signal.",
                    &[
                        ("route", route.name.as_str()),
                        ("exporter", e.name.as_str()),
                        ("kind", e.kind),
                        ("signal", signal.as_str()),
                    ],
                    e.exported_items[signal.index()].load(Relaxed),
                );
            }
            out.counter(
                "exporter_exported_requests_total",
                "Requests delivered upstream.",
                &l,
                e.exported_requests.load(Relaxed),
            );
            out.counter(
                "exporter_exported_bytes_total",
                "Bytes (encoded protobuf, before compression) delivered upstream.",
                &l,
                e.exported_bytes.load(Relaxed),
            );
            out.counter(
                "exporter_retryable_failures_total",
                "Export attempts that failed and will be retried.",
                &l,
                e.retryable_failures.load(Relaxed),
            );
            out.counter(
                "exporter_permanent_failures_total",
                "Export attempts that failed for good (the data is dropped as rejected).",
                &l,
                e.permanent_failures.load(Relaxed),
            );
            out.counter(
                "exporter_retries_total",
                "Export attempts after the first of a batch.",
                &l,
                e.retries.load(Relaxed),
            );
            out.gauge(
                "exporter_in_flight",
                "Export requests in flight.",
                &l,
                e.in_flight.load(Relaxed),
            );
            let breaker = e.breaker();
            out.gauge(
                "exporter_breaker_state",
                "Circuit breaker: 0 closed, 1 open, 2 half-open, 3 no breaker configured.",
                &l,
                breaker as u8 as u64,
            );
            for state in BREAKER_STATES {
                out.gauge(
                    "exporter_breaker",
                    "1 for the circuit breaker's state (closed, open, half_open, disabled), 0 for the others.",
                    &[
                        ("route", route.name.as_str()),
                        ("exporter", e.name.as_str()),
                        ("state", state.as_str()),
                    ],
                    state == breaker,
                );
            }
        }
    }
}
