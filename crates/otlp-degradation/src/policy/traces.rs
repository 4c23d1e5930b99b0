//! The policy applied to spans.

use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::trace::v1::Span;
use otlp_core::proto::trace::v1::status::StatusCode;

use super::attributes::Stripper;
use super::{
    ApplyReport, CompiledLevel, DegradationPolicy, Verdict, add_dropped, hash, valid_trace_id,
};

pub(super) fn apply(
    policy: &DegradationPolicy,
    level: &CompiledLevel,
    request: &mut ExportTraceServiceRequest,
    report: &mut ApplyReport,
) {
    let filter = level.filters_spans();
    let stripper = policy.stripper(level);
    let strip = stripper.is_active();
    if !filter && !strip {
        report.kept += otlp_core::OtlpRequest::item_count(request);
        return;
    }
    request.resource_spans.retain_mut(|resource_spans| {
        let critical =
            filter && level.keep_critical && policy.is_critical(resource_spans.resource.as_ref());
        let mut had_items = false;
        let mut has_items = false;
        resource_spans.scope_spans.retain_mut(|scope_spans| {
            if scope_spans.spans.is_empty() {
                return true;
            }
            had_items = true;
            if filter {
                scope_spans
                    .spans
                    .retain(|span| report.count(decide(level, critical, span)));
                if scope_spans.spans.is_empty() {
                    report.scopes_removed += 1;
                    return false;
                }
            } else {
                report.kept += scope_spans.spans.len() as u64;
            }
            has_items = true;
            if strip {
                if let Some(scope) = scope_spans.scope.as_mut() {
                    let removed = stripper.strip(&mut scope.attributes, report);
                    add_dropped(&mut scope.dropped_attributes_count, removed);
                }
                for span in &mut scope_spans.spans {
                    strip_span(&stripper, span, report);
                }
            }
            true
        });
        if had_items && !has_items {
            report.resources_removed += 1;
            return false;
        }
        if strip && let Some(resource) = resource_spans.resource.as_mut() {
            let removed = stripper.strip_resource(&mut resource.attributes, report);
            add_dropped(&mut resource.dropped_attributes_count, removed);
        }
        true
    });
}

#[inline]
fn decide(level: &CompiledLevel, critical: bool, span: &Span) -> Verdict {
    let error = span
        .status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32);
    if error || critical {
        return Verdict::Protected;
    }
    if level.errors_only {
        return Verdict::Emergency;
    }
    let keep = match valid_trace_id(&span.trace_id) {
        Some(id) => level.sampler.should_keep(id),
        None => level.sampler.should_keep_random(hash::span(span)),
    };
    if keep {
        Verdict::Keep
    } else {
        Verdict::Sampled
    }
}

fn strip_span(stripper: &Stripper<'_>, span: &mut Span, report: &mut ApplyReport) {
    let removed = stripper.strip(&mut span.attributes, report);
    add_dropped(&mut span.dropped_attributes_count, removed);
    for event in &mut span.events {
        let removed = stripper.strip(&mut event.attributes, report);
        add_dropped(&mut event.dropped_attributes_count, removed);
    }
    for link in &mut span.links {
        let removed = stripper.strip(&mut link.attributes, report);
        add_dropped(&mut link.dropped_attributes_count, removed);
    }
}
