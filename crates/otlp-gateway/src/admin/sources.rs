//! Ready-made [`MetricsSource`]s for the counters other crates keep: the OTLP/HTTP and
//! OTLP/gRPC receivers and the degradation controller.

use std::sync::Arc;

use otlp_core::Signal;
use otlp_degradation::controller::ControlMode;
use otlp_degradation::{DegradationHandle, DegradationLevel};
use otlp_transport_grpc::receiver::{GrpcReceiverMetrics, GrpcSignalSnapshot};
use otlp_transport_http::receiver::{ReceiverMetrics, SignalSnapshot};
use serde_json::json;

use super::prometheus::{MetricType, PrometheusWriter};
use super::{MetricsSource, SourceSummary};

const SIGNALS: [&str; 4] = ["traces", "metrics", "logs", "unrouted"];

/// Request counters common to both receivers.
struct RequestCounts {
    accepted: u64,
    partially_accepted: u64,
    refused: u64,
    rejected: u64,
    items_accepted: u64,
    items_refused: u64,
    bytes_received: u64,
    bytes_decompressed: u64,
}

impl From<&SignalSnapshot> for RequestCounts {
    fn from(s: &SignalSnapshot) -> Self {
        RequestCounts {
            accepted: s.accepted,
            partially_accepted: s.partially_accepted,
            refused: s.refused,
            rejected: s.rejected,
            items_accepted: s.items_accepted,
            items_refused: s.items_refused,
            bytes_received: s.bytes_received,
            bytes_decompressed: s.bytes_decompressed,
        }
    }
}

impl From<&GrpcSignalSnapshot> for RequestCounts {
    fn from(s: &GrpcSignalSnapshot) -> Self {
        RequestCounts {
            accepted: s.accepted,
            partially_accepted: s.partially_accepted,
            refused: s.refused,
            rejected: s.rejected,
            items_accepted: s.items_accepted,
            items_refused: s.items_refused,
            bytes_received: s.bytes_received,
            bytes_decompressed: s.bytes_decompressed,
        }
    }
}

impl RequestCounts {
    fn requests(&self) -> u64 {
        self.accepted + self.partially_accepted + self.refused + self.rejected
    }
}

fn render_requests(
    out: &mut PrometheusWriter,
    receiver: &str,
    per_signal: [(&str, RequestCounts); 4],
) {
    for (signal, c) in &per_signal {
        for (outcome, n) in [
            ("accepted", c.accepted),
            ("partially_accepted", c.partially_accepted),
            ("refused", c.refused),
            ("rejected", c.rejected),
        ] {
            out.counter(
                "receiver_requests_total",
                "Requests answered by a receiver, by signal (unrouted: a path or method that names none) and outcome.",
                &[
                    ("receiver", receiver),
                    ("signal", signal),
                    ("outcome", outcome),
                ],
                n,
            );
        }
    }
    for (signal, c) in &per_signal {
        let l = [("receiver", receiver), ("signal", signal)];
        out.counter(
            "receiver_accepted_items_total",
            "Items a receiver's sink accepted.",
            &l,
            c.items_accepted,
        );
        out.counter(
            "receiver_refused_items_total",
            "Items of valid requests a receiver's sink refused or a partial success rejected.",
            &l,
            c.items_refused,
        );
        out.counter(
            "receiver_wire_bytes_total",
            "Request body bytes as they arrived (compressed or not).",
            &l,
            c.bytes_received,
        );
        out.counter(
            "receiver_decompressed_bytes_total",
            "Request body bytes after decompression.",
            &l,
            c.bytes_decompressed,
        );
    }
}

fn render_connections(out: &mut PrometheusWriter, receiver: &str, metrics: &ReceiverMetrics) {
    let c = metrics.snapshot().connections;
    let l = [("receiver", receiver)];
    out.counter(
        "receiver_connections_accepted_total",
        "Connections a receiver accepted.",
        &l,
        c.accepted,
    );
    out.gauge(
        "receiver_connections_active",
        "Connections open now.",
        &l,
        c.active,
    );
    out.counter(
        "receiver_connections_closed_at_limit_total",
        "Connections closed right after accept because max_connections were open.",
        &l,
        c.closed_at_limit,
    );
    out.counter(
        "receiver_connections_idle_closed_total",
        "Connections closed for idleness.",
        &l,
        c.idle_closed,
    );
    out.counter(
        "receiver_tls_handshake_failures_total",
        "TLS handshakes that failed or timed out.",
        &l,
        c.tls_handshake_failures,
    );
}

/// The OTLP/HTTP receiver's counters (requests by signal, outcome and HTTP status, items,
/// bytes, connections) as `otlp_gateway_receiver_*{receiver="http"}`.
#[derive(Debug, Clone)]
pub struct HttpReceiverSource {
    name: String,
    metrics: Arc<ReceiverMetrics>,
}

impl HttpReceiverSource {
    /// The counters of `RunningReceiver::metrics()`, labelled `receiver="http"`.
    pub fn new(metrics: Arc<ReceiverMetrics>) -> HttpReceiverSource {
        HttpReceiverSource::named("http", metrics)
    }

    /// The same with another `receiver` label (for a second HTTP listener).
    pub fn named(name: impl Into<String>, metrics: Arc<ReceiverMetrics>) -> HttpReceiverSource {
        HttpReceiverSource {
            name: name.into(),
            metrics,
        }
    }
}

impl MetricsSource for HttpReceiverSource {
    fn render(&self, out: &mut PrometheusWriter) {
        let s = self.metrics.snapshot();
        let name = self.name.as_str();
        render_requests(
            out,
            name,
            [
                (SIGNALS[0], (&s.traces).into()),
                (SIGNALS[1], (&s.metrics).into()),
                (SIGNALS[2], (&s.logs).into()),
                (SIGNALS[3], (&s.unrouted).into()),
            ],
        );
        for (signal, snap) in SIGNALS
            .iter()
            .zip([&s.traces, &s.metrics, &s.logs, &s.unrouted])
        {
            for (status, n) in &snap.responses {
                out.counter(
                    "receiver_http_responses_total",
                    "Responses of an OTLP/HTTP receiver by HTTP status (statuses never sent are left out).",
                    &[
                        ("receiver", name),
                        ("signal", signal),
                        ("status", &status.to_string()),
                    ],
                    *n,
                );
            }
            if snap.other_responses > 0 {
                out.counter(
                    "receiver_http_responses_total",
                    "Responses of an OTLP/HTTP receiver by HTTP status (statuses never sent are left out).",
                    &[("receiver", name), ("signal", signal), ("status", "other")],
                    snap.other_responses,
                );
            }
        }
        render_connections(out, name, &self.metrics);
    }

    fn summary(&self) -> Option<SourceSummary> {
        let s = self.metrics.snapshot();
        let per_signal: Vec<RequestCounts> = Signal::ALL
            .iter()
            .map(|sig| s.signal(*sig).into())
            .collect();
        Some(receiver_summary(
            &self.name,
            "OTLP/HTTP",
            &per_signal,
            s.requests(),
            Some(s.connections.active),
        ))
    }
}

fn receiver_summary(
    name: &str,
    protocol: &str,
    per_signal: &[RequestCounts],
    requests: u64,
    connections: Option<u64>,
) -> SourceSummary {
    let sum = |f: fn(&RequestCounts) -> u64| per_signal.iter().map(f).sum::<u64>();
    let mut values = serde_json::Map::new();
    values.insert("protocol".into(), json!(protocol));
    values.insert("requests".into(), json!(requests));
    values.insert("accepted_items".into(), json!(sum(|c| c.items_accepted)));
    values.insert("refused_items".into(), json!(sum(|c| c.items_refused)));
    values.insert(
        "refused_requests".into(),
        json!(sum(|c| c.refused + c.rejected)),
    );
    values.insert(
        "signal_requests".into(),
        json!(sum(RequestCounts::requests)),
    );
    if let Some(active) = connections {
        values.insert("connections".into(), json!(active));
    }
    SourceSummary {
        kind: "receiver",
        name: name.to_owned(),
        values,
    }
}

/// The OTLP/gRPC receiver's call counters (by signal, outcome and gRPC code, items,
/// bytes) as `otlp_gateway_receiver_*{receiver="grpc"}`, and with
/// [`with_connections`](Self::with_connections) its listener's connection counters.
#[derive(Debug, Clone)]
pub struct GrpcReceiverSource {
    name: String,
    calls: Arc<GrpcReceiverMetrics>,
    connections: Option<Arc<ReceiverMetrics>>,
}

impl GrpcReceiverSource {
    /// The counters of `RunningGrpcReceiver::metrics()`, labelled `receiver="grpc"`.
    pub fn new(calls: Arc<GrpcReceiverMetrics>) -> GrpcReceiverSource {
        GrpcReceiverSource::named("grpc", calls)
    }

    /// The same with another `receiver` label.
    pub fn named(name: impl Into<String>, calls: Arc<GrpcReceiverMetrics>) -> GrpcReceiverSource {
        GrpcReceiverSource {
            name: name.into(),
            calls,
            connections: None,
        }
    }

    /// Also show the connection counters of the listener
    /// (`RunningGrpcReceiver::listener_metrics()`); its request counters are not used
    /// (gRPC calls are counted in `calls`).
    pub fn with_connections(mut self, listener: Arc<ReceiverMetrics>) -> GrpcReceiverSource {
        self.connections = Some(listener);
        self
    }
}

impl MetricsSource for GrpcReceiverSource {
    fn render(&self, out: &mut PrometheusWriter) {
        let s = self.calls.snapshot();
        let name = self.name.as_str();
        render_requests(
            out,
            name,
            [
                (SIGNALS[0], (&s.traces).into()),
                (SIGNALS[1], (&s.metrics).into()),
                (SIGNALS[2], (&s.logs).into()),
                (SIGNALS[3], (&s.unrouted).into()),
            ],
        );
        for (signal, snap) in SIGNALS
            .iter()
            .zip([&s.traces, &s.metrics, &s.logs, &s.unrouted])
        {
            for (code, n) in &snap.responses {
                out.counter(
                    "receiver_grpc_responses_total",
                    "Answers of an OTLP/gRPC receiver by gRPC status code (codes never sent are left out).",
                    &[("receiver", name), ("signal", signal), ("code", code.as_str())],
                    *n,
                );
            }
        }
        if let Some(listener) = &self.connections {
            render_connections(out, name, listener);
        }
    }

    fn summary(&self) -> Option<SourceSummary> {
        let s = self.calls.snapshot();
        let per_signal: Vec<RequestCounts> = Signal::ALL
            .iter()
            .map(|sig| s.signal(*sig).into())
            .collect();
        let connections = self
            .connections
            .as_ref()
            .map(|l| l.snapshot().connections.active);
        Some(receiver_summary(
            &self.name,
            "OTLP/gRPC",
            &per_signal,
            s.requests(),
            connections,
        ))
    }
}

/// The degradation controller's state and counters (mode, transitions and time per level,
/// evaluations, trigger readings) as `otlp_gateway_degradation_*`. The level itself is
/// the registry's `otlp_gateway_degradation_level`.
#[derive(Debug, Clone)]
pub struct DegradationSource(pub DegradationHandle);

impl MetricsSource for DegradationSource {
    fn render(&self, out: &mut PrometheusWriter) {
        let s = self.0.snapshot();
        let mode = mode_name(s.mode);
        for m in ["automatic", "pinned", "disabled"] {
            out.gauge(
                "degradation_mode",
                "1 for who decides the degradation level (automatic: the triggers; pinned or disabled by an operator), 0 for the others.",
                &[("mode", m)],
                m == mode,
            );
        }
        out.gauge(
            "degradation_controller_level",
            "The controller's level: 0 normal, 1 light, 2 moderate, 3 heavy, 4 emergency.",
            &[],
            s.level.index() as u64,
        );
        for level in DegradationLevel::ALL {
            out.counter(
                "degradation_transitions_total",
                "Level changes into each level.",
                &[("level", level.as_str())],
                s.transitions_into(level),
            );
        }
        for level in DegradationLevel::ALL {
            out.sample(
                MetricType::Counter,
                "degradation_seconds_total",
                "Time spent at each level, in seconds.",
                &[("level", level.as_str())],
                s.time_in(level).as_secs_f64(),
            );
        }
        out.counter(
            "degradation_evaluations_total",
            "Evaluations of the triggers.",
            &[],
            s.evaluations,
        );
        for t in &s.triggers {
            let l = [("trigger", t.name.as_str())];
            if let Some(reading) = t.reading {
                out.gauge(
                    "degradation_trigger_reading",
                    "A trigger's last reading.",
                    &l,
                    reading,
                );
            }
            out.gauge(
                "degradation_trigger_asks_level",
                "The level a trigger's last reading asks for (0 normal .. 4 emergency).",
                &l,
                t.asks.index() as u64,
            );
            out.counter(
                "degradation_trigger_missed_total",
                "Evaluations at which a trigger gave no reading.",
                &l,
                t.missed,
            );
        }
    }

    fn summary(&self) -> Option<SourceSummary> {
        let s = self.0.snapshot();
        let mut values = serde_json::Map::new();
        values.insert("level".into(), json!(s.level.as_str()));
        values.insert("mode".into(), json!(s.mode.to_string()));
        values.insert("transitions".into(), json!(s.transitions()));
        values.insert(
            "triggers".into(),
            serde_json::Value::Array(
                s.triggers
                    .iter()
                    .map(|t| json!({"name": t.name, "reading": t.reading, "asks": t.asks.as_str()}))
                    .collect(),
            ),
        );
        Some(SourceSummary {
            kind: "degradation",
            name: "controller".into(),
            values,
        })
    }
}

fn mode_name(mode: ControlMode) -> &'static str {
    match mode {
        ControlMode::Automatic => "automatic",
        ControlMode::Pinned(_) => "pinned",
        ControlMode::Disabled => "disabled",
    }
}
