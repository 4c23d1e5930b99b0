//! [`proptest`](mod@proptest) strategies that generate structurally varied OTLP requests.
//!
//! For property tests of anything that reads or writes OTLP: codecs (round trips),
//! the wire walker and the batcher (no item lost or duplicated), receivers and
//! exporters. Enabled by the `testing` feature; otlp-core's own tests use it without
//! the feature.
//!
//! The requests are valid protobuf messages but deliberately awkward: several resources
//! with attributes, several scopes (some without an `InstrumentationScope`), spans with
//! events, links and status, all five metric types with exemplars, log bodies that nest
//! arrays and key-value lists, 64-bit integers over the whole range, enum fields that
//! sometimes hold integers no enum variant names, and doubles that are sometimes NaN,
//! infinite or negative zero.
//!
//! Because doubles can be NaN, compare round-tripped messages by their protobuf encoding
//! (`prost::Message::encode_to_vec`), not with `==`: NaN is never equal to itself.
//!
//! ```
//! use otlp_core::testing::arb_trace_request;
//! use otlp_core::OtlpRequest;
//! use proptest::prelude::*;
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::default();
//! runner
//!     .run(&arb_trace_request(), |request| {
//!         let bytes = prost::Message::encode_to_vec(&request);
//!         let count = otlp_core::wire::count_items(otlp_core::Signal::Traces, &bytes).unwrap();
//!         prop_assert_eq!(count, request.item_count());
//!         Ok(())
//!     })
//!     .unwrap();
//! ```
//!
//! Sizes are kept small (a handful of each list) so debug-build property tests stay fast;
//! combine with `proptest::collection::vec` for more volume.

// This file is also compiled into otlp-core's integration tests with `#[path]` (a crate
// cannot dev-depend on itself with a feature), so it names every type through
// `opentelemetry_proto` and `proptest` instead of `crate::`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point, metric, number_data_point,
    summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

/// Any `ExportTraceServiceRequest`: up to 3 resources × 3 scopes × 4 spans, with
/// attributes, events, links, status, flags, 16-byte trace ids and 8-byte span ids.
pub fn arb_trace_request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    vec(arb_resource_spans(), 0..4)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// Any `ExportMetricsServiceRequest`: up to 3 resources × 3 scopes × 4 metrics of all
/// five types (and sometimes none), each with up to 4 data points and exemplars.
pub fn arb_metrics_request() -> impl Strategy<Value = ExportMetricsServiceRequest> {
    vec(arb_resource_metrics(), 0..4)
        .prop_map(|resource_metrics| ExportMetricsServiceRequest { resource_metrics })
}

/// Any `ExportLogsServiceRequest`: up to 3 resources × 3 scopes × 4 log records whose
/// bodies and attributes nest arrays, key-value lists and bytes (depth at most 3).
pub fn arb_logs_request() -> impl Strategy<Value = ExportLogsServiceRequest> {
    vec(arb_resource_logs(), 0..4)
        .prop_map(|resource_logs| ExportLogsServiceRequest { resource_logs })
}

/// One `ResourceSpans` (resource sometimes absent, schema URL sometimes set).
pub fn arb_resource_spans() -> impl Strategy<Value = ResourceSpans> {
    (
        option::weighted(0.8, arb_resource()),
        vec(arb_scope_spans(), 0..4),
        arb_schema_url(),
    )
        .prop_map(|(resource, scope_spans, schema_url)| ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        })
}

/// One `ScopeSpans` with up to 3 spans.
pub fn arb_scope_spans() -> impl Strategy<Value = ScopeSpans> {
    (
        option::weighted(0.8, arb_scope()),
        vec(arb_span(), 0..4),
        arb_schema_url(),
    )
        .prop_map(|(scope, spans, schema_url)| ScopeSpans {
            scope,
            spans,
            schema_url,
        })
}

/// One `Span`: ids of the correct length, any timestamps, events, links and status;
/// `kind` is sometimes an integer outside `SpanKind`.
pub fn arb_span() -> impl Strategy<Value = Span> {
    let ids = (
        arb_trace_id(),
        arb_span_id(),
        prop_oneof![Just(Vec::new()), arb_span_id()],
        arb_short_string(),
        arb_flags(),
    );
    let body = (
        arb_name(),
        arb_enum(0..=5),
        arb_timestamp(),
        arb_timestamp(),
        arb_attributes(),
        arb_small_count(),
    );
    let tail = (
        vec(arb_span_event(), 0..3),
        arb_small_count(),
        vec(arb_span_link(), 0..3),
        arb_small_count(),
        option::weighted(0.7, arb_status()),
    );
    (ids, body, tail).prop_map(
        |(
            (trace_id, span_id, parent_span_id, trace_state, flags),
            (
                name,
                kind,
                start_time_unix_nano,
                end_time_unix_nano,
                attributes,
                dropped_attributes_count,
            ),
            (events, dropped_events_count, links, dropped_links_count, status),
        )| Span {
            trace_id,
            span_id,
            trace_state,
            parent_span_id,
            flags,
            name,
            kind,
            start_time_unix_nano,
            end_time_unix_nano,
            attributes,
            dropped_attributes_count,
            events,
            dropped_events_count,
            links,
            dropped_links_count,
            status,
        },
    )
}

/// One span event.
pub fn arb_span_event() -> impl Strategy<Value = span::Event> {
    (
        arb_timestamp(),
        arb_name(),
        arb_attributes(),
        arb_small_count(),
    )
        .prop_map(
            |(time_unix_nano, name, attributes, dropped_attributes_count)| span::Event {
                time_unix_nano,
                name,
                attributes,
                dropped_attributes_count,
            },
        )
}

/// One span link.
pub fn arb_span_link() -> impl Strategy<Value = span::Link> {
    (
        arb_trace_id(),
        arb_span_id(),
        arb_short_string(),
        arb_attributes(),
        arb_small_count(),
        arb_flags(),
    )
        .prop_map(
            |(trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags)| {
                span::Link {
                    trace_id,
                    span_id,
                    trace_state,
                    attributes,
                    dropped_attributes_count,
                    flags,
                }
            },
        )
}

/// A span status; `code` is sometimes outside `StatusCode`.
pub fn arb_status() -> impl Strategy<Value = Status> {
    (arb_short_string(), arb_enum(0..=2)).prop_map(|(message, code)| Status { message, code })
}

/// One `ResourceMetrics`.
pub fn arb_resource_metrics() -> impl Strategy<Value = ResourceMetrics> {
    (
        option::weighted(0.8, arb_resource()),
        vec(arb_scope_metrics(), 0..4),
        arb_schema_url(),
    )
        .prop_map(|(resource, scope_metrics, schema_url)| ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        })
}

/// One `ScopeMetrics` with up to 3 metrics.
pub fn arb_scope_metrics() -> impl Strategy<Value = ScopeMetrics> {
    (
        option::weighted(0.8, arb_scope()),
        vec(arb_metric(), 0..4),
        arb_schema_url(),
    )
        .prop_map(|(scope, metrics, schema_url)| ScopeMetrics {
            scope,
            metrics,
            schema_url,
        })
}

/// One `Metric` of any of the five types, or (rarely) with no data at all.
pub fn arb_metric() -> impl Strategy<Value = Metric> {
    (
        arb_name(),
        arb_short_string(),
        prop_oneof![
            Just(String::new()),
            Just("ms".to_owned()),
            Just("By".to_owned()),
            Just("{request}".to_owned())
        ],
        vec(arb_key_value(), 0..2),
        option::weighted(0.9, arb_metric_data()),
    )
        .prop_map(|(name, description, unit, metadata, data)| Metric {
            name,
            description,
            unit,
            metadata,
            data,
        })
}

/// The data of a metric: gauge, sum, histogram, exponential histogram or summary.
pub fn arb_metric_data() -> impl Strategy<Value = metric::Data> {
    prop_oneof![
        vec(arb_number_data_point(), 0..4)
            .prop_map(|data_points| metric::Data::Gauge(Gauge { data_points })),
        (
            vec(arb_number_data_point(), 0..4),
            arb_enum(0..=2),
            any::<bool>()
        )
            .prop_map(|(data_points, aggregation_temporality, is_monotonic)| {
                metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality,
                    is_monotonic,
                })
            }),
        (vec(arb_histogram_data_point(), 0..4), arb_enum(0..=2)).prop_map(
            |(data_points, aggregation_temporality)| metric::Data::Histogram(Histogram {
                data_points,
                aggregation_temporality,
            })
        ),
        (
            vec(arb_exponential_histogram_data_point(), 0..4),
            arb_enum(0..=2)
        )
            .prop_map(|(data_points, aggregation_temporality)| {
                metric::Data::ExponentialHistogram(ExponentialHistogram {
                    data_points,
                    aggregation_temporality,
                })
            }),
        vec(arb_summary_data_point(), 0..4)
            .prop_map(|data_points| metric::Data::Summary(Summary { data_points })),
    ]
}

/// A gauge or sum data point: a double (sometimes NaN or infinite), an integer, or no value.
pub fn arb_number_data_point() -> impl Strategy<Value = NumberDataPoint> {
    (
        arb_attributes(),
        arb_timestamp(),
        arb_timestamp(),
        vec(arb_exemplar(), 0..3),
        arb_data_point_flags(),
        option::weighted(
            0.9,
            prop_oneof![
                arb_double().prop_map(number_data_point::Value::AsDouble),
                any::<i64>().prop_map(number_data_point::Value::AsInt),
            ],
        ),
    )
        .prop_map(
            |(attributes, start_time_unix_nano, time_unix_nano, exemplars, flags, value)| {
                NumberDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    exemplars,
                    flags,
                    value,
                }
            },
        )
}

/// A histogram data point with buckets, bounds, optional sum/min/max and exemplars.
pub fn arb_histogram_data_point() -> impl Strategy<Value = HistogramDataPoint> {
    let head = (
        arb_attributes(),
        arb_timestamp(),
        arb_timestamp(),
        any::<u64>(),
        option::of(arb_double()),
    );
    let tail = (
        vec(any::<u64>(), 0..5),
        vec(arb_double(), 0..4),
        vec(arb_exemplar(), 0..3),
        arb_data_point_flags(),
        option::of(arb_double()),
        option::of(arb_double()),
    );
    (head, tail).prop_map(
        |(
            (attributes, start_time_unix_nano, time_unix_nano, count, sum),
            (bucket_counts, explicit_bounds, exemplars, flags, min, max),
        )| HistogramDataPoint {
            attributes,
            start_time_unix_nano,
            time_unix_nano,
            count,
            sum,
            bucket_counts,
            explicit_bounds,
            exemplars,
            flags,
            min,
            max,
        },
    )
}

/// An exponential histogram data point with positive/negative buckets (sometimes absent).
pub fn arb_exponential_histogram_data_point() -> impl Strategy<Value = ExponentialHistogramDataPoint>
{
    let head = (
        arb_attributes(),
        arb_timestamp(),
        arb_timestamp(),
        any::<u64>(),
        option::of(arb_double()),
        prop_oneof![4 => -10i32..=20, 1 => any::<i32>()],
        any::<u64>(),
    );
    let tail = (
        option::of(arb_buckets()),
        option::of(arb_buckets()),
        arb_data_point_flags(),
        vec(arb_exemplar(), 0..3),
        option::of(arb_double()),
        option::of(arb_double()),
        arb_double(),
    );
    (head, tail).prop_map(
        |(
            (attributes, start_time_unix_nano, time_unix_nano, count, sum, scale, zero_count),
            (positive, negative, flags, exemplars, min, max, zero_threshold),
        )| ExponentialHistogramDataPoint {
            attributes,
            start_time_unix_nano,
            time_unix_nano,
            count,
            sum,
            scale,
            zero_count,
            positive,
            negative,
            flags,
            exemplars,
            min,
            max,
            zero_threshold,
        },
    )
}

fn arb_buckets() -> impl Strategy<Value = exponential_histogram_data_point::Buckets> {
    (any::<i32>(), vec(any::<u64>(), 0..5)).prop_map(|(offset, bucket_counts)| {
        exponential_histogram_data_point::Buckets {
            offset,
            bucket_counts,
        }
    })
}

/// A summary data point with quantiles.
pub fn arb_summary_data_point() -> impl Strategy<Value = SummaryDataPoint> {
    (
        arb_attributes(),
        arb_timestamp(),
        arb_timestamp(),
        any::<u64>(),
        arb_double(),
        vec(
            (arb_double(), arb_double()).prop_map(|(quantile, value)| {
                summary_data_point::ValueAtQuantile { quantile, value }
            }),
            0..4,
        ),
        arb_data_point_flags(),
    )
        .prop_map(
            |(
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count,
                sum,
                quantile_values,
                flags,
            )| SummaryDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count,
                sum,
                quantile_values,
                flags,
            },
        )
}

/// An exemplar; trace and span ids are either absent or of the correct length.
pub fn arb_exemplar() -> impl Strategy<Value = Exemplar> {
    (
        arb_attributes(),
        arb_timestamp(),
        prop_oneof![Just(Vec::new()), arb_span_id()],
        prop_oneof![Just(Vec::new()), arb_trace_id()],
        option::weighted(
            0.9,
            prop_oneof![
                arb_double().prop_map(exemplar::Value::AsDouble),
                any::<i64>().prop_map(exemplar::Value::AsInt),
            ],
        ),
    )
        .prop_map(
            |(filtered_attributes, time_unix_nano, span_id, trace_id, value)| Exemplar {
                filtered_attributes,
                time_unix_nano,
                span_id,
                trace_id,
                value,
            },
        )
}

/// One `ResourceLogs`.
pub fn arb_resource_logs() -> impl Strategy<Value = ResourceLogs> {
    (
        option::weighted(0.8, arb_resource()),
        vec(arb_scope_logs(), 0..4),
        arb_schema_url(),
    )
        .prop_map(|(resource, scope_logs, schema_url)| ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        })
}

/// One `ScopeLogs` with up to 3 log records.
pub fn arb_scope_logs() -> impl Strategy<Value = ScopeLogs> {
    (
        option::weighted(0.8, arb_scope()),
        vec(arb_log_record(), 0..4),
        arb_schema_url(),
    )
        .prop_map(|(scope, log_records, schema_url)| ScopeLogs {
            scope,
            log_records,
            schema_url,
        })
}

/// One log record: a nested body, attributes, optional trace context; `severity_number`
/// is sometimes outside `SeverityNumber`.
pub fn arb_log_record() -> impl Strategy<Value = LogRecord> {
    let head = (
        arb_timestamp(),
        arb_timestamp(),
        arb_enum(0..=24),
        prop_oneof![
            Just(String::new()),
            Just("INFO".to_owned()),
            arb_short_string()
        ],
        option::weighted(0.8, arb_any_value()),
        arb_attributes(),
    );
    let tail = (
        arb_small_count(),
        arb_flags(),
        prop_oneof![Just(Vec::new()), arb_trace_id()],
        prop_oneof![Just(Vec::new()), arb_span_id()],
        prop_oneof![3 => Just(String::new()), 1 => arb_name()],
    );
    (head, tail).prop_map(
        |(
            (
                time_unix_nano,
                observed_time_unix_nano,
                severity_number,
                severity_text,
                body,
                attributes,
            ),
            (dropped_attributes_count, flags, trace_id, span_id, event_name),
        )| LogRecord {
            time_unix_nano,
            observed_time_unix_nano,
            severity_number,
            severity_text,
            body,
            attributes,
            dropped_attributes_count,
            flags,
            trace_id,
            span_id,
            event_name,
        },
    )
}

/// A resource with attributes and, sometimes, entity references.
pub fn arb_resource() -> impl Strategy<Value = Resource> {
    (
        arb_attributes(),
        arb_small_count(),
        vec(arb_entity_ref(), 0..2),
    )
        .prop_map(
            |(attributes, dropped_attributes_count, entity_refs)| Resource {
                attributes,
                dropped_attributes_count,
                entity_refs,
            },
        )
}

fn arb_entity_ref() -> impl Strategy<Value = EntityRef> {
    (
        arb_schema_url(),
        arb_name(),
        vec(arb_name(), 0..3),
        vec(arb_name(), 0..2),
    )
        .prop_map(
            |(schema_url, r#type, id_keys, description_keys)| EntityRef {
                schema_url,
                r#type,
                id_keys,
                description_keys,
            },
        )
}

/// An instrumentation scope.
pub fn arb_scope() -> impl Strategy<Value = InstrumentationScope> {
    (
        arb_name(),
        prop_oneof![
            Just(String::new()),
            Just("1.2.3".to_owned()),
            arb_short_string()
        ],
        arb_attributes(),
        arb_small_count(),
    )
        .prop_map(|(name, version, attributes, dropped_attributes_count)| {
            InstrumentationScope {
                name,
                version,
                attributes,
                dropped_attributes_count,
            }
        })
}

/// Up to 3 attributes.
pub fn arb_attributes() -> impl Strategy<Value = Vec<KeyValue>> {
    vec(arb_key_value(), 0..4)
}

/// One attribute whose value is any [`arb_any_value`] (or, rarely, absent).
pub fn arb_key_value() -> impl Strategy<Value = KeyValue> {
    (
        arb_name(),
        option::weighted(0.95, arb_any_value()),
        prop_oneof![19 => Just(0), 1 => any::<i32>()],
    )
        .prop_map(|(key, value, key_strindex)| KeyValue {
            key,
            value,
            key_strindex,
        })
}

/// Any `AnyValue`: strings (including escapes and non-ASCII), booleans, the whole `i64`
/// range, doubles (sometimes NaN, ±infinity, -0.0), bytes, and arrays and key-value lists
/// nested at most 3 deep; sometimes an `AnyValue` with no value set.
pub fn arb_any_value() -> impl Strategy<Value = AnyValue> {
    let leaf = prop_oneof![
        4 => arb_short_string().prop_map(any_value::Value::StringValue),
        1 => any::<bool>().prop_map(any_value::Value::BoolValue),
        2 => any::<i64>().prop_map(any_value::Value::IntValue),
        2 => arb_double().prop_map(any_value::Value::DoubleValue),
        1 => vec(any::<u8>(), 0..12).prop_map(any_value::Value::BytesValue),
        1 => (0i32..100).prop_map(any_value::Value::StringValueStrindex),
    ];
    let leaf = option::weighted(0.95, leaf).prop_map(|value| AnyValue { value });
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(|values| AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
            }),
            vec((arb_name(), option::of(inner)), 0..4).prop_map(|entries| AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: entries
                        .into_iter()
                        .map(|(key, value)| KeyValue {
                            key,
                            value,
                            key_strindex: 0,
                        })
                        .collect(),
                })),
            }),
        ]
    })
}

/// A double: mostly ordinary values, sometimes NaN, ±infinity, -0.0 or extremes.
pub fn arb_double() -> impl Strategy<Value = f64> {
    prop_oneof![
        12 => -1.0e6f64..1.0e6,
        3 => any::<f64>().prop_filter("finite", |d| d.is_finite()),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0f64),
        1 => Just(f64::MIN_POSITIVE),
        1 => Just(f64::MAX),
    ]
}

/// A 16-byte trace id.
pub fn arb_trace_id() -> impl Strategy<Value = Vec<u8>> {
    proptest::array::uniform16(any::<u8>()).prop_map(|id| id.to_vec())
}

/// An 8-byte span id.
pub fn arb_span_id() -> impl Strategy<Value = Vec<u8>> {
    proptest::array::uniform8(any::<u8>()).prop_map(|id| id.to_vec())
}

/// An enum field: usually one of `known`, sometimes any `i32` (unknown values must be
/// carried through as integers).
fn arb_enum(known: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![9 => known, 1 => any::<i32>()]
}

/// A timestamp: usually a realistic nanosecond time, sometimes 0 or any `u64` (so
/// 64-bit integers beyond 2^53 show up in OTLP/JSON).
fn arb_timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 1_500_000_000_000_000_000u64..1_900_000_000_000_000_000,
        1 => Just(0u64),
        2 => any::<u64>(),
    ]
}

/// A `fixed32` flags field (span, link, log record): mostly trace flags, sometimes anything.
fn arb_flags() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0u32..=0x3ff, 1 => any::<u32>()]
}

/// Data point flags: 0, the no-recorded-value bit, or anything.
fn arb_data_point_flags() -> impl Strategy<Value = u32> {
    prop_oneof![6 => Just(0u32), 2 => Just(1u32), 1 => any::<u32>()]
}

fn arb_small_count() -> impl Strategy<Value = u32> {
    prop_oneof![6 => Just(0u32), 2 => 0u32..10, 1 => any::<u32>()]
}

fn arb_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_.]{0,11}"
}

fn arb_schema_url() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => Just("https://opentelemetry.io/schemas/1.26.0".to_owned()),
    ]
}

/// Short strings: plain ASCII mostly, sometimes quotes, backslashes, control characters
/// and non-ASCII (which OTLP/JSON must escape or pass through).
fn arb_short_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~]{0,12}",
        1 => "(?s).{0,8}",
        1 => Just("\"\\\n\t\u{0}\u{1f}é漢🦀".to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    use prost::Message;

    /// The strategies produce the structure they promise (not just empty requests).
    #[test]
    fn strategies_cover_the_structure() {
        let mut runner = TestRunner::new(Config::with_cases(64));
        let mut spans = 0usize;
        let mut kinds = [false; 5];
        let mut nested = false;
        for _ in 0..64 {
            let trace = arb_trace_request()
                .new_tree(&mut runner)
                .expect("strategy")
                .current();
            spans += trace
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum::<usize>();
            for span in trace
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                assert_eq!(span.trace_id.len(), 16);
                assert_eq!(span.span_id.len(), 8);
                assert!(span.parent_span_id.is_empty() || span.parent_span_id.len() == 8);
            }
            let metrics = arb_metrics_request()
                .new_tree(&mut runner)
                .expect("strategy")
                .current();
            for m in metrics
                .resource_metrics
                .iter()
                .flat_map(|r| &r.scope_metrics)
                .flat_map(|s| &s.metrics)
            {
                match m.data {
                    Some(metric::Data::Gauge(_)) => kinds[0] = true,
                    Some(metric::Data::Sum(_)) => kinds[1] = true,
                    Some(metric::Data::Histogram(_)) => kinds[2] = true,
                    Some(metric::Data::ExponentialHistogram(_)) => kinds[3] = true,
                    Some(metric::Data::Summary(_)) => kinds[4] = true,
                    None => {}
                }
            }
            let logs = arb_logs_request()
                .new_tree(&mut runner)
                .expect("strategy")
                .current();
            nested |= logs
                .resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .any(|l| {
                    matches!(
                        l.body.as_ref().and_then(|b| b.value.as_ref()),
                        Some(any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))
                    )
                });
            // Every generated message survives a protobuf round trip byte for byte.
            let bytes = logs.encode_to_vec();
            let back = ExportLogsServiceRequest::decode(bytes.as_slice()).expect("decode");
            assert_eq!(back.encode_to_vec(), bytes);
        }
        assert!(spans > 0);
        assert!(kinds.iter().all(|k| *k), "all five metric types: {kinds:?}");
        assert!(nested);
    }
}
