//! Metric batches: gauges, sums and histograms; items are data points.

use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::common::v1::KeyValue;
use otlp_core::proto::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};

use super::{Generator, ROUTES, kv_int, kv_str};

const BOUNDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

impl Generator {
    /// A metrics request with exactly `items` data points.
    pub(super) fn metrics(&mut self, items: usize) -> ExportMetricsServiceRequest {
        let window = self.next_window();
        let start = self.config.start_time_unix_nano;
        let mut by_service: Vec<Vec<Metric>> = vec![Vec::new(); self.services.len()];
        let mut made = 0;
        while made < items {
            let points = self.rng.usize(1..=4).min(items - made);
            let service = self.rng.usize(..self.services.len());
            let time = window + self.rng.u64(0..1_000_000);
            let metric = match self.rng.u8(..3) {
                0 => Metric {
                    name: "system.cpu.utilization".into(),
                    description: "CPU time used, as a share of the time available".into(),
                    unit: "1".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|cpu| NumberDataPoint {
                                attributes: vec![
                                    kv_int("cpu", cpu as i64),
                                    kv_str("state", "user"),
                                ],
                                time_unix_nano: time,
                                value: Some(number_data_point::Value::AsDouble(self.rng.f64())),
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                },
                1 => Metric {
                    name: "http.server.request.count".into(),
                    description: "Requests served".into(),
                    unit: "{request}".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: (0..points)
                            .map(|_| NumberDataPoint {
                                attributes: self.route_attributes(),
                                start_time_unix_nano: start,
                                time_unix_nano: time,
                                value: Some(number_data_point::Value::AsInt(
                                    self.rng.i64(1..1_000_000),
                                )),
                                ..Default::default()
                            })
                            .collect(),
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                },
                _ => Metric {
                    name: "http.server.request.duration".into(),
                    description: "Duration of HTTP server requests".into(),
                    unit: "s".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: (0..points)
                            .map(|_| self.histogram_point(start, time))
                            .collect(),
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    })),
                    ..Default::default()
                },
            };
            by_service[service].push(metric);
            made += points;
        }
        let resource_metrics = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, metrics)| !metrics.is_empty())
            .map(|(i, metrics)| ResourceMetrics {
                resource: Some(self.services[i].resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(self.services[i].scope.clone()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect();
        ExportMetricsServiceRequest { resource_metrics }
    }

    fn route_attributes(&mut self) -> Vec<KeyValue> {
        let route = ROUTES[self.rng.usize(..ROUTES.len())];
        let status = if self.is_error() { 500 } else { 200 };
        vec![
            kv_str("http.method", route.0),
            kv_str("http.route", route.1),
            kv_int("http.status_code", status),
        ]
    }

    fn histogram_point(&mut self, start: u64, time: u64) -> HistogramDataPoint {
        let bucket_counts: Vec<u64> = (0..=BOUNDS.len()).map(|_| self.rng.u64(0..500)).collect();
        let count = bucket_counts.iter().sum();
        HistogramDataPoint {
            attributes: self.route_attributes(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            count,
            sum: Some(count as f64 * 0.12),
            bucket_counts,
            explicit_bounds: BOUNDS.to_vec(),
            min: Some(0.001),
            max: Some(12.5),
            ..Default::default()
        }
    }
}
