//! The OTLP request and response messages, with item counting.
//!
//! The message types are those of `opentelemetry-proto` (prost-generated), re-exported
//! under [`crate::proto`] so users need no second dependency to name them.

use crate::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use crate::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use crate::proto::metrics::v1::metric::Data;
use crate::signal::Signal;

/// An OTLP `Export*ServiceRequest`: implemented for the three request messages.
///
/// ```
/// use otlp_core::OtlpRequest;
/// use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
///
/// let request = ExportTraceServiceRequest::default();
/// assert_eq!(request.item_count(), 0);
/// assert_eq!(ExportTraceServiceRequest::SIGNAL, otlp_core::Signal::Traces);
/// ```
pub trait OtlpRequest:
    prost::Message + Default + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// The signal this request carries.
    const SIGNAL: Signal;
    /// The matching response message.
    type Response: OtlpResponse;

    /// Number of items: spans, metric data points, or log records.
    fn item_count(&self) -> u64;

    /// Number of top-level resource entries (`resource_spans` etc.).
    fn resource_count(&self) -> usize;
}

/// An OTLP `Export*ServiceResponse`: implemented for the three response messages.
pub trait OtlpResponse:
    prost::Message + Default + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static
{
    /// The signal this response answers.
    const SIGNAL: Signal;

    /// The partial success the server reported, if any: `None` when the field is absent
    /// or holds only default values, which the specification defines as full success.
    fn partial_success(&self) -> Option<PartialSuccess>;

    /// A response carrying `partial` (or full success when `None`).
    fn with_partial_success(partial: Option<PartialSuccess>) -> Self;
}

/// Items a server accepted the request but rejected some of, with its explanation.
///
/// Partial success is data, not an error: it must be surfaced to the caller and never
/// retried (OTLP specification, "Partial Success").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartialSuccess {
    /// Number of items (spans, data points, log records) rejected.
    pub rejected: u64,
    /// The server's human-readable reason; may be empty.
    pub message: String,
}

impl PartialSuccess {
    fn from_parts(rejected: i64, message: &str) -> Option<PartialSuccess> {
        if rejected == 0 && message.is_empty() {
            None
        } else {
            Some(PartialSuccess {
                // A negative count is a peer bug; treat it as zero rejected rather than wrap.
                rejected: u64::try_from(rejected).unwrap_or(0),
                message: message.to_owned(),
            })
        }
    }

    fn rejected_i64(&self) -> i64 {
        i64::try_from(self.rejected).unwrap_or(i64::MAX)
    }
}

impl OtlpRequest for ExportTraceServiceRequest {
    const SIGNAL: Signal = Signal::Traces;
    type Response = ExportTraceServiceResponse;

    fn item_count(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }

    fn resource_count(&self) -> usize {
        self.resource_spans.len()
    }
}

impl OtlpRequest for ExportMetricsServiceRequest {
    const SIGNAL: Signal = Signal::Metrics;
    type Response = ExportMetricsServiceResponse;

    fn item_count(&self) -> u64 {
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len() as u64,
                Some(Data::Sum(s)) => s.data_points.len() as u64,
                Some(Data::Histogram(h)) => h.data_points.len() as u64,
                Some(Data::ExponentialHistogram(h)) => h.data_points.len() as u64,
                Some(Data::Summary(s)) => s.data_points.len() as u64,
                None => 0,
            })
            .sum()
    }

    fn resource_count(&self) -> usize {
        self.resource_metrics.len()
    }
}

impl OtlpRequest for ExportLogsServiceRequest {
    const SIGNAL: Signal = Signal::Logs;
    type Response = ExportLogsServiceResponse;

    fn item_count(&self) -> u64 {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len() as u64)
            .sum()
    }

    fn resource_count(&self) -> usize {
        self.resource_logs.len()
    }
}

impl OtlpResponse for ExportTraceServiceResponse {
    const SIGNAL: Signal = Signal::Traces;

    fn partial_success(&self) -> Option<PartialSuccess> {
        let p = self.partial_success.as_ref()?;
        PartialSuccess::from_parts(p.rejected_spans, &p.error_message)
    }

    fn with_partial_success(partial: Option<PartialSuccess>) -> Self {
        use crate::proto::collector::trace::v1::ExportTracePartialSuccess;
        ExportTraceServiceResponse {
            partial_success: partial.map(|p| ExportTracePartialSuccess {
                rejected_spans: p.rejected_i64(),
                error_message: p.message,
            }),
        }
    }
}

impl OtlpResponse for ExportMetricsServiceResponse {
    const SIGNAL: Signal = Signal::Metrics;

    fn partial_success(&self) -> Option<PartialSuccess> {
        let p = self.partial_success.as_ref()?;
        PartialSuccess::from_parts(p.rejected_data_points, &p.error_message)
    }

    fn with_partial_success(partial: Option<PartialSuccess>) -> Self {
        use crate::proto::collector::metrics::v1::ExportMetricsPartialSuccess;
        ExportMetricsServiceResponse {
            partial_success: partial.map(|p| ExportMetricsPartialSuccess {
                rejected_data_points: p.rejected_i64(),
                error_message: p.message,
            }),
        }
    }
}

impl OtlpResponse for ExportLogsServiceResponse {
    const SIGNAL: Signal = Signal::Logs;

    fn partial_success(&self) -> Option<PartialSuccess> {
        let p = self.partial_success.as_ref()?;
        PartialSuccess::from_parts(p.rejected_log_records, &p.error_message)
    }

    fn with_partial_success(partial: Option<PartialSuccess>) -> Self {
        use crate::proto::collector::logs::v1::ExportLogsPartialSuccess;
        ExportLogsServiceResponse {
            partial_success: partial.map(|p| ExportLogsPartialSuccess {
                rejected_log_records: p.rejected_i64(),
                error_message: p.message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::collector::trace::v1::ExportTracePartialSuccess;
    use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

    #[test]
    fn counts_spans_across_resources_and_scopes() {
        let scope = |n| ScopeSpans {
            spans: vec![Span::default(); n],
            ..Default::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![scope(2), scope(3)],
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![scope(5)],
                    ..Default::default()
                },
            ],
        };
        assert_eq!(req.item_count(), 10);
        assert_eq!(req.resource_count(), 2);
    }

    #[test]
    fn default_partial_success_is_full_success() {
        let resp = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess::default()),
        };
        assert_eq!(resp.partial_success(), None);
        let p = PartialSuccess {
            rejected: 3,
            message: "bad spans".into(),
        };
        let resp = ExportTraceServiceResponse::with_partial_success(Some(p.clone()));
        assert_eq!(resp.partial_success(), Some(p));
    }
}
