//! The policy applied to log records.

use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::logs::v1::LogRecord;

use super::{
    ApplyReport, CompiledLevel, DegradationPolicy, Verdict, add_dropped, hash, valid_trace_id,
};

/// Severity numbers OTLP defines (TRACE = 1 .. FATAL4 = 24); others match no severity rule.
const KNOWN_SEVERITIES: std::ops::RangeInclusive<i32> = 1..=24;

pub(super) fn apply(
    policy: &DegradationPolicy,
    level: &CompiledLevel,
    request: &mut ExportLogsServiceRequest,
    report: &mut ApplyReport,
) {
    let filter = level.filters_logs();
    let stripper = policy.stripper(level);
    let strip = stripper.is_active();
    if !filter && !strip {
        report.kept += otlp_core::OtlpRequest::item_count(request);
        return;
    }
    request.resource_logs.retain_mut(|resource_logs| {
        let critical =
            filter && level.keep_critical && policy.is_critical(resource_logs.resource.as_ref());
        let mut had_items = false;
        let mut has_items = false;
        resource_logs.scope_logs.retain_mut(|scope_logs| {
            if scope_logs.log_records.is_empty() {
                return true;
            }
            had_items = true;
            if filter {
                scope_logs
                    .log_records
                    .retain(|record| report.count(decide(level, critical, record)));
                if scope_logs.log_records.is_empty() {
                    report.scopes_removed += 1;
                    return false;
                }
            } else {
                report.kept += scope_logs.log_records.len() as u64;
            }
            has_items = true;
            if strip {
                if let Some(scope) = scope_logs.scope.as_mut() {
                    let removed = stripper.strip(&mut scope.attributes, report);
                    add_dropped(&mut scope.dropped_attributes_count, removed);
                }
                for record in &mut scope_logs.log_records {
                    let removed = stripper.strip(&mut record.attributes, report);
                    add_dropped(&mut record.dropped_attributes_count, removed);
                }
            }
            true
        });
        if had_items && !has_items {
            report.resources_removed += 1;
            return false;
        }
        if strip && let Some(resource) = resource_logs.resource.as_mut() {
            let removed = stripper.strip_resource(&mut resource.attributes, report);
            add_dropped(&mut resource.dropped_attributes_count, removed);
        }
        true
    });
}

#[inline]
fn decide(level: &CompiledLevel, critical: bool, record: &LogRecord) -> Verdict {
    let severity = record.severity_number;
    let known = KNOWN_SEVERITIES.contains(&severity);
    if (known && severity >= level.keep_logs_at_or_above) || critical {
        return Verdict::Protected;
    }
    if level.errors_only {
        return Verdict::Emergency;
    }
    if known && severity < level.drop_logs_below {
        return Verdict::Severity;
    }
    let keep = match valid_trace_id(&record.trace_id) {
        Some(id) => level.sampler.should_keep(id),
        None => level.sampler.should_keep_random(hash::log_record(record)),
    };
    if keep {
        Verdict::Keep
    } else {
        Verdict::Sampled
    }
}
