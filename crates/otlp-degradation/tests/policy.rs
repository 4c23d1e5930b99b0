//! Every rule of the degradation policy at every level, with exact reports.

use std::time::Duration;

use bytes::Bytes;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use otlp_core::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use otlp_core::proto::metrics::v1::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric,
};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::status::StatusCode;
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use otlp_core::{OtlpRequest, Payload, Signal};
use otlp_degradation::policy::{
    ApplyCounters, ApplyReport, BatchHint, DegradationPolicy, PolicyConfig, PolicyError,
    parse_severity,
};
use otlp_degradation::{DegradationLevel, TraceIdRatioSampler};

use DegradationLevel::{Emergency, Heavy, Light, Moderate, Normal};

// ---------------------------------------------------------------------------------------
// Builders

/// A trace id whose sampling-relevant low half is `low`.
fn trace_id(low: u64) -> Vec<u8> {
    let mut id = vec![0x11; 16];
    id[8..].copy_from_slice(&low.to_be_bytes());
    id
}

/// Trace-id low halves kept at every ratio > 0 and dropped at every ratio < 1.
const ALWAYS_KEPT: u64 = 0;
const NEVER_KEPT: u64 = u64::MAX;

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.to_owned())),
    })
}

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: string(value),
        key_strindex: 0,
    }
}

fn span(low: u64, code: StatusCode) -> Span {
    Span {
        trace_id: trace_id(low),
        span_id: vec![7; 8],
        name: "op".into(),
        status: Some(Status {
            code: code as i32,
            message: String::new(),
        }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![attr("service.name", service)],
        ..Default::default()
    })
}

fn traces(resources: Vec<(&str, Vec<Vec<Span>>)>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(service, scopes)| ResourceSpans {
                resource: resource(service),
                scope_spans: scopes
                    .into_iter()
                    .map(|spans| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: "lib".into(),
                            ..Default::default()
                        }),
                        spans,
                        schema_url: String::new(),
                    })
                    .collect(),
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn log(severity: SeverityNumber, trace_low: Option<u64>, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_number: severity as i32,
        body: string(body),
        trace_id: trace_low.map(trace_id).unwrap_or_default(),
        ..Default::default()
    }
}

fn logs(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                scope: None,
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn gauge(points: usize, attributes: Vec<KeyValue>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("api"),
            scope_metrics: vec![ScopeMetrics {
                scope: None,
                metrics: vec![Metric {
                    name: "queue.depth".into(),
                    data: Some(metric::Data::Gauge(Gauge {
                        data_points: (0..points)
                            .map(|i| NumberDataPoint {
                                attributes: attributes.clone(),
                                time_unix_nano: i as u64,
                                ..Default::default()
                            })
                            .collect(),
                    })),
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn policy(edit: impl FnOnce(&mut PolicyConfig)) -> DegradationPolicy {
    let mut config = PolicyConfig::default();
    edit(&mut config);
    DegradationPolicy::new(config).expect("valid policy")
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------
// Defaults

#[test]
fn defaults() {
    let policy = DegradationPolicy::default();
    let ratios: Vec<f64> = DegradationLevel::ALL
        .iter()
        .map(|l| policy.level(*l).keep_ratio)
        .collect();
    assert_eq!(ratios, [1.0, 0.5, 0.1, 0.01, 0.001]);
    for level in DegradationLevel::ALL {
        assert_eq!(
            policy.sampler(level),
            TraceIdRatioSampler::new(policy.level(level).keep_ratio)
        );
        assert_eq!(policy.level(level).errors_only, level == Emergency);
        assert!(policy.level(level).keep_critical_services);
        assert_eq!(
            policy.level(level).keep_logs_at_or_above,
            Some(SeverityNumber::Error)
        );
    }
    let waits: Vec<Duration> = DegradationLevel::ALL
        .iter()
        .map(|l| policy.batch_hint(*l).max_wait)
        .collect();
    assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
    assert_eq!(
        policy.batch_hint(Normal),
        BatchHint {
            max_items: 8192,
            max_wait: Duration::from_millis(200)
        }
    );
    assert_eq!(PolicyConfig::default().validate(), Ok(()));
}

// ---------------------------------------------------------------------------------------
// Spans

#[test]
fn spans_are_sampled_by_trace_id_at_each_level() {
    let policy = DegradationPolicy::default();
    let mut state = 1;
    let spans: Vec<Span> = (0..2000)
        .map(|_| span(splitmix(&mut state), StatusCode::Ok))
        .collect();
    for level in DegradationLevel::ALL {
        let sampler = TraceIdRatioSampler::new(policy.level(level).keep_ratio);
        let expected_kept = spans
            .iter()
            .filter(|s| sampler.should_keep_id(&s.trace_id) == Some(true))
            .count() as u64;
        let mut request = traces(vec![("api", vec![spans.clone()])]);
        let report = policy.apply(level, &mut request);
        assert_eq!(report.received(), 2000, "{level}");
        if level == Emergency {
            assert_eq!(report.kept, 0);
            assert_eq!(report.dropped_emergency, 2000);
            assert_eq!(report.dropped_sampled, 0);
            assert_eq!(report.resources_removed, 1);
            assert!(request.resource_spans.is_empty());
        } else {
            assert_eq!(report.kept, expected_kept, "{level}");
            assert_eq!(report.dropped_sampled, 2000 - expected_kept, "{level}");
            assert_eq!(report.dropped_emergency + report.dropped_severity, 0);
            assert_eq!(request.item_count(), expected_kept);
            // The survivors are exactly the spans whose trace id the sampler keeps.
            for s in request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .flat_map(|s| &s.spans)
            {
                assert_eq!(sampler.should_keep_id(&s.trace_id), Some(true));
            }
        }
        assert_eq!(report.kept_protected, 0);
    }
}

#[test]
fn normal_changes_nothing() {
    let policy = DegradationPolicy::default();
    let mut request = traces(vec![(
        "api",
        vec![
            vec![
                span(NEVER_KEPT, StatusCode::Ok),
                span(ALWAYS_KEPT, StatusCode::Unset),
            ],
            vec![],
        ],
    )]);
    request.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(attr("big", &"x".repeat(100_000)));
    let before = request.clone();
    let report = policy.apply(Normal, &mut request);
    assert_eq!(report, ApplyReport::untouched(2));
    assert_eq!(request, before);
    assert!(policy.is_passthrough(Normal, Signal::Traces));
    assert!(policy.is_passthrough(Normal, Signal::Logs));
    assert!(!policy.is_passthrough(Light, Signal::Traces));
}

#[test]
fn error_spans_are_kept_at_every_level() {
    let policy = DegradationPolicy::default();
    for level in DegradationLevel::ALL {
        let mut request = traces(vec![(
            "api",
            vec![vec![
                span(NEVER_KEPT, StatusCode::Error),
                span(NEVER_KEPT, StatusCode::Ok),
                span(NEVER_KEPT, StatusCode::Unset),
            ]],
        )]);
        let report = policy.apply(level, &mut request);
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        if level == Normal {
            assert_eq!(report, ApplyReport::untouched(3));
            continue;
        }
        assert_eq!(spans.len(), 1, "{level}");
        assert_eq!(
            spans[0].status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        assert_eq!((report.kept, report.kept_protected), (1, 1), "{level}");
        if level == Emergency {
            assert_eq!((report.dropped_emergency, report.dropped_sampled), (2, 0));
        } else {
            assert_eq!((report.dropped_sampled, report.dropped_emergency), (2, 0));
        }
    }
}

#[test]
fn critical_services_are_kept_unless_emergency_says_otherwise() {
    let policy = policy(|c| c.critical_services = vec!["checkout".into(), "payments".into()]);
    let request = || {
        traces(vec![
            ("checkout", vec![vec![span(NEVER_KEPT, StatusCode::Ok); 3]]),
            ("catalog", vec![vec![span(NEVER_KEPT, StatusCode::Ok); 4]]),
            ("payments", vec![vec![span(NEVER_KEPT, StatusCode::Unset)]]),
        ])
    };
    for level in [Light, Moderate, Heavy, Emergency] {
        let mut r = request();
        let report = policy.apply(level, &mut r);
        assert_eq!((report.kept, report.kept_protected), (4, 4), "{level}");
        assert_eq!(report.dropped(), 4);
        assert_eq!(report.resources_removed, 1);
        let services: Vec<_> = r
            .resource_spans
            .iter()
            .map(|rs| rs.resource.as_ref().unwrap().attributes[0].value.clone())
            .collect();
        assert_eq!(services, [string("checkout"), string("payments")]);
    }
    // A service name is matched exactly and only as a string resource attribute.
    let mut r = traces(vec![(
        "Checkout",
        vec![vec![span(NEVER_KEPT, StatusCode::Ok)]],
    )]);
    assert_eq!(policy.apply(Light, &mut r).kept, 0);
    let mut r = traces(vec![("x", vec![vec![span(NEVER_KEPT, StatusCode::Ok)]])]);
    r.resource_spans[0].resource.as_mut().unwrap().attributes =
        vec![attr("service.namespace", "checkout")];
    assert_eq!(policy.apply(Light, &mut r).kept, 0);

    // Emergency configured to keep errors only: the critical service goes too.
    let strict = {
        let mut config = PolicyConfig {
            critical_services: vec!["checkout".into()],
            ..PolicyConfig::default()
        };
        config.level_mut(Emergency).keep_critical_services = false;
        DegradationPolicy::new(config).unwrap()
    };
    let mut r = traces(vec![(
        "checkout",
        vec![vec![
            span(ALWAYS_KEPT, StatusCode::Ok),
            span(NEVER_KEPT, StatusCode::Error),
        ]],
    )]);
    let report = strict.apply(Emergency, &mut r);
    assert_eq!(
        (report.kept, report.kept_protected, report.dropped_emergency),
        (1, 1, 1)
    );
    // ... but Heavy still protects it.
    let mut r = traces(vec![(
        "checkout",
        vec![vec![span(NEVER_KEPT, StatusCode::Ok)]],
    )]);
    assert_eq!(strict.apply(Heavy, &mut r).kept_protected, 1);
}

#[test]
fn emergency_without_errors_only_samples() {
    let policy = policy(|c| c.level_mut(Emergency).errors_only = false);
    let mut r = traces(vec![(
        "api",
        vec![vec![
            span(ALWAYS_KEPT, StatusCode::Ok),
            span(NEVER_KEPT, StatusCode::Ok),
        ]],
    )]);
    let report = policy.apply(Emergency, &mut r);
    assert_eq!(
        (
            report.kept,
            report.dropped_sampled,
            report.dropped_emergency
        ),
        (1, 1, 0)
    );
}

#[test]
fn all_spans_of_a_trace_share_the_decision() {
    let policy = DegradationPolicy::default();
    let mut state = 77;
    for level in [Light, Moderate, Heavy] {
        for _ in 0..50 {
            let low = splitmix(&mut state);
            // The same trace spread over two resources and three scopes, different names.
            let mut spans: Vec<Span> = (0..6)
                .map(|i| {
                    let mut s = span(low, StatusCode::Ok);
                    s.name = format!("op{i}");
                    s.span_id = vec![i; 8];
                    s
                })
                .collect();
            let tail = spans.split_off(3);
            let mut r = traces(vec![
                ("a", vec![spans[..1].to_vec(), spans[1..].to_vec()]),
                ("b", vec![tail]),
            ]);
            let report = policy.apply(level, &mut r);
            assert!(report.kept == 6 || report.kept == 0, "{level}: {report:?}");
        }
    }
}

#[test]
fn spans_without_a_usable_trace_id_are_sampled_by_hash() {
    let policy = DegradationPolicy::default();
    let spans: Vec<Span> = (0..4000u32)
        .map(|i| Span {
            trace_id: if i % 2 == 0 { vec![] } else { vec![0; 16] },
            span_id: i.to_be_bytes().repeat(2),
            name: format!("op{i}"),
            ..Default::default()
        })
        .collect();
    let mut first = traces(vec![("api", vec![spans.clone()])]);
    let mut second = first.clone();
    let report = policy.apply(Light, &mut first);
    // Deterministic: applying again (another instance, a retry) keeps the same spans.
    assert_eq!(policy.apply(Light, &mut second), report);
    assert_eq!(first, second);
    assert_eq!(report.received(), 4000);
    // Half kept, within 5 sigma (sigma = sqrt(4000 / 4) ≈ 31.6).
    assert!((report.kept as i64 - 2000).abs() < 160, "{report:?}");
}

// ---------------------------------------------------------------------------------------
// Logs

#[test]
fn log_severity_rules_at_each_level() {
    let policy = DegradationPolicy::default();
    let severities = [
        SeverityNumber::Unspecified,
        SeverityNumber::Trace,
        SeverityNumber::Debug,
        SeverityNumber::Info,
        SeverityNumber::Warn,
        SeverityNumber::Error,
        SeverityNumber::Fatal,
    ];
    // Trace ids that every sampling ratio below 1 drops, so only severity rules keep.
    let records = || {
        logs(
            "api",
            severities
                .iter()
                .map(|s| log(*s, Some(NEVER_KEPT), "m"))
                .collect(),
        )
    };
    // (kept, protected, dropped_sampled, dropped_severity, dropped_emergency)
    let expected = [
        (Normal, (7, 0, 0, 0, 0)),
        // drop below DEBUG: TRACE; ERROR and FATAL protected; the rest sampled out.
        (Light, (2, 2, 4, 1, 0)),
        // drop below INFO: TRACE, DEBUG.
        (Moderate, (2, 2, 3, 2, 0)),
        // drop below WARN: TRACE, DEBUG, INFO.
        (Heavy, (2, 2, 2, 3, 0)),
        (Emergency, (2, 2, 0, 0, 5)),
    ];
    for (level, (kept, protected, sampled, severity, emergency)) in expected {
        let mut r = records();
        let report = policy.apply(level, &mut r);
        assert_eq!(
            (
                report.kept,
                report.kept_protected,
                report.dropped_sampled,
                report.dropped_severity,
                report.dropped_emergency
            ),
            (kept, protected, sampled, severity, emergency),
            "{level}"
        );
        assert_eq!(r.item_count(), kept);
    }
    // Unknown severity numbers match no severity rule (sampled like UNSPECIFIED).
    let mut r = logs(
        "api",
        vec![LogRecord {
            severity_number: 99,
            trace_id: trace_id(NEVER_KEPT),
            ..Default::default()
        }],
    );
    let report = policy.apply(Heavy, &mut r);
    assert_eq!((report.dropped_sampled, report.dropped_severity), (1, 0));
}

#[test]
fn logs_follow_their_trace_and_otherwise_a_stable_hash() {
    let policy = DegradationPolicy::default();
    let mut state = 3;
    for _ in 0..200 {
        let low = splitmix(&mut state);
        let mut r = logs(
            "api",
            vec![
                log(SeverityNumber::Info, Some(low), "a"),
                log(SeverityNumber::Warn, Some(low), "b"),
            ],
        );
        let report = policy.apply(Light, &mut r);
        let span_kept = policy
            .sampler(Light)
            .should_keep_id(&trace_id(low))
            .unwrap();
        assert_eq!(report.kept, if span_kept { 2 } else { 0 });
    }
    // Without a trace id: hash of the record; the same records give the same answer.
    let records: Vec<LogRecord> = (0..4000)
        .map(|i| log(SeverityNumber::Info, None, &format!("request {i} done")))
        .collect();
    let mut a = logs("api", records.clone());
    let mut b = logs("api", records);
    let report = policy.apply(Moderate, &mut a);
    assert_eq!(policy.apply(Moderate, &mut b), report);
    assert_eq!(a, b);
    // 10% of 4000 within 5 sigma (sigma = sqrt(4000 * 0.1 * 0.9) ≈ 19).
    assert!((report.kept as i64 - 400).abs() < 95, "{report:?}");
    assert_eq!(report.dropped_sampled, 4000 - report.kept);
}

#[test]
fn log_severity_rules_are_configurable() {
    let policy = policy(|c| {
        c.level_mut(Light).keep_logs_at_or_above = Some(SeverityNumber::Warn);
        c.level_mut(Light).drop_logs_below = None;
        c.critical_services = vec!["billing".into()];
    });
    let mut r = logs(
        "api",
        vec![
            log(SeverityNumber::Trace, Some(NEVER_KEPT), "t"),
            log(SeverityNumber::Warn, Some(NEVER_KEPT), "w"),
        ],
    );
    let report = policy.apply(Light, &mut r);
    assert_eq!(
        (
            report.kept_protected,
            report.dropped_sampled,
            report.dropped_severity
        ),
        (1, 1, 0)
    );
    let mut r = logs(
        "billing",
        vec![log(SeverityNumber::Debug, Some(NEVER_KEPT), "d")],
    );
    let report = policy.apply(Emergency, &mut r);
    assert_eq!((report.kept, report.kept_protected), (1, 1));
}

// ---------------------------------------------------------------------------------------
// Metrics

#[test]
fn metrics_are_never_dropped_and_stripped_only_when_enabled() {
    let attributes = vec![attr("host", "a"), attr("debug.dump", "zzz")];
    let default = policy(|c| c.deny_attributes = vec!["debug.dump".into()]);
    for level in DegradationLevel::ALL {
        assert!(default.is_passthrough(level, Signal::Metrics));
        let mut r = gauge(5, attributes.clone());
        let before = r.clone();
        assert_eq!(default.apply(level, &mut r), ApplyReport::untouched(5));
        assert_eq!(r, before);
    }
    let stripping = policy(|c| {
        c.deny_attributes = vec!["debug.dump".into()];
        c.strip_metric_attributes = true;
    });
    assert!(stripping.is_passthrough(Normal, Signal::Metrics));
    assert!(!stripping.is_passthrough(Emergency, Signal::Metrics));
    let mut r = gauge(5, attributes);
    let report = stripping.apply(Emergency, &mut r);
    assert_eq!(
        (report.kept, report.dropped(), report.attributes_removed),
        (5, 0, 5)
    );
    let Some(metric::Data::Gauge(g)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("gauge")
    };
    assert!(
        g.data_points
            .iter()
            .all(|p| p.attributes == [attr("host", "a")])
    );
}

// ---------------------------------------------------------------------------------------
// Attributes

#[test]
fn deny_and_verbose_lists_at_their_levels() {
    let policy = policy(|c| {
        c.deny_attributes = vec!["user.email".into(), "http.request.header.*".into()];
        c.verbose_attributes = vec!["db.statement".into()];
        // Keep everything so only stripping is observed.
        for l in DegradationLevel::ALL {
            c.level_mut(l).keep_ratio = 1.0;
            c.level_mut(l).max_attribute_value_bytes = None;
        }
        c.level_mut(Emergency).errors_only = false;
    });
    let make = || {
        let mut s = span(ALWAYS_KEPT, StatusCode::Ok);
        s.attributes = vec![
            attr("user.email", "a@b"),
            attr("http.request.header.cookie", "c"),
            attr("http.request.method", "GET"),
            attr("db.statement", "SELECT 1"),
        ];
        s.events = vec![span::Event {
            attributes: vec![attr("user.email", "x"), attr("db.statement", "y")],
            ..Default::default()
        }];
        s.links = vec![span::Link {
            attributes: vec![attr("http.request.header.x", "x")],
            ..Default::default()
        }];
        let mut r = traces(vec![("api", vec![vec![s]])]);
        let resource = r.resource_spans[0].resource.as_mut().unwrap();
        resource.attributes.push(attr("user.email", "r"));
        r.resource_spans[0].scope_spans[0]
            .scope
            .as_mut()
            .unwrap()
            .attributes = vec![attr("db.statement", "s")];
        r
    };
    // Normal: nothing. Light: the deny list. Moderate and up: deny + verbose.
    let expected = [
        (Normal, 0),
        (Light, 5),
        (Moderate, 8),
        (Heavy, 8),
        (Emergency, 8),
    ];
    for (level, removed) in expected {
        let mut r = make();
        let report = policy.apply(level, &mut r);
        assert_eq!(report.attributes_removed, removed, "{level}");
        assert_eq!(report.kept, 1);
        let rs = &r.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0], attr("service.name", "api"));
        let s = &rs.scope_spans[0].spans[0];
        let total_dropped = resource.dropped_attributes_count
            + rs.scope_spans[0]
                .scope
                .as_ref()
                .unwrap()
                .dropped_attributes_count
            + s.dropped_attributes_count
            + s.events[0].dropped_attributes_count
            + s.links[0].dropped_attributes_count;
        assert_eq!(
            u64::from(total_dropped),
            removed,
            "dropped_attributes_count tracks removals"
        );
        if level >= Moderate {
            let keys: Vec<&str> = s.attributes.iter().map(|kv| kv.key.as_str()).collect();
            assert_eq!(keys, ["http.request.method"]);
            assert!(s.events[0].attributes.is_empty() && s.links[0].attributes.is_empty());
            assert_eq!(s.dropped_attributes_count, 3);
        }
    }
}

#[test]
fn values_are_truncated_at_a_char_boundary() {
    let policy = policy(|c| {
        c.level_mut(Light).max_attribute_value_bytes = Some(5);
    });
    let mut s = span(ALWAYS_KEPT, StatusCode::Ok);
    s.attributes = vec![
        attr("short", "abc"),
        // 'a' 1 byte + 'é' 2 + '漢' 3: byte 5 falls inside '漢', so the cut is at 3.
        attr("multi", "aé漢字"),
        KeyValue {
            key: "nested".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        string("0123456789").unwrap(),
                        AnyValue {
                            value: Some(any_value::Value::KvlistValue(KeyValueList {
                                values: vec![attr("k", "abcdefgh")],
                            })),
                        },
                    ],
                })),
            }),
            key_strindex: 0,
        },
        KeyValue {
            key: "bytes".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::BytesValue(vec![1; 9])),
            }),
            key_strindex: 0,
        },
    ];
    let mut r = traces(vec![("api", vec![vec![s]])]);
    let report = policy.apply(Light, &mut r);
    assert_eq!(report.values_truncated, 4);
    assert_eq!(report.attributes_removed, 0);
    let attrs = &r.resource_spans[0].scope_spans[0].spans[0].attributes;
    assert_eq!(attrs[0], attr("short", "abc"));
    assert_eq!(attrs[1], attr("multi", "aé"));
    let Some(any_value::Value::ArrayValue(array)) =
        attrs[2].value.as_ref().and_then(|v| v.value.clone())
    else {
        panic!("array")
    };
    assert_eq!(array.values[0], string("01234").unwrap());
    let Some(any_value::Value::KvlistValue(list)) = array.values[1].value.clone() else {
        panic!("kvlist")
    };
    assert_eq!(list.values[0], attr("k", "abcde"));
    assert_eq!(
        attrs[3].value.as_ref().and_then(|v| v.value.clone()),
        Some(any_value::Value::BytesValue(vec![1; 5]))
    );
    // Default: Moderate cuts at 4096 bytes, Light does not.
    let default = DegradationPolicy::default();
    for (level, cut) in [(Light, 0), (Moderate, 1), (Heavy, 1)] {
        let mut s = span(ALWAYS_KEPT, StatusCode::Error);
        s.attributes = vec![attr("exception.stacktrace", &"x".repeat(5000))];
        let mut r = traces(vec![("api", vec![vec![s]])]);
        assert_eq!(
            default.apply(level, &mut r).values_truncated,
            cut,
            "{level}"
        );
    }
}

#[test]
fn log_attributes_are_stripped_bodies_are_not() {
    let policy = policy(|c| {
        c.deny_attributes = vec!["secret".into()];
        c.level_mut(Light).max_attribute_value_bytes = Some(3);
    });
    let mut record = log(SeverityNumber::Error, None, "a long body stays whole");
    record.attributes = vec![attr("secret", "s"), attr("path", "/abcdef")];
    let mut r = logs("api", vec![record]);
    let report = policy.apply(Light, &mut r);
    assert_eq!((report.attributes_removed, report.values_truncated), (1, 1));
    let record = &r.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.attributes, [attr("path", "/ab")]);
    assert_eq!(record.dropped_attributes_count, 1);
    assert_eq!(record.body, string("a long body stays whole"));
}

// ---------------------------------------------------------------------------------------
// Containers

#[test]
fn emptied_containers_are_removed() {
    let policy = DegradationPolicy::default();
    let mut r = traces(vec![
        // All dropped: the resource goes.
        (
            "a",
            vec![
                vec![span(NEVER_KEPT, StatusCode::Ok)],
                vec![span(NEVER_KEPT, StatusCode::Ok)],
            ],
        ),
        // One scope emptied, one kept, one arrived empty (left alone).
        (
            "b",
            vec![
                vec![span(NEVER_KEPT, StatusCode::Ok)],
                vec![span(ALWAYS_KEPT, StatusCode::Ok)],
                vec![],
            ],
        ),
        // Arrived without items: not ours to remove.
        ("c", vec![]),
    ]);
    let report = policy.apply(Heavy, &mut r);
    assert_eq!(report.kept, 1);
    assert_eq!(report.dropped_sampled, 3);
    assert_eq!(report.scopes_removed, 3);
    assert_eq!(report.resources_removed, 1);
    let services: Vec<_> = r
        .resource_spans
        .iter()
        .map(|rs| rs.resource.as_ref().unwrap().attributes[0].value.clone())
        .collect();
    assert_eq!(services, [string("b"), string("c")]);
    assert_eq!(r.resource_spans[0].scope_spans.len(), 2);
    assert_eq!(r.resource_spans[0].scope_spans[0].spans.len(), 1);
    assert!(r.resource_spans[0].scope_spans[1].spans.is_empty());

    let mut l = logs(
        "api",
        vec![log(SeverityNumber::Info, Some(NEVER_KEPT), "x")],
    );
    let report = policy.apply(Emergency, &mut l);
    assert_eq!(
        (
            report.dropped_emergency,
            report.scopes_removed,
            report.resources_removed
        ),
        (1, 1, 1)
    );
    assert!(l.resource_logs.is_empty());
}

// ---------------------------------------------------------------------------------------
// Payloads

#[test]
fn payload_path_matches_in_place_and_updates_the_header() {
    let policy = policy(|c| c.deny_attributes = vec!["user.email".into()]);
    let mut state = 11;
    let spans: Vec<Span> = (0..300)
        .map(|i| {
            let mut s = span(
                splitmix(&mut state),
                if i % 50 == 0 {
                    StatusCode::Error
                } else {
                    StatusCode::Ok
                },
            );
            s.attributes = vec![attr("user.email", "e"), attr("k", "v")];
            s
        })
        .collect();
    let request = traces(vec![("api", vec![spans])]);
    for level in DegradationLevel::ALL {
        let mut in_place = request.clone();
        let expected = policy.apply(level, &mut in_place);
        let mut payload = Payload::from_request(&request).with_tenant("t1");
        let report = policy.apply_payload(level, &mut payload).unwrap();
        assert_eq!(report, expected, "{level}");
        assert_eq!(payload.items(), report.kept);
        assert_eq!(payload.header().tenant.as_deref(), Some("t1"));
        let back: ExportTraceServiceRequest = payload.decode().unwrap();
        assert_eq!(back, in_place, "{level}");
    }
}

#[test]
fn passthrough_returns_the_payload_without_decoding() {
    let policy = DegradationPolicy::default();
    // Not protobuf at all: only a path that never decodes can succeed on it.
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff]);
    for signal in [Signal::Traces, Signal::Logs, Signal::Metrics] {
        let mut payload = Payload::new(signal, garbage.clone(), 42);
        let report = policy.apply_payload(Normal, &mut payload).unwrap();
        assert_eq!(report, ApplyReport::untouched(42));
        assert_eq!(
            payload.body().as_ptr(),
            garbage.as_ptr(),
            "same buffer, not a copy"
        );
    }
    // Metrics pass through at every level by default.
    let mut payload = Payload::new(Signal::Metrics, garbage.clone(), 42);
    assert_eq!(
        policy.apply_payload(Emergency, &mut payload).unwrap().kept,
        42
    );
    // A level that must look inside reports the bad bytes and leaves the payload alone.
    let mut payload = Payload::new(Signal::Traces, garbage.clone(), 42);
    assert!(policy.apply_payload(Heavy, &mut payload).is_err());
    assert_eq!(payload.body(), &garbage);
    assert_eq!(payload.items(), 42);
}

#[test]
fn unchanged_requests_are_not_re_encoded() {
    let policy = DegradationPolicy::default();
    let request = traces(vec![(
        "api",
        vec![vec![span(ALWAYS_KEPT, StatusCode::Ok); 3]],
    )]);
    let mut payload = Payload::from_request(&request);
    let body = payload.body().clone();
    let report = policy.apply_payload(Light, &mut payload).unwrap();
    assert_eq!(report, ApplyReport::untouched(3));
    assert_eq!(payload.body().as_ptr(), body.as_ptr());
    // Logs all dropped: an empty request with a zero count.
    let mut payload = Payload::from_request(&logs(
        "api",
        vec![log(SeverityNumber::Debug, Some(NEVER_KEPT), "d")],
    ));
    let report = policy.apply_payload(Emergency, &mut payload).unwrap();
    assert_eq!((report.kept, report.dropped_emergency), (0, 1));
    assert_eq!(payload.items(), 0);
    assert!(payload.is_empty());
    assert_eq!(payload.signal(), Signal::Logs);
}

// ---------------------------------------------------------------------------------------
// Reports

#[test]
fn partial_success_and_counters() {
    let policy = DegradationPolicy::default();
    let counters = ApplyCounters::new();
    let mut total = ApplyReport::default();
    for level in [Light, Heavy, Emergency] {
        let mut r = traces(vec![(
            "api",
            vec![vec![
                span(NEVER_KEPT, StatusCode::Ok),
                span(NEVER_KEPT, StatusCode::Error),
            ]],
        )]);
        let report = policy.apply(level, &mut r);
        let partial = report
            .partial_success(level)
            .expect("something was dropped");
        assert_eq!(partial.rejected, 1);
        assert!(
            partial.message.contains(level.as_str()),
            "{}",
            partial.message
        );
        counters.record(&report);
        total.merge(&report);
    }
    assert_eq!(counters.snapshot(), total);
    assert_eq!(total.kept, 3);
    assert_eq!(total.kept_protected, 3);
    assert_eq!(total.dropped_sampled, 2);
    assert_eq!(total.dropped_emergency, 1);
    assert_eq!(total.received(), 6);
    assert_eq!(ApplyReport::untouched(9).partial_success(Heavy), None);
}

// ---------------------------------------------------------------------------------------
// Configuration errors

#[test]
fn config_errors_name_the_field() {
    let check = |edit: &dyn Fn(&mut PolicyConfig), field: &str| {
        let mut config = PolicyConfig::default();
        edit(&mut config);
        let err = DegradationPolicy::new(config).expect_err(field);
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().starts_with(field), "{err}");
        err
    };
    let err = check(
        &|c| c.level_mut(Light).keep_ratio = 1.5,
        "levels.light.keep_ratio",
    );
    assert!(matches!(err, PolicyError::KeepRatio { .. }));
    check(
        &|c| c.level_mut(Heavy).keep_ratio = f64::NAN,
        "levels.heavy.keep_ratio",
    );
    check(
        &|c| c.level_mut(Normal).keep_ratio = -0.1,
        "levels.normal.keep_ratio",
    );
    let err = check(
        &|c| c.level_mut(Heavy).keep_ratio = 0.2,
        "levels.heavy.keep_ratio",
    );
    assert!(
        err.to_string().contains("levels.moderate.keep_ratio"),
        "{err}"
    );
    let err = check(
        &|c| c.level_mut(Moderate).drop_logs_below = Some(SeverityNumber::Fatal),
        "levels.moderate.drop_logs_below",
    );
    assert!(err.to_string().contains("keep_logs_at_or_above"), "{err}");
    check(
        &|c| c.level_mut(Light).keep_logs_at_or_above = Some(SeverityNumber::Unspecified),
        "levels.light.keep_logs_at_or_above",
    );
    check(
        &|c| c.level_mut(Emergency).max_attribute_value_bytes = Some(0),
        "levels.emergency.max_attribute_value_bytes",
    );
    check(
        &|c| c.level_mut(Light).batch.max_items = 0,
        "levels.light.batch.max_items",
    );
    check(
        &|c| c.level_mut(Light).batch.max_wait = Duration::ZERO,
        "levels.light.batch.max_wait",
    );
    check(
        &|c| c.level_mut(Light).batch.max_wait = Duration::from_secs(7200),
        "levels.light.batch.max_wait",
    );
    check(
        &|c| c.critical_services = vec!["a".into(), " ".into()],
        "critical_services[1]",
    );
    check(
        &|c| c.deny_attributes = vec![String::new()],
        "deny_attributes[0]",
    );
    let err = check(
        &|c| c.verbose_attributes = vec!["a".into(), "b*.c".into()],
        "verbose_attributes[1]",
    );
    assert!(matches!(err, PolicyError::Wildcard { .. }));
    check(
        &|c| c.deny_attributes = vec!["service.name".into()],
        "deny_attributes[0]",
    );
    // Equal ratios on neighbouring levels are fine; so are prefix patterns.
    let ok = policy(|c| {
        c.level_mut(Light).keep_ratio = 0.1;
        c.deny_attributes = vec!["http.*".into(), "*".into()];
    });
    assert_eq!(ok.level(Light).keep_ratio, 0.1);
}

#[test]
fn severity_names() {
    assert_eq!(parse_severity("error"), Some(SeverityNumber::Error));
    assert_eq!(parse_severity(" WARN "), Some(SeverityNumber::Warn));
    assert_eq!(parse_severity("fatal4"), Some(SeverityNumber::Fatal4));
    assert_eq!(
        parse_severity("SEVERITY_NUMBER_INFO"),
        Some(SeverityNumber::Info)
    );
    assert_eq!(parse_severity("9"), Some(SeverityNumber::Info));
    assert_eq!(parse_severity("0"), None);
    assert_eq!(parse_severity("unspecified"), None);
    assert_eq!(parse_severity("25"), None);
    assert_eq!(parse_severity("critical"), None);
}
