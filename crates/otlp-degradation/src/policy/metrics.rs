//! The policy applied to metrics: never dropped (see the module docs), only stripped
//! when `strip_metric_attributes` is set.

use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::common::v1::KeyValue;
use otlp_core::proto::metrics::v1::Exemplar;
use otlp_core::proto::metrics::v1::metric::Data;

use super::attributes::Stripper;
use super::{ApplyReport, CompiledLevel, DegradationPolicy, add_dropped};

pub(super) fn apply(
    policy: &DegradationPolicy,
    level: &CompiledLevel,
    request: &mut ExportMetricsServiceRequest,
    report: &mut ApplyReport,
) {
    report.kept += otlp_core::OtlpRequest::item_count(request);
    let stripper = policy.stripper(level);
    if !policy.config.strip_metric_attributes || !stripper.is_active() {
        return;
    }
    for resource_metrics in &mut request.resource_metrics {
        if let Some(resource) = resource_metrics.resource.as_mut() {
            let removed = stripper.strip_resource(&mut resource.attributes, report);
            add_dropped(&mut resource.dropped_attributes_count, removed);
        }
        for scope_metrics in &mut resource_metrics.scope_metrics {
            if let Some(scope) = scope_metrics.scope.as_mut() {
                let removed = stripper.strip(&mut scope.attributes, report);
                add_dropped(&mut scope.dropped_attributes_count, removed);
            }
            for metric in &mut scope_metrics.metrics {
                strip_data(&stripper, metric.data.as_mut(), report);
            }
        }
    }
}

/// Data points and exemplars have no `dropped_attributes_count`; removals are counted in
/// the report only.
fn strip_data(stripper: &Stripper<'_>, data: Option<&mut Data>, report: &mut ApplyReport) {
    let mut strip = |attributes: &mut Vec<KeyValue>, exemplars: &mut Vec<Exemplar>| {
        stripper.strip(attributes, report);
        for exemplar in exemplars {
            stripper.strip(&mut exemplar.filtered_attributes, report);
        }
    };
    match data {
        Some(Data::Gauge(g)) => {
            for p in &mut g.data_points {
                strip(&mut p.attributes, &mut p.exemplars);
            }
        }
        Some(Data::Sum(s)) => {
            for p in &mut s.data_points {
                strip(&mut p.attributes, &mut p.exemplars);
            }
        }
        Some(Data::Histogram(h)) => {
            for p in &mut h.data_points {
                strip(&mut p.attributes, &mut p.exemplars);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            for p in &mut h.data_points {
                strip(&mut p.attributes, &mut p.exemplars);
            }
        }
        Some(Data::Summary(s)) => {
            for p in &mut s.data_points {
                strip(&mut p.attributes, &mut Vec::new());
            }
        }
        None => {}
    }
}
