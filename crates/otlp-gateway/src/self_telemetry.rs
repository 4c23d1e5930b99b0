//! The gateway's own metrics, exported over OTLP to `self_telemetry.endpoint` (through our
//! own exporters) every `self_telemetry.interval` (default 10 s).
//!
//! The same numbers as `/metrics`, as OTLP metrics: counters are cumulative monotonic
//! sums, levels are gauges. Names follow OpenTelemetry's dotted style
//! (`otlp_gateway.received.items`), resource `service.name = "otlp-gateway"`. Only
//! metrics: the gateway does not trace its own requests (a span per request would double
//! the work of a pass-through hop).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::{Exporter, Payload, Signal};
use otlp_transport_grpc::exporter::GrpcExporter;
use otlp_transport_http::exporter::HttpExporter;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::SelfTelemetryConfig;
use crate::metrics::{DropReason, GatewayMetrics, RefuseReason};

/// The default export interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..Default::default()
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Builds metrics one data point at a time.
struct Points {
    start: u64,
    now: u64,
    metrics: Vec<Metric>,
}

impl Points {
    fn point(&self, attributes: Vec<KeyValue>, value: number_data_point::Value) -> NumberDataPoint {
        NumberDataPoint {
            attributes,
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            value: Some(value),
            ..Default::default()
        }
    }

    fn sum(&mut self, name: &str, unit: &str, points: Vec<(Vec<KeyValue>, u64)>) {
        let data_points = points
            .into_iter()
            .map(|(a, v)| self.point(a, number_data_point::Value::AsInt(v as i64)))
            .collect();
        self.metrics.push(Metric {
            name: name.to_owned(),
            unit: unit.to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        });
    }

    fn gauge(&mut self, name: &str, unit: &str, points: Vec<(Vec<KeyValue>, f64)>) {
        let data_points = points
            .into_iter()
            .map(|(a, v)| {
                let mut p = self.point(a, number_data_point::Value::AsDouble(v));
                p.start_time_unix_nano = 0;
                p
            })
            .collect();
        self.metrics.push(Metric {
            name: name.to_owned(),
            unit: unit.to_owned(),
            data: Some(metric::Data::Gauge(Gauge { data_points })),
            ..Default::default()
        });
    }
}

/// The registry as one OTLP metrics request.
pub fn snapshot(metrics: &GatewayMetrics, now: SystemTime) -> ExportMetricsServiceRequest {
    let mut p = Points {
        start: nanos(metrics.started()),
        now: nanos(now),
        metrics: Vec::new(),
    };
    let per_signal = |f: &dyn Fn(Signal) -> u64| -> Vec<(Vec<KeyValue>, u64)> {
        Signal::ALL
            .into_iter()
            .map(|s| (vec![attr("signal", s.as_str())], f(s)))
            .collect()
    };
    p.sum(
        "otlp_gateway.received.items",
        "{item}",
        per_signal(&|s| metrics.signal(s).received_items.load(Relaxed)),
    );
    p.sum(
        "otlp_gateway.accepted.items",
        "{item}",
        per_signal(&|s| metrics.signal(s).accepted_items.load(Relaxed)),
    );
    let mut refused = Vec::new();
    let mut dropped = Vec::new();
    for s in Signal::ALL {
        let c = metrics.signal(s);
        for r in RefuseReason::ALL {
            refused.push((
                vec![attr("signal", s.as_str()), attr("reason", r.as_str())],
                c.refused_items(r),
            ));
        }
        for r in DropReason::ALL {
            dropped.push((
                vec![attr("signal", s.as_str()), attr("reason", r.as_str())],
                c.dropped_items(r),
            ));
        }
    }
    p.sum("otlp_gateway.refused.items", "{item}", refused);
    p.sum("otlp_gateway.dropped.items", "{item}", dropped);
    let routes = metrics.routes();
    let mut exported = Vec::new();
    let mut failures = Vec::new();
    let mut queue_bytes = Vec::new();
    let mut queue_depth = Vec::new();
    for route in &routes {
        let r = vec![attr("route", &route.name)];
        queue_bytes.push((r.clone(), route.queue.bytes.load(Relaxed) as f64));
        queue_depth.push((r.clone(), route.queue.depth.load(Relaxed) as f64));
        for e in &route.exporters {
            let labels = vec![attr("route", &route.name), attr("exporter", &e.name)];
            exported.push((labels.clone(), e.exported_total()));
            failures.push((
                [labels.clone(), vec![attr("kind", "retryable")]].concat(),
                e.retryable_failures.load(Relaxed),
            ));
            failures.push((
                [labels, vec![attr("kind", "permanent")]].concat(),
                e.permanent_failures.load(Relaxed),
            ));
        }
    }
    p.sum("otlp_gateway.exporter.exported.items", "{item}", exported);
    p.sum("otlp_gateway.exporter.failures", "{request}", failures);
    p.gauge("otlp_gateway.queue.bytes", "By", queue_bytes);
    p.gauge("otlp_gateway.queue.depth", "{entry}", queue_depth);
    p.gauge(
        "otlp_gateway.degradation.level",
        "1",
        vec![(Vec::new(), f64::from(metrics.degradation_level()))],
    );
    p.gauge(
        "otlp_gateway.memory.bytes",
        "By",
        vec![(Vec::new(), metrics.memory_bytes.load(Relaxed) as f64)],
    );
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "otlp-gateway"),
                    attr("service.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "otlp-gateway".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics: p.metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Start exporting the registry, when `config.endpoint` is set.
///
/// # Errors
///
/// The exporter could not be built from the endpoint.
pub fn spawn(
    config: &SelfTelemetryConfig,
    metrics: Arc<GatewayMetrics>,
    stop: CancellationToken,
) -> Result<Option<JoinHandle<()>>, String> {
    let Some(endpoint) = &config.endpoint else {
        return Ok(None);
    };
    let exporter: Arc<dyn Exporter> = if let Some(rest) = endpoint
        .strip_prefix("grpc://")
        .or_else(|| endpoint.strip_prefix("grpcs://"))
    {
        let scheme = if endpoint.starts_with("grpcs://") {
            "https"
        } else {
            "http"
        };
        Arc::new(
            GrpcExporter::builder()
                .name("self-telemetry")
                .no_env()
                .no_retry()
                .timeout(Duration::from_secs(5))
                .endpoint(format!("{scheme}://{rest}"))
                .build()
                .map_err(|e| format!("self_telemetry.endpoint: {e}"))?,
        )
    } else {
        Arc::new(
            HttpExporter::builder()
                .name("self-telemetry")
                .no_env()
                .no_retry()
                .timeout(Duration::from_secs(5))
                .endpoint(endpoint.clone())
                .build()
                .map_err(|e| format!("self_telemetry.endpoint: {e}"))?,
        )
    };
    let interval = config.interval.map_or(DEFAULT_INTERVAL, |i| i.get());
    Ok(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures: u64 = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let request = snapshot(&metrics, SystemTime::now());
            // The next snapshot replaces a failed one (cumulative sums lose nothing), so
            // no retry; a stop cuts the export short.
            let result = tokio::select! {
                () = stop.cancelled() => break,
                result = exporter.export(Payload::from_request(&request)) => result,
            };
            if let Err(error) = result {
                failures += 1;
                if failures.is_power_of_two() {
                    tracing::warn!(%error, failures, "self-telemetry export failed");
                }
            }
        }
        let _ = exporter.shutdown().await;
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::OtlpRequest;

    #[test]
    fn the_snapshot_carries_the_counters() {
        let metrics = GatewayMetrics::new();
        metrics
            .signal(Signal::Traces)
            .received_items
            .fetch_add(42, Relaxed);
        metrics
            .signal(Signal::Logs)
            .refused(RefuseReason::QueueFull, 7);
        let request = snapshot(&metrics, SystemTime::now());
        let scope = &request.resource_metrics[0].scope_metrics[0];
        let received = scope
            .metrics
            .iter()
            .find(|m| m.name == "otlp_gateway.received.items")
            .unwrap();
        let Some(metric::Data::Sum(sum)) = &received.data else {
            panic!("not a sum");
        };
        assert!(sum.is_monotonic);
        let traces = sum
            .data_points
            .iter()
            .find(|p| p.attributes == vec![attr("signal", "traces")])
            .unwrap();
        assert_eq!(traces.value, Some(number_data_point::Value::AsInt(42)));
        let refused = scope
            .metrics
            .iter()
            .find(|m| m.name == "otlp_gateway.refused.items")
            .unwrap();
        let Some(metric::Data::Sum(sum)) = &refused.data else {
            panic!("not a sum");
        };
        assert!(sum.data_points.iter().any(|p| {
            p.attributes == vec![attr("signal", "logs"), attr("reason", "queue_full")]
                && p.value == Some(number_data_point::Value::AsInt(7))
        }));
        assert!(request.item_count() > 0);
    }
}
