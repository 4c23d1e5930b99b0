//! Shared fixtures for the otlp-rust benchmarks: realistic requests of a known shape.
//!
//! The reference request of the project's measurements is 1000 spans with 10 string
//! attributes each (about 376 bytes a span encoded), in one resource and one scope.

use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// A trace request of `spans` spans with `attributes` string attributes each, spread over
/// `resources` resources (one scope each). Ids and timestamps are deterministic.
pub fn trace_request(
    resources: usize,
    spans: usize,
    attributes: usize,
) -> ExportTraceServiceRequest {
    let per_resource = spans.div_ceil(resources.max(1));
    let mut n = 0u64;
    let resource_spans = (0..resources.max(1))
        .map(|r| {
            let spans: Vec<Span> = (0..per_resource)
                .take(spans.saturating_sub(r * per_resource))
                .map(|_| {
                    n += 1;
                    span(n, attributes)
                })
                .collect();
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        string_kv("service.name", format!("service-{r}")),
                        string_kv("host.name", format!("host-{r}.example.internal")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "bench.instrumentation".into(),
                        version: "1.0.0".into(),
                        ..Default::default()
                    }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn span(n: u64, attributes: usize) -> Span {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&(n / 8 + 1).to_be_bytes());
    trace_id[8..].copy_from_slice(&0x5a5a_5a5a_0000_0000u64.to_be_bytes());
    let start = 1_764_000_000_000_000_000 + n * 1_000_000;
    Span {
        trace_id: trace_id.to_vec(),
        span_id: (n + 1).to_be_bytes().to_vec(),
        parent_span_id: if n.is_multiple_of(8) {
            Vec::new()
        } else {
            n.to_be_bytes().to_vec()
        },
        name: format!("GET /api/v1/items/{}", n % 100),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 250_000 + n % 1000,
        attributes: (0..attributes)
            .map(|a| {
                string_kv(
                    &format!("app.attr.{a}"),
                    format!("val-{a}-{:06}", n % 1_000_000),
                )
            })
            .collect(),
        status: Some(Status::default()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::OtlpRequest;
    use prost::Message;

    #[test]
    fn reference_request_has_the_documented_shape() {
        let req = trace_request(1, 1000, 10);
        assert_eq!(req.item_count(), 1000);
        let per_span = req.encoded_len() / 1000;
        // The shape of the design's measurements: about 376 bytes a span.
        assert!((360..=390).contains(&per_span), "{per_span} bytes a span");
        let req = trace_request(3, 10, 1);
        assert_eq!(req.item_count(), 10);
        assert_eq!(req.resource_count(), 3);
    }
}
