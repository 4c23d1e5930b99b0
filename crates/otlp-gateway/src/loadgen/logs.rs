//! Log batches: a severity mix, message bodies, trace context on most records.

use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, any_value};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};

use super::{Generator, ROUTES, kv_str};

impl Generator {
    /// A logs request with exactly `items` records.
    pub(super) fn logs(&mut self, items: usize) -> ExportLogsServiceRequest {
        let window = self.next_window();
        let mut by_service: Vec<Vec<LogRecord>> = vec![Vec::new(); self.services.len()];
        for _ in 0..items {
            let service = self.rng.usize(..self.services.len());
            let time = window + self.rng.u64(0..1_000_000);
            let route = ROUTES[self.rng.usize(..ROUTES.len())];
            let order = self.rng.u32(10_000..99_999);
            let user = self.rng.u32(1..500_000);
            let (severity, text, body) = if self.is_error() {
                (
                    SeverityNumber::Error,
                    "ERROR",
                    format!("order {order} failed: payment provider answered 503"),
                )
            } else {
                match self.rng.u8(..100) {
                    0..10 => (
                        SeverityNumber::Debug,
                        "DEBUG",
                        format!("cache miss for order {order}"),
                    ),
                    10..85 => (
                        SeverityNumber::Info,
                        "INFO",
                        format!(
                            "{} {} served order {order} for user u-{user}",
                            route.0, route.1
                        ),
                    ),
                    _ => (
                        SeverityNumber::Warn,
                        "WARN",
                        format!(
                            "slow query for order {order}: {} ms",
                            self.rng.u32(200..5000)
                        ),
                    ),
                }
            };
            let (trace_id, span_id) = if self.rng.u8(..10) < 8 {
                (self.random_id::<16>(), self.random_id::<8>())
            } else {
                (Vec::new(), Vec::new())
            };
            by_service[service].push(LogRecord {
                time_unix_nano: time,
                observed_time_unix_nano: time + self.rng.u64(0..5_000_000),
                severity_number: severity as i32,
                severity_text: text.into(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(body)),
                }),
                attributes: vec![
                    kv_str("http.route", route.1),
                    kv_str("user.id", &format!("u-{user}")),
                    kv_str("order.id", &order.to_string()),
                    kv_str("thread.name", &format!("worker-{}", self.rng.u8(..16))),
                    kv_str("code.function", "handle"),
                ],
                flags: if trace_id.is_empty() { 0 } else { 1 },
                trace_id,
                span_id,
                ..Default::default()
            });
        }
        let resource_logs = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(i, log_records)| ResourceLogs {
                resource: Some(self.services[i].resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.services[i].scope.clone()),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect();
        ExportLogsServiceRequest { resource_logs }
    }
}
