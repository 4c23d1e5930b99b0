//! Trace batches: traces of 1 to 8 spans across services.

use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::trace::v1::span::SpanKind;
use otlp_core::proto::trace::v1::status::StatusCode;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use super::{Generator, ROUTES, kv_int, kv_str};

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0",
    "okhttp/4.12.0",
    "python-requests/2.32",
    "Go-http-client/2.0",
];

const DOWNSTREAM: &[(&str, SpanKind)] = &[
    ("SELECT shop.orders", SpanKind::Client),
    ("redis GET", SpanKind::Client),
    ("render order", SpanKind::Internal),
    ("kafka publish orders", SpanKind::Producer),
    ("GET /api/inventory/{sku}", SpanKind::Server),
];

impl Generator {
    /// A trace request with exactly `items` spans.
    pub(super) fn traces(&mut self, items: usize) -> ExportTraceServiceRequest {
        let window = self.next_window();
        let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); self.services.len()];
        let mut made = 0;
        while made < items {
            let len = self.rng.usize(1..=8).min(items - made);
            self.trace(len, window, &mut by_service);
            made += len;
        }
        let resource_spans = by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(i, spans)| ResourceSpans {
                resource: Some(self.services[i].resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.services[i].scope.clone()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            })
            .collect();
        ExportTraceServiceRequest { resource_spans }
    }

    fn trace(&mut self, len: usize, window: u64, by_service: &mut [Vec<Span>]) {
        let trace_id = self.random_id::<16>();
        let root_service = self.rng.usize(..self.services.len());
        let start = window + self.rng.u64(0..1_000_000);
        let root_duration = self.rng.u64(2_000_000..250_000_000);
        let route = ROUTES[self.rng.usize(..ROUTES.len())];
        // (span id, start, end) of the spans made so far: candidates for parents.
        let mut spans: Vec<(Vec<u8>, u64, u64)> = Vec::with_capacity(len);
        for i in 0..len {
            let span_id = self.random_id::<8>();
            let (parent_span_id, service, begin, end, kind, name) = if i == 0 {
                (
                    Vec::new(),
                    root_service,
                    start,
                    start + root_duration,
                    SpanKind::Server,
                    format!("{} {}", route.0, route.1),
                )
            } else {
                let (parent, p_start, p_end) = spans[self.rng.usize(..i)].clone();
                let room = (p_end - p_start).max(2);
                let begin = p_start + self.rng.u64(0..room / 2);
                let end = begin + self.rng.u64(1..=(p_end - begin).max(1));
                let (name, kind) = DOWNSTREAM[self.rng.usize(..DOWNSTREAM.len())];
                let service = self.rng.usize(..self.services.len());
                (parent, service, begin, end, kind, name.to_owned())
            };
            let error = self.is_error();
            let status_code: i64 = if error {
                [500, 502, 503][self.rng.usize(..3)]
            } else if self.rng.u8(..20) == 0 {
                404
            } else {
                200
            };
            let id = self.rng.u32(10_000..99_999);
            let attributes = vec![
                kv_str("http.method", route.0),
                kv_str("http.route", route.1),
                kv_int("http.status_code", status_code),
                kv_str("url.path", &format!("{}{id}", route.2)),
                kv_str(
                    "net.peer.name",
                    &format!("{}:8080", self.services[service].name),
                ),
                kv_str(
                    "net.peer.ip",
                    &format!(
                        "10.{}.{}.{}",
                        self.rng.u8(..4),
                        self.rng.u8(..255),
                        self.rng.u8(1..255)
                    ),
                ),
                kv_str("user.id", &format!("u-{}", self.rng.u32(1..500_000))),
                kv_str(
                    "http.user_agent",
                    USER_AGENTS[self.rng.usize(..USER_AGENTS.len())],
                ),
                kv_str("thread.name", &format!("worker-{}", self.rng.u8(..16))),
                kv_str("code.function", "handle"),
            ];
            let status = if error {
                Some(Status {
                    message: format!("upstream answered {status_code}"),
                    code: StatusCode::Error as i32,
                })
            } else {
                None
            };
            by_service[service].push(Span {
                trace_id: trace_id.clone(),
                span_id: span_id.clone(),
                parent_span_id,
                flags: 0x101, // sampled; parent-is-remote known
                name,
                kind: kind as i32,
                start_time_unix_nano: begin,
                end_time_unix_nano: end,
                attributes,
                status,
                ..Default::default()
            });
            spans.push((span_id, begin, end));
        }
    }
}
