//! The gateway's one metrics registry: every stage reports here, `/metrics`, `/api/status`
//! and `/status` read from here.
//!
//! Counters are plain atomics in fixed arrays indexed by signal and reason, so reporting
//! costs one relaxed `fetch_add` on the hot path; the admin side renders them on request.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use otlp_core::Signal;

/// Why the pipeline refused a request (the client got a retryable or a permanent
/// error). Refusals by the listeners themselves (credentials, size limits, malformed
/// bodies, content types) never reach the pipeline; they are counted by the receivers
/// (`otlp_gateway_receiver_requests_total{outcome}` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// The tenant's rate limit.
    RateLimited,
    /// The memory limiter.
    Memory,
    /// An exporter queue is full.
    QueueFull,
    /// Data the degradation policy could not decode.
    BadData,
    /// The gateway is shutting down.
    Draining,
    /// Anything else (a disk error, a bug).
    Internal,
}

impl RefuseReason {
    /// All reasons, in label order.
    pub const ALL: [RefuseReason; 6] = [
        RefuseReason::RateLimited,
        RefuseReason::Memory,
        RefuseReason::QueueFull,
        RefuseReason::BadData,
        RefuseReason::Draining,
        RefuseReason::Internal,
    ];

    /// The Prometheus label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefuseReason::RateLimited => "rate_limited",
            RefuseReason::Memory => "memory",
            RefuseReason::QueueFull => "queue_full",
            RefuseReason::BadData => "bad_data",
            RefuseReason::Draining => "draining",
            RefuseReason::Internal => "internal",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Why accepted items were dropped on purpose (never silently: each is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Trace sampling by the degradation policy.
    Sampled,
    /// Log severity floor or metric thinning by the degradation policy.
    Degraded,
    /// The upstream rejected the data as invalid (permanent error; retrying cannot help).
    Rejected,
    /// A batch kept failing longer than the exporter's `retry.max_elapsed`.
    Expired,
    /// Disk queue records whose checksum did not match after a crash (counted in
    /// records: a corrupt record's item count cannot be read).
    Corrupt,
    /// No exporter takes the signal.
    Unrouted,
    /// Still in a memory queue when the shutdown grace period ended.
    Shutdown,
}

impl DropReason {
    /// All reasons, in label order.
    pub const ALL: [DropReason; 7] = [
        DropReason::Sampled,
        DropReason::Degraded,
        DropReason::Rejected,
        DropReason::Expired,
        DropReason::Corrupt,
        DropReason::Unrouted,
        DropReason::Shutdown,
    ];

    /// The Prometheus label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Sampled => "sampled",
            DropReason::Degraded => "degraded",
            DropReason::Rejected => "rejected",
            DropReason::Expired => "expired",
            DropReason::Corrupt => "corrupt",
            DropReason::Unrouted => "unrouted",
            DropReason::Shutdown => "shutdown",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Per-signal ingress counters.
#[derive(Debug, Default)]
pub struct SignalCounters {
    /// Requests that reached the pipeline.
    pub requests: AtomicU64,
    /// Items in them.
    pub received_items: AtomicU64,
    /// Bytes (encoded protobuf) in them.
    pub received_bytes: AtomicU64,
    /// Items acknowledged to clients (queued for every matching exporter).
    pub accepted_items: AtomicU64,
    refused_items: [AtomicU64; RefuseReason::ALL.len()],
    refused_requests: [AtomicU64; RefuseReason::ALL.len()],
    dropped_items: [AtomicU64; DropReason::ALL.len()],
}

impl SignalCounters {
    /// Count a refused request of `items` items.
    pub fn refused(&self, reason: RefuseReason, items: u64) {
        self.refused_requests[reason.index()].fetch_add(1, Ordering::Relaxed);
        self.refused_items[reason.index()].fetch_add(items, Ordering::Relaxed);
    }

    /// Count `items` dropped on purpose.
    pub fn dropped(&self, reason: DropReason, items: u64) {
        self.dropped_items[reason.index()].fetch_add(items, Ordering::Relaxed);
    }

    /// Items refused for `reason`.
    pub fn refused_items(&self, reason: RefuseReason) -> u64 {
        self.refused_items[reason.index()].load(Ordering::Relaxed)
    }

    /// Requests refused for `reason`.
    pub fn refused_requests(&self, reason: RefuseReason) -> u64 {
        self.refused_requests[reason.index()].load(Ordering::Relaxed)
    }

    /// Items dropped for `reason`.
    pub fn dropped_items(&self, reason: DropReason) -> u64 {
        self.dropped_items[reason.index()].load(Ordering::Relaxed)
    }
}

/// State of an exporter's circuit breaker as the status page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BreakerView {
    /// Calls flow.
    Closed = 0,
    /// Calls are refused until the open period ends.
    Open = 1,
    /// A few probe calls decide.
    HalfOpen = 2,
    /// No breaker configured.
    Disabled = 3,
}

impl BreakerView {
    /// Label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerView::Closed => "closed",
            BreakerView::Open => "open",
            BreakerView::HalfOpen => "half_open",
            BreakerView::Disabled => "disabled",
        }
    }

    fn from_u8(v: u8) -> BreakerView {
        match v {
            0 => BreakerView::Closed,
            1 => BreakerView::Open,
            2 => BreakerView::HalfOpen,
            _ => BreakerView::Disabled,
        }
    }
}

/// Counters of one exporter (a member of a route).
#[derive(Debug)]
pub struct ExporterMetrics {
    /// The exporter's configured name.
    pub name: String,
    /// `grpc`, `http` or `file`.
    pub kind: &'static str,
    endpoint: RwLock<String>,
    /// Items delivered, per signal.
    pub exported_items: [AtomicU64; 3],
    /// Requests delivered.
    pub exported_requests: AtomicU64,
    /// Bytes delivered (encoded protobuf, before compression).
    pub exported_bytes: AtomicU64,
    /// Failed attempts that will be retried.
    pub retryable_failures: AtomicU64,
    /// Failed attempts that cannot succeed (the data is dropped as `rejected`).
    pub permanent_failures: AtomicU64,
    /// Attempts after the first of a batch.
    pub retries: AtomicU64,
    /// Requests in flight now.
    pub in_flight: AtomicI64,
    breaker: AtomicU8,
    last_error: Mutex<Option<(SystemTime, String)>>,
}

impl ExporterMetrics {
    /// New counters for exporter `name`.
    pub fn new(name: impl Into<String>, kind: &'static str, endpoint: impl Into<String>) -> Self {
        ExporterMetrics {
            name: name.into(),
            kind,
            endpoint: RwLock::new(endpoint.into()),
            exported_items: Default::default(),
            exported_requests: AtomicU64::new(0),
            exported_bytes: AtomicU64::new(0),
            retryable_failures: AtomicU64::new(0),
            permanent_failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            breaker: AtomicU8::new(BreakerView::Disabled as u8),
            last_error: Mutex::new(None),
        }
    }

    /// Where it sends (URL or directory).
    pub fn endpoint(&self) -> String {
        self.endpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Record a new endpoint (configuration reload).
    pub fn set_endpoint(&self, endpoint: String) {
        *self.endpoint.write().unwrap_or_else(|e| e.into_inner()) = endpoint;
    }

    /// The breaker's state as last seen.
    pub fn breaker(&self) -> BreakerView {
        BreakerView::from_u8(self.breaker.load(Ordering::Relaxed))
    }

    /// Record the breaker's state.
    pub fn set_breaker(&self, view: BreakerView) {
        self.breaker.store(view as u8, Ordering::Relaxed);
    }

    /// Remember the latest error (shown on the status page, also logged).
    pub fn set_last_error(&self, message: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((SystemTime::now(), message));
    }

    /// The latest error and when it happened.
    pub fn last_error(&self) -> Option<(SystemTime, String)> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Items delivered over all signals.
    pub fn exported_total(&self) -> u64 {
        self.exported_items
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Gauges and counters of one queue (one per route: an exporter or a group).
#[derive(Debug)]
pub struct QueueMetrics {
    /// The route's name (exporter or group).
    pub name: String,
    /// `disk` or `memory`.
    pub kind: &'static str,
    /// Entries waiting or in flight.
    pub depth: AtomicU64,
    /// Bytes waiting or in flight.
    pub bytes: AtomicU64,
    /// The byte bound.
    pub capacity_bytes: AtomicU64,
    /// Entries appended since start.
    pub pushed: AtomicU64,
    /// Entries acknowledged (delivered or dropped by reason) since start.
    pub acked: AtomicU64,
    /// Entries found on disk at start and replayed.
    pub replayed: AtomicU64,
    /// Bytes written to segment files.
    pub written_bytes: AtomicU64,
    /// fsync calls.
    pub fsyncs: AtomicU64,
}

impl QueueMetrics {
    /// New gauges for the queue of route `name`.
    pub fn new(name: impl Into<String>, kind: &'static str, capacity_bytes: u64) -> Self {
        QueueMetrics {
            name: name.into(),
            kind,
            depth: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            capacity_bytes: AtomicU64::new(capacity_bytes),
            pushed: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            replayed: AtomicU64::new(0),
            written_bytes: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
        }
    }

    /// Fill of the byte bound, 0..=1.
    pub fn fill(&self) -> f64 {
        let cap = self.capacity_bytes.load(Ordering::Relaxed);
        if cap == 0 {
            return 0.0;
        }
        self.bytes.load(Ordering::Relaxed) as f64 / cap as f64
    }
}

/// A route: its queue and the exporters that drain it.
#[derive(Debug, Clone)]
pub struct RouteView {
    /// Route name.
    pub name: String,
    /// `single`, `failover` or `load_balance`.
    pub mode: &'static str,
    /// Signals routed here.
    pub signals: Vec<Signal>,
    /// The queue.
    pub queue: Arc<QueueMetrics>,
    /// The members.
    pub exporters: Vec<Arc<ExporterMetrics>>,
}

/// Lifecycle of the gateway, for `/readyz` and the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Replaying queues, binding listeners.
    Starting = 0,
    /// Serving.
    Running = 1,
    /// SIGTERM received: not accepting, finishing in-flight work.
    Draining = 2,
}

impl Phase {
    /// Label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Running => "running",
            Phase::Draining => "draining",
        }
    }
}

/// The registry.
#[derive(Debug)]
pub struct GatewayMetrics {
    signals: [SignalCounters; 3],
    routes: RwLock<Vec<RouteView>>,
    phase: AtomicU8,
    degradation_level: AtomicU8,
    /// Resident memory in bytes as last measured.
    pub memory_bytes: AtomicU64,
    /// Configuration reloads that succeeded.
    pub reloads: AtomicU64,
    /// Configuration reloads refused because the new file was invalid.
    pub reload_failures: AtomicU64,
    started: SystemTime,
    recent_errors: Mutex<std::collections::VecDeque<(SystemTime, String)>>,
}

/// How many recent errors the status page keeps.
pub const RECENT_ERRORS: usize = 20;

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics {
            signals: Default::default(),
            routes: RwLock::new(Vec::new()),
            phase: AtomicU8::new(Phase::Starting as u8),
            degradation_level: AtomicU8::new(0),
            memory_bytes: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            started: SystemTime::now(),
            recent_errors: Mutex::new(std::collections::VecDeque::new()),
        }
    }
}

impl GatewayMetrics {
    /// An empty registry (phase `starting`).
    pub fn new() -> Arc<GatewayMetrics> {
        Arc::new(GatewayMetrics::default())
    }

    /// Ingress counters of `signal`.
    pub fn signal(&self, signal: Signal) -> &SignalCounters {
        &self.signals[signal.index()]
    }

    /// Replace the routes (at start and after a reload).
    pub fn set_routes(&self, routes: Vec<RouteView>) {
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = routes;
    }

    /// The routes now.
    pub fn routes(&self) -> Vec<RouteView> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The lifecycle phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Starting,
            1 => Phase::Running,
            _ => Phase::Draining,
        }
    }

    /// Move to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// Degradation level 0 (normal) ..= 4 (emergency).
    pub fn degradation_level(&self) -> u8 {
        self.degradation_level.load(Ordering::Relaxed)
    }

    /// Record the degradation level.
    pub fn set_degradation_level(&self, level: u8) {
        self.degradation_level.store(level, Ordering::Relaxed);
    }

    /// When the gateway started.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// Remember an error for the status page (the newest [`RECENT_ERRORS`]).
    pub fn record_error(&self, message: impl Into<String>) {
        let mut errors = self.recent_errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() == RECENT_ERRORS {
            errors.pop_front();
        }
        errors.push_back((SystemTime::now(), message.into()));
    }

    /// Recent errors, oldest first.
    pub fn recent_errors(&self) -> Vec<(SystemTime, String)> {
        self.recent_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
