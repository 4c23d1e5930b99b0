//! Overload: a real local pipeline, driven at three times what it can process.
//!
//! ```text
//! HttpExporter x6 --HTTP--> HttpReceiver (127.0.0.1:0)
//!   -> Holding            counts the bodies inside the pipeline (for the memory source)
//!   -> MemoryLimitedSink  soft/hard limits over the bytes the pipeline holds
//!   -> DegradingSink      the controller's level, the policy, exact partial successes
//!   -> BoundedQueue       bytes, feeding a QueueGauge the controller's QueueTrigger reads
//!   -> worker             delivers WORKER_SPANS_PER_TICK spans per WORKER_TICK
//!   -> Collector          every span id it got, and which were ERROR / critical
//! ```
//!
//! The worker's capacity is set by the test (2000 spans/s), never measured; the clients
//! offer 6000 spans/s. Half the traces come from the critical service `checkout` and 5 %
//! of the spans are errors, so 52.5 % of the spans are protected and no level can cut the
//! volume below 1.6 times the capacity: degradation climbs as far as it goes and the
//! memory limiter then has to refuse. The test shows, with exact counts rather than
//! rates (so machine speed changes the numbers, not the verdict):
//!
//! - every answer is a 200 (possibly with partial success) or a retryable 429/503 with
//!   `Retry-After`, never another status or a connection failure;
//! - every ERROR span (and every critical span) of an accepted request reached the
//!   collector; spans of refused requests are the client's to retry and never arrive;
//! - the level rose above `Normal` on the queue trigger, and came back to `Normal` one
//!   level per cool-down once the load stopped;
//! - the bytes the pipeline held stayed under the hard limit, and the process's peak RSS
//!   grew by a bounded amount;
//! - the policy counters, the limiter's counters and the receiver's metrics add up to
//!   what the clients were told.
//!
//! Real sockets and real time: the whole test takes about 6 s (at most about 25 s if
//! every bounded wait runs out).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value::Value};
use otlp_core::proto::resource::v1::Resource;
use otlp_core::proto::trace::v1::span::{Event, SpanKind};
use otlp_core::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status::StatusCode};
use otlp_core::sink::{Accepted, BoxFuture, Sink};
use otlp_core::{ExportError, Payload, Refusal, Signal};
use otlp_degradation::controller::{Transition, TransitionReason};
use otlp_degradation::memory_limiter::{
    MemoryLimitedSink, MemoryLimiter, MemoryLimiterConfig, MemorySource, Threshold,
};
use otlp_degradation::policy::ApplyCounters;
use otlp_degradation::resources::{LimitSource, MemoryLimit, MemoryReading, ResourceError};
use otlp_degradation::trigger::{QueueGauge, QueueTrigger};
use otlp_degradation::{
    Controller, DegradationLevel, DegradationPolicy, DegradingSink, PolicyConfig, Thresholds,
};
use otlp_transport_http::exporter::HttpExporter;
use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks};
use tokio::sync::{oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep, timeout};

// ---- The load and the capacity -------------------------------------------------------

/// What the worker delivers per tick: the pipeline's capacity, 2000 spans/s.
const WORKER_SPANS_PER_TICK: i64 = 100;
const WORKER_TICK: Duration = Duration::from_millis(50);
/// Bounds the worker's loop (30 s of ticks) whatever happens to the test.
const WORKER_MAX_TICKS: u32 = 600;

/// Six clients each sending 50 spans every 50 ms: 6000 spans/s, three times the worker.
const CLIENTS: u64 = 6;
const CLIENT_PERIOD: Duration = Duration::from_millis(50);
const TRACES_PER_REQUEST: u64 = 10;
const SPANS_PER_TRACE: u64 = 5;
const SPANS_PER_REQUEST: u64 = TRACES_PER_REQUEST * SPANS_PER_TRACE;
/// Every 20th span is an ERROR: 5 %.
const ERROR_EVERY: u64 = 20;
/// Every other trace is the critical service's: with the errors, 52.5 % of the spans are
/// protected, 1.6 times the worker's capacity at 3x load.
const CRITICAL_SERVICE: &str = "checkout";
const OTHER_SERVICE: &str = "frontend";

/// The load runs at least this long...
const LOAD_MIN: Duration = Duration::from_secs(3);
/// ...and until refusals have gone on for this long...
const LOAD_AFTER_FIRST_REFUSAL: Duration = Duration::from_secs(1);
/// ...but never longer than this (a slow machine gets more time to reach the limit).
const LOAD_MAX: Duration = Duration::from_secs(8);
const MAX_REQUESTS_PER_CLIENT: u64 = (LOAD_MAX.as_millis() / CLIENT_PERIOD.as_millis()) as u64 + 1;
/// One export that has no answer by then is a failure of the test.
const EXPORT_DEADLINE: Duration = Duration::from_secs(10);

// ---- The pipeline's limits -----------------------------------------------------------

/// The memory budget of the pipeline: bodies being processed plus queued payloads.
/// Absolute bytes (this machine's cgroup v1 gives no `memory.max` to take a share of).
const PIPELINE_MEMORY_LIMIT: u64 = 1536 << 10;
/// Above soft new requests get 429; 65 % sits above the queue's Emergency threshold
/// (55 %) so the limiter refuses only once degradation has done all it can.
const SOFT_BYTES: u64 = PIPELINE_MEMORY_LIMIT * 65 / 100;
/// The 20 % between soft and hard (about 300 KiB, 20 requests) absorbs what admission
/// cannot see in time: bodies moved into the queue since the last 10 ms reading, and
/// bodies of requests being refused. At most six requests are in flight at a time.
const HARD_BYTES: u64 = PIPELINE_MEMORY_LIMIT * 85 / 100;
const MEMORY_CHECK_INTERVAL: Duration = Duration::from_millis(10);
/// The queue's own bound (a 503 beyond it), above hard: the limiter acts first.
const QUEUE_CAPACITY_BYTES: u64 = PIPELINE_MEMORY_LIMIT;
/// Queue fill ratios (of its bytes) that escalate to Light, Moderate, Heavy, Emergency,
/// and the recovery thresholds below them.
const QUEUE_THRESHOLDS: Thresholds =
    Thresholds::new([0.15, 0.30, 0.45, 0.55], [0.05, 0.20, 0.35, 0.45]);

/// Short interval and cool-down so the test is quick; recovery from Emergency takes at
/// least four cool-downs.
const CONTROLLER_INTERVAL: Duration = Duration::from_millis(100);
const COOL_DOWN: Duration = Duration::from_millis(500);
const RECOVERY_MAX: Duration = Duration::from_secs(10);
const DRAIN_MAX: Duration = Duration::from_secs(5);

/// Generous bound on the growth of the whole process's peak RSS (clients, receiver,
/// reqwest and hyper buffers included): it catches unbounded growth, not allocator noise.
const VM_HWM_GROWTH_MAX_KIB: u64 = 256 << 10;

// ---- Bytes the pipeline holds, and the memory source over them -----------------------

/// Bytes inside the pipeline right now: request bodies between the receiver and the
/// queue (refused ones included, they are in memory too until answered), and payloads in
/// the queue. `peak` is the highest total at any change, not only at the limiter's
/// readings.
#[derive(Debug, Default)]
struct HeldBytes {
    in_pipeline: AtomicU64,
    queued: AtomicU64,
    peak: AtomicU64,
}

impl HeldBytes {
    fn total(&self) -> u64 {
        self.in_pipeline.load(Relaxed) + self.queued.load(Relaxed)
    }

    fn grow(&self, counter: &AtomicU64, bytes: u64) {
        counter.fetch_add(bytes, Relaxed);
        self.peak.fetch_max(self.total(), Relaxed);
    }
}

/// The limiter's memory source: the pipeline's held bytes against the pipeline's budget.
///
/// Why not the process's RSS: the clients share this process, and the allocator keeps
/// freed pages, so RSS would neither isolate the pipeline nor fall when the queue
/// drains. These bytes are what a gateway's memory grows with under load, and the
/// limiter reads them the way it reads a cgroup: every check interval, adding what it
/// admitted since. What this misses (hyper's buffers, decoding) the VmHWM bound covers.
#[derive(Debug)]
struct PipelineMemory(Arc<HeldBytes>);

impl MemorySource for PipelineMemory {
    fn read(&self) -> Result<MemoryReading, ResourceError> {
        let used = self.0.total();
        Ok(MemoryReading {
            rss_bytes: used,
            cgroup_bytes: Some(used),
            limit: MemoryLimit {
                bytes: PIPELINE_MEMORY_LIMIT,
                source: LimitSource::Cgroup,
            },
        })
    }
}

/// The first stage: counts each body as held from the moment the receiver hands it over
/// until the answer (or until the request is dropped).
struct Holding<S> {
    held: Arc<HeldBytes>,
    inner: S,
}

struct Release {
    held: Arc<HeldBytes>,
    bytes: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.held.in_pipeline.fetch_sub(self.bytes, Relaxed);
    }
}

impl<S: Sink> Sink for Holding<S> {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        let bytes = payload.len() as u64;
        self.held.grow(&self.held.in_pipeline, bytes);
        let release = Release {
            held: Arc::clone(&self.held),
            bytes,
        };
        Box::pin(async move {
            let _release = release;
            self.inner.accept(payload).await
        })
    }
}

// ---- The queue, the worker and the collector -----------------------------------------

/// A FIFO of payloads bounded in bytes, keeping the controller's gauge current.
struct BoundedQueue {
    batches: Mutex<VecDeque<Payload>>,
    gauge: QueueGauge,
    held: Arc<HeldBytes>,
    refused: AtomicU64,
}

impl BoundedQueue {
    fn push(&self, payload: Payload) -> Result<Accepted, Refusal> {
        let bytes = payload.len() as u64;
        let mut batches = self.batches.lock().unwrap();
        if self.gauge.used() + bytes > self.gauge.capacity() {
            self.refused.fetch_add(1, Relaxed);
            return Err(Refusal::Unavailable {
                reason: "export queue full".into(),
                retry_after: Duration::from_secs(1),
            });
        }
        batches.push_back(payload);
        self.gauge.add(bytes);
        self.held.grow(&self.held.queued, bytes);
        Ok(Accepted::full())
    }

    fn pop(&self) -> Option<Payload> {
        let payload = self.batches.lock().unwrap().pop_front()?;
        let bytes = payload.len() as u64;
        self.gauge.sub(bytes);
        self.held.queued.fetch_sub(bytes, Relaxed);
        Some(payload)
    }

    fn is_empty(&self) -> bool {
        self.batches.lock().unwrap().is_empty()
    }
}

impl Sink for BoundedQueue {
    fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
        let answer = self.push(payload);
        Box::pin(async move { answer })
    }
}

/// What reached the end of the pipeline.
#[derive(Debug, Default)]
struct Collector {
    spans: HashSet<u64>,
    errors: HashSet<u64>,
    critical: HashSet<u64>,
    duplicates: u64,
    batches: u64,
    /// Payloads whose header item count differed from their content.
    miscounted: u64,
    undecodable: u64,
}

impl Collector {
    fn deliver(&mut self, payload: &Payload) {
        self.batches += 1;
        let Ok(request) = payload.decode::<ExportTraceServiceRequest>() else {
            self.undecodable += 1;
            return;
        };
        let mut count = 0;
        for resource_spans in &request.resource_spans {
            let critical = service_name(resource_spans) == Some(CRITICAL_SERVICE);
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                count += 1;
                let id = span_id(span);
                if !self.spans.insert(id) {
                    self.duplicates += 1;
                }
                if is_error(span) {
                    self.errors.insert(id);
                }
                if critical {
                    self.critical.insert(id);
                }
            }
        }
        if count != payload.items() {
            self.miscounted += 1;
        }
    }
}

/// Delivers at most `WORKER_SPANS_PER_TICK` spans per tick, on average exactly that
/// while the queue has work: a batch may overdraw the budget, the next tick pays it back.
async fn worker(
    queue: Arc<BoundedQueue>,
    collector: Arc<Mutex<Collector>>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut ticker = interval(WORKER_TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut budget: i64 = 0;
    for _ in 0..WORKER_MAX_TICKS {
        tokio::select! {
            biased;
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        // Idle ticks do not save up capacity for a burst.
        budget = (budget + WORKER_SPANS_PER_TICK).min(WORKER_SPANS_PER_TICK);
        while budget > 0 {
            let Some(batch) = queue.pop() else { break };
            budget -= i64::try_from(batch.items()).unwrap();
            collector.lock().unwrap().deliver(&batch);
        }
    }
}

// ---- The clients ---------------------------------------------------------------------

/// What the clients sent and were told.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    /// 200 answers, with and without partial success.
    ok: u64,
    partial: u64,
    spans_ok: u64,
    /// Spans the 200 answers' partial successes rejected.
    rejected: u64,
    refused_429: u64,
    refused_503: u64,
    spans_refused: u64,
    errors_refused: u64,
    accepted_ids: HashSet<u64>,
    accepted_errors: HashSet<u64>,
    accepted_critical: HashSet<u64>,
    refused_ids: HashSet<u64>,
    /// Anything that is neither a 200 nor a retryable refusal with Retry-After.
    failures: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.partial += other.partial;
        self.spans_ok += other.spans_ok;
        self.rejected += other.rejected;
        self.refused_429 += other.refused_429;
        self.refused_503 += other.refused_503;
        self.spans_refused += other.spans_refused;
        self.errors_refused += other.errors_refused;
        self.accepted_ids.extend(other.accepted_ids);
        self.accepted_errors.extend(other.accepted_errors);
        self.accepted_critical.extend(other.accepted_critical);
        self.refused_ids.extend(other.refused_ids);
        self.failures.extend(other.failures);
    }

    fn refused(&self) -> u64 {
        self.refused_429 + self.refused_503
    }
}

/// One client: an OTLP/HTTP exporter without retries or circuit breaker, so every
/// answer the pipeline gives is seen as it is. Sends one request per period (started
/// `offset` into the first period, so the clients spread out) until told to stop.
async fn client(id: u64, endpoint: String, offset: Duration, stop: watch::Receiver<bool>) -> Tally {
    let exporter = HttpExporter::builder()
        .no_env()
        .endpoint(endpoint)
        .no_retry()
        .no_circuit_breaker()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("exporter configuration");
    let mut ticker = interval_at(Instant::now() + offset, CLIENT_PERIOD);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tally = Tally::default();
    let mut sequence = 0;
    for n in 0..MAX_REQUESTS_PER_CLIENT {
        ticker.tick().await;
        if *stop.borrow() {
            break;
        }
        let batch = generate(id, n, &mut sequence);
        tally.requests += 1;
        match timeout(EXPORT_DEADLINE, exporter.export_traces(&batch.request)).await {
            Err(_) => tally.failures.push(format!(
                "client {id} request {n}: no answer in {EXPORT_DEADLINE:?}"
            )),
            Ok(Ok(accepted)) => {
                tally.ok += 1;
                tally.spans_ok += SPANS_PER_REQUEST;
                if let Some(partial) = accepted.partial_success {
                    tally.partial += 1;
                    tally.rejected += partial.rejected;
                }
                tally.accepted_ids.extend(&batch.ids);
                tally.accepted_errors.extend(&batch.errors);
                tally.accepted_critical.extend(&batch.critical);
            }
            Ok(Err(failure)) => match failure.error() {
                ExportError::Http {
                    status: status @ (429 | 503),
                    retry_after: Some(_),
                    ..
                } => {
                    if *status == 429 {
                        tally.refused_429 += 1;
                    } else {
                        tally.refused_503 += 1;
                    }
                    tally.spans_refused += SPANS_PER_REQUEST;
                    tally.errors_refused += batch.errors.len() as u64;
                    tally.refused_ids.extend(&batch.ids);
                }
                other => tally
                    .failures
                    .push(format!("client {id} request {n}: {other}")),
            },
        }
    }
    tally
}

/// One request and what is in it.
struct Batch {
    request: ExportTraceServiceRequest,
    ids: Vec<u64>,
    errors: Vec<u64>,
    critical: Vec<u64>,
}

/// SplitMix64: deterministic trace ids without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Request `n` of client `id`: ten traces of five spans (a server span, an internal one,
/// an outgoing HTTP call, two database queries), alternately of the critical service and
/// of another one, as an SDK's batch exporter sends them; every 20th span of the client
/// fails with an exception event.
fn generate(id: u64, n: u64, sequence: &mut u64) -> Batch {
    let mut rng = SplitMix((id << 32) | n);
    let mut by_service: [Vec<Span>; 2] = [Vec::new(), Vec::new()];
    let mut batch = Batch {
        request: ExportTraceServiceRequest::default(),
        ids: Vec::new(),
        errors: Vec::new(),
        critical: Vec::new(),
    };
    // 2026-01-01T00:00:00Z, plus a millisecond per request.
    let start = 1_767_225_600_000_000_000 + n * 1_000_000;
    for trace in 0..TRACES_PER_REQUEST {
        let critical = trace % 2 == 0;
        let mut trace_id = rng.next().to_be_bytes().to_vec();
        trace_id.extend(rng.next().to_be_bytes());
        let mut root = Vec::new();
        for position in 0..SPANS_PER_TRACE {
            *sequence += 1;
            let span_id = (id << 48) | *sequence;
            let error = sequence.is_multiple_of(ERROR_EVERY);
            let span = make_span(
                critical,
                position,
                trace_id.clone(),
                span_id,
                &root,
                start + position * 100_000,
                error,
            );
            if position == 0 {
                root = span.span_id.clone();
            }
            batch.ids.push(span_id);
            if error {
                batch.errors.push(span_id);
            }
            if critical {
                batch.critical.push(span_id);
            }
            by_service[usize::from(!critical)].push(span);
        }
    }
    let [checkout, frontend] = by_service;
    batch.request.resource_spans = vec![
        resource_spans(CRITICAL_SERVICE, checkout),
        resource_spans(OTHER_SERVICE, frontend),
    ];
    batch
}

fn make_span(
    critical: bool,
    position: u64,
    trace_id: Vec<u8>,
    span_id: u64,
    parent: &[u8],
    start: u64,
    error: bool,
) -> Span {
    let (name, kind, attributes) = match (critical, position) {
        (true, 0) => (
            "POST /api/checkout",
            SpanKind::Server,
            vec![
                kv("http.request.method", "POST"),
                kv("http.route", "/api/checkout"),
                kv("url.scheme", "https"),
                kv(
                    "user_agent.original",
                    "Mozilla/5.0 (X11; Linux x86_64) Firefox/134.0",
                ),
                kv_int("http.response.status_code", if error { 500 } else { 200 }),
            ],
        ),
        (false, 0) => (
            "GET /api/products/{id}",
            SpanKind::Server,
            vec![
                kv("http.request.method", "GET"),
                kv("http.route", "/api/products/{id}"),
                kv("url.scheme", "https"),
                kv(
                    "user_agent.original",
                    "Mozilla/5.0 (X11; Linux x86_64) Firefox/134.0",
                ),
                kv_int("http.response.status_code", if error { 500 } else { 200 }),
            ],
        ),
        (_, 1) => (
            "validate request",
            SpanKind::Internal,
            vec![kv("code.function.name", "handlers::validate")],
        ),
        (_, 2) => (
            "POST",
            SpanKind::Client,
            vec![
                kv("http.request.method", "POST"),
                kv("server.address", "payments.internal"),
                kv_int("server.port", 8443),
                kv("url.full", "https://payments.internal:8443/v2/authorize"),
                kv_int("http.response.status_code", if error { 503 } else { 200 }),
            ],
        ),
        _ => (
            "SELECT shop.products",
            SpanKind::Client,
            vec![
                kv("db.system.name", "postgresql"),
                kv("db.namespace", "shop"),
                kv(
                    "db.query.text",
                    "SELECT id, name, price, stock FROM products WHERE id = $1 AND active",
                ),
                kv("server.address", "db-primary.internal"),
            ],
        ),
    };
    let (status, events) = if error {
        (
            Status {
                code: StatusCode::Error as i32,
                message: "upstream payments service unavailable".into(),
            },
            vec![Event {
                time_unix_nano: start + 40_000,
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", "PaymentsUnavailable"),
                    kv("exception.message", "payments.internal:8443 answered 503"),
                    kv(
                        "exception.stacktrace",
                        "PaymentsUnavailable: payments.internal:8443 answered 503\n  at payments::client::authorize (src/payments/client.rs:118)\n  at checkout::handlers::checkout (src/handlers/checkout.rs:64)\n  at server::router::dispatch (src/server/router.rs:201)",
                    ),
                ],
                dropped_attributes_count: 0,
            }],
        )
    } else {
        (
            Status {
                code: StatusCode::Unset as i32,
                message: String::new(),
            },
            Vec::new(),
        )
    };
    Span {
        trace_id,
        span_id: span_id.to_be_bytes().to_vec(),
        parent_span_id: if position == 0 {
            Vec::new()
        } else {
            parent.to_vec()
        },
        flags: 0x301,
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 85_000,
        attributes,
        events,
        status: Some(status),
        ..Default::default()
    }
}

fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![
                kv("service.name", service),
                kv("service.version", "1.42.0"),
                kv("deployment.environment.name", "production"),
                kv("host.name", "web-7f9c6d-2x4kq"),
                kv("telemetry.sdk.name", "opentelemetry"),
                kv("telemetry.sdk.language", "rust"),
                kv("telemetry.sdk.version", "0.31.0"),
            ],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            scope: Some(InstrumentationScope {
                name: "tower-http".into(),
                version: "0.6.6".into(),
                ..Default::default()
            }),
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn service_name(resource_spans: &ResourceSpans) -> Option<&str> {
    resource_spans
        .resource
        .as_ref()?
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(name) => Some(name.as_str()),
            _ => None,
        })
}

fn span_id(span: &Span) -> u64 {
    u64::from_be_bytes(span.span_id.as_slice().try_into().unwrap())
}

fn is_error(span: &Span) -> bool {
    span.status
        .as_ref()
        .is_some_and(|s| s.code == StatusCode::Error as i32)
}

// ---- Helpers -------------------------------------------------------------------------

/// The process's peak resident set size (`VmHWM`), in KiB; `None` where `/proc` has none.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Poll `done` every 20 ms for at most `max`; how long it took, or `None`.
async fn wait_for(max: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < max {
        if done() {
            return Some(start.elapsed());
        }
        sleep(Duration::from_millis(20)).await;
    }
    done().then(|| start.elapsed())
}

fn describe(history: &[Transition], since: Instant) -> String {
    history
        .iter()
        .map(|t| {
            format!(
                "{:>6} ms {} -> {} ({})",
                t.at.saturating_duration_since(since).as_millis(),
                t.from,
                t.to,
                t.reason
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

// ---- The test ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_times_the_capacity_degrades_refuses_retryably_keeps_errors_and_recovers() {
    let hwm_before = vm_hwm_kib();

    // The pipeline, back to front.
    let held = Arc::new(HeldBytes::default());
    let gauge = QueueGauge::new(QUEUE_CAPACITY_BYTES);
    let queue = Arc::new(BoundedQueue {
        batches: Mutex::new(VecDeque::new()),
        gauge: gauge.clone(),
        held: Arc::clone(&held),
        refused: AtomicU64::new(0),
    });
    let controller = Controller::builder()
        .interval(CONTROLLER_INTERVAL)
        .cool_down(COOL_DOWN)
        .history_len(1024)
        .trigger(QueueTrigger::new(gauge), QUEUE_THRESHOLDS)
        .build()
        .unwrap();
    let handle = controller.handle();
    let policy = PolicyConfig {
        critical_services: vec![CRITICAL_SERVICE.into()],
        ..PolicyConfig::default()
    };
    let policy = Arc::new(DegradationPolicy::new(policy).unwrap());
    let counters = Arc::new(ApplyCounters::new());
    let degrading = DegradingSink::new(handle.clone(), policy, Arc::clone(&queue))
        .with_counters(Arc::clone(&counters));
    let limiter = MemoryLimiter::new(
        MemoryLimiterConfig {
            soft: Threshold::Bytes(SOFT_BYTES),
            hard: Threshold::Bytes(HARD_BYTES),
            check_interval: MEMORY_CHECK_INTERVAL,
            retry_after: Duration::from_secs(1),
            hard_retry_after: Duration::from_secs(2),
        },
        PipelineMemory(Arc::clone(&held)),
    )
    .unwrap();
    let pipeline = Holding {
        held: Arc::clone(&held),
        inner: MemoryLimitedSink::new(limiter.clone(), degrading),
    };
    let receiver = HttpReceiver::bind(
        HttpReceiverConfig::builder()
            .addr("127.0.0.1:0")
            .build()
            .unwrap(),
        Sinks::none().with(Signal::Traces, Arc::new(pipeline)),
    )
    .await
    .unwrap();
    let metrics = receiver.metrics();
    let endpoint = format!("http://{}", receiver.local_addr());

    let controller_task = controller.spawn();
    let memory_monitor = limiter.spawn_monitor();
    let collector = Arc::new(Mutex::new(Collector::default()));
    let (stop_worker, worker_stop) = oneshot::channel();
    let worker = tokio::spawn(worker(
        Arc::clone(&queue),
        Arc::clone(&collector),
        worker_stop,
    ));

    // The load: until refusals have gone on for a while (at least LOAD_MIN, at most
    // LOAD_MAX).
    let started = Instant::now();
    let (stop_clients, stop) = watch::channel(false);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let offset = CLIENT_PERIOD * u32::try_from(id).unwrap() / CLIENTS as u32;
            tokio::spawn(client(id, endpoint.clone(), offset, stop.clone()))
        })
        .collect();
    let mut first_refusal = None;
    for _ in 0..LOAD_MAX.as_millis() / 50 + 1 {
        sleep(Duration::from_millis(50)).await;
        let elapsed = started.elapsed();
        if first_refusal.is_none() && metrics.snapshot().traces.refused > 0 {
            first_refusal = Some(elapsed);
        }
        let refused_long_enough =
            first_refusal.is_some_and(|at| elapsed >= at + LOAD_AFTER_FIRST_REFUSAL);
        if (elapsed >= LOAD_MIN && refused_long_enough) || elapsed >= LOAD_MAX {
            break;
        }
    }
    stop_clients.send(true).unwrap();
    let level_at_stop = handle.level();
    let mut tally = Tally::default();
    for client in clients {
        let client_tally = timeout(EXPORT_DEADLINE + Duration::from_secs(1), client)
            .await
            .expect("a client did not stop")
            .unwrap();
        tally.merge(client_tally);
    }
    let load_ended = Instant::now();
    let load_time = load_ended - started;

    // Recovery: nothing comes in any more; the worker drains the queue, the level steps
    // down once per cool-down.
    let recovered_in = wait_for(RECOVERY_MAX, || handle.level() == DegradationLevel::Normal).await;
    let drained = wait_for(DRAIN_MAX, || queue.is_empty()).await;

    let _ = stop_worker.send(());
    timeout(Duration::from_secs(5), worker)
        .await
        .expect("the worker did not stop")
        .unwrap();
    timeout(Duration::from_secs(5), controller_task.stop())
        .await
        .expect("the controller did not stop")
        .unwrap();
    memory_monitor.abort();
    let shutdown = timeout(
        Duration::from_secs(10),
        receiver.shutdown(Duration::from_secs(2)),
    )
    .await
    .expect("the receiver did not shut down")
    .unwrap();
    let hwm_after = vm_hwm_kib();

    let history = handle.history();
    let limits = limiter.snapshot();
    let received = metrics.snapshot();
    let traces = received.signal(Signal::Traces).clone();
    let applied = counters.snapshot();
    let collector = std::mem::take(&mut *collector.lock().unwrap());
    let queue_refused = queue.refused.load(Relaxed);
    let peak_level = history
        .iter()
        .map(|t| t.to)
        .max()
        .unwrap_or(DegradationLevel::Normal);

    let summary = format!(
        "load {load_ms} ms (first refusal at {first_refusal:?}), {requests} requests of {SPANS_PER_REQUEST} spans \
         from {CLIENTS} clients at 3x a worker of {capacity} spans/s (offered {offered:.0} spans/s)\n\
         answers: {ok} x 200 ({partial} with partial success, {rejected} spans dropped on purpose), \
         {r429} x 429, {r503} x 503 ({queue_refused} by the queue), failures {failures}\n\
         spans: {spans_ok} accepted, {delivered} delivered; errors: {err_acc} accepted, {err_del} delivered, \
         {err_ref} in refused requests; critical: {crit_acc} accepted, {crit_del} delivered\n\
         level: peak {peak_level}, {level_at_stop} when the load stopped, Normal {recovered_in:?} after it\n\
         memory: pipeline peak {peak} bytes (limiter's peak reading {peak_read}), soft {SOFT_BYTES}, \
         hard {HARD_BYTES}; VmHWM {hwm_before:?} -> {hwm_after:?} KiB\n\
         history:\n  {history}",
        load_ms = load_time.as_millis(),
        requests = tally.requests,
        offered = (tally.requests * SPANS_PER_REQUEST) as f64 / load_time.as_secs_f64(),
        capacity = WORKER_SPANS_PER_TICK * 1000 / WORKER_TICK.as_millis() as i64,
        ok = tally.ok,
        partial = tally.partial,
        rejected = tally.rejected,
        r429 = tally.refused_429,
        r503 = tally.refused_503,
        failures = tally.failures.len(),
        spans_ok = tally.spans_ok,
        delivered = collector.spans.len(),
        err_acc = tally.accepted_errors.len(),
        err_del = collector.errors.len(),
        err_ref = tally.errors_refused,
        crit_acc = tally.accepted_critical.len(),
        crit_del = collector.critical.len(),
        peak = held.peak.load(Relaxed),
        peak_read = limits.peak_used_bytes,
        history = describe(&history, started),
    );
    println!("{summary}");

    // (a) Every answer was a 200 or a retryable refusal with Retry-After; no failures.
    assert!(
        tally.failures.is_empty(),
        "{:#?}\n{summary}",
        tally.failures
    );
    assert_eq!(tally.requests, tally.ok + tally.refused(), "{summary}");
    assert!(tally.ok > 0, "{summary}");
    assert!(
        tally.refused() > 0,
        "protected spans alone are 1.6x the capacity, so the limiter must refuse\n{summary}"
    );
    assert_eq!(traces.rejected, 0, "{summary}");
    assert_eq!(received.unrouted.requests(), 0, "{summary}");
    assert_eq!(traces.other_responses, 0, "{summary}");
    let statuses: Vec<u16> = traces.responses.iter().map(|(s, _)| *s).collect();
    assert!(
        statuses.iter().all(|s| [200, 429, 503].contains(s)),
        "{:?}\n{summary}",
        traces.responses
    );
    assert_eq!(shutdown.connections_aborted, 0, "{summary}");

    // (b) Every ERROR span of an accepted request reached the collector, and so did
    // every span of the critical service; nothing of a refused request arrived, nothing
    // arrived twice, and every payload's header counted its spans.
    assert!(!tally.accepted_errors.is_empty(), "{summary}");
    assert_eq!(collector.errors, tally.accepted_errors, "{summary}");
    assert_eq!(collector.critical, tally.accepted_critical, "{summary}");
    assert!(collector.spans.is_subset(&tally.accepted_ids), "{summary}");
    assert!(collector.spans.is_disjoint(&tally.refused_ids), "{summary}");
    assert_eq!(
        (
            collector.duplicates,
            collector.miscounted,
            collector.undecodable
        ),
        (0, 0, 0),
        "{summary}"
    );

    // (c) The level rose above Normal during the load, on the queue trigger.
    assert!(peak_level > DegradationLevel::Normal, "{summary}");
    let escalations: Vec<&Transition> = history
        .iter()
        .filter(|t| matches!(t.reason, TransitionReason::Escalated { .. }))
        .collect();
    assert!(!escalations.is_empty(), "{summary}");
    for t in &escalations {
        assert!(t.to > t.from, "{summary}");
        assert!(t.at <= load_ended, "escalated after the load\n{summary}");
        match &t.reason {
            TransitionReason::Escalated { trigger, .. } => assert_eq!(trigger, "queue"),
            other => panic!("{other:?}"),
        }
    }
    assert!(applied.dropped() > 0, "{summary}");
    assert!(applied.kept_protected > 0, "{summary}");

    // (d) The bytes the pipeline held never reached the hard limit, at any change, let
    // alone at the limiter's readings; the process's peak RSS grew by a bounded amount.
    assert!(held.peak.load(Relaxed) < HARD_BYTES, "{summary}");
    assert!(limits.peak_used_bytes < HARD_BYTES, "{summary}");
    assert_eq!(limits.read_errors, 0, "{summary}");
    if let (Some(before), Some(after)) = (hwm_before, hwm_after) {
        assert!(
            after.saturating_sub(before) < VM_HWM_GROWTH_MAX_KIB,
            "{summary}"
        );
    }

    // (e) Back to Normal after the load, one level per cool-down, and nothing left held.
    let recovered_in = recovered_in.unwrap_or_else(|| panic!("still degraded\n{summary}"));
    assert!(drained.is_some(), "{summary}");
    let recoveries: Vec<&Transition> = history.iter().filter(|t| t.at >= load_ended).collect();
    for t in &recoveries {
        assert!(
            matches!(t.reason, TransitionReason::Recovered { .. }),
            "{summary}"
        );
        assert_eq!(t.to.index() + 1, t.from.index(), "{summary}");
    }
    for pair in history.windows(2) {
        if matches!(pair[1].reason, TransitionReason::Recovered { .. }) {
            assert!(pair[1].at - pair[0].at >= COOL_DOWN, "{summary}");
        }
    }
    assert_eq!(
        history.last().map(|t| t.to),
        Some(DegradationLevel::Normal),
        "{summary}"
    );
    assert!(recovered_in < RECOVERY_MAX, "{summary}");
    assert_eq!(held.total(), 0, "{summary}");
    assert_eq!(limits.in_flight_bytes, 0, "{summary}");

    // (f) The counters add up to what the clients were told.
    // Receiver: one answer per request, by status and outcome, and the items.
    assert_eq!(traces.requests(), tally.requests, "{summary}");
    assert_eq!(
        traces.accepted + traces.partially_accepted,
        tally.ok,
        "{summary}"
    );
    assert_eq!(traces.partially_accepted, tally.partial, "{summary}");
    assert_eq!(traces.refused, tally.refused(), "{summary}");
    assert_eq!(traces.responses_with(200), tally.ok, "{summary}");
    assert_eq!(traces.responses_with(429), tally.refused_429, "{summary}");
    assert_eq!(traces.responses_with(503), tally.refused_503, "{summary}");
    assert_eq!(
        traces.items_accepted,
        tally.spans_ok - tally.rejected,
        "{summary}"
    );
    assert_eq!(
        traces.items_refused,
        tally.rejected + tally.spans_refused,
        "{summary}"
    );
    // Limiter: it admitted every accepted request (and any the queue then refused), and
    // gave every 429.
    assert_eq!(limits.admitted, tally.ok + queue_refused, "{summary}");
    assert_eq!(limits.refused_soft, tally.refused_429, "{summary}");
    assert_eq!(
        limits.refused_hard + queue_refused,
        tally.refused_503,
        "{summary}"
    );
    // Policy: it saw every span of the accepted requests once, dropped exactly what the
    // partial successes said, and kept exactly what was delivered.
    assert_eq!(applied.received(), tally.spans_ok, "{summary}");
    assert_eq!(applied.dropped(), tally.rejected, "{summary}");
    assert_eq!(applied.kept, collector.spans.len() as u64, "{summary}");
    assert_eq!(
        collector.spans.len() as u64,
        tally.spans_ok - tally.rejected,
        "{summary}"
    );
}
