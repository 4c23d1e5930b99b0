//! # otlp-degradation
//!
//! Keeps a telemetry pipeline alive under overload and keeps the data that matters. The
//! OpenTelemetry Collector refuses data at a memory limit and samples at a fixed rate; this
//! crate degrades in steps instead: a [`Controller`] turns load readings (CPU, memory, queue
//! fill, export latency and errors, tokio scheduling lag) into a [`DegradationLevel`] from
//! `Normal` to `Emergency`, escalating at once and recovering one level per cool-down; a
//! [`DegradationPolicy`] samples each level consistently by trace id while never dropping
//! error spans, critical services or severe logs, strips attributes, and reports exactly
//! what it dropped and why; a [`MemoryLimiter`] refuses new data with retryable answers
//! before memory runs out and sheds queued data when it nearly has; a [`CanarySplit`]
//! shifts traffic to a new target in steps and rolls back on a regression.
//!
//! The operator's guide, with every default and the reason for it, is `docs/degradation.md`
//! in the [repository](https://github.com/otlp-rust/otlp-rust/blob/main/docs/degradation.md).
//!
//! ## Example
//!
//! Triggers, controller, policy and memory limiter wired together, driven through an
//! overload and back:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::time::Duration;
//!
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_core::proto::common::v1::{AnyValue, KeyValue, any_value::Value};
//! use otlp_core::proto::resource::v1::Resource;
//! use otlp_core::proto::trace::v1::{
//!     ResourceSpans, ScopeSpans, Span, Status, status::StatusCode,
//! };
//! use otlp_degradation::memory_limiter::{MemoryPressure, ScriptedMemory, ShedFn};
//! use otlp_degradation::trigger::{
//!     ErrorRateTracker, ErrorRateTrigger, LatencyTracker, LatencyTrigger, QueueGauge,
//!     QueueTrigger,
//! };
//! use otlp_degradation::{
//!     Controller, DegradationLevel, DegradationPolicy, MemoryLimiter, MemoryLimiterConfig,
//!     PolicyConfig,
//! };
//! use tokio::time::Instant;
//!
//! // The paused clock lets this example cover a minute of cool-downs at once; a service
//! // runs on an ordinary runtime.
//! #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Triggers. The pipeline feeds the gauge and the trackers; the controller reads
//!     // them. A service also adds CpuTrigger and MemoryTrigger (over Resources::detect())
//!     // and a LagTrigger.
//!     let queue = QueueGauge::new(10_000);
//!     let latency = LatencyTracker::new(); // exporters call latency.record(elapsed)
//!     let export_errors = ErrorRateTracker::new(); // and export_errors.record(ok)
//!     let mut controller = Controller::builder()
//!         .trigger(
//!             QueueTrigger::new(queue.clone()),
//!             QueueTrigger::default_thresholds(),
//!         )
//!         .trigger(
//!             LatencyTrigger::new(latency.clone()),
//!             LatencyTrigger::default_thresholds(),
//!         )
//!         .trigger(
//!             ErrorRateTrigger::new(export_errors.clone()),
//!             ErrorRateTrigger::default_thresholds(),
//!         )
//!         .build()?;
//!     let handle = controller.handle(); // cheap to clone: for the pipeline and the admin API
//!
//!     // What each level does to data: the defaults, plus one critical service.
//!     let mut config = PolicyConfig::default();
//!     config.critical_services = vec!["checkout".into()];
//!     let policy = DegradationPolicy::new(config)?;
//!
//!     // The memory limiter: soft 80 %, hard 90 % of the limit. A service passes
//!     // Resources::detect(); here 300 MiB of a 1 GiB limit are scripted.
//!     let memory = Arc::new(ScriptedMemory::new(300 << 20, 1 << 30));
//!     let limiter = MemoryLimiter::new(MemoryLimiterConfig::default(), memory.clone())?;
//!     let shed_bytes = Arc::new(AtomicU64::new(0));
//!     let queue_shed = Arc::clone(&shed_bytes);
//!     limiter.add_shed(ShedFn(move |bytes: u64| {
//!         queue_shed.fetch_add(bytes, Ordering::Relaxed); // drop the lowest-priority batches
//!         bytes
//!     }));
//!
//!     // The export queue is 90 % full: the controller goes straight to Heavy.
//!     queue.set_used(9_000);
//!     assert_eq!(
//!         controller.evaluate_once(Instant::now()),
//!         DegradationLevel::Heavy
//!     );
//!
//!     // A request: admitted by the limiter, then degraded at the current level.
//!     let permit = limiter.admit(64 * 1024)?;
//!     let mut request = ExportTraceServiceRequest {
//!         resource_spans: vec![
//!             spans_of(
//!                 "frontend",
//!                 vec![
//!                     span(0x00, StatusCode::Ok),
//!                     span(0x80, StatusCode::Ok),
//!                     span(0x80, StatusCode::Error),
//!                 ],
//!             ),
//!             spans_of("checkout", vec![span(0x80, StatusCode::Ok)]),
//!         ],
//!     };
//!     let level = handle.level();
//!     let report = policy.apply(level, &mut request);
//!     // Heavy keeps 1 % of traces: trace id ..00.. is in, ..80.. is out, but the ERROR
//!     // span and the critical service's span stay.
//!     assert_eq!(
//!         (report.kept, report.kept_protected, report.dropped_sampled),
//!         (3, 2, 1)
//!     );
//!     let answer = report.partial_success(level).expect("a span was dropped");
//!     assert_eq!(answer.rejected, 1); // the client learns exactly what was dropped, and why
//!     assert_eq!(policy.batch_hint(level).max_wait, Duration::from_secs(2));
//!     drop(permit); // the request has been handed on
//!
//!     // Memory passes soft (80 %): new data gets a retryable 429, retry after 1 s.
//!     memory.set_used(850 << 20);
//!     assert_eq!(limiter.refresh(), MemoryPressure::Soft);
//!     let refusal = limiter.admit(64 * 1024).unwrap_err();
//!     assert_eq!(refusal.http_status(), 429);
//!     assert_eq!(refusal.retry_after(), Some(Duration::from_secs(1)));
//!     // Past hard (90 %): 503, retry after 5 s, and the shed hooks drop queued data.
//!     memory.set_used(950 << 20);
//!     assert_eq!(limiter.refresh(), MemoryPressure::Hard);
//!     assert_eq!(limiter.admit(1).unwrap_err().http_status(), 503);
//!     assert!(shed_bytes.load(Ordering::Relaxed) > 0);
//!
//!     // The queue drains. Recovery goes one level down per 10 s cool-down of calm.
//!     queue.set_used(100);
//!     let mut levels = Vec::new();
//!     for _ in 0..31 {
//!         tokio::time::advance(Duration::from_secs(1)).await;
//!         levels.push(controller.evaluate_once(Instant::now()));
//!     }
//!     // Calm from 1 s on: Moderate at 11 s, Light at 21 s, Normal at 31 s.
//!     assert_eq!(levels[9], DegradationLevel::Heavy);
//!     assert_eq!(levels[10], DegradationLevel::Moderate);
//!     assert_eq!(levels[20], DegradationLevel::Light);
//!     assert_eq!(levels[30], DegradationLevel::Normal);
//!     assert_eq!(handle.history().len(), 4); // up to Heavy, then three steps down
//!
//!     // Operators can pin a level, or disable degradation, at run time.
//!     handle.pin(DegradationLevel::Moderate);
//!     assert_eq!(
//!         controller.evaluate_once(Instant::now()),
//!         DegradationLevel::Moderate
//!     );
//!     handle.unpin();
//!
//!     // In a service, the controller and the memory monitor run on their own timers.
//!     let controller_task = controller.spawn();
//!     let memory_monitor = limiter.spawn_monitor();
//!     // ... run the pipeline, reading handle.level() per request ...
//!     memory_monitor.abort();
//!     controller_task.stop().await?;
//!     Ok(())
//! }
//!
//! /// A span of trace `0102030405060708 LL00000000000000` with status `code`.
//! fn span(low: u8, code: StatusCode) -> Span {
//!     Span {
//!         trace_id: vec![1, 2, 3, 4, 5, 6, 7, 8, low, 0, 0, 0, 0, 0, 0, 0],
//!         span_id: vec![1; 8],
//!         status: Some(Status {
//!             code: code as i32,
//!             ..Default::default()
//!         }),
//!         ..Default::default()
//!     }
//! }
//!
//! /// `spans` of the service `service`.
//! fn spans_of(service: &str, spans: Vec<Span>) -> ResourceSpans {
//!     let name = AnyValue {
//!         value: Some(Value::StringValue(service.into())),
//!     };
//!     ResourceSpans {
//!         resource: Some(Resource {
//!             attributes: vec![KeyValue {
//!                 key: "service.name".into(),
//!                 value: Some(name),
//!                 ..Default::default()
//!             }],
//!             ..Default::default()
//!         }),
//!         scope_spans: vec![ScopeSpans {
//!             spans,
//!             ..Default::default()
//!         }],
//!         ..Default::default()
//!     }
//! }
//! ```
//!
//! ## Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`level`] | [`DegradationLevel`] (`Normal`, `Light`, `Moderate`, `Heavy`, `Emergency`) and [`AtomicLevel`], the lock-free cell the hot path reads |
//! | [`controller`] | [`Controller`] (evaluation every interval, immediate escalation, one-step recovery after a cool-down with hysteresis), [`DegradationHandle`] (read, pin, disable, history, snapshot) |
//! | [`trigger`] | the [`Trigger`] trait, per-level [`Thresholds`] and the built-in triggers: CPU, memory, queue fill, export latency, export error rate, scheduling lag |
//! | [`resources`] | process CPU and memory from `/proc`, limits from cgroup v2 `cpu.max` / `memory.max`, the host as fallback |
//! | [`sampler`] | [`TraceIdRatioSampler`]: the OpenTelemetry `TraceIdRatioBased` decision |
//! | [`policy`] | [`PolicyConfig`] / [`LevelPolicy`] (per-level keep ratio, protection rules, log severities, attribute stripping, batch hints), [`DegradationPolicy::apply`] and its exact [`ApplyReport`] |
//! | [`sink`] | [`DegradingSink`]: the pipeline stage that applies the current level's policy to each payload and answers with the exact partial success |
//! | [`memory_limiter`] | [`MemoryLimiter`]: soft and hard thresholds, retryable refusals, shed hooks, a memory-limited `Sink` |
//! | [`canary`] | [`CanarySplit`]: stepped traffic shift from a stable to a canary target with automatic rollback |
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod canary;
pub mod controller;
pub mod level;
pub mod memory_limiter;
pub mod policy;
pub mod resources;
pub mod sampler;
pub mod sink;
pub mod trigger;

pub use canary::{CanaryConfig, CanarySplit, CanaryState, Target};
pub use controller::{Controller, ControllerBuilder, ControllerError, DegradationHandle};
pub use level::{AtomicLevel, DegradationLevel, UnknownLevel};
pub use memory_limiter::{MemoryLimiter, MemoryLimiterConfig, MemoryPressure};
pub use policy::{ApplyReport, DegradationPolicy, LevelPolicy, PolicyConfig, PolicyError};
pub use resources::Resources;
pub use sampler::TraceIdRatioSampler;
pub use sink::DegradingSink;
pub use trigger::{Thresholds, Trigger};
