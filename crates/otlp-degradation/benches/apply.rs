//! `DegradationPolicy::apply` on a 1000-span request at each level, in place and on
//! encoded bytes (decode, apply, re-encode).

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use otlp_core::Payload;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::status::StatusCode;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use otlp_degradation::DegradationLevel;
use otlp_degradation::policy::{DegradationPolicy, PolicyConfig};

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        key_strindex: 0,
    }
}

/// 1000 spans with 10 string attributes each (as in DESIGN.md's codec measurement), one
/// of them denied, one verbose; 1% ERROR spans; one resource, one scope.
fn request() -> ExportTraceServiceRequest {
    let mut state = 7;
    let spans = (0..1000)
        .map(|i| {
            let mut trace_id = splitmix(&mut state).to_be_bytes().to_vec();
            trace_id.extend_from_slice(&splitmix(&mut state).to_be_bytes());
            let mut attributes: Vec<KeyValue> = (0..8)
                .map(|k| attr(&format!("attr.{k}"), format!("value-{i}-{k}")))
                .collect();
            attributes.push(attr("http.request.header.cookie", "session=abcdef".into()));
            attributes.push(attr("db.statement", "SELECT * FROM t WHERE id = 1".into()));
            Span {
                trace_id,
                span_id: splitmix(&mut state).to_be_bytes().to_vec(),
                name: "GET /api/items".into(),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000 + i,
                end_time_unix_nano: 1_700_000_000_001_000_000 + i,
                attributes,
                status: Some(Status {
                    code: if i % 100 == 0 {
                        StatusCode::Error as i32
                    } else {
                        StatusCode::Ok as i32
                    },
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "api".into())],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bench".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn apply(c: &mut Criterion) {
    let config = PolicyConfig {
        deny_attributes: vec!["http.request.header.*".into()],
        verbose_attributes: vec!["db.statement".into()],
        ..PolicyConfig::default()
    };
    let policy = DegradationPolicy::new(config).expect("valid");
    let request = request();
    let payload = Payload::from_request(&request);

    let mut group = c.benchmark_group("apply_1000_spans");
    group.throughput(Throughput::Elements(1000));
    for level in DegradationLevel::ALL {
        group.bench_function(format!("in_place/{level}"), |b| {
            b.iter_batched_ref(
                || request.clone(),
                |r| policy.apply(level, r),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("payload/{level}"), |b| {
            b.iter_batched_ref(
                || payload.clone(),
                |p| policy.apply_payload(level, p).expect("valid"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, apply);
criterion_main!(benches);
