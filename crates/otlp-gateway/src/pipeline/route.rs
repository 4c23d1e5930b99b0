//! A route: one queue and the exporters that drain it, with their workers.
//!
//! A single exporter is a route of its own (fan-out: every route whose signals match gets
//! every request); a `[[groups]]` entry is one route whose members share the queue
//! (`failover`: the first member whose breaker lets the call through; `load_balance`: the
//! next one round robin). Workers lease entries from the queue, join those of one signal
//! into one request (concatenated protobuf messages are one message), export it, and ack
//! the lease only when every request of it was delivered or dropped by reason. Retryable
//! failures are retried with backoff for as long as it takes (or `retry.max_elapsed`):
//! the queue, bounded by bytes, is the buffer, and a full queue refuses clients upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use otlp_core::{ExportError, Payload, Signal};
use otlp_resilience::Outcome;
use otlp_resilience::breaker::BreakerState;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::exporters::Member;
use super::queue::{Lease, PopLimits, Queue};
use crate::config::{GroupMode, RetryConfig};
use crate::metrics::{BreakerView, DropReason, GatewayMetrics, RouteView};

/// How a route picks a member for each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMode {
    /// One exporter.
    Single,
    /// A group: the first available member, in order.
    Failover,
    /// A group: round robin over available members.
    LoadBalance,
}

impl RouteMode {
    /// Label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RouteMode::Single => "single",
            RouteMode::Failover => "failover",
            RouteMode::LoadBalance => "load_balance",
        }
    }
}

impl From<GroupMode> for RouteMode {
    fn from(mode: GroupMode) -> RouteMode {
        match mode {
            GroupMode::Failover => RouteMode::Failover,
            GroupMode::LoadBalance => RouteMode::LoadBalance,
        }
    }
}

/// Settings the workers read (replaced on reload).
#[derive(Debug, Clone)]
pub struct RouteSettings {
    /// How much one export request carries.
    pub pop: PopLimits,
    /// Backoff between attempts.
    pub retry: RetryConfig,
}

/// A queue, its members and the signals routed to it.
#[derive(Debug)]
pub struct Route {
    /// Name (the exporter's or the group's).
    pub name: String,
    /// How members are picked.
    pub mode: RouteMode,
    /// Signals this route takes.
    pub signals: Vec<Signal>,
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// The members, in configured order.
    pub members: Vec<Member>,
    /// Workers to run.
    pub workers: usize,
    settings: std::sync::RwLock<RouteSettings>,
    next: AtomicUsize,
}

/// What happened to one export request.
enum Delivery {
    Delivered,
    /// Dropped by reason and counted (expired).
    Dropped,
    /// The upstream refused it permanently (not yet counted: the caller may split it).
    Rejected,
    /// Shutdown cut the retries short: the lease goes back to the queue.
    Interrupted,
}

impl Route {
    /// A route of `members` draining `queue`.
    pub fn new(
        name: String,
        mode: RouteMode,
        signals: Vec<Signal>,
        queue: Arc<dyn Queue>,
        members: Vec<Member>,
        workers: usize,
        settings: RouteSettings,
    ) -> Route {
        Route {
            name,
            mode,
            signals,
            queue,
            members,
            workers: workers.max(1),
            settings: std::sync::RwLock::new(settings),
            next: AtomicUsize::new(0),
        }
    }

    /// Whether the route takes `signal`.
    pub fn takes(&self, signal: Signal) -> bool {
        self.signals.contains(&signal)
    }

    /// Replace batch and retry settings (configuration reload).
    pub fn set_settings(&self, settings: RouteSettings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = settings;
    }

    fn settings(&self) -> RouteSettings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What the metrics registry shows of this route.
    pub fn view(&self) -> RouteView {
        RouteView {
            name: self.name.clone(),
            mode: self.mode.as_str(),
            signals: self.signals.clone(),
            queue: self.queue.metrics().clone(),
            exporters: self.members.iter().map(|m| m.metrics.clone()).collect(),
        }
    }

    /// Start the workers. They run until the queue is closed and empty, or until `stop`
    /// is cancelled (then a lease being retried goes back to the queue).
    pub fn spawn_workers(
        self: &Arc<Self>,
        metrics: Arc<GatewayMetrics>,
        stop: CancellationToken,
        tasks: &mut JoinSet<()>,
    ) {
        for _ in 0..self.workers {
            let route = self.clone();
            let metrics = metrics.clone();
            let stop = stop.clone();
            tasks.spawn(async move { route.work(metrics, stop).await });
        }
    }

    async fn work(self: Arc<Self>, metrics: Arc<GatewayMetrics>, stop: CancellationToken) {
        use futures_util::FutureExt as _;
        loop {
            let settings = self.settings();
            let lease = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                lease = self.queue.pop(settings.pop) => lease,
            };
            let Some(lease) = lease else { return };
            let delivery = std::panic::AssertUnwindSafe(
                self.deliver_lease(&lease, &settings, &metrics, &stop),
            )
            .catch_unwind()
            .await;
            match delivery {
                Ok(Delivery::Interrupted) => {
                    self.queue.nack(lease);
                    return;
                }
                Ok(_) => self.queue.ack(lease),
                Err(_) => {
                    // A bug, not the data's fault: keep the data and the worker.
                    self.queue.nack(lease);
                    metrics.record_error(format!(
                        "route {}: an export panicked; the batch was put back",
                        self.name
                    ));
                    tracing::error!(route = %self.name, "export panicked; batch put back in the queue");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Deliver a lease: the entries of each signal joined into one request; entries
    /// larger than `batch.max_bytes` split by resource first (sent one by one). When the
    /// upstream refuses a joined request permanently, its entries are sent one by one, so
    /// one client's bad or oversized data does not cost the others theirs.
    async fn deliver_lease(
        &self,
        lease: &Lease,
        settings: &RouteSettings,
        metrics: &GatewayMetrics,
        stop: &CancellationToken,
    ) -> Delivery {
        let mut outcome = Delivery::Delivered;
        for signal in Signal::ALL {
            let entries = lease.entries.iter().filter(|p| p.signal() == signal);
            let count = entries.clone().count();
            let parts: Vec<Payload> = entries
                .flat_map(|p| split_if_larger(p, settings.pop.max_items, settings.pop.max_bytes))
                .collect();
            let first_try = match parts.len() {
                0 => continue,
                1 => parts[0].clone(),
                _ if parts.len() > count => {
                    // Something was split: its pieces go one by one.
                    match self.deliver_each(&parts, settings, metrics, stop).await {
                        Delivery::Interrupted => return Delivery::Interrupted,
                        Delivery::Dropped => outcome = Delivery::Dropped,
                        _ => {}
                    }
                    continue;
                }
                _ => join(signal, &parts),
            };
            match self
                .deliver(first_try.clone(), settings, metrics, stop)
                .await
            {
                Delivery::Interrupted => return Delivery::Interrupted,
                Delivery::Delivered => {}
                Delivery::Dropped => outcome = Delivery::Dropped,
                Delivery::Rejected if parts.len() == 1 => {
                    self.count_rejected(&first_try, metrics);
                    outcome = Delivery::Dropped;
                }
                Delivery::Rejected => {
                    match self.deliver_each(&parts, settings, metrics, stop).await {
                        Delivery::Interrupted => return Delivery::Interrupted,
                        Delivery::Dropped => outcome = Delivery::Dropped,
                        _ => {}
                    }
                }
            }
        }
        outcome
    }

    /// Deliver `parts` one by one; `Dropped` if any was dropped, `Interrupted` at once.
    async fn deliver_each(
        &self,
        parts: &[Payload],
        settings: &RouteSettings,
        metrics: &GatewayMetrics,
        stop: &CancellationToken,
    ) -> Delivery {
        let mut outcome = Delivery::Delivered;
        for part in parts {
            match self.deliver(part.clone(), settings, metrics, stop).await {
                Delivery::Interrupted => return Delivery::Interrupted,
                Delivery::Rejected => {
                    self.count_rejected(part, metrics);
                    outcome = Delivery::Dropped;
                }
                Delivery::Dropped => outcome = Delivery::Dropped,
                Delivery::Delivered => {}
            }
        }
        outcome
    }

    fn count_rejected(&self, payload: &Payload, metrics: &GatewayMetrics) {
        let (signal, items) = (payload.signal(), payload.items());
        metrics.signal(signal).dropped(DropReason::Rejected, items);
        metrics.record_error(format!(
            "route {}: upstream refused {items} {signal} items permanently; dropped",
            self.name
        ));
        tracing::error!(route = %self.name, %signal, items, "upstream refused data permanently; dropped");
    }

    /// Export one request until delivered, dropped by reason, or interrupted.
    async fn deliver(
        &self,
        payload: Payload,
        settings: &RouteSettings,
        metrics: &GatewayMetrics,
        stop: &CancellationToken,
    ) -> Delivery {
        let signal = payload.signal();
        let items = payload.items();
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut backoff = settings.retry.initial_backoff.get();
        // The member that failed last, and how many members failed since the last wait:
        // in a group the next member is tried at once, and the route waits only once
        // every member has failed in this round.
        let mut last_failed: Option<usize> = None;
        let mut failed_in_round = 0;
        loop {
            let (index, member) = self.pick(last_failed);
            if attempt > 0 {
                member.metrics.retries.fetch_add(1, Ordering::Relaxed);
            }
            attempt += 1;
            let result = tokio::select! {
                biased;
                () = stop.cancelled() => return Delivery::Interrupted,
                result = self.attempt(member, payload.clone()) => result,
            };
            let error = match result {
                Ok(rejected) => {
                    let delivered = items.saturating_sub(rejected);
                    member.metrics.exported_items[signal.index()]
                        .fetch_add(delivered, Ordering::Relaxed);
                    member
                        .metrics
                        .exported_requests
                        .fetch_add(1, Ordering::Relaxed);
                    member
                        .metrics
                        .exported_bytes
                        .fetch_add(payload.len() as u64, Ordering::Relaxed);
                    if rejected > 0 {
                        metrics
                            .signal(signal)
                            .dropped(DropReason::Rejected, rejected);
                    }
                    return Delivery::Delivered;
                }
                Err(error) => error,
            };
            let message = format!("{}: {error}", member.name);
            member.metrics.set_last_error(message.clone());
            if !error.is_retryable() {
                member
                    .metrics
                    .permanent_failures
                    .fetch_add(1, Ordering::Relaxed);
                metrics.record_error(message);
                return Delivery::Rejected;
            }
            member
                .metrics
                .retryable_failures
                .fetch_add(1, Ordering::Relaxed);
            let max_elapsed = settings.retry.max_elapsed.get();
            if !max_elapsed.is_zero() && started.elapsed() >= max_elapsed {
                metrics.signal(signal).dropped(DropReason::Expired, items);
                metrics.record_error(format!(
                    "{message}; gave up after {:?} ({items} {signal} items dropped)",
                    started.elapsed()
                ));
                tracing::error!(
                    route = %self.name, exporter = %member.name, %signal, items, %error,
                    "export kept failing past retry.max_elapsed; dropped"
                );
                return Delivery::Dropped;
            }
            if attempt == 1 || attempt.is_power_of_two() {
                metrics.record_error(message.clone());
                tracing::warn!(
                    route = %self.name, exporter = %member.name, %signal, attempt, %error,
                    "export failed; will retry"
                );
            }
            last_failed = Some(index);
            failed_in_round += 1;
            let wait = if failed_in_round < self.members.len() {
                Duration::ZERO
            } else {
                failed_in_round = 0;
                let jittered = backoff
                    .mul_f64(0.5 + fastrand::f64() * 0.5)
                    .min(settings.retry.max_backoff.get());
                // The server's Retry-After / RetryInfo wins over our backoff.
                error
                    .retry_delay()
                    .map_or(jittered, |d| d.min(MAX_SERVER_DELAY))
            };
            backoff = (backoff * 2).min(settings.retry.max_backoff.get());
            if !wait.is_zero() {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => return Delivery::Interrupted,
                    () = tokio::time::sleep(wait) => {}
                }
            } else if stop.is_cancelled() {
                return Delivery::Interrupted;
            }
        }
    }

    /// One call through the member's breaker; `Ok(rejected items)`.
    async fn attempt(&self, member: &Member, payload: Payload) -> Result<u64, ExportError> {
        member.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = match &member.breaker {
            None => member.exporter().export(payload).await,
            Some(breaker) => match breaker.try_acquire() {
                Err(open) => Err(ExportError::Transport(format!(
                    "circuit breaker open ({:?})",
                    open.state
                ))),
                Ok(permit) => {
                    let start = Instant::now();
                    let result = member.exporter().export(payload).await;
                    let outcome = match &result {
                        Ok(_) => Outcome::Success,
                        Err(e) if e.is_retryable() => Outcome::Failure,
                        Err(_) => Outcome::Ignored,
                    };
                    permit.record(outcome, start.elapsed());
                    result
                }
            },
        };
        member.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(breaker) = &member.breaker {
            member.metrics.set_breaker(view(breaker.state()));
        }
        result.map(|accepted| accepted.partial_success.map_or(0, |p| p.rejected))
    }

    /// Whether a call to `member` can go through its breaker now: closed, half-open
    /// (its probe permits limit the calls), or open with the open period over (the next
    /// call becomes the probe; the breaker only moves to half-open when asked).
    fn available(member: &Member) -> bool {
        let Some(breaker) = &member.breaker else {
            return true;
        };
        match breaker.state() {
            BreakerState::Open => breaker
                .snapshot()
                .open_until
                .is_some_and(|until| Instant::now() >= until),
            BreakerState::ForcedOpen => false,
            _ => true,
        }
    }

    /// The member for the next attempt: after a failure of member `i` the search starts
    /// at `i + 1`; otherwise at the first member (failover) or the next in turn (load
    /// balancing). The first available member from there wins; with none available,
    /// the one at the start (its breaker answers at once).
    fn pick(&self, after: Option<usize>) -> (usize, &Member) {
        let n = self.members.len();
        let start = match (after, self.mode) {
            (Some(failed), _) => failed + 1,
            (None, RouteMode::Single | RouteMode::Failover) => 0,
            (None, RouteMode::LoadBalance) => self.next.fetch_add(1, Ordering::Relaxed),
        };
        (0..n)
            .map(|i| (start + i) % n)
            .find(|&i| Self::available(&self.members[i]))
            .map_or((start % n, &self.members[start % n]), |i| {
                (i, &self.members[i])
            })
    }
}

fn view(state: BreakerState) -> BreakerView {
    match state {
        BreakerState::Closed => BreakerView::Closed,
        BreakerState::Open | BreakerState::ForcedOpen => BreakerView::Open,
        BreakerState::HalfOpen => BreakerView::HalfOpen,
        _ => BreakerView::Disabled,
    }
}

/// The longest server-requested retry delay honoured (a sanity cap on Retry-After).
const MAX_SERVER_DELAY: Duration = Duration::from_secs(300);

/// Entries of one signal joined into one request: concatenated `Export*ServiceRequest`
/// messages are one valid message (repeated-field merge).
pub fn join(signal: Signal, parts: &[Payload]) -> Payload {
    let len = parts.iter().map(Payload::len).sum();
    let mut body = BytesMut::with_capacity(len);
    for p in parts {
        body.extend_from_slice(p.body());
    }
    let items = parts.iter().map(Payload::items).sum();
    let body: Bytes = body.freeze();
    Payload::new(signal, body, items)
}

/// `payload` as it is, or split by resource (and below) into requests of at most
/// `max_items` / `max_bytes` when it is larger. Malformed framing: as it is (the
/// upstream will say what is wrong).
fn split_if_larger(payload: &Payload, max_items: u64, max_bytes: usize) -> Vec<Payload> {
    if payload.len() <= max_bytes && payload.items() <= max_items {
        return vec![payload.clone()];
    }
    let signal = payload.signal();
    match otlp_core::wire::split_to_fit(signal, payload.body(), max_items, max_bytes) {
        Ok(pieces) if pieces.len() > 1 => pieces
            .into_iter()
            .map(|piece| {
                let items = piece.items();
                Payload::new(signal, piece.into_encoded(), items)
            })
            .collect(),
        _ => vec![payload.clone()],
    }
}
