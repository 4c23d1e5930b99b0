//! Properties of the degradation policy over arbitrary OTLP requests (otlp-core's
//! strategies): protected items are never dropped, a trace is kept or dropped as a whole,
//! the kept fraction matches the ratio, and the accounting is exact.

use std::collections::HashMap;

use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value};
use otlp_core::proto::logs::v1::SeverityNumber;
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::status::StatusCode;
use otlp_core::proto::trace::v1::{Span, Status};
use otlp_core::testing::{arb_logs_request, arb_metrics_request, arb_trace_request};
use otlp_core::{OtlpRequest, Payload};
use otlp_degradation::policy::{DegradationPolicy, PolicyConfig};
use otlp_degradation::{DegradationLevel, TraceIdRatioSampler};
use proptest::prelude::*;
use prost::Message;

const CRITICAL: &str = "critical-svc";

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn level() -> impl Strategy<Value = DegradationLevel> {
    (0usize..5).prop_map(DegradationLevel::from_index)
}

fn policy() -> DegradationPolicy {
    // Stripping too, so the properties hold with every stage of `apply` at work.
    let config = PolicyConfig {
        critical_services: vec![CRITICAL.into()],
        deny_attributes: vec!["a*".into()],
        verbose_attributes: vec!["b".into()],
        strip_metric_attributes: true,
        ..PolicyConfig::default()
    };
    DegradationPolicy::new(config).expect("valid")
}

fn mark_critical(resource: &mut Option<Resource>) {
    resource
        .get_or_insert_with(Resource::default)
        .attributes
        .insert(
            0,
            KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(CRITICAL.into())),
                }),
                key_strindex: 0,
            },
        );
}

/// Make an arbitrary request interesting for the policy: spans of a few traces spread
/// over resources and scopes, some ERROR spans, some critical resources; every span gets
/// a unique span id so survivors can be identified.
fn shape_traces(request: &mut ExportTraceServiceRequest, seed: u64) {
    let mut state = seed;
    let traces: Vec<Vec<u8>> = (0..4)
        .map(|_| {
            let mut id = splitmix(&mut state).to_be_bytes().to_vec();
            id.extend_from_slice(&splitmix(&mut state).to_be_bytes());
            id
        })
        .collect();
    let mut n = 0u64;
    for resource_spans in &mut request.resource_spans {
        if splitmix(&mut state).is_multiple_of(4) {
            mark_critical(&mut resource_spans.resource);
        }
        for span in resource_spans
            .scope_spans
            .iter_mut()
            .flat_map(|s| &mut s.spans)
        {
            let r = splitmix(&mut state);
            if !r.is_multiple_of(3) {
                span.trace_id = traces[(r % 4) as usize].clone();
            }
            if r.is_multiple_of(7) {
                span.status = Some(Status {
                    code: StatusCode::Error as i32,
                    message: String::new(),
                });
            }
            span.span_id = n.to_be_bytes().to_vec();
            n += 1;
        }
    }
}

fn is_critical(resource: Option<&Resource>) -> bool {
    resource.is_some_and(|r| {
        r.attributes.iter().any(|kv| {
            kv.key == "service.name"
                && kv.value.as_ref().and_then(|v| v.value.as_ref())
                    == Some(&any_value::Value::StringValue(CRITICAL.into()))
        })
    })
}

fn is_error(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

/// Every span with whether a protection rule covers it.
fn spans(request: &ExportTraceServiceRequest) -> Vec<(Span, bool)> {
    request
        .resource_spans
        .iter()
        .flat_map(|r| {
            let critical = is_critical(r.resource.as_ref());
            r.scope_spans
                .iter()
                .flat_map(|s| &s.spans)
                .map(move |s| (s.clone(), critical || is_error(s)))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn errors_and_critical_services_are_never_dropped(
        mut request in arb_trace_request(),
        seed in any::<u64>(),
        level in level(),
    ) {
        shape_traces(&mut request, seed);
        let before = spans(&request);
        let protected: Vec<&Vec<u8>> = before.iter().filter(|(_, p)| *p).map(|(s, _)| &s.span_id).collect();
        let policy = policy();
        let report = policy.apply(level, &mut request);
        let after: Vec<Vec<u8>> = spans(&request).into_iter().map(|(s, _)| s.span_id).collect();
        for id in &protected {
            prop_assert!(after.contains(id), "protected span {:?} dropped at {}", id, level);
        }
        if level != DegradationLevel::Normal {
            prop_assert_eq!(report.kept_protected, protected.len() as u64);
        }
    }

    #[test]
    fn all_spans_of_a_trace_share_the_sampling_decision(
        mut request in arb_trace_request(),
        seed in any::<u64>(),
        level in level(),
    ) {
        shape_traces(&mut request, seed);
        let before = spans(&request);
        let policy = policy();
        policy.apply(level, &mut request);
        let after: Vec<Vec<u8>> = spans(&request).into_iter().map(|(s, _)| s.span_id).collect();
        // Per trace id, the fates of its unprotected spans.
        let mut fates: HashMap<Vec<u8>, (bool, bool)> = HashMap::new();
        for (span, protected) in &before {
            if *protected {
                continue;
            }
            let kept = after.contains(&span.span_id);
            let fate = fates.entry(span.trace_id.clone()).or_insert((false, false));
            if kept { fate.0 = true } else { fate.1 = true }
            // And the fate is the sampler's (or the emergency rule's) answer for the id.
            let sampler = policy.sampler(level);
            let expected = !policy.level(level).errors_only
                && sampler.should_keep_id(&span.trace_id).expect("16-byte ids");
            prop_assert_eq!(kept, expected);
        }
        for (id, (some_kept, some_dropped)) in fates {
            prop_assert!(!(some_kept && some_dropped), "trace {:?} split at {}", id, level);
        }
    }

    #[test]
    fn traces_accounting_is_exact(
        mut request in arb_trace_request(),
        seed in any::<u64>(),
        level in level(),
    ) {
        shape_traces(&mut request, seed);
        let input = request.item_count();
        let resources = request.resource_spans.len() as u64;
        let policy = policy();
        let mut via_payload = Payload::from_request(&request);
        let report = policy.apply(level, &mut request);
        prop_assert_eq!(report.kept + report.dropped(), input);
        prop_assert_eq!(report.received(), input);
        prop_assert_eq!(request.item_count(), report.kept);
        prop_assert_eq!(request.resource_spans.len() as u64, resources - report.resources_removed);
        prop_assert_eq!(report.dropped_severity, 0);
        // The payload path does the same thing to the same bytes.
        let payload_report = policy.apply_payload(level, &mut via_payload).expect("valid");
        prop_assert_eq!(payload_report, report);
        prop_assert_eq!(via_payload.items(), report.kept);
        let back: ExportTraceServiceRequest = via_payload.decode().expect("valid");
        prop_assert_eq!(back.encode_to_vec(), request.encode_to_vec());
    }

    #[test]
    fn logs_accounting_is_exact_and_severe_logs_are_kept(
        mut request in arb_logs_request(),
        seed in any::<u64>(),
        level in level(),
    ) {
        let mut state = seed;
        for resource_logs in &mut request.resource_logs {
            if splitmix(&mut state).is_multiple_of(4) {
                mark_critical(&mut resource_logs.resource);
            }
        }
        let severe = |r: &ExportLogsServiceRequest| {
            r.resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .flat_map(|s| &s.log_records)
                .filter(|l| (SeverityNumber::Error as i32..=24).contains(&l.severity_number))
                .count()
        };
        let severe_before = severe(&request);
        let input = request.item_count();
        let policy = policy();
        let mut via_payload = Payload::from_request(&request);
        let report = policy.apply(level, &mut request);
        prop_assert_eq!(report.kept + report.dropped(), input);
        prop_assert_eq!(request.item_count(), report.kept);
        prop_assert_eq!(severe(&request), severe_before);
        let payload_report = policy.apply_payload(level, &mut via_payload).expect("valid");
        prop_assert_eq!(payload_report, report);
        let back: ExportLogsServiceRequest = via_payload.decode().expect("valid");
        prop_assert_eq!(back.encode_to_vec(), request.encode_to_vec());
    }

    #[test]
    fn metrics_are_never_dropped(
        mut request in arb_metrics_request(),
        level in level(),
    ) {
        let input = request.item_count();
        let containers = request.resource_metrics.len();
        let report = policy().apply(level, &mut request);
        prop_assert_eq!(report.kept, input);
        prop_assert_eq!(report.dropped(), 0);
        prop_assert_eq!(request.item_count(), input);
        prop_assert_eq!(request.resource_metrics.len(), containers);
    }
}

// Each case samples thousands of ids; fewer cases keep the debug-build run short.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn kept_fraction_is_within_five_sigma_of_the_ratio(
        ratio in prop_oneof![0.001f64..1.0, Just(0.5), Just(0.1), Just(0.01), Just(0.001)],
        seed in any::<u64>(),
    ) {
        let n = 20_000u64;
        let sampler = TraceIdRatioSampler::new(ratio);
        let mut state = seed;
        let mut kept = 0u64;
        for _ in 0..n {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&splitmix(&mut state).to_be_bytes());
            id[8..].copy_from_slice(&splitmix(&mut state).to_be_bytes());
            kept += u64::from(sampler.should_keep(&id));
        }
        let expected = ratio * n as f64;
        let sigma = (n as f64 * ratio * (1.0 - ratio)).sqrt();
        prop_assert!(
            (kept as f64 - expected).abs() <= 5.0 * sigma + 1.0,
            "ratio {} kept {} of {} (expected {} ± {})", ratio, kept, n, expected, 5.0 * sigma
        );
    }

    #[test]
    fn kept_fraction_of_log_records_without_trace_ids(
        seed in any::<u64>(),
    ) {
        // The hash fallback must be as fair as the trace id: WARN records (sampled at every
        // level below Emergency by default) with no trace id and varied content.
        let policy = DegradationPolicy::default();
        let n = 5_000u64;
        let mut state = seed;
        let records = (0..n)
            .map(|_| otlp_core::proto::logs::v1::LogRecord {
                time_unix_nano: splitmix(&mut state),
                severity_number: SeverityNumber::Warn as i32,
                ..Default::default()
            })
            .collect();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![otlp_core::proto::logs::v1::ResourceLogs {
                scope_logs: vec![otlp_core::proto::logs::v1::ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        for level in [DegradationLevel::Light, DegradationLevel::Moderate, DegradationLevel::Heavy] {
            let ratio = policy.level(level).keep_ratio;
            let report = policy.apply(level, &mut request.clone());
            let expected = ratio * n as f64;
            let sigma = (n as f64 * ratio * (1.0 - ratio)).sqrt();
            prop_assert!(
                (report.kept as f64 - expected).abs() <= 5.0 * sigma + 1.0,
                "{}: kept {} of {} (expected {} ± {})", level, report.kept, n, expected, 5.0 * sigma
            );
        }
    }
}
