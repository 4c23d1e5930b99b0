//! What each degradation level does to data: sampling, protection rules, attribute
//! stripping and batching hints, applied to OTLP requests with exact accounting.
//!
//! # Rules, per signal
//!
//! **Spans**, in order: a span with status `ERROR` is kept; a span of a critical service
//! (resource attribute `service.name` in [`PolicyConfig::critical_services`]) is kept when
//! the level's [`LevelPolicy::keep_critical_services`] is set; at a level with
//! [`LevelPolicy::errors_only`] every other span is dropped (`dropped_emergency`);
//! otherwise the [`TraceIdRatioSampler`] decides from the trace id (`dropped_sampled`).
//! The sampler is the OpenTelemetry `TraceIdRatioBased` one, so all spans of a trace share
//! the decision, on every gateway instance. A span whose trace id is not 16 bytes (or is
//! all zeros, which OTLP defines as invalid) is sampled on a stable hash of its ids, name
//! and start time instead.
//!
//! **Log records**, in order: a record at or above [`LevelPolicy::keep_logs_at_or_above`]
//! is kept; a record of a critical service is kept (as for spans); at an `errors_only`
//! level every other record is dropped (`dropped_emergency`); a record below
//! [`LevelPolicy::drop_logs_below`] is dropped (`dropped_severity`); the rest is sampled,
//! by trace id when the record carries a valid one (so logs follow the fate of their
//! trace), otherwise on a stable hash of its timestamps, severity, event name and body at
//! the same ratio (`dropped_sampled`). The hash is deterministic rather than random so a
//! retried request loses the same records and instances agree. Records without a severity
//! (`UNSPECIFIED`, or a number outside 1..=24) match neither severity rule.
//!
//! **Metrics** are never sampled or dropped, at any level. Dropping data points breaks
//! what they mean: a cumulative sum or histogram missing points is still right on the
//! next point, but a delta sum or counter missing points under-counts for good, gauges
//! and histograms from sampled resources skew aggregates, and there is no trace id to
//! make the choice consistent across a series. Metrics are also cheap per item compared
//! to spans and logs. Attribute stripping applies to them only when
//! [`PolicyConfig::strip_metric_attributes`] is set (data point attributes are a series'
//! identity).
//!
//! **Stripping** (after dropping, on what is kept): keys in the deny list and the verbose
//! list are removed from resource, scope, span, event, link, log record (and, if enabled,
//! data point and exemplar) attributes at the levels that say so, and the owner's
//! `dropped_attributes_count` is raised by the number removed; resource `service.name` is
//! never removed. String and bytes values longer than
//! [`LevelPolicy::max_attribute_value_bytes`] are cut (strings at a character boundary),
//! nested values included. Log bodies are not touched.
//!
//! Scope and resource entries that dropping left without items are removed, so the
//! request carries no empty containers. What happened is counted in an [`ApplyReport`],
//! exact per reason, from which [`ApplyReport::partial_success`] builds the client's
//! partial-success answer.
//!
//! ```
//! use otlp_core::OtlpRequest;
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode};
//! use otlp_degradation::policy::DegradationPolicy;
//! use otlp_degradation::DegradationLevel;
//!
//! let span = |low: u8, code: StatusCode| Span {
//!     trace_id: vec![1, 2, 3, 4, 5, 6, 7, 8, low, 0, 0, 0, 0, 0, 0, 0],
//!     span_id: vec![1; 8],
//!     status: Some(Status { code: code as i32, ..Default::default() }),
//!     ..Default::default()
//! };
//! let mut request = ExportTraceServiceRequest {
//!     resource_spans: vec![ResourceSpans {
//!         scope_spans: vec![ScopeSpans {
//!             spans: vec![span(0x00, StatusCode::Ok), span(0xf0, StatusCode::Ok), span(0xf0, StatusCode::Error)],
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }],
//! };
//! let policy = DegradationPolicy::default();
//! // Moderate keeps 10% of traces: the id with low byte 0x00 is in, 0xf0 is out, but the
//! // ERROR span of the dropped trace stays.
//! let report = policy.apply(DegradationLevel::Moderate, &mut request);
//! assert_eq!((report.kept, report.dropped_sampled, report.kept_protected), (2, 1, 1));
//! assert_eq!(request.item_count(), 2);
//! ```

mod attributes;
mod config;
mod error;
mod hash;
mod logs;
mod metrics;
mod report;
mod traces;

use std::collections::HashSet;

use otlp_core::codec::DecodeError;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::any_value;
use otlp_core::proto::resource::v1::Resource;
use otlp_core::{OtlpRequest, Payload, PayloadHeader, Signal};

pub use config::{BatchHint, LevelPolicy, PolicyConfig, parse_severity};
pub use error::PolicyError;
pub use report::{ApplyCounters, ApplyReport};

use self::attributes::{KeyMatcher, Stripper};
use crate::level::DegradationLevel;
use crate::sampler::TraceIdRatioSampler;

/// The resource attribute naming the service (OpenTelemetry semantic conventions).
const SERVICE_NAME: &str = "service.name";

/// A validated [`PolicyConfig`], compiled for the hot path: samplers with precomputed
/// bounds, key lists as matchers. Cheap to share (`Arc`) between pipeline tasks; `apply`
/// takes `&self`.
#[derive(Debug, Clone)]
pub struct DegradationPolicy {
    config: PolicyConfig,
    levels: [CompiledLevel; 5],
    critical_services: HashSet<Box<str>>,
    deny: KeyMatcher,
    verbose: KeyMatcher,
}

/// One level's rules in the form `apply` reads them.
#[derive(Debug, Clone)]
struct CompiledLevel {
    sampler: TraceIdRatioSampler,
    errors_only: bool,
    keep_critical: bool,
    /// Known severities (1..=24) at or above this are kept; `i32::MAX` when unset.
    keep_logs_at_or_above: i32,
    /// Known severities below this are dropped; `0` when unset.
    drop_logs_below: i32,
    strip_denied: bool,
    strip_verbose: bool,
    max_value_bytes: Option<usize>,
}

impl CompiledLevel {
    fn new(rules: &LevelPolicy) -> CompiledLevel {
        CompiledLevel {
            sampler: TraceIdRatioSampler::new(rules.keep_ratio),
            errors_only: rules.errors_only,
            keep_critical: rules.keep_critical_services,
            keep_logs_at_or_above: rules.keep_logs_at_or_above.map_or(i32::MAX, |s| s as i32),
            drop_logs_below: rules.drop_logs_below.map_or(0, |s| s as i32),
            strip_denied: rules.strip_denied_attributes,
            strip_verbose: rules.strip_verbose_attributes,
            max_value_bytes: rules.max_attribute_value_bytes,
        }
    }

    /// Whether spans can be dropped at this level.
    fn filters_spans(&self) -> bool {
        self.errors_only || !self.sampler.keeps_all()
    }

    /// Whether log records can be dropped at this level.
    fn filters_logs(&self) -> bool {
        self.filters_spans() || self.drop_logs_below > 0
    }
}

/// Why an item was kept or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Protected,
    Sampled,
    Severity,
    Emergency,
}

impl ApplyReport {
    /// Count `verdict`; whether the item stays.
    #[inline]
    fn count(&mut self, verdict: Verdict) -> bool {
        match verdict {
            Verdict::Keep => self.kept += 1,
            Verdict::Protected => {
                self.kept += 1;
                self.kept_protected += 1;
            }
            Verdict::Sampled => self.dropped_sampled += 1,
            Verdict::Severity => self.dropped_severity += 1,
            Verdict::Emergency => self.dropped_emergency += 1,
        }
        matches!(verdict, Verdict::Keep | Verdict::Protected)
    }
}

/// A trace id the sampler can use: 16 bytes, not all zero.
#[inline]
fn valid_trace_id(id: &[u8]) -> Option<&[u8; 16]> {
    let id: &[u8; 16] = id.try_into().ok()?;
    (*id != [0; 16]).then_some(id)
}

/// Add `removed` to an OTLP `dropped_attributes_count`.
#[inline]
fn add_dropped(count: &mut u32, removed: u32) {
    *count = count.saturating_add(removed);
}

impl Default for DegradationPolicy {
    /// The default configuration (see the fields of [`LevelPolicy`]).
    fn default() -> DegradationPolicy {
        match DegradationPolicy::new(PolicyConfig::default()) {
            Ok(policy) => policy,
            // The defaults are checked by a test; this arm is unreachable in practice.
            Err(err) => panic!("default policy is invalid: {err}"),
        }
    }
}

impl DegradationPolicy {
    /// Check `config` and compile it.
    ///
    /// # Errors
    ///
    /// [`PolicyError`] naming the first field that is out of range.
    pub fn new(config: PolicyConfig) -> Result<DegradationPolicy, PolicyError> {
        config.validate()?;
        Ok(DegradationPolicy {
            levels: DegradationLevel::ALL.map(|l| CompiledLevel::new(config.level(l))),
            critical_services: config
                .critical_services
                .iter()
                .map(|s| s.trim().into())
                .collect(),
            deny: KeyMatcher::new(&config.deny_attributes),
            verbose: KeyMatcher::new(&config.verbose_attributes),
            config,
        })
    }

    /// The configuration this policy was built from.
    pub fn config(&self) -> &PolicyConfig {
        &self.config
    }

    /// The rules of `level`.
    pub fn level(&self, level: DegradationLevel) -> &LevelPolicy {
        self.config.level(level)
    }

    /// The trace-id sampler of `level`.
    pub fn sampler(&self, level: DegradationLevel) -> TraceIdRatioSampler {
        self.levels[level.index()].sampler
    }

    /// The batching suggestion of `level`.
    pub fn batch_hint(&self, level: DegradationLevel) -> BatchHint {
        self.config.level(level).batch
    }

    /// Whether `apply` at `level` leaves data of `signal` exactly as it is (nothing to
    /// drop, nothing to strip), so a caller may skip it; [`Self::apply_payload`] then
    /// returns without decoding.
    pub fn is_passthrough(&self, level: DegradationLevel, signal: Signal) -> bool {
        let compiled = &self.levels[level.index()];
        let strips = self.stripper(compiled).is_active();
        match signal {
            Signal::Traces => !compiled.filters_spans() && !strips,
            Signal::Logs => !compiled.filters_logs() && !strips,
            Signal::Metrics => !(self.config.strip_metric_attributes && strips),
        }
    }

    /// Apply the rules of `level` to `request` in place: drop, strip, remove emptied
    /// containers, and report exactly what was done.
    pub fn apply<R: Degradable>(&self, level: DegradationLevel, request: &mut R) -> ApplyReport {
        let mut report = ApplyReport::default();
        request.apply_policy(self, level, &mut report);
        report
    }

    /// Apply the rules of `level` to an encoded request: decode, [`Self::apply`],
    /// re-encode, and set the header's item count to what is left. The payload stays
    /// byte for byte as it was, without being decoded, when the level does nothing to its
    /// signal ([`Self::is_passthrough`]); and it is not re-encoded when nothing changed.
    /// The report's `kept` is then the header's item count.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the body is not a valid request; the payload is unchanged.
    pub fn apply_payload(
        &self,
        level: DegradationLevel,
        payload: &mut Payload,
    ) -> Result<ApplyReport, DecodeError> {
        let signal = payload.signal();
        if self.is_passthrough(level, signal) {
            return Ok(ApplyReport::untouched(payload.items()));
        }
        let report = match signal {
            Signal::Traces => self.apply_encoded::<ExportTraceServiceRequest>(level, payload)?,
            Signal::Metrics => self.apply_encoded::<ExportMetricsServiceRequest>(level, payload)?,
            Signal::Logs => self.apply_encoded::<ExportLogsServiceRequest>(level, payload)?,
        };
        if report.dropped() > 0 {
            tracing::trace!(
                level = %level,
                signal = %signal,
                kept = report.kept,
                dropped_sampled = report.dropped_sampled,
                dropped_severity = report.dropped_severity,
                dropped_emergency = report.dropped_emergency,
                "degradation policy dropped items"
            );
        }
        Ok(report)
    }

    fn apply_encoded<R: Degradable>(
        &self,
        level: DegradationLevel,
        payload: &mut Payload,
    ) -> Result<ApplyReport, DecodeError> {
        let mut request: R = payload.decode()?;
        let report = self.apply(level, &mut request);
        if report.changed() {
            let header = PayloadHeader {
                items: report.kept,
                ..payload.header().clone()
            };
            let body = otlp_core::codec::protobuf::encode(&request);
            *payload = Payload::from_parts(header, body);
        }
        Ok(report)
    }

    fn stripper(&self, level: &CompiledLevel) -> Stripper<'_> {
        Stripper {
            deny: (level.strip_denied && !self.deny.is_empty()).then_some(&self.deny),
            verbose: (level.strip_verbose && !self.verbose.is_empty()).then_some(&self.verbose),
            max_value_bytes: level.max_value_bytes,
        }
    }

    /// Whether `resource` belongs to a critical service.
    fn is_critical(&self, resource: Option<&Resource>) -> bool {
        if self.critical_services.is_empty() {
            return false;
        }
        resource
            .into_iter()
            .flat_map(|r| &r.attributes)
            .filter(|kv| kv.key == SERVICE_NAME)
            .filter_map(|kv| kv.value.as_ref()?.value.as_ref())
            .any(|v| match v {
                any_value::Value::StringValue(name) => {
                    self.critical_services.contains(name.as_str())
                }
                _ => false,
            })
    }
}

mod sealed {
    pub trait Sealed {
        /// Apply the policy in place, adding what was done to `report`.
        fn apply_policy(
            &mut self,
            policy: &super::DegradationPolicy,
            level: crate::level::DegradationLevel,
            report: &mut super::ApplyReport,
        );
    }
}

/// An OTLP request the policy can apply to: `ExportTraceServiceRequest`,
/// `ExportMetricsServiceRequest` and `ExportLogsServiceRequest`.
pub trait Degradable: OtlpRequest + sealed::Sealed {}

impl Degradable for ExportTraceServiceRequest {}
impl Degradable for ExportMetricsServiceRequest {}
impl Degradable for ExportLogsServiceRequest {}

impl sealed::Sealed for ExportTraceServiceRequest {
    fn apply_policy(
        &mut self,
        policy: &DegradationPolicy,
        level: DegradationLevel,
        report: &mut ApplyReport,
    ) {
        traces::apply(policy, &policy.levels[level.index()], self, report);
    }
}

impl sealed::Sealed for ExportMetricsServiceRequest {
    fn apply_policy(
        &mut self,
        policy: &DegradationPolicy,
        level: DegradationLevel,
        report: &mut ApplyReport,
    ) {
        metrics::apply(policy, &policy.levels[level.index()], self, report);
    }
}

impl sealed::Sealed for ExportLogsServiceRequest {
    fn apply_policy(
        &mut self,
        policy: &DegradationPolicy,
        level: DegradationLevel,
        report: &mut ApplyReport,
    ) {
        logs::apply(policy, &policy.levels[level.index()], self, report);
    }
}
