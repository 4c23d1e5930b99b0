//! OTLP/JSON conformance: the JSON Protobuf Encoding rules of the OTLP specification,
//! one test (or a few) per rule, plus example request documents of our own written in the
//! shape of the specification's OTLP/JSON examples (`tests/data/json/`).

use otlp_core::codec::json::{self, JsonError, JsonErrorKind, JsonMessage};
use otlp_core::proto::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use otlp_core::proto::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use otlp_core::proto::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use otlp_core::proto::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use otlp_core::proto::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point, metric, number_data_point,
    summary_data_point,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// helpers

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/json/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn decode<T: JsonMessage>(text: &str) -> T {
    json::from_slice(text.as_bytes()).unwrap_or_else(|e| panic!("decoding {text}: {e}"))
}

fn decode_err<T: JsonMessage + std::fmt::Debug>(text: &str) -> JsonError {
    match json::from_slice::<T>(text.as_bytes()) {
        Ok(message) => panic!("decoding {text} should fail, got {message:?}"),
        Err(e) => e,
    }
}

fn encode<T: JsonMessage>(message: &T) -> String {
    String::from_utf8(json::to_vec(message)).expect("OTLP/JSON is UTF-8")
}

fn encode_value<T: JsonMessage>(message: &T) -> Value {
    serde_json::from_slice(&json::to_vec(message)).expect("OTLP/JSON is JSON")
}

/// proto -> JSON -> proto gives the same protobuf bytes.
fn assert_round_trip<T: JsonMessage + prost::Message + Default>(message: &T) {
    let text = json::to_vec(message);
    let back: T = json::from_slice(&text).unwrap_or_else(|e| {
        panic!(
            "decoding our own output failed: {e}\n{}",
            String::from_utf8_lossy(&text)
        )
    });
    assert_eq!(
        back.encode_to_vec(),
        message.encode_to_vec(),
        "round trip changed the message; JSON was {}",
        String::from_utf8_lossy(&text)
    );
    // Encoding is deterministic: the same message gives the same text.
    assert_eq!(json::to_vec(&back), text);
}

fn trace_with_span(span_json: &str) -> String {
    format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{span_json}]}}]}}]}}"#)
}

fn first_span(request: &ExportTraceServiceRequest) -> &Span {
    &request.resource_spans[0].scope_spans[0].spans[0]
}

fn span_request(span: Span) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs_with_record(record_json: &str) -> String {
    format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{record_json}]}}]}}]}}"#)
}

fn first_record(request: &ExportLogsServiceRequest) -> &LogRecord {
    &request.resource_logs[0].scope_logs[0].log_records[0]
}

fn record_request(record: LogRecord) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metrics_with_metric(metric_json: &str) -> String {
    format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{metric_json}]}}]}}]}}"#)
}

fn first_metric(request: &ExportMetricsServiceRequest) -> &Metric {
    &request.resource_metrics[0].scope_metrics[0].metrics[0]
}

fn metric_request(metric: Metric) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![metric],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn attribute_value(json_value: &str) -> any_value::Value {
    let text = logs_with_record(&format!(r#"{{"body":{json_value}}}"#));
    let request: ExportLogsServiceRequest = decode(&text);
    first_record(&request)
        .body
        .clone()
        .and_then(|body| body.value)
        .unwrap_or_else(|| panic!("{json_value} decoded to no value"))
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
const PARENT_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73];

// ---------------------------------------------------------------------------------------
// rich messages: every field of every message set, awkward values included

/// An `AnyValue` of every kind, nested: kvlist within array within kvlist.
fn nested_any_value() -> AnyValue {
    use any_value::Value as V;
    AnyValue {
        value: Some(V::KvlistValue(KeyValueList {
            values: vec![
                kv(
                    "s",
                    V::StringValue("quote \" backslash \\ newline \n tab \t é 😀 \u{1}".into()),
                ),
                kv("empty string", V::StringValue(String::new())),
                kv("b", V::BoolValue(true)),
                kv("false", V::BoolValue(false)),
                kv("i", V::IntValue(i64::MIN)),
                kv("i max", V::IntValue(i64::MAX)),
                kv("zero", V::IntValue(0)),
                kv("d", V::DoubleValue(637.704)),
                kv("nan", V::DoubleValue(f64::NAN)),
                kv("inf", V::DoubleValue(f64::INFINITY)),
                kv("-inf", V::DoubleValue(f64::NEG_INFINITY)),
                kv("-0", V::DoubleValue(-0.0)),
                kv("0.0", V::DoubleValue(0.0)),
                kv("bytes", V::BytesValue(vec![0, 1, 2, 0xfb, 0xff, 0xfe])),
                kv("no bytes", V::BytesValue(Vec::new())),
                kv("strindex", V::StringValueStrindex(7)),
                KeyValue {
                    key: "no value".into(),
                    value: None,
                    key_strindex: 0,
                },
                KeyValue {
                    key: "empty value".into(),
                    value: Some(AnyValue { value: None }),
                    key_strindex: 3,
                },
                kv(
                    "array",
                    V::ArrayValue(ArrayValue {
                        values: vec![
                            AnyValue {
                                value: Some(V::StringValue("many".into())),
                            },
                            AnyValue { value: None },
                            AnyValue {
                                value: Some(V::KvlistValue(KeyValueList {
                                    values: vec![kv(
                                        "deeper",
                                        V::ArrayValue(ArrayValue {
                                            values: vec![AnyValue {
                                                value: Some(V::IntValue(-42)),
                                            }],
                                        }),
                                    )],
                                })),
                            },
                            AnyValue {
                                value: Some(V::ArrayValue(ArrayValue::default())),
                            },
                            AnyValue {
                                value: Some(V::KvlistValue(KeyValueList::default())),
                            },
                        ],
                    }),
                ),
            ],
        })),
    }
}

fn rich_resource() -> Resource {
    Resource {
        attributes: vec![
            string_kv("service.name", "my.service"),
            kv("n", any_value::Value::IntValue(3)),
        ],
        dropped_attributes_count: 2,
        entity_refs: vec![
            EntityRef {
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                r#type: "service".into(),
                id_keys: vec!["service.name".into(), "service.namespace".into()],
                description_keys: vec!["service.version".into()],
            },
            EntityRef::default(),
        ],
    }
}

fn rich_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "my.library".into(),
        version: "1.0.0".into(),
        attributes: vec![string_kv("my.scope.attribute", "some scope attribute")],
        dropped_attributes_count: 1,
    }
}

fn rich_trace() -> ExportTraceServiceRequest {
    let span = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        trace_state: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into(),
        parent_span_id: PARENT_ID.to_vec(),
        flags: 0x301,
        name: "I'm a server span".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: u64::MAX,
        attributes: vec![
            string_kv("my.span.attr", "some value"),
            kv("nested", nested_any_value().value.unwrap()),
        ],
        dropped_attributes_count: 4,
        events: vec![
            span::Event {
                time_unix_nano: 1_544_712_660_500_000_000,
                name: "exception".into(),
                attributes: vec![string_kv("exception.message", "boom")],
                dropped_attributes_count: 1,
            },
            span::Event::default(),
        ],
        dropped_events_count: 5,
        links: vec![
            span::Link {
                trace_id: vec![0xff; 16],
                span_id: vec![0x01; 8],
                trace_state: "a=b".into(),
                attributes: vec![kv("link.bool", any_value::Value::BoolValue(false))],
                dropped_attributes_count: 6,
                flags: 0x100,
            },
            span::Link::default(),
        ],
        dropped_links_count: 7,
        status: Some(Status {
            message: "it broke".into(),
            code: 2,
        }),
    };
    let unusual = Span {
        // Values no enum variant names must be carried through as integers.
        kind: 42,
        status: Some(Status {
            message: String::new(),
            code: -3,
        }),
        ..Default::default()
    };
    let empty_status = Span {
        name: "empty status".into(),
        status: Some(Status::default()),
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(rich_resource()),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(rich_scope()),
                        spans: vec![span, unusual, empty_status, Span::default()],
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    },
                    ScopeSpans {
                        scope: Some(InstrumentationScope::default()),
                        ..Default::default()
                    },
                    ScopeSpans::default(),
                ],
                schema_url: "https://opentelemetry.io/schemas/1.25.0".into(),
            },
            // A present but empty resource must stay present.
            ResourceSpans {
                resource: Some(Resource::default()),
                ..Default::default()
            },
            ResourceSpans::default(),
        ],
    }
}

fn rich_exemplars() -> Vec<Exemplar> {
    vec![
        Exemplar {
            filtered_attributes: vec![string_kv("filtered", "yes")],
            time_unix_nano: 1_544_712_660_300_000_000,
            span_id: SPAN_ID.to_vec(),
            trace_id: TRACE_ID.to_vec(),
            value: Some(exemplar::Value::AsDouble(0.5)),
        },
        Exemplar {
            value: Some(exemplar::Value::AsInt(-7)),
            ..Default::default()
        },
        Exemplar {
            value: Some(exemplar::Value::AsInt(0)),
            ..Default::default()
        },
        Exemplar {
            value: Some(exemplar::Value::AsDouble(f64::NAN)),
            ..Default::default()
        },
        Exemplar::default(),
    ]
}

fn rich_metrics() -> ExportMetricsServiceRequest {
    let attrs = vec![string_kv("my.counter.attr", "some value")];
    let number = |value| NumberDataPoint {
        attributes: attrs.clone(),
        start_time_unix_nano: 1_544_712_660_300_000_000,
        time_unix_nano: 1_544_712_660_300_000_001,
        exemplars: rich_exemplars(),
        flags: 1,
        value,
    };
    let metrics = vec![
        Metric {
            name: "my.counter".into(),
            description: "I am a Counter".into(),
            unit: "1".into(),
            metadata: vec![string_kv("meta", "data")],
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![
                    number(Some(number_data_point::Value::AsDouble(5.0))),
                    number(Some(number_data_point::Value::AsInt(i64::MAX))),
                    // Set oneof members are written even when zero.
                    number(Some(number_data_point::Value::AsDouble(0.0))),
                    number(Some(number_data_point::Value::AsInt(0))),
                    number(Some(number_data_point::Value::AsDouble(-0.0))),
                    number(None),
                    NumberDataPoint::default(),
                ],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
        },
        Metric {
            name: "my.gauge".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![number(Some(number_data_point::Value::AsDouble(
                    f64::INFINITY,
                )))],
            })),
            ..Default::default()
        },
        Metric {
            name: "my.histogram".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint {
                        attributes: attrs.clone(),
                        start_time_unix_nano: 1,
                        time_unix_nano: 2,
                        count: 3,
                        sum: Some(3.25),
                        bucket_counts: vec![1, 0, u64::MAX, 2],
                        explicit_bounds: vec![f64::NEG_INFINITY, -1.5, 0.0, 1e300],
                        exemplars: rich_exemplars(),
                        flags: 1,
                        min: Some(0.0),
                        max: Some(f64::NAN),
                    },
                    // proto3 `optional` doubles: present zero stays present, absent stays absent.
                    HistogramDataPoint {
                        sum: Some(-0.0),
                        min: None,
                        max: Some(0.0),
                        ..Default::default()
                    },
                    HistogramDataPoint::default(),
                ],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
        Metric {
            name: "my.exponential_histogram".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![
                    ExponentialHistogramDataPoint {
                        attributes: attrs.clone(),
                        start_time_unix_nano: 10,
                        time_unix_nano: 20,
                        count: 30,
                        sum: Some(1.5),
                        scale: -3,
                        zero_count: 4,
                        positive: Some(exponential_histogram_data_point::Buckets {
                            offset: -2,
                            bucket_counts: vec![1, 2, 3],
                        }),
                        negative: Some(exponential_histogram_data_point::Buckets::default()),
                        flags: 1,
                        exemplars: rich_exemplars(),
                        min: Some(-1.0),
                        max: Some(f64::INFINITY),
                        zero_threshold: 1e-9,
                    },
                    ExponentialHistogramDataPoint {
                        zero_threshold: f64::NAN,
                        ..Default::default()
                    },
                ],
                aggregation_temporality: 77,
            })),
            ..Default::default()
        },
        Metric {
            name: "my.summary".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: attrs.clone(),
                    start_time_unix_nano: 100,
                    time_unix_nano: 200,
                    count: 300,
                    sum: 12.5,
                    quantile_values: vec![
                        summary_data_point::ValueAtQuantile {
                            quantile: 0.0,
                            value: 0.0,
                        },
                        summary_data_point::ValueAtQuantile {
                            quantile: 0.5,
                            value: f64::NAN,
                        },
                        summary_data_point::ValueAtQuantile {
                            quantile: 1.0,
                            value: f64::NEG_INFINITY,
                        },
                    ],
                    flags: 1,
                }],
            })),
            ..Default::default()
        },
        // A oneof set to an empty message stays set.
        Metric {
            name: "empty gauge".into(),
            data: Some(metric::Data::Gauge(Gauge::default())),
            ..Default::default()
        },
        Metric {
            name: "empty sum".into(),
            data: Some(metric::Data::Sum(Sum::default())),
            ..Default::default()
        },
        Metric {
            name: "empty summary".into(),
            data: Some(metric::Data::Summary(Summary::default())),
            ..Default::default()
        },
        Metric::default(),
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![
            ResourceMetrics {
                resource: Some(rich_resource()),
                scope_metrics: vec![
                    ScopeMetrics {
                        scope: Some(rich_scope()),
                        metrics,
                        schema_url: "s".into(),
                    },
                    ScopeMetrics::default(),
                ],
                schema_url: "r".into(),
            },
            ResourceMetrics {
                resource: Some(Resource::default()),
                ..Default::default()
            },
        ],
    }
}

fn rich_logs() -> ExportLogsServiceRequest {
    let record = LogRecord {
        time_unix_nano: 1_544_712_660_300_000_000,
        observed_time_unix_nano: 1_544_712_660_300_000_001,
        severity_number: 9,
        severity_text: "Information".into(),
        body: Some(nested_any_value()),
        attributes: vec![
            string_kv("string.attribute", "some string"),
            kv("int.attribute", any_value::Value::IntValue(10)),
            kv("double.attribute", any_value::Value::DoubleValue(637.704)),
        ],
        dropped_attributes_count: 3,
        flags: 1,
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        event_name: "browser.page_view".into(),
    };
    let odd = LogRecord {
        severity_number: 1000,
        body: Some(AnyValue {
            value: Some(any_value::Value::IntValue(0)),
        }),
        ..Default::default()
    };
    let empty_body = LogRecord {
        body: Some(AnyValue::default()),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: Some(rich_resource()),
                scope_logs: vec![
                    ScopeLogs {
                        scope: Some(rich_scope()),
                        log_records: vec![record, odd, empty_body, LogRecord::default()],
                        schema_url: "s".into(),
                    },
                    ScopeLogs::default(),
                ],
                schema_url: "r".into(),
            },
            ResourceLogs::default(),
        ],
    }
}

// ---------------------------------------------------------------------------------------
// example documents in the shape of the specification's OTLP/JSON request examples
// (`tests/data/json/`, our own: see the README there)

/// Ids of the fixtures' trace: the reservation request (server span), its remote parent,
/// and the first (failed) database call under it.
const FIXTURE_TRACE_ID: [u8; 16] = [
    0x3f, 0x9c, 0x2a, 0x7d, 0x41, 0xe8, 0xb6, 0x05, 0x5c, 0x1d, 0x92, 0xe4, 0xa7, 0xb3, 0x0f, 0x18,
];
const FIXTURE_SPAN_ID: [u8; 8] = [0x9a, 0x4e, 0x1c, 0x07, 0xd2, 0xb8, 0x5f, 0x36];
const FIXTURE_PARENT_ID: [u8; 8] = [0x61, 0xc3, 0xf8, 0xa0, 0xe2, 0x9d, 0x4b, 0x75];
const FIXTURE_DB_SPAN_ID: [u8; 8] = [0xc2, 0xd7, 0xe5, 0xb9, 0x18, 0x4a, 0x0f, 0x63];

/// The resource every fixture document starts with.
fn fixture_resource_attributes() -> Vec<KeyValue> {
    vec![
        string_kv("service.name", "inventory-service"),
        string_kv("service.version", "2.14.0"),
        string_kv("deployment.environment.name", "staging"),
    ]
}

#[test]
fn spec_example_trace_decodes() {
    let request: ExportTraceServiceRequest = json::from_slice(&fixture("trace.json")).unwrap();
    let rs = &request.resource_spans[0];
    let resource = rs.resource.as_ref().unwrap();
    assert_eq!(resource.attributes[0].key, "service.name");
    assert_eq!(resource.attributes, fixture_resource_attributes());
    let scope = rs.scope_spans[0].scope.as_ref().unwrap();
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("inventory.reservations", "2.14.0")
    );
    assert_eq!(
        scope.attributes,
        vec![string_kv("inventory.component", "reservation-api")]
    );
    let spans = &rs.scope_spans[0].spans;
    assert_eq!(spans.len(), 3);

    // The server span: uppercase hex ids, 64-bit integers as strings.
    let span = first_span(&request);
    assert_eq!(span.trace_id, FIXTURE_TRACE_ID);
    assert_eq!(span.span_id, FIXTURE_SPAN_ID);
    assert_eq!(span.parent_span_id, FIXTURE_PARENT_ID);
    assert_eq!(span.flags, 0x301);
    assert_eq!(span.name, "POST /api/v1/reservations");
    assert_eq!(span.kind, span::SpanKind::Server as i32);
    assert_eq!(span.start_time_unix_nano, 1_773_480_012_345_000_000);
    assert_eq!(span.end_time_unix_nano, 1_773_480_012_393_100_000);
    assert_eq!(
        span.attributes,
        vec![
            string_kv("http.request.method", "POST"),
            string_kv("http.route", "/api/v1/reservations"),
            kv("http.response.status_code", any_value::Value::IntValue(201)),
            kv(
                "http.request.header.accept",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::StringValue("application/json".into()))
                        },
                        AnyValue {
                            value: Some(any_value::Value::StringValue(
                                "application/problem+json".into()
                            ))
                        },
                    ]
                })
            ),
            kv(
                "inventory.reservation.backorder",
                any_value::Value::BoolValue(true)
            ),
            kv(
                "inventory.reservation.weight_kg",
                any_value::Value::DoubleValue(12.75)
            ),
        ]
    );
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "inventory.reservation.created");
    assert_eq!(span.events[0].time_unix_nano, 1_773_480_012_386_500_000);
    assert_eq!(
        span.events[0].attributes[1],
        kv(
            "inventory.reservation.item_count",
            any_value::Value::IntValue(3)
        )
    );
    let [link] = span.links.as_slice() else {
        panic!("{:?}", span.links)
    };
    assert_eq!(
        link.trace_id,
        [
            0x0d, 0x6b, 0x4f, 0x8e, 0x2a, 0x9c, 0x17, 0x35, 0x5e, 0x3b, 0x7a, 0x1f, 0x9c, 0x4d,
            0x2e, 0x60
        ]
    );
    assert_eq!(
        link.span_id,
        [0x7e, 0x1a, 0x3c, 0x5b, 0x9d, 0x2f, 0x40, 0x68]
    );
    assert_eq!(link.trace_state, "cart=v1");
    assert_eq!(link.flags, 0x101);
    assert_eq!(
        link.attributes,
        vec![string_kv("inventory.link.origin", "cart.checkout")]
    );
    assert_eq!(span.status, None);

    // A failed client call: lowercase ids, 64-bit integers as JSON numbers, error status.
    let db = &spans[1];
    assert_eq!(db.trace_id, FIXTURE_TRACE_ID);
    assert_eq!(db.span_id, FIXTURE_DB_SPAN_ID);
    assert_eq!(db.parent_span_id, FIXTURE_SPAN_ID);
    assert_eq!(db.kind, span::SpanKind::Client as i32);
    assert_eq!(db.start_time_unix_nano, 1_773_480_012_354_200_000);
    assert_eq!(db.end_time_unix_nano, 1_773_480_012_366_800_000);
    assert_eq!(
        db.attributes[4],
        kv("server.port", any_value::Value::IntValue(5432))
    );
    assert_eq!(db.events[0].name, "exception");
    assert_eq!(db.events[0].time_unix_nano, 1_773_480_012_366_700_000);
    assert_eq!(
        db.status,
        Some(Status {
            message: "could not serialize access due to concurrent update".into(),
            code: 2,
        })
    );
    // Its retry: an empty status object is a present, default status.
    assert_eq!(spans[2].parent_span_id, FIXTURE_SPAN_ID);
    assert_eq!(spans[2].status, Some(Status::default()));
    assert_round_trip(&request);
}

#[test]
fn spec_example_metrics_decodes() {
    let request: ExportMetricsServiceRequest = json::from_slice(&fixture("metrics.json")).unwrap();
    let resource = request.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(resource.attributes, fixture_resource_attributes());
    let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
    assert_eq!(metrics.len(), 6);

    // A cumulative monotonic sum; `asDouble` written as an integral JSON number.
    assert_eq!(
        (metrics[0].name.as_str(), metrics[0].unit.as_str()),
        ("inventory.stock.shipped", "kg")
    );
    let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
        panic!("{:?}", metrics[0])
    };
    assert_eq!(sum.aggregation_temporality, 1);
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.data_points[0].value,
        Some(number_data_point::Value::AsDouble(1830.0))
    );
    assert_eq!(
        sum.data_points[0].start_time_unix_nano,
        1_773_478_800_000_000_000
    );
    assert_eq!(sum.data_points[0].time_unix_nano, 1_773_480_060_000_000_000);
    let [exemplar] = sum.data_points[0].exemplars.as_slice() else {
        panic!("{:?}", sum.data_points[0])
    };
    assert_eq!(exemplar.value, Some(exemplar::Value::AsDouble(12.75)));
    assert_eq!(exemplar.time_unix_nano, 1_773_480_012_386_500_000);
    assert_eq!(
        (&exemplar.trace_id[..], &exemplar.span_id[..]),
        (&FIXTURE_TRACE_ID[..], &FIXTURE_SPAN_ID[..])
    );
    assert_eq!(
        exemplar.filtered_attributes,
        vec![string_kv("inventory.reservation.id", "rsv-8812")]
    );

    let Some(metric::Data::Gauge(gauge)) = &metrics[1].data else {
        panic!("{:?}", metrics[1])
    };
    assert_eq!(
        gauge.data_points[0].value,
        Some(number_data_point::Value::AsDouble(0.82))
    );

    // Explicit-bucket histogram; `min` of 0 is present, not absent.
    let Some(metric::Data::Histogram(histogram)) = &metrics[2].data else {
        panic!("{:?}", metrics[2])
    };
    assert_eq!(histogram.aggregation_temporality, 1);
    let point = &histogram.data_points[0];
    assert_eq!(point.count, 8);
    assert_eq!(point.sum, Some(71.0));
    assert_eq!(point.bucket_counts, vec![2, 5, 1, 0]);
    assert_eq!(point.explicit_bounds, vec![1.0, 10.0, 100.0]);
    assert_eq!((point.min, point.max), (Some(0.0), Some(42.0)));
    assert_eq!(point.exemplars[0].value, Some(exemplar::Value::AsInt(42)));
    assert_eq!(point.exemplars[0].span_id, FIXTURE_DB_SPAN_ID);

    let Some(metric::Data::ExponentialHistogram(exponential)) = &metrics[3].data else {
        panic!("{:?}", metrics[3])
    };
    assert_eq!(exponential.aggregation_temporality, 2);
    let point = &exponential.data_points[0];
    assert_eq!((point.count, point.sum), (8, Some(0.334)));
    assert_eq!((point.scale, point.zero_count), (2, 0));
    let positive = point.positive.as_ref().unwrap();
    assert_eq!(positive.offset, -26);
    assert_eq!(
        positive.bucket_counts,
        vec![1, 0, 0, 2, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 1]
    );
    assert_eq!(
        positive.bucket_counts.iter().sum::<u64>(),
        point.count - point.zero_count
    );
    assert_eq!(point.negative, None);
    assert_eq!((point.min, point.max), (Some(0.0123), Some(0.129)));

    let Some(metric::Data::Summary(summary)) = &metrics[4].data else {
        panic!("{:?}", metrics[4])
    };
    let point = &summary.data_points[0];
    assert_eq!((point.count, point.sum), (14, 691.5));
    let quantiles: Vec<_> = point
        .quantile_values
        .iter()
        .map(|q| (q.quantile, q.value))
        .collect();
    assert_eq!(
        quantiles,
        vec![(0.0, 18.5), (0.5, 46.0), (0.99, 95.25), (1.0, 96.0)]
    );

    // A non-monotonic sum of integers, one as a string and one as a number.
    let Some(metric::Data::Sum(connections)) = &metrics[5].data else {
        panic!("{:?}", metrics[5])
    };
    assert!(!connections.is_monotonic);
    let values: Vec<_> = connections.data_points.iter().map(|p| p.value).collect();
    assert_eq!(
        values,
        vec![
            Some(number_data_point::Value::AsInt(7)),
            Some(number_data_point::Value::AsInt(3))
        ]
    );
    assert_round_trip(&request);
}

#[test]
fn spec_example_logs_decodes() {
    let request: ExportLogsServiceRequest = json::from_slice(&fixture("logs.json")).unwrap();
    let records = &request.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 4);
    let record = first_record(&request);
    assert_eq!(record.time_unix_nano, 1_773_480_012_386_900_000);
    assert_eq!(record.observed_time_unix_nano, 1_773_480_012_387_000_000);
    assert_eq!(record.severity_text, "INFO");
    assert_eq!(record.trace_id, FIXTURE_TRACE_ID);
    assert_eq!(record.span_id, FIXTURE_SPAN_ID);
    assert_eq!(record.flags, 1);
    assert_eq!(
        record.body,
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(
                "Reserved 3 items for order ord-20260314-0042".into()
            ))
        })
    );
    let values: Vec<_> = record
        .attributes
        .iter()
        .map(|kv| kv.value.clone().unwrap().value.unwrap())
        .collect();
    assert_eq!(
        values[0],
        any_value::Value::StringValue("inventory::reservations::reserve".into())
    );
    assert_eq!(values[1], any_value::Value::BoolValue(true));
    assert_eq!(values[2], any_value::Value::IntValue(3));
    assert_eq!(values[3], any_value::Value::DoubleValue(12.75));
    let any_value::Value::ArrayValue(array) = &values[4] else {
        panic!("{:?}", values[4])
    };
    assert_eq!(array.values.len(), 2);
    let any_value::Value::KvlistValue(map) = &values[5] else {
        panic!("{:?}", values[5])
    };
    assert_eq!(map.values, vec![string_kv("id", "ber-1")]);

    let severities: Vec<_> = records
        .iter()
        .map(|r| (r.severity_number, r.severity_text.as_str()))
        .collect();
    assert_eq!(
        severities,
        vec![(9, "INFO"), (13, "WARN"), (17, "ERROR"), (5, "DEBUG")]
    );
    // An event among the logs: `eventName` and a structured body.
    assert_eq!(records[1].event_name, "inventory.stock.low");
    assert_eq!(records[1].time_unix_nano, 1_773_480_012_387_200_000);
    let Some(any_value::Value::KvlistValue(body)) = records[1].body.clone().and_then(|b| b.value)
    else {
        panic!("{:?}", records[1])
    };
    assert_eq!(
        body.values,
        vec![
            string_kv("sku", "SKU-4471-BLK"),
            kv("available", any_value::Value::IntValue(4)),
            kv("threshold", any_value::Value::IntValue(10)),
        ]
    );
    assert_eq!(records[2].span_id, FIXTURE_DB_SPAN_ID);
    assert_eq!(records[2].event_name, "");
    // No trace context, a bytes body.
    assert!(records[3].trace_id.is_empty() && records[3].span_id.is_empty());
    assert_eq!(
        records[3].body,
        Some(AnyValue {
            value: Some(any_value::Value::BytesValue(vec![
                0x4f, 0x1d, 0x9c, 0x27, 0xb8, 0x0e, 0x63, 0xa5, 0xd2, 0x41, 0x7f, 0x0c, 0x9e, 0x3b,
                0x58, 0xa6,
            ]))
        })
    );
    assert_round_trip(&request);
}

/// Our `events.json` writes `kvlistValue` as a bare array, as some published OTLP examples
/// do; accept it.
#[test]
fn spec_example_events_decodes() {
    let request: ExportLogsServiceRequest = json::from_slice(&fixture("events.json")).unwrap();
    let records = &request.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 2);
    let record = first_record(&request);
    assert_eq!(record.event_name, "inventory.stock.adjusted");
    assert_eq!(record.severity_number, 9);
    assert_eq!(record.observed_time_unix_nano, 1_773_480_665_120_000_000);
    let Some(any_value::Value::KvlistValue(body)) = record.body.clone().and_then(|b| b.value)
    else {
        panic!("{record:?}")
    };
    assert_eq!(body.values.len(), 4);
    assert_eq!(
        body.values[0],
        kv("quantity.delta", any_value::Value::IntValue(-3))
    );
    assert_eq!(body.values[3], string_kv("location", "aisle-14/bin-07"));
    // The canonical `{"values": [...]}` form, with a list of maps inside.
    assert_eq!(records[1].event_name, "inventory.reservation.expired");
    let Some(any_value::Value::KvlistValue(body)) = records[1].body.clone().and_then(|b| b.value)
    else {
        panic!("{:?}", records[1])
    };
    assert_eq!(body.values[0], string_kv("reservation.id", "rsv-8790"));
    let item = KeyValueList {
        values: vec![
            string_kv("sku", "SKU-0093-WHT"),
            kv("quantity", any_value::Value::IntValue(2)),
        ],
    };
    assert_eq!(
        body.values[1],
        kv(
            "released",
            any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::KvlistValue(item))
                }]
            })
        )
    );
    // Written back in the canonical form.
    let text = encode(&request);
    assert!(
        text.contains(
            r#""kvlistValue":{"values":[{"key":"quantity.delta","value":{"intValue":"-3"}}"#
        ),
        "{text}"
    );
    assert_round_trip(&request);
}

/// Canonical output of the trace example: exactly what a Collector file exporter writes.
#[test]
fn spec_example_trace_canonical_output() {
    let request: ExportTraceServiceRequest = json::from_slice(&fixture("trace.json")).unwrap();
    assert_eq!(
        encode(&request),
        concat!(
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"inventory-service"}},"#,
            r#"{"key":"service.version","value":{"stringValue":"2.14.0"}},{"key":"deployment.environment.name","value":{"stringValue":"staging"}}]},"#,
            r#""scopeSpans":[{"scope":{"name":"inventory.reservations","version":"2.14.0","attributes":[{"key":"inventory.component","value":{"stringValue":"reservation-api"}}]},"#,
            r#""spans":[{"traceId":"3f9c2a7d41e8b6055c1d92e4a7b30f18","spanId":"9a4e1c07d2b85f36","parentSpanId":"61c3f8a0e29d4b75","flags":769,"#,
            r#""name":"POST /api/v1/reservations","kind":2,"startTimeUnixNano":"1773480012345000000","endTimeUnixNano":"1773480012393100000","#,
            r#""attributes":[{"key":"http.request.method","value":{"stringValue":"POST"}},{"key":"http.route","value":{"stringValue":"/api/v1/reservations"}},"#,
            r#"{"key":"http.response.status_code","value":{"intValue":"201"}},"#,
            r#"{"key":"http.request.header.accept","value":{"arrayValue":{"values":[{"stringValue":"application/json"},{"stringValue":"application/problem+json"}]}}},"#,
            r#"{"key":"inventory.reservation.backorder","value":{"boolValue":true}},{"key":"inventory.reservation.weight_kg","value":{"doubleValue":12.75}}],"#,
            r#""events":[{"timeUnixNano":"1773480012386500000","name":"inventory.reservation.created","#,
            r#""attributes":[{"key":"inventory.reservation.id","value":{"stringValue":"rsv-8812"}},{"key":"inventory.reservation.item_count","value":{"intValue":"3"}}]}],"#,
            r#""links":[{"traceId":"0d6b4f8e2a9c17355e3b7a1f9c4d2e60","spanId":"7e1a3c5b9d2f4068","traceState":"cart=v1","#,
            r#""attributes":[{"key":"inventory.link.origin","value":{"stringValue":"cart.checkout"}}],"flags":257}]},"#,
            r#"{"traceId":"3f9c2a7d41e8b6055c1d92e4a7b30f18","spanId":"c2d7e5b9184a0f63","parentSpanId":"9a4e1c07d2b85f36","flags":257,"#,
            r#""name":"UPDATE stock_levels","kind":3,"startTimeUnixNano":"1773480012354200000","endTimeUnixNano":"1773480012366800000","#,
            r#""attributes":[{"key":"db.system.name","value":{"stringValue":"postgresql"}},{"key":"db.operation.name","value":{"stringValue":"UPDATE"}},"#,
            r#"{"key":"db.collection.name","value":{"stringValue":"stock_levels"}},{"key":"db.response.status_code","value":{"stringValue":"40001"}},"#,
            r#"{"key":"server.port","value":{"intValue":"5432"}}],"#,
            r#""events":[{"timeUnixNano":"1773480012366700000","name":"exception","#,
            r#""attributes":[{"key":"exception.type","value":{"stringValue":"SerializationFailure"}},"#,
            r#"{"key":"exception.message","value":{"stringValue":"could not serialize access due to concurrent update"}}]}],"#,
            r#""status":{"message":"could not serialize access due to concurrent update","code":2}},"#,
            r#"{"traceId":"3f9c2a7d41e8b6055c1d92e4a7b30f18","spanId":"5b90e3a17c4d2f81","parentSpanId":"9a4e1c07d2b85f36","flags":257,"#,
            r#""name":"UPDATE stock_levels","kind":3,"startTimeUnixNano":"1773480012369300000","endTimeUnixNano":"1773480012381900000","#,
            r#""attributes":[{"key":"db.system.name","value":{"stringValue":"postgresql"}},{"key":"db.operation.name","value":{"stringValue":"UPDATE"}},"#,
            r#"{"key":"db.collection.name","value":{"stringValue":"stock_levels"}},{"key":"server.port","value":{"intValue":"5432"}}],"#,
            r#""status":{}}]}]}]}"#,
        )
    );
}

// ---------------------------------------------------------------------------------------
// round trips

#[test]
fn round_trip_rich_trace() {
    assert_round_trip(&rich_trace());
}

#[test]
fn round_trip_rich_metrics() {
    assert_round_trip(&rich_metrics());
}

#[test]
fn round_trip_rich_logs() {
    assert_round_trip(&rich_logs());
}

#[test]
fn round_trip_responses() {
    assert_round_trip(&ExportTraceServiceResponse::default());
    assert_round_trip(&ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 12,
            error_message: "bad span".into(),
        }),
    });
    assert_round_trip(&ExportTraceServiceResponse {
        partial_success: Some(Default::default()),
    });
    assert_round_trip(&ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: i64::MAX,
            error_message: "x".into(),
        }),
    });
    assert_round_trip(&ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: -1,
            error_message: String::new(),
        }),
    });
}

#[test]
fn round_trip_empty_requests() {
    assert_eq!(encode(&ExportTraceServiceRequest::default()), "{}");
    assert_eq!(encode(&ExportMetricsServiceRequest::default()), "{}");
    assert_eq!(encode(&ExportLogsServiceRequest::default()), "{}");
    assert_round_trip(&ExportTraceServiceRequest::default());
}

/// Doubles that a naive decimal-to-binary conversion gets wrong by one unit in the
/// last place: the shortest representation written must read back to the same bits.
#[test]
fn round_trip_doubles_exactly() {
    let hard = [
        0.1 + 0.2,
        1.0 / 3.0,
        std::f64::consts::PI,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        // The largest subnormal.
        f64::from_bits(0x000f_ffff_ffff_ffff),
        1.7976931348623157e308,
        9007199254740993.0,
        123_456_789.123_456_79,
        -1.2345678901234567e-300,
        4.35748929e-318,
        0.000_001_234_567_890_123_456_7,
    ];
    for d in hard {
        let request = record_request(LogRecord {
            body: Some(AnyValue {
                value: Some(any_value::Value::DoubleValue(d)),
            }),
            ..Default::default()
        });
        let back: ExportLogsServiceRequest = json::from_slice(&json::to_vec(&request)).unwrap();
        let Some(any_value::Value::DoubleValue(got)) =
            first_record(&back).body.clone().and_then(|b| b.value)
        else {
            panic!()
        };
        assert_eq!(
            got.to_bits(),
            d.to_bits(),
            "{d:e} came back as {got:e}: is serde_json's `float_roundtrip` feature on?"
        );
    }
}

// ---------------------------------------------------------------------------------------
// keys

#[test]
fn keys_are_written_lower_camel_case() {
    for text in [
        encode(&rich_trace()),
        encode(&rich_metrics()),
        encode(&rich_logs()),
    ] {
        let value: Value = serde_json::from_str(&text).unwrap();
        let mut keys = Vec::new();
        collect_keys(&value, &mut keys);
        // Attribute names are values of "key" fields, so every object key is a field name.
        for key in &keys {
            assert!(
                key.chars().all(|c| c.is_ascii_alphabetic())
                    && key.starts_with(|c: char| c.is_ascii_lowercase()),
                "key {key:?} is not lowerCamelCase"
            );
        }
    }
    let text = encode(&rich_trace());
    for key in [
        "resourceSpans",
        "scopeSpans",
        "schemaUrl",
        "entityRefs",
        "idKeys",
        "descriptionKeys",
        "traceId",
        "spanId",
        "parentSpanId",
        "traceState",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "droppedAttributesCount",
        "droppedEventsCount",
        "droppedLinksCount",
        "timeUnixNano",
    ] {
        assert!(
            text.contains(&format!("\"{key}\":")),
            "{key} missing from {text}"
        );
    }
    let text = encode(&rich_metrics());
    for key in [
        "resourceMetrics",
        "scopeMetrics",
        "dataPoints",
        "aggregationTemporality",
        "isMonotonic",
        "asDouble",
        "asInt",
        "bucketCounts",
        "explicitBounds",
        "zeroCount",
        "zeroThreshold",
        "quantileValues",
        "filteredAttributes",
        "exponentialHistogram",
    ] {
        assert!(
            text.contains(&format!("\"{key}\":")),
            "{key} missing from {text}"
        );
    }
    let text = encode(&rich_logs());
    for key in [
        "resourceLogs",
        "scopeLogs",
        "logRecords",
        "observedTimeUnixNano",
        "severityNumber",
        "severityText",
        "eventName",
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
        "stringValueStrindex",
        "keyStrindex",
    ] {
        assert!(
            text.contains(&format!("\"{key}\":")),
            "{key} missing from {text}"
        );
    }
}

fn collect_keys(value: &Value, keys: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            // Keys of KeyValue objects are field names; the "key" field's value is data.
            for (k, v) in map {
                keys.push(k.clone());
                collect_keys(v, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_keys(v, keys)),
        _ => {}
    }
}

fn snake_case(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrite every object key with `f`.
fn map_keys(value: Value, f: &dyn Fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (f(&k), map_keys(v, f)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| map_keys(v, f)).collect()),
        other => other,
    }
}

fn assert_decodes_like<T: JsonMessage + prost::Message + Default>(value: &Value, expected: &T) {
    let text = serde_json::to_vec(value).unwrap();
    let got: T = json::from_slice(&text)
        .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&text)));
    assert_eq!(
        got.encode_to_vec(),
        expected.encode_to_vec(),
        "{}",
        String::from_utf8_lossy(&text)
    );
}

/// Every field is also accepted under its original proto (snake_case) name.
#[test]
fn keys_accepted_in_snake_case() {
    let trace = rich_trace();
    assert_decodes_like(&map_keys(encode_value(&trace), &snake_case), &trace);
    let metrics = rich_metrics();
    assert_decodes_like(&map_keys(encode_value(&metrics), &snake_case), &metrics);
    let logs = rich_logs();
    assert_decodes_like(&map_keys(encode_value(&logs), &snake_case), &logs);
    let response = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: "m".into(),
        }),
    };
    assert_decodes_like(&map_keys(encode_value(&response), &snake_case), &response);
    let response = ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 1,
            error_message: "m".into(),
        }),
    };
    assert_decodes_like(&map_keys(encode_value(&response), &snake_case), &response);
    let response = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 1,
            error_message: "m".into(),
        }),
    };
    assert_decodes_like(&map_keys(encode_value(&response), &snake_case), &response);
}

#[test]
fn keys_mixed_case_styles_in_one_document() {
    let request: ExportTraceServiceRequest = decode(&trace_with_span(
        r#"{"trace_id":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","start_time_unix_nano":"5","endTimeUnixNano":"6"}"#,
    ));
    let span = first_span(&request);
    assert_eq!(
        (span.trace_id.as_slice(), span.span_id.as_slice()),
        (&TRACE_ID[..], &SPAN_ID[..])
    );
    assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (5, 6));
}

#[test]
fn keys_with_json_escapes_are_understood() {
    let request: ExportTraceServiceRequest =
        decode(&trace_with_span(r#"{"\u006eame":"escaped key"}"#));
    assert_eq!(first_span(&request).name, "escaped key");
}

// ---------------------------------------------------------------------------------------
// unknown fields

/// Add an unknown field with an awkward value to every object.
fn add_unknown_fields(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut map: serde_json::Map<String, Value> = map
                .into_iter()
                .map(|(k, v)| (k, add_unknown_fields(v)))
                .collect();
            map.insert(
                "someFutureField".into(),
                serde_json::json!({"nested": [1, "two", {"three": null, "four": [true, 1.5e300]}], "traceId": "not hex"}),
            );
            map.insert("another_future_field".into(), Value::Null);
            Value::Object(map)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(add_unknown_fields).collect()),
        other => other,
    }
}

#[test]
fn unknown_fields_are_ignored_at_every_depth() {
    let trace = rich_trace();
    assert_decodes_like(&add_unknown_fields(encode_value(&trace)), &trace);
    let metrics = rich_metrics();
    assert_decodes_like(&add_unknown_fields(encode_value(&metrics)), &metrics);
    let logs = rich_logs();
    assert_decodes_like(&add_unknown_fields(encode_value(&logs)), &logs);
    let response = ExportLogsServiceResponse {
        partial_success: Some(ExportLogsPartialSuccess {
            rejected_log_records: 1,
            error_message: "m".into(),
        }),
    };
    assert_decodes_like(&add_unknown_fields(encode_value(&response)), &response);
}

// ---------------------------------------------------------------------------------------
// null

#[test]
fn null_means_default_for_every_field_kind() {
    let request: ExportTraceServiceRequest = decode(&format!(
        r#"{{"resourceSpans":[{{"resource":null,"schemaUrl":null,"scopeSpans":[{{"scope":null,"spans":[{}]}}]}}]}}"#,
        r#"{"traceId":null,"spanId":null,"parentSpanId":null,"traceState":null,"flags":null,"name":null,
            "kind":null,"startTimeUnixNano":null,"endTimeUnixNano":null,"attributes":null,
            "droppedAttributesCount":null,"events":null,"droppedEventsCount":null,"links":null,
            "droppedLinksCount":null,"status":null}"#
    ));
    assert_eq!(request.resource_spans[0].resource, None);
    assert_eq!(request.resource_spans[0].scope_spans[0].scope, None);
    assert_eq!(first_span(&request), &Span::default());

    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"name":"h","histogram":{"dataPoints":[{"sum":null,"min":null,"max":null,"bucketCounts":null,"count":null}],"aggregationTemporality":null}}"#,
    ));
    let Some(metric::Data::Histogram(h)) = &first_metric(&request).data else {
        panic!()
    };
    assert_eq!(h.data_points[0], HistogramDataPoint::default());
    assert_eq!(h.aggregation_temporality, 0);

    // A null top-level list.
    let request: ExportLogsServiceRequest = decode(r#"{"resourceLogs":null}"#);
    assert!(request.resource_logs.is_empty());
}

#[test]
fn null_oneof_member_is_not_set() {
    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"name":"g","sum":null,"gauge":{"dataPoints":[{"asInt":null,"asDouble":1.5}]}}"#,
    ));
    let Some(metric::Data::Gauge(g)) = &first_metric(&request).data else {
        panic!()
    };
    assert_eq!(
        g.data_points[0].value,
        Some(number_data_point::Value::AsDouble(1.5))
    );
    assert_eq!(
        attribute_value(r#"{"intValue":null,"stringValue":"s","boolValue":null}"#),
        any_value::Value::StringValue("s".into())
    );
    let request: ExportLogsServiceRequest =
        decode(&logs_with_record(r#"{"body":{"stringValue":null}}"#));
    assert_eq!(first_record(&request).body, Some(AnyValue { value: None }));
}

// ---------------------------------------------------------------------------------------
// trace and span ids

#[test]
fn ids_accept_upper_lower_and_mixed_case() {
    for (trace_id, span_id) in [
        ("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174"),
        ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"),
        ("5b8EfFf798038103D269b633813Fc60C", "eEe19B7eC3c1b174"),
    ] {
        let request: ExportTraceServiceRequest = decode(&trace_with_span(&format!(
            r#"{{"traceId":"{trace_id}","spanId":"{span_id}","parentSpanId":"{span_id}","links":[{{"traceId":"{trace_id}","spanId":"{span_id}"}}]}}"#
        )));
        let span = first_span(&request);
        assert_eq!(span.trace_id, TRACE_ID);
        assert_eq!(span.span_id, SPAN_ID);
        assert_eq!(span.parent_span_id, SPAN_ID);
        assert_eq!(
            (
                span.links[0].trace_id.as_slice(),
                span.links[0].span_id.as_slice()
            ),
            (&TRACE_ID[..], &SPAN_ID[..])
        );

        let logs: ExportLogsServiceRequest = decode(&logs_with_record(&format!(
            r#"{{"traceId":"{trace_id}","spanId":"{span_id}"}}"#
        )));
        assert_eq!(
            (
                first_record(&logs).trace_id.as_slice(),
                first_record(&logs).span_id.as_slice()
            ),
            (&TRACE_ID[..], &SPAN_ID[..])
        );

        let metrics: ExportMetricsServiceRequest = decode(&metrics_with_metric(&format!(
            r#"{{"gauge":{{"dataPoints":[{{"exemplars":[{{"traceId":"{trace_id}","spanId":"{span_id}"}}]}}]}}}}"#
        )));
        let Some(metric::Data::Gauge(g)) = &first_metric(&metrics).data else {
            panic!()
        };
        let exemplar = &g.data_points[0].exemplars[0];
        assert_eq!(
            (exemplar.trace_id.as_slice(), exemplar.span_id.as_slice()),
            (&TRACE_ID[..], &SPAN_ID[..])
        );
    }
}

#[test]
fn ids_are_written_lowercase_hex() {
    let text = encode(&rich_trace());
    assert!(
        text.contains(r#""traceId":"5b8efff798038103d269b633813fc60c""#),
        "{text}"
    );
    assert!(text.contains(r#""spanId":"eee19b7ec3c1b174""#));
    assert!(text.contains(r#""parentSpanId":"eee19b7ec3c1b173""#));
    assert!(
        text.contains(
            r#""traceId":"ffffffffffffffffffffffffffffffff","spanId":"0101010101010101""#
        )
    );
    let text = encode(&rich_logs());
    assert!(
        text.contains(
            r#""traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174""#
        ),
        "{text}"
    );
    let text = encode(&rich_metrics());
    assert!(
        text.contains(
            r#""spanId":"eee19b7ec3c1b174","traceId":"5b8efff798038103d269b633813fc60c""#
        ),
        "{text}"
    );
}

#[test]
fn ids_empty_or_missing_are_empty_bytes() {
    let request: ExportTraceServiceRequest = decode(&trace_with_span(
        r#"{"traceId":"","spanId":"","parentSpanId":"","links":[{"traceId":""}]}"#,
    ));
    let span = first_span(&request);
    assert!(span.trace_id.is_empty() && span.span_id.is_empty() && span.parent_span_id.is_empty());
    assert!(span.links[0].trace_id.is_empty());
    // And empty ids are not written.
    assert_eq!(
        encode(&request),
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"links":[{}]}]}]}]}"#
    );
}

#[test]
fn ids_of_wrong_length_are_errors() {
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"name":"a"},{"name":"b"},{"name":"c"},{"traceId":"5b8efff798038103d269b633813fc60"}"#,
    ));
    assert_eq!(e.path(), "resourceSpans[0].scopeSpans[0].spans[3].traceId");
    assert!(e.to_string().starts_with("resourceSpans[0].scopeSpans[0].spans[3].traceId: expected 32 hex digits, got 31 at line 1 column"), "{e}");
    assert_eq!(e.kind(), JsonErrorKind::Data);
    assert_eq!(e.line(), 1);

    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"spanId":"eee19b7ec3c1b17400"}"#,
    ));
    assert!(
        e.to_string()
            .contains("spanId: expected 16 hex digits, got 18"),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"parentSpanId":"ee"}"#));
    assert_eq!(
        e.path(),
        "resourceSpans[0].scopeSpans[0].spans[0].parentSpanId"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"links":[{},{"spanId":"e"}]}"#,
    ));
    assert_eq!(
        e.path(),
        "resourceSpans[0].scopeSpans[0].spans[0].links[1].spanId"
    );
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(r#"{"traceId":"00"}"#));
    assert_eq!(
        e.path(),
        "resourceLogs[0].scopeLogs[0].logRecords[0].traceId"
    );
    let e = decode_err::<ExportMetricsServiceRequest>(&metrics_with_metric(
        r#"{"sum":{"dataPoints":[{"exemplars":[{"spanId":"abc"}]}]}}"#,
    ));
    assert_eq!(
        e.path(),
        "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0].spanId"
    );
}

#[test]
fn ids_in_base64_get_a_hint() {
    // What the standard proto3 JSON mapping would write for TRACE_ID.
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"traceId":"W47/95gDgQPSabYzgT/GDA=="}"#,
    ));
    assert!(
        e.to_string()
            .contains("expected 32 hex digits, got 24 (OTLP/JSON ids are hex, not base64)"),
        "{e}"
    );
}

#[test]
fn ids_with_non_hex_digits_are_errors() {
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"traceId":"5b8efff798038103d269b633813fc6zz"}"#,
    ));
    assert!(
        e.to_string().contains("invalid hex digit at position 30"),
        "{e}"
    );
    assert_eq!(e.path(), "resourceSpans[0].scopeSpans[0].spans[0].traceId");
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"spanId":"0x1234567890abcd"}"#,
    ));
    assert!(
        e.to_string().contains("invalid hex digit at position 1"),
        "{e}"
    );
    // Multi-byte characters: the length counts characters and nothing panics.
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"spanId":"ééééééé"}"#));
    assert!(
        e.to_string().contains("expected 16 hex digits, got 7"),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"spanId":"éééééééé"}"#));
    assert!(e.to_string().contains("invalid hex digit"), "{e}");
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"spanId":12345678}"#));
    assert!(
        e.to_string()
            .contains("invalid type: integer `12345678`, expected a string of 16 hex digits"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// other bytes: base64

fn bytes_value(encoded: &str) -> Vec<u8> {
    match attribute_value(&format!(r#"{{"bytesValue":"{encoded}"}}"#)) {
        any_value::Value::BytesValue(bytes) => bytes,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bytes_value_accepts_standard_and_url_safe_padded_or_not() {
    let bytes = vec![0xfb, 0xff, 0xbf, 0x00, 0x01];
    assert_eq!(bytes_value("+/+/AAE="), bytes);
    assert_eq!(bytes_value("+/+/AAE"), bytes);
    assert_eq!(bytes_value("-_-_AAE="), bytes);
    assert_eq!(bytes_value("-_-_AAE"), bytes);
    assert_eq!(bytes_value(""), Vec::<u8>::new());
    assert_eq!(bytes_value("aGk="), b"hi");
    assert_eq!(bytes_value("aGk"), b"hi");
}

#[test]
fn bytes_value_is_written_standard_padded() {
    let request = record_request(LogRecord {
        body: Some(AnyValue {
            value: Some(any_value::Value::BytesValue(vec![
                0xfb, 0xff, 0xbf, 0x00, 0x01,
            ])),
        }),
        ..Default::default()
    });
    assert!(
        encode(&request).contains(r#""body":{"bytesValue":"+/+/AAE="}"#),
        "{}",
        encode(&request)
    );
}

#[test]
fn bytes_value_bad_base64_is_an_error() {
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(
        r#"{"body":{"bytesValue":"not base64!"}}"#,
    ));
    assert_eq!(
        e.path(),
        "resourceLogs[0].scopeLogs[0].logRecords[0].body.bytesValue"
    );
    assert!(e.to_string().contains("invalid base64"), "{e}");
    // Alphabets mixed in one value.
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(
        r#"{"body":{"bytesValue":"+/-_"}}"#,
    ));
    assert!(e.to_string().contains("invalid base64"), "{e}");
    let e =
        decode_err::<ExportLogsServiceRequest>(&logs_with_record(r#"{"body":{"bytesValue":"a"}}"#));
    assert!(e.to_string().contains("invalid base64"), "{e}");
}

// ---------------------------------------------------------------------------------------
// enums

#[test]
fn enums_are_written_as_integers() {
    let text = encode(&rich_trace());
    assert!(
        text.contains(r#""kind":2"#) && text.contains(r#""code":2"#),
        "{text}"
    );
    let text = encode(&rich_logs());
    assert!(text.contains(r#""severityNumber":9"#), "{text}");
    let text = encode(&rich_metrics());
    assert!(text.contains(r#""aggregationTemporality":2"#), "{text}");
    assert!(!text.contains("AGGREGATION_TEMPORALITY"));
}

#[test]
fn enums_accept_names() {
    let request: ExportTraceServiceRequest = decode(&trace_with_span(
        r#"{"kind":"SPAN_KIND_SERVER","status":{"code":"STATUS_CODE_ERROR"}}"#,
    ));
    assert_eq!(first_span(&request).kind, 2);
    assert_eq!(first_span(&request).status.as_ref().unwrap().code, 2);
    for (name, value) in [
        ("SPAN_KIND_UNSPECIFIED", 0),
        ("SPAN_KIND_INTERNAL", 1),
        ("SPAN_KIND_CLIENT", 3),
        ("SPAN_KIND_PRODUCER", 4),
        ("SPAN_KIND_CONSUMER", 5),
    ] {
        let request: ExportTraceServiceRequest =
            decode(&trace_with_span(&format!(r#"{{"kind":"{name}"}}"#)));
        assert_eq!(first_span(&request).kind, value, "{name}");
    }
    let request: ExportLogsServiceRequest = decode(&logs_with_record(
        r#"{"severityNumber":"SEVERITY_NUMBER_INFO"}"#,
    ));
    assert_eq!(first_record(&request).severity_number, 9);
    let request: ExportLogsServiceRequest = decode(&logs_with_record(
        r#"{"severity_number":"SEVERITY_NUMBER_FATAL4"}"#,
    ));
    assert_eq!(first_record(&request).severity_number, 24);
    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA"}}"#,
    ));
    let Some(metric::Data::Sum(sum)) = &first_metric(&request).data else {
        panic!()
    };
    assert_eq!(sum.aggregation_temporality, 1);
    for (kind, name) in [
        ("histogram", "AGGREGATION_TEMPORALITY_CUMULATIVE"),
        ("exponentialHistogram", "AGGREGATION_TEMPORALITY_CUMULATIVE"),
    ] {
        let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(&format!(
            r#"{{"{kind}":{{"aggregationTemporality":"{name}"}}}}"#
        )));
        let temporality = match &first_metric(&request).data {
            Some(metric::Data::Histogram(h)) => h.aggregation_temporality,
            Some(metric::Data::ExponentialHistogram(h)) => h.aggregation_temporality,
            other => panic!("{other:?}"),
        };
        assert_eq!(temporality, 2);
    }
}

#[test]
fn enums_keep_unknown_integer_values() {
    let request: ExportTraceServiceRequest =
        decode(&trace_with_span(r#"{"kind":42,"status":{"code":-1}}"#));
    assert_eq!(first_span(&request).kind, 42);
    assert_eq!(first_span(&request).status.as_ref().unwrap().code, -1);
    assert!(encode(&request).contains(r#""kind":42"#));
    assert!(encode(&request).contains(r#""status":{"code":-1}"#));
    assert_round_trip(&request);
    // Numeric strings are read as integers too.
    let request: ExportTraceServiceRequest = decode(&trace_with_span(r#"{"kind":"3"}"#));
    assert_eq!(first_span(&request).kind, 3);
}

#[test]
fn enums_unknown_name_or_out_of_range_is_an_error() {
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"kind":"SPAN_KIND_SERVERLESS"}"#,
    ));
    assert!(
        e.to_string()
            .contains(r#"kind: unknown SpanKind value name "SPAN_KIND_SERVERLESS""#),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"kind":"server"}"#));
    assert!(e.to_string().contains("unknown SpanKind value name"), "{e}");
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"kind":2147483648}"#));
    assert!(
        e.to_string()
            .contains("2147483648 is out of range for int32"),
        "{e}"
    );
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(r#"{"severityNumber":true}"#));
    assert!(
        e.to_string()
            .contains("expected a SeverityNumber integer or value name"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// 64-bit integers

#[test]
fn int64_are_written_as_decimal_strings() {
    let text = encode(&rich_trace());
    assert!(
        text.contains(r#""startTimeUnixNano":"1544712660000000000""#),
        "{text}"
    );
    assert!(text.contains(r#""endTimeUnixNano":"18446744073709551615""#));
    assert!(text.contains(r#""timeUnixNano":"1544712660500000000""#));
    assert!(text.contains(r#""intValue":"-9223372036854775808""#));
    assert!(text.contains(r#""intValue":"9223372036854775807""#));
    let text = encode(&rich_metrics());
    for needle in [
        r#""asInt":"9223372036854775807""#,
        r#""asInt":"-7""#,
        r#""count":"3""#,
        r#""bucketCounts":["1","0","18446744073709551615","2"]"#,
        r#""bucketCounts":["1","2","3"]"#,
        r#""zeroCount":"4""#,
        r#""startTimeUnixNano":"1544712660300000000""#,
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    let text = encode(&rich_logs());
    assert!(
        text.contains(
            r#""timeUnixNano":"1544712660300000000","observedTimeUnixNano":"1544712660300000001""#
        ),
        "{text}"
    );
    assert_eq!(
        encode(&ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 12,
                error_message: "bad".into()
            })
        }),
        r#"{"partialSuccess":{"rejectedSpans":"12","errorMessage":"bad"}}"#
    );
    assert_eq!(
        encode(&ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess {
                rejected_data_points: -3,
                error_message: String::new()
            })
        }),
        r#"{"partialSuccess":{"rejectedDataPoints":"-3"}}"#
    );
    assert_eq!(
        encode(&ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 9,
                error_message: "m".into()
            })
        }),
        r#"{"partialSuccess":{"rejectedLogRecords":"9","errorMessage":"m"}}"#
    );
}

#[test]
fn int64_accepted_as_strings_or_numbers() {
    for ts in [
        r#""1544712660000000000""#,
        "1544712660000000000",
        "1.54471266e18",
        r#""1.54471266e18""#,
    ] {
        let request: ExportTraceServiceRequest = decode(&trace_with_span(&format!(
            r#"{{"startTimeUnixNano":{ts}}}"#
        )));
        assert_eq!(
            first_span(&request).start_time_unix_nano,
            1_544_712_660_000_000_000,
            "{ts}"
        );
    }
    let request: ExportTraceServiceRequest = decode(&trace_with_span(
        r#"{"endTimeUnixNano":"18446744073709551615","events":[{"timeUnixNano":7}]}"#,
    ));
    assert_eq!(first_span(&request).end_time_unix_nano, u64::MAX);
    assert_eq!(first_span(&request).events[0].time_unix_nano, 7);
    for (text, value) in [
        (r#""-9223372036854775808""#, i64::MIN),
        ("-9223372036854775808", i64::MIN),
        ("10", 10),
        (r#""0""#, 0),
    ] {
        assert_eq!(
            attribute_value(&format!(r#"{{"intValue":{text}}}"#)),
            any_value::Value::IntValue(value)
        );
    }
    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"histogram":{"dataPoints":[{"count":3,"bucketCounts":[1,"1",1e0],"exemplars":[{"asInt":-5}]}]}}"#,
    ));
    let Some(metric::Data::Histogram(h)) = &first_metric(&request).data else {
        panic!()
    };
    assert_eq!(h.data_points[0].count, 3);
    assert_eq!(h.data_points[0].bucket_counts, vec![1, 1, 1]);
    assert_eq!(
        h.data_points[0].exemplars[0].value,
        Some(exemplar::Value::AsInt(-5))
    );
    let response: ExportTraceServiceResponse =
        decode(r#"{"partialSuccess":{"rejectedSpans":5,"errorMessage":"x"}}"#);
    assert_eq!(response.partial_success.unwrap().rejected_spans, 5);
    let response: ExportMetricsServiceResponse =
        decode(r#"{"partialSuccess":{"rejectedDataPoints":"6"}}"#);
    assert_eq!(response.partial_success.unwrap().rejected_data_points, 6);
    let response: ExportLogsServiceResponse =
        decode(r#"{"partialSuccess":{"rejectedLogRecords":7}}"#);
    assert_eq!(response.partial_success.unwrap().rejected_log_records, 7);
}

#[test]
fn int64_out_of_range_or_malformed_is_an_error() {
    let e =
        decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"startTimeUnixNano":-1}"#));
    assert!(
        e.to_string()
            .contains("startTimeUnixNano: -1 is out of range for uint64"),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"startTimeUnixNano":"18446744073709551616"}"#,
    ));
    assert!(
        e.to_string()
            .contains("18446744073709551616 is out of range for uint64"),
        "{e}"
    );
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(
        r#"{"body":{"intValue":"9223372036854775808"}}"#,
    ));
    assert!(
        e.to_string()
            .contains("body.intValue: 9223372036854775808 is out of range for int64"),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"startTimeUnixNano":"soon"}"#,
    ));
    assert!(
        e.to_string()
            .contains(r#"expected a decimal integer string for uint64, got "soon""#),
        "{e}"
    );
    let e =
        decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"startTimeUnixNano":1.5}"#));
    assert!(
        e.to_string()
            .contains("expected an integer for uint64, got 1.5"),
        "{e}"
    );
    let e =
        decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"startTimeUnixNano":"NaN"}"#));
    assert!(
        e.to_string().contains("expected a decimal integer string"),
        "{e}"
    );
    let e =
        decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"startTimeUnixNano":"inf"}"#));
    assert!(
        e.to_string().contains("expected a decimal integer string"),
        "{e}"
    );
    let e =
        decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"startTimeUnixNano":" 1"}"#));
    assert!(
        e.to_string().contains("expected a decimal integer string"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// 32-bit integers

#[test]
fn int32_are_written_as_numbers_and_accept_strings() {
    let text = encode(&rich_trace());
    for needle in [
        r#""flags":769"#,
        r#""droppedAttributesCount":4"#,
        r#""droppedEventsCount":5"#,
        r#""droppedLinksCount":7"#,
        r#""flags":256"#,
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    let text = encode(&rich_metrics());
    assert!(
        text.contains(r#""scale":-3"#) && text.contains(r#""offset":-2"#),
        "{text}"
    );
    let request: ExportTraceServiceRequest = decode(&trace_with_span(
        r#"{"flags":"769","droppedAttributesCount":"4","droppedLinksCount":7.0}"#,
    ));
    assert_eq!(first_span(&request).flags, 769);
    assert_eq!(first_span(&request).dropped_attributes_count, 4);
    assert_eq!(first_span(&request).dropped_links_count, 7);
    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"exponentialHistogram":{"dataPoints":[{"scale":"-3","positive":{"offset":"-2"}}]}}"#,
    ));
    let Some(metric::Data::ExponentialHistogram(h)) = &first_metric(&request).data else {
        panic!()
    };
    assert_eq!(h.data_points[0].scale, -3);
    assert_eq!(h.data_points[0].positive.as_ref().unwrap().offset, -2);
}

#[test]
fn int32_out_of_range_is_an_error() {
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"droppedAttributesCount":4294967296}"#,
    ));
    assert_eq!(
        e.path(),
        "resourceSpans[0].scopeSpans[0].spans[0].droppedAttributesCount"
    );
    assert!(
        e.to_string()
            .contains("4294967296 is out of range for uint32"),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"flags":-1}"#));
    assert!(
        e.to_string().contains("-1 is out of range for uint32"),
        "{e}"
    );
    let e = decode_err::<ExportMetricsServiceRequest>(&metrics_with_metric(
        r#"{"exponentialHistogram":{"dataPoints":[{"scale":"-2147483649"}]}}"#,
    ));
    assert!(
        e.to_string()
            .contains("-2147483649 is out of range for int32"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// doubles

#[test]
fn doubles_special_values_are_strings() {
    let text = encode(&rich_logs());
    assert!(
        text.contains(r#"{"key":"nan","value":{"doubleValue":"NaN"}}"#),
        "{text}"
    );
    assert!(text.contains(r#"{"key":"inf","value":{"doubleValue":"Infinity"}}"#));
    assert!(text.contains(r#"{"key":"-inf","value":{"doubleValue":"-Infinity"}}"#));
    assert!(text.contains(r#"{"key":"d","value":{"doubleValue":637.704}}"#));
    let text = encode(&rich_metrics());
    assert!(
        text.contains(r#""explicitBounds":["-Infinity",-1.5,0.0,1e+300]"#),
        "{text}"
    );
    assert!(text.contains(r#""max":"NaN""#));
    assert!(text.contains(r#""zeroThreshold":"NaN""#));
    assert!(text.contains(r#"{"quantile":0.5,"value":"NaN"}"#));
}

#[test]
fn doubles_accept_numbers_special_strings_and_numeric_strings() {
    let double = |text: &str| match attribute_value(&format!(r#"{{"doubleValue":{text}}}"#)) {
        any_value::Value::DoubleValue(d) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(double("1.5"), 1.5);
    assert_eq!(double("3"), 3.0);
    assert_eq!(double("-3"), -3.0);
    assert_eq!(double("1e300"), 1e300);
    assert_eq!(double(r#""2.5""#), 2.5);
    assert_eq!(double(r#""-1e-3""#), -1e-3);
    assert!(double(r#""NaN""#).is_nan());
    assert_eq!(double(r#""Infinity""#), f64::INFINITY);
    assert_eq!(double(r#""-Infinity""#), f64::NEG_INFINITY);
    assert_eq!(double("-0.0").to_bits(), (-0.0f64).to_bits());

    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"summary":{"dataPoints":[{"sum":"NaN","quantileValues":[{"quantile":"0.99","value":"Infinity"}]}]}}"#,
    ));
    let Some(metric::Data::Summary(s)) = &first_metric(&request).data else {
        panic!()
    };
    assert!(s.data_points[0].sum.is_nan());
    assert_eq!(s.data_points[0].quantile_values[0].quantile, 0.99);
    assert_eq!(s.data_points[0].quantile_values[0].value, f64::INFINITY);
}

#[test]
fn doubles_malformed_is_an_error() {
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(
        r#"{"body":{"doubleValue":"fast"}}"#,
    ));
    assert!(e.to_string().contains(r#"body.doubleValue: invalid value: string "fast", expected a number, "NaN", "Infinity" or "-Infinity""#), "{e}");
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(
        r#"{"body":{"doubleValue":[1]}}"#,
    ));
    assert!(e.to_string().contains("invalid type: sequence"), "{e}");
}

// ---------------------------------------------------------------------------------------
// default values

#[test]
fn defaults_are_omitted() {
    let request = span_request(Span {
        name: "only a name".into(),
        ..Default::default()
    });
    assert_eq!(
        encode(&request),
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"only a name"}]}]}]}"#
    );
    let request = record_request(LogRecord::default());
    assert_eq!(
        encode(&request),
        r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{}]}]}]}"#
    );
    let request = metric_request(Metric {
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint::default()],
            aggregation_temporality: 0,
        })),
        ..Default::default()
    });
    assert_eq!(
        encode(&request),
        r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"histogram":{"dataPoints":[{}]}}]}]}]}"#
    );
}

#[test]
fn set_oneof_members_are_written_even_when_default() {
    use any_value::Value as V;
    for (value, expected) in [
        (V::IntValue(0), r#"{"intValue":"0"}"#),
        (V::StringValue(String::new()), r#"{"stringValue":""}"#),
        (V::BoolValue(false), r#"{"boolValue":false}"#),
        (V::DoubleValue(0.0), r#"{"doubleValue":0.0}"#),
        (V::BytesValue(Vec::new()), r#"{"bytesValue":""}"#),
        (V::ArrayValue(ArrayValue::default()), r#"{"arrayValue":{}}"#),
        (
            V::KvlistValue(KeyValueList::default()),
            r#"{"kvlistValue":{}}"#,
        ),
        (V::StringValueStrindex(0), r#"{"stringValueStrindex":0}"#),
    ] {
        let request = record_request(LogRecord {
            body: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        });
        let text = encode(&request);
        assert!(
            text.contains(&format!(r#""body":{expected}"#)),
            "{expected} not in {text}"
        );
        assert_round_trip(&request);
    }
    let text = encode(&rich_metrics());
    assert!(
        text.contains(r#""asDouble":0.0"#)
            && text.contains(r#""asInt":"0""#)
            && text.contains(r#""asDouble":-0.0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"{"name":"empty gauge","gauge":{}}"#),
        "{text}"
    );
}

#[test]
fn present_empty_messages_are_written() {
    let text = encode(&rich_trace());
    assert!(text.contains(r#"{"resource":{}}"#), "{text}");
    assert!(text.contains(r#"{"scope":{}}"#), "{text}");
    assert!(
        text.contains(r#"{"name":"empty status","status":{}}"#),
        "{text}"
    );
    let text = encode(&rich_logs());
    assert!(text.contains(r#"{"body":{}}"#), "{text}");
    assert!(
        text.contains(r#"{"key":"empty value","value":{},"keyStrindex":3}"#),
        "{text}"
    );
    assert!(text.contains(r#"{"key":"no value"}"#), "{text}");
    // And read back as present.
    let request: ExportTraceServiceRequest = decode(r#"{"resourceSpans":[{"resource":{}},{}]}"#);
    assert_eq!(
        request.resource_spans[0].resource,
        Some(Resource::default())
    );
    assert_eq!(request.resource_spans[1].resource, None);
    let response: ExportTraceServiceResponse = decode(r#"{"partialSuccess":{}}"#);
    assert_eq!(
        response.partial_success,
        Some(ExportTracePartialSuccess::default())
    );
    assert_eq!(encode(&response), r#"{"partialSuccess":{}}"#);
}

#[test]
fn optional_doubles_keep_presence() {
    let text = encode(&rich_metrics());
    assert!(text.contains(r#"{"sum":-0.0,"max":0.0}"#), "{text}");
    let request: ExportMetricsServiceRequest = decode(&metrics_with_metric(
        r#"{"histogram":{"dataPoints":[{"sum":0,"min":null}]}}"#,
    ));
    let Some(metric::Data::Histogram(h)) = &first_metric(&request).data else {
        panic!()
    };
    assert_eq!(
        (
            h.data_points[0].sum,
            h.data_points[0].min,
            h.data_points[0].max
        ),
        (Some(0.0), None, None)
    );
}

// ---------------------------------------------------------------------------------------
// oneof conflicts

#[test]
fn oneof_with_two_members_is_an_error() {
    let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(
        r#"{"body":{"stringValue":"a","intValue":"1"}}"#,
    ));
    assert_eq!(
        e.path(),
        "resourceLogs[0].scopeLogs[0].logRecords[0].body.intValue"
    );
    assert!(
        e.to_string()
            .contains("oneof `value` is already set by `stringValue`, cannot also set `intValue`"),
        "{e}"
    );
    let e =
        decode_err::<ExportMetricsServiceRequest>(&metrics_with_metric(r#"{"gauge":{},"sum":{}}"#));
    assert!(
        e.to_string()
            .contains("oneof `data` is already set by `gauge`, cannot also set `sum`"),
        "{e}"
    );
    let e = decode_err::<ExportMetricsServiceRequest>(&metrics_with_metric(
        r#"{"gauge":{"dataPoints":[{"asDouble":1,"as_int":1}]}}"#,
    ));
    assert!(
        e.to_string()
            .contains("oneof `value` is already set by `asDouble`, cannot also set `asInt`"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// errors: never a panic, always a message that says what and where

#[test]
fn error_string_where_number_expected() {
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(
        r#"{"droppedEventsCount":"many"}"#,
    ));
    assert!(
        e.to_string().contains(
            r#"droppedEventsCount: expected a decimal integer string for uint32, got "many""#
        ),
        "{e}"
    );
    let e = decode_err::<ExportMetricsServiceRequest>(&metrics_with_metric(
        r#"{"sum":{"isMonotonic":"yes"}}"#,
    ));
    assert!(
        e.to_string()
            .contains(r#"sum.isMonotonic: invalid type: string "yes", expected true or false"#),
        "{e}"
    );
}

#[test]
fn error_number_where_string_expected() {
    let e = decode_err::<ExportTraceServiceRequest>(&trace_with_span(r#"{"name":5}"#));
    assert_eq!(e.path(), "resourceSpans[0].scopeSpans[0].spans[0].name");
    assert!(
        e.to_string()
            .contains("invalid type: integer `5`, expected a string"),
        "{e}"
    );
}

#[test]
fn error_wrong_container_types() {
    let e = decode_err::<ExportTraceServiceRequest>(r#"{"resourceSpans":{}}"#);
    assert!(
        e.to_string()
            .starts_with("resourceSpans: invalid type: map, expected a JSON array"),
        "{e}"
    );
    let e = decode_err::<ExportTraceServiceRequest>(r#"{"resourceSpans":[{"resource":"r"}]}"#);
    assert!(e.to_string().contains(r#"resourceSpans[0].resource: invalid type: string "r", expected a JSON object (Resource)"#), "{e}");
    let e = decode_err::<ExportTraceServiceRequest>(r#"{"resourceSpans":[5]}"#);
    assert!(
        e.to_string().contains(
            "resourceSpans[0]: invalid type: integer `5`, expected a JSON object (ResourceSpans)"
        ),
        "{e}"
    );
    // Arrays are only a shorthand for ArrayValue / KeyValueList.
    let e = decode_err::<ExportTraceServiceRequest>(r#"{"resourceSpans":[{"resource":[]}]}"#);
    assert!(
        e.to_string()
            .contains("invalid type: sequence, expected a JSON object (Resource)"),
        "{e}"
    );
}

#[test]
fn error_truncated_json() {
    let text = encode(&rich_trace());
    for cut in [1, 10, text.len() / 3, text.len() / 2, text.len() - 1] {
        let e = match json::from_slice::<ExportTraceServiceRequest>(&text.as_bytes()[..cut]) {
            Ok(_) => panic!("truncated at {cut} decoded"),
            Err(e) => e,
        };
        assert_eq!(e.kind(), JsonErrorKind::Eof, "cut at {cut}: {e}");
        assert!(e.to_string().contains("EOF while parsing"), "{e}");
    }
    let e = decode_err::<ExportTraceServiceRequest>(
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"#,
    );
    assert_eq!(e.path(), "resourceSpans[0].scopeSpans[0].spans[0].name");
    let e = decode_err::<ExportTraceServiceRequest>("");
    assert_eq!(e.kind(), JsonErrorKind::Eof);
}

#[test]
fn error_wrong_top_level_type() {
    for text in ["[]", "null", "\"resourceSpans\"", "42", "true"] {
        let e = decode_err::<ExportTraceServiceRequest>(text);
        assert_eq!(e.path(), "");
        assert!(
            e.to_string()
                .contains("expected a JSON object (ExportTraceServiceRequest)"),
            "{text}: {e}"
        );
        assert_eq!(e.kind(), JsonErrorKind::Data);
    }
    let e = decode_err::<ExportLogsServiceResponse>("[1]");
    assert!(
        e.to_string()
            .contains("expected a JSON object (ExportLogsServiceResponse)"),
        "{e}"
    );
}

#[test]
fn error_syntax_with_line_and_column() {
    let e = decode_err::<ExportTraceServiceRequest>("{\n  \"resourceSpans\": [\n    {,}\n  ]\n}");
    assert_eq!(e.kind(), JsonErrorKind::Syntax);
    assert_eq!((e.line(), e.column()), (3, 6));
    assert_eq!(e.path(), "resourceSpans[0]");
    let e = decode_err::<ExportTraceServiceRequest>(r#"{"resourceSpans":[]} trailing"#);
    assert!(e.to_string().contains("trailing characters"), "{e}");
    let e = decode_err::<ExportTraceServiceRequest>(r#"{"resourceSpans":[],}"#);
    assert_eq!(e.kind(), JsonErrorKind::Syntax);
    let e = decode_err::<ExportTraceServiceRequest>("{'resourceSpans':[]}");
    assert_eq!(e.kind(), JsonErrorKind::Syntax);
}

#[test]
fn error_invalid_utf8() {
    let mut text = trace_with_span(r#"{"name":"ab"}"#).into_bytes();
    let at = text.iter().position(|&b| b == b'a').unwrap();
    text[at] = 0xff;
    let e = json::from_slice::<ExportTraceServiceRequest>(&text).unwrap_err();
    assert!(
        e.to_string().contains("invalid unicode code point") || e.to_string().contains("UTF-8"),
        "{e}"
    );
}

#[test]
fn accepts_byte_order_mark_and_whitespace() {
    let mut text = b"\xEF\xBB\xBF \n\t".to_vec();
    text.extend_from_slice(&fixture("trace.json"));
    text.extend_from_slice(b"\n\n");
    let request: ExportTraceServiceRequest = json::from_slice(&text).unwrap();
    assert_eq!(first_span(&request).kind, 2);
}

/// `serde_json`'s recursion limit turns hostile nesting into an error, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [200, 10_000, 100_000] {
        let mut body = String::new();
        for _ in 0..depth {
            body.push_str(r#"{"arrayValue":{"values":["#);
        }
        for _ in 0..depth {
            body.push_str("]}}");
        }
        let e = decode_err::<ExportLogsServiceRequest>(&logs_with_record(&format!(
            r#"{{"body":{body}}}"#
        )));
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
        // Unknown fields are skipped by serde_json without recursion, so any depth is fine.
        let deep_unknown = format!("{}1{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
        let request: ExportLogsServiceRequest = decode(&format!(r#"{{"future":{deep_unknown}}}"#));
        assert!(request.resource_logs.is_empty());
    }
}

#[test]
fn moderate_nesting_decodes() {
    let mut value = AnyValue {
        value: Some(any_value::Value::StringValue("leaf".into())),
    };
    for i in 0..25 {
        value = if i % 2 == 0 {
            AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            }
        } else {
            AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(value),
                        key_strindex: 0,
                    }],
                })),
            }
        };
    }
    assert_round_trip(&record_request(LogRecord {
        body: Some(value),
        ..Default::default()
    }));
}

#[test]
fn garbage_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = encode(&rich_logs()).into_bytes();
    for _ in 0..2000 {
        // Flip, drop or insert a few bytes of a valid document.
        let mut bytes = valid.clone();
        for _ in 0..(next() % 4 + 1) {
            let at = (next() as usize) % bytes.len();
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b"{}[]\",:0-e9nNaI"[(next() % 15) as usize]),
            }
        }
        let _ = json::from_slice::<ExportLogsServiceRequest>(&bytes);
        let _ = json::from_slice::<ExportTraceServiceRequest>(&bytes);
        let _ = json::from_slice::<ExportMetricsServiceRequest>(&bytes);
        let _ = json::from_slice::<ExportLogsServiceResponse>(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// writer

#[test]
fn to_writer_writes_what_to_vec_returns() {
    let request = rich_metrics();
    let mut out = Vec::new();
    json::to_writer(&request, &mut out).unwrap();
    assert_eq!(out, json::to_vec(&request));

    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "peer went away",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let e = json::to_writer(&request, Broken).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn errors_convert_into_decode_error() {
    let e = otlp_core::codec::decode::<ExportTraceServiceRequest>(otlp_core::Encoding::Json, b"[]")
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("invalid OTLP/JSON: invalid type: sequence"),
        "{e}"
    );
}
