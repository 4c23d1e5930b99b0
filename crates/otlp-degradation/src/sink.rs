//! [`DegradingSink`]: the pipeline stage that applies the current degradation level to
//! every payload before handing it on.
//!
//! The controller decides the level, the policy says what a level does to data; this sink
//! is where the two meet the data path. Per payload it reads the level (one relaxed
//! atomic load), applies [`DegradationPolicy::apply_payload`] (which leaves the payload
//! byte for byte as it is, without decoding, when the level does nothing to its signal),
//! passes what is left to the next stage, and answers the client with an exact
//! partial success for what the policy dropped.

use std::sync::Arc;

use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{PartialSuccess, Payload, Refusal};

use crate::controller::DegradationHandle;
use crate::level::DegradationLevel;
use crate::policy::{ApplyCounters, ApplyReport, DegradationPolicy};

/// A [`Sink`] that degrades each payload at the controller's current level, then passes
/// it to `inner`.
///
/// What one payload goes through:
///
/// 1. the level is read from the [`DegradationHandle`] (lock-free);
/// 2. [`DegradationPolicy::apply_payload`] drops and strips at that level. At a level
///    that does nothing to the payload's signal (`Normal` with the default policy) the
///    body is not even decoded, so the fast path costs an atomic load. A body that must
///    be decoded and is not a valid request is refused with [`Refusal::BadData`] (400 /
///    INVALID_ARGUMENT): it is the sender's to fix, not to retry;
/// 3. when the policy dropped every item, `inner` is not called: there is nothing left to
///    deliver. Otherwise `inner` gets the kept payload (its header counts the kept items);
/// 4. the answer is `inner`'s, with the policy's drops added to its partial success
///    ([`ApplyReport::partial_success`]): the client learns exactly how many items were
///    dropped on purpose and why, and must not retry them. A refusal of `inner` is
///    passed through unchanged: nothing was accepted, the client retries the whole
///    request, and because sampling is by trace id the retry loses the same items.
///
/// The [`ApplyReport`] of every payload that was answered with success is added to the
/// sink's [`ApplyCounters`] (share them between sinks with
/// [`with_counters`](Self::with_counters)). Payloads `inner` refused are not counted, so
/// an item retried after a refusal is counted once, when it is finally accepted: the
/// counters then add up to the partial successes the clients were sent.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
/// use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode};
/// use otlp_core::sink::{Accepted, BoxFuture, Sink};
/// use otlp_core::{Payload, Refusal};
/// use otlp_degradation::{Controller, DegradationLevel, DegradationPolicy, DegradingSink};
///
/// /// The next stage: here it only keeps what it gets.
/// #[derive(Default)]
/// struct Keep(Mutex<Vec<Payload>>);
/// impl Sink for Keep {
///     fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
///         self.0.lock().unwrap().push(payload);
///         Box::pin(async { Ok(Accepted::full()) })
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let controller = Controller::builder().build()?; // a service adds triggers and spawns it
/// let handle = controller.handle();
/// let sink = DegradingSink::new(handle.clone(), Arc::new(DegradationPolicy::default()), Keep::default());
///
/// // Two spans of a trace the Emergency level does not keep, one of them an ERROR.
/// let span = |code: StatusCode| Span {
///     trace_id: vec![7; 16],
///     span_id: vec![1; 8],
///     status: Some(Status { code: code as i32, ..Default::default() }),
///     ..Default::default()
/// };
/// let request = ExportTraceServiceRequest {
///     resource_spans: vec![ResourceSpans {
///         scope_spans: vec![ScopeSpans {
///             spans: vec![span(StatusCode::Ok), span(StatusCode::Error)],
///             ..Default::default()
///         }],
///         ..Default::default()
///     }],
/// };
///
/// handle.pin(DegradationLevel::Emergency);
/// let answer = sink.accept(Payload::from_request(&request)).await?;
/// assert_eq!(answer.partial_success.unwrap().rejected, 1); // the OK span, on purpose
/// assert_eq!(sink.inner().0.lock().unwrap()[0].items(), 1); // the ERROR span went on
/// assert_eq!(sink.counters().snapshot().dropped_emergency, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DegradingSink<S> {
    handle: DegradationHandle,
    policy: Arc<DegradationPolicy>,
    counters: Arc<ApplyCounters>,
    inner: S,
}

impl<S> DegradingSink<S> {
    /// `inner` behind `policy`, at the level `handle` reads, with counters of its own.
    pub fn new(
        handle: DegradationHandle,
        policy: Arc<DegradationPolicy>,
        inner: S,
    ) -> DegradingSink<S> {
        DegradingSink {
            handle,
            policy,
            counters: Arc::new(ApplyCounters::new()),
            inner,
        }
    }

    /// Add to `counters` instead (e.g. one set for the OTLP/HTTP and OTLP/gRPC receivers'
    /// sinks together).
    #[must_use]
    pub fn with_counters(mut self, counters: Arc<ApplyCounters>) -> DegradingSink<S> {
        self.counters = counters;
        self
    }

    /// What the policy did to the payloads answered with success so far.
    pub fn counters(&self) -> &Arc<ApplyCounters> {
        &self.counters
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<DegradationPolicy> {
        &self.policy
    }

    /// The handle the level is read from.
    pub fn handle(&self) -> &DegradationHandle {
        &self.handle
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The level the next payload would be degraded at.
    pub fn level(&self) -> DegradationLevel {
        self.handle.level()
    }

    /// What the policy did so far, as one report (a snapshot of the counters).
    pub fn totals(&self) -> ApplyReport {
        self.counters.snapshot()
    }
}

impl<S: Sink> Sink for DegradingSink<S> {
    fn accept(&self, mut payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        Box::pin(async move {
            let level = self.handle.level();
            let signal = payload.signal();
            let report = self
                .policy
                .apply_payload(level, &mut payload)
                .map_err(|error| {
                    tracing::debug!(%level, %signal, %error, "degradation refused a payload it cannot decode");
                    Refusal::BadData(format!(
                        "the body is not a valid OTLP {signal} request ({error}); send a protobuf Export*ServiceRequest of the path's signal"
                    ))
                })?;
            let dropped = report.partial_success(level);
            if report.kept == 0 && report.dropped() > 0 {
                // Nothing left to deliver: the next stage would only see an empty request.
                self.counters.record(&report);
                return Ok(Accepted {
                    partial_success: dropped,
                });
            }
            let accepted = self.inner.accept(payload).await?;
            self.counters.record(&report);
            Ok(Accepted {
                partial_success: merge(dropped, accepted.partial_success),
            })
        })
    }
}

/// One partial success from the policy's and the next stage's: the counts add up (the
/// next stage only saw what the policy kept, so they never overlap) and both reasons are
/// kept.
fn merge(ours: Option<PartialSuccess>, theirs: Option<PartialSuccess>) -> Option<PartialSuccess> {
    match (ours, theirs) {
        (None, other) | (other, None) => other,
        (Some(ours), Some(theirs)) => Some(PartialSuccess {
            rejected: ours.rejected.saturating_add(theirs.rejected),
            message: if theirs.message.is_empty() {
                ours.message
            } else {
                format!("{}; {}", ours.message, theirs.message)
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use bytes::Bytes;
    use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
    use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
    use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
    use otlp_core::proto::resource::v1::Resource;
    use otlp_core::proto::trace::v1::{
        ResourceSpans, ScopeSpans, Span, Status, status::StatusCode,
    };
    use otlp_core::{OtlpRequest, Signal};

    use super::*;
    use crate::controller::Controller;
    use crate::policy::PolicyConfig;

    /// What the collecting sink answers.
    #[derive(Debug, Clone)]
    enum Answer {
        Full,
        Partial(u64, &'static str),
        Refuse,
    }

    /// A real next stage: keeps every payload it accepts, answers as told.
    #[derive(Debug)]
    struct Collect {
        got: Mutex<Vec<Payload>>,
        answer: Answer,
    }

    impl Collect {
        fn answering(answer: Answer) -> Collect {
            Collect {
                got: Mutex::new(Vec::new()),
                answer,
            }
        }

        fn got(&self) -> Vec<Payload> {
            self.got.lock().unwrap().clone()
        }
    }

    impl Sink for Collect {
        fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
            Box::pin(async move {
                match self.answer {
                    Answer::Refuse => Err(Refusal::Unavailable {
                        reason: "queue full".into(),
                        retry_after: Duration::from_secs(1),
                    }),
                    Answer::Full => {
                        self.got.lock().unwrap().push(payload);
                        Ok(Accepted::full())
                    }
                    Answer::Partial(n, why) => {
                        self.got.lock().unwrap().push(payload);
                        Ok(Accepted::partial(n, why))
                    }
                }
            })
        }
    }

    /// A trace id whose ratio decision is "keep" at every ratio down to 0.001 (low 8
    /// bytes zero) or "drop" at every ratio below 1 (low 8 bytes all 0xff).
    fn trace_id(kept: bool) -> Vec<u8> {
        let low = if kept { 0x00 } else { 0xff };
        let mut id = vec![0xab; 8];
        id.extend([low; 8]);
        id
    }

    fn span(id: u8, kept_trace: bool, code: StatusCode) -> Span {
        Span {
            trace_id: trace_id(kept_trace),
            span_id: vec![id; 8],
            name: format!("span {id}"),
            status: Some(Status {
                code: code as i32,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue(service.into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// Two kept-trace spans, two dropped-trace spans (one of them ERROR).
    fn mixed() -> ExportTraceServiceRequest {
        request(
            "frontend",
            vec![
                span(1, true, StatusCode::Ok),
                span(2, true, StatusCode::Unset),
                span(3, false, StatusCode::Ok),
                span(4, false, StatusCode::Error),
            ],
        )
    }

    fn sink_at(
        level: DegradationLevel,
        config: PolicyConfig,
        answer: Answer,
    ) -> DegradingSink<Collect> {
        let controller = Controller::builder().build().unwrap();
        let handle = controller.handle();
        handle.pin(level);
        let policy = Arc::new(DegradationPolicy::new(config).unwrap());
        DegradingSink::new(handle, policy, Collect::answering(answer))
    }

    fn span_ids(payload: &Payload) -> Vec<u8> {
        let request: ExportTraceServiceRequest = payload.decode().unwrap();
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .map(|s| s.span_id[0])
            .collect()
    }

    #[tokio::test]
    async fn normal_passes_the_payload_byte_for_byte() {
        let sink = sink_at(
            DegradationLevel::Normal,
            PolicyConfig::default(),
            Answer::Full,
        );
        let payload = Payload::from_request(&mixed());
        let answer = sink.accept(payload.clone()).await.unwrap();
        assert_eq!(answer, Accepted::full());
        let got = sink.inner().got();
        assert_eq!(got, vec![payload.clone()]);
        // The same buffer, not a copy: nothing was decoded or re-encoded.
        assert_eq!(got[0].body().as_ptr(), payload.body().as_ptr());
        assert_eq!(sink.totals(), ApplyReport::untouched(4));
    }

    #[tokio::test]
    async fn normal_does_not_decode_so_it_does_not_refuse_garbage() {
        // The receiver validates; at a pass-through level this stage does not look.
        let sink = sink_at(
            DegradationLevel::Normal,
            PolicyConfig::default(),
            Answer::Full,
        );
        let garbage = Payload::new(Signal::Traces, Bytes::from_static(b"\xff\xff\xff"), 3);
        assert!(sink.accept(garbage).await.is_ok());
        assert_eq!(sink.inner().got().len(), 1);
    }

    #[tokio::test]
    async fn heavy_keeps_errors_and_answers_exactly_what_it_dropped() {
        let sink = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Full,
        );
        let answer = sink.accept(Payload::from_request(&mixed())).await.unwrap();
        let partial = answer.partial_success.expect("one span was sampled out");
        assert_eq!(partial.rejected, 1);
        assert!(partial.message.contains("heavy"), "{}", partial.message);
        assert!(
            partial.message.contains("1 sampled out"),
            "{}",
            partial.message
        );

        let got = sink.inner().got();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].items(), 3, "the header counts what is left");
        assert_eq!(span_ids(&got[0]), vec![1, 2, 4], "span 4 is an ERROR");

        let totals = sink.totals();
        assert_eq!(
            (totals.kept, totals.kept_protected, totals.dropped_sampled),
            (3, 1, 1)
        );
        assert_eq!(totals.received(), 4);
    }

    #[tokio::test]
    async fn the_level_is_read_per_payload() {
        let sink = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Full,
        );
        sink.handle().pin(DegradationLevel::Normal);
        let answer = sink.accept(Payload::from_request(&mixed())).await.unwrap();
        assert_eq!(answer.partial_success, None);
        sink.handle().pin(DegradationLevel::Emergency);
        let answer = sink.accept(Payload::from_request(&mixed())).await.unwrap();
        assert_eq!(answer.partial_success.unwrap().rejected, 3);
        let got = sink.inner().got();
        assert_eq!((got[0].items(), got[1].items()), (4, 1));
        assert_eq!(sink.level(), DegradationLevel::Emergency);
    }

    #[tokio::test]
    async fn nothing_left_skips_the_next_stage() {
        let sink = sink_at(
            DegradationLevel::Emergency,
            PolicyConfig::default(),
            // Would refuse: proves it is never asked.
            Answer::Refuse,
        );
        let request = request(
            "frontend",
            vec![
                span(1, true, StatusCode::Ok),
                span(2, false, StatusCode::Unset),
            ],
        );
        let answer = sink.accept(Payload::from_request(&request)).await.unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected, 2);
        assert!(
            partial.message.contains("2 not errors"),
            "{}",
            partial.message
        );
        let totals = sink.totals();
        assert_eq!((totals.kept, totals.dropped_emergency), (0, 2));
    }

    #[tokio::test]
    async fn an_empty_request_still_goes_on() {
        // Nothing was dropped, so there is no partial success to give instead.
        let sink = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Full,
        );
        let empty = ExportTraceServiceRequest::default();
        let answer = sink.accept(Payload::from_request(&empty)).await.unwrap();
        assert_eq!(answer, Accepted::full());
        assert_eq!(sink.inner().got().len(), 1);
    }

    #[tokio::test]
    async fn critical_services_are_kept() {
        let config = PolicyConfig {
            critical_services: vec!["checkout".into()],
            ..PolicyConfig::default()
        };
        let sink = sink_at(DegradationLevel::Emergency, config, Answer::Full);
        let request = request(
            "checkout",
            vec![
                span(1, false, StatusCode::Ok),
                span(2, false, StatusCode::Unset),
            ],
        );
        let payload = Payload::from_request(&request);
        let answer = sink.accept(payload.clone()).await.unwrap();
        assert_eq!(answer.partial_success, None);
        assert_eq!(sink.inner().got()[0].items(), 2);
        assert_eq!(sink.totals().kept_protected, 2);
    }

    #[tokio::test]
    async fn the_next_stages_partial_success_is_added() {
        let sink = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Partial(2, "2 spans too old"),
        );
        let answer = sink.accept(Payload::from_request(&mixed())).await.unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected, 3, "1 sampled out here, 2 refused there");
        assert!(
            partial.message.contains("1 sampled out"),
            "{}",
            partial.message
        );
        assert!(
            partial.message.ends_with("; 2 spans too old"),
            "{}",
            partial.message
        );

        // At a level that drops nothing the next stage's answer is passed as it is.
        sink.handle().pin(DegradationLevel::Normal);
        let answer = sink.accept(Payload::from_request(&mixed())).await.unwrap();
        assert_eq!(answer, Accepted::partial(2, "2 spans too old"));
    }

    #[test]
    fn merge_keeps_a_reason_when_the_other_side_has_none() {
        let ours = PartialSuccess {
            rejected: 3,
            message: "sampled".into(),
        };
        let empty = PartialSuccess {
            rejected: 1,
            message: String::new(),
        };
        assert_eq!(merge(None, None), None);
        assert_eq!(merge(Some(ours.clone()), None), Some(ours.clone()));
        assert_eq!(merge(None, Some(empty.clone())), Some(empty.clone()));
        assert_eq!(
            merge(Some(ours), Some(empty)),
            Some(PartialSuccess {
                rejected: 4,
                message: "sampled".into()
            })
        );
    }

    #[tokio::test]
    async fn a_refusal_passes_through_and_is_not_counted() {
        let sink = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Refuse,
        );
        let refusal = sink
            .accept(Payload::from_request(&mixed()))
            .await
            .unwrap_err();
        assert_eq!(refusal.http_status(), 503);
        assert_eq!(refusal.retry_after(), Some(Duration::from_secs(1)));
        // The client sends the whole request again; its drops are counted then, once.
        assert_eq!(sink.totals(), ApplyReport::default());
    }

    #[tokio::test]
    async fn a_body_that_does_not_decode_is_bad_data() {
        let sink = sink_at(
            DegradationLevel::Light,
            PolicyConfig::default(),
            Answer::Full,
        );
        let garbage = Payload::new(Signal::Traces, Bytes::from_static(b"\x0a\xff\xff"), 1);
        let refusal = sink.accept(garbage).await.unwrap_err();
        assert!(matches!(refusal, Refusal::BadData(_)), "{refusal:?}");
        assert_eq!(refusal.http_status(), 400);
        assert!(refusal.to_string().contains("traces"), "{refusal}");
        assert!(sink.inner().got().is_empty());
        assert_eq!(sink.totals(), ApplyReport::default());
    }

    #[tokio::test]
    async fn logs_are_degraded_too_and_counters_can_be_shared() {
        let counters = Arc::new(ApplyCounters::new());
        let traces = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Full,
        )
        .with_counters(Arc::clone(&counters));
        let logs = sink_at(
            DegradationLevel::Heavy,
            PolicyConfig::default(),
            Answer::Full,
        )
        .with_counters(Arc::clone(&counters));
        traces
            .accept(Payload::from_request(&mixed()))
            .await
            .unwrap();
        let empty_logs = ExportLogsServiceRequest::default();
        logs.accept(Payload::from_request(&empty_logs))
            .await
            .unwrap();
        assert_eq!(counters.snapshot().received(), mixed().item_count());
        assert!(Arc::ptr_eq(traces.counters(), logs.counters()));
    }
}
