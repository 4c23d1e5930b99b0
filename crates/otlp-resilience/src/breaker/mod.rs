//! Circuit breaker: stop calling an upstream that is failing, probe it, resume when it
//! recovers.
//!
//! ```text
//!            failure rate or slow-call rate >= threshold
//!            (with at least `minimum_calls` in the window)
//!   Closed ───────────────────────────────────────────────▶ Open
//!     ▲                                                      │ wait_in_open elapsed
//!     │ probes ok                                            ▼ (grows on consecutive trips)
//!     └──────────────────────────── HalfOpen ◀───────────────┘
//!                                   │ exactly `permitted_calls_in_half_open` probes;
//!                                   └── probes failed ──▶ Open
//!
//!   Operators: force_open() ─▶ ForcedOpen, disable() ─▶ Disabled, reset() ─▶ Closed
//! ```
//!
//! * **Windows**: a count window (the latest N calls) or a time window (the calls of the
//!   last D), both a ring of buckets of atomic counters ([`SlidingWindow`]).
//! * **What fails**: a [`Classify`] over the call's result. [`OtlpClassifier`] is the
//!   default: retryable OTLP errors (429, 502, 503, 504, UNAVAILABLE, timeouts, transport
//!   errors) are failures; 400-class errors and bad data are
//!   [`Outcome::Ignored`]: they say nothing about the upstream's health.
//! * **Slow calls**: with [`slow_call_duration`](CircuitBreakerConfigBuilder::slow_call_duration)
//!   set, calls slower than it count toward the slow-call rate whatever their outcome.
//! * **Half-open**: exactly `permitted_calls_in_half_open` probes run; the next concurrent
//!   caller is rejected. The breaker closes or re-opens as soon as the probes' outcome is
//!   certain (at the latest when all of them completed). Cancelled (dropped) and ignored
//!   probes free their place for another caller.
//! * **Cancelled calls** (the future dropped before it finished, or a [`Permit`] dropped
//!   without a result) are neither a success nor a failure.
//! * **Events**: every state change is a [`BreakerEvent`] sent to
//!   [`subscribe`](CircuitBreaker::subscribe)rs and to the
//!   [`on_event`](CircuitBreakerConfigBuilder::on_event) callback, a `tracing` event
//!   (`info`; `warn` for forced open and disabled), and OpenTelemetry metrics:
//!   `otlp.resilience.breaker.calls` {name, outcome = success | failure | ignored |
//!   rejected | cancelled} (observable counter), `otlp.resilience.breaker.state` {name,
//!   state} (observable gauge, 1 for the current state) and
//!   `otlp.resilience.breaker.transitions` {name, from, to} (counter).
//!
//! # Use
//!
//! As a plain async API:
//!
//! ```
//! use std::time::Duration;
//! use otlp_core::ExportError;
//! use otlp_resilience::breaker::{BreakerError, CircuitBreaker, CircuitBreakerConfig, SlidingWindow};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = CircuitBreaker::new(
//!     CircuitBreakerConfig::builder()
//!         .name("collector")
//!         .sliding_window(SlidingWindow::count(10))
//!         .minimum_calls(5)
//!         .failure_rate_threshold(50.0)
//!         .wait_in_open(Duration::from_secs(10))
//!         .build()?,
//! );
//!
//! // Five timeouts in a row: the breaker opens.
//! for _ in 0..5 {
//!     let result: Result<(), _> = breaker
//!         .call(|| async { Err(ExportError::Timeout(Duration::from_secs(1))) })
//!         .await;
//!     assert!(matches!(result, Err(BreakerError::Inner(_))));
//! }
//! // The next call is refused without running, with the time it may retry.
//! match breaker.call(|| async { Ok::<_, ExportError>(()) }).await {
//!     Err(BreakerError::Open(open)) => {
//!         assert!(open.retry_after().is_some_and(|d| d <= Duration::from_secs(10)));
//!     }
//!     other => panic!("expected a rejection, got {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! With a permit, for code that is not a future or measures its own calls:
//!
//! ```
//! use std::time::Duration;
//! use otlp_resilience::breaker::CircuitBreaker;
//! use otlp_resilience::classify::Outcome;
//!
//! let breaker = CircuitBreaker::default();
//! match breaker.try_acquire() {
//!     Ok(permit) => {
//!         // ... make the call ...
//!         permit.record(Outcome::Success, Duration::from_millis(3));
//!     }
//!     Err(open) => eprintln!("{open}"),
//! }
//! ```
//!
//! As a `tower` layer (see [`CircuitBreakerLayer`]):
//!
//! ```
//! use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerLayer};
//! use otlp_resilience::classify::AnyError;
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let breaker = CircuitBreaker::default();
//! let layer = CircuitBreakerLayer::new(breaker.clone()).with_classifier(AnyError);
//! let mut service = layer.layer(tower::service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x + 1) }));
//! let answer = service.ready().await.unwrap().call(41).await.unwrap();
//! assert_eq!(answer, 42);
//! assert_eq!(breaker.snapshot().totals.success, 1);
//! # }
//! ```
//!
//! # Cost
//!
//! The state is one `AtomicU64` (tag, generation, half-open probe counters) and the
//! window is a ring of atomic counters; no lock is ever taken on a call.
//!
//! * A closed breaker admits a call with one atomic load; recording a success into a
//!   count window is one load of the state, one load of the ring's cursor, one
//!   `fetch_add` on the current bucket and one on this thread's stripe of the call
//!   counters. The clock is not read unless slow-call detection is on (two reads per
//!   call: start and end) or the window is time-based (one read, at the end).
//! * An open breaker rejects with one atomic load of the state, one of the open-until
//!   time and one clock read (the wait is checked against the time; the first call after
//!   it moves the breaker to half-open). With
//!   [`automatic_half_open`](CircuitBreakerConfigBuilder::automatic_half_open) on and a
//!   tokio runtime, a spawned task makes that transition instead, and rejections skip
//!   the clock read until shortly before the wait is over.
//! * Rates are read (a bounded sum over the ring) only when a failure or a slow call is
//!   recorded, never on the success path.
//!
//! The clock is `tokio::time::Instant`, so paused-time tests drive every timer.

mod config;
mod error;
mod event;
mod future;
mod layer;
mod metrics;
#[doc(hidden)]
pub mod model;
mod name;
mod service;
mod state;
mod sync;
mod window;

use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

pub use config::{CircuitBreakerConfig, CircuitBreakerConfigBuilder, EventCallback, SlidingWindow};
pub use error::{BreakerError, BreakerOpen, ConfigError};
pub use event::{BreakerEvent, TransitionReason, WindowSnapshot};
pub use future::ResponseFuture;
pub use layer::CircuitBreakerLayer;
pub use metrics::CallTotals;
pub use name::BreakerName;
pub use service::CircuitBreakerService;

use crate::classify::{Classify, OtlpClassifier, OtlpError, Outcome};
use metrics::{Counters, Instruments};
use state::{ARMED, CLOSED, DISABLED, EVAL, FORCED_OPEN, HALF_OPEN, ONE_OUTSTANDING, OPEN, Probes};
use sync::{AtomicCell, CachePadded, Ordering};

/// The atomics of the public breaker.
type StdAtomic = std::sync::atomic::AtomicU64;
use window::{CountWindow, Sums, TimeWindow, Window};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls run; outcomes are recorded in the sliding window.
    Closed,
    /// Calls are rejected until the open wait elapses.
    Open,
    /// A limited number of probe calls run to test the upstream.
    HalfOpen,
    /// An operator opened the breaker: calls are rejected until [`CircuitBreaker::reset`].
    ForcedOpen,
    /// An operator disabled the breaker: every call runs, nothing is recorded in the
    /// window, until [`CircuitBreaker::reset`].
    Disabled,
}

impl BreakerState {
    /// The state's name as used in metrics and logs (`closed`, `open`, `half_open`,
    /// `forced_open`, `disabled`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point-in-time view of a breaker.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: BreakerName,
    /// The current state.
    pub state: BreakerState,
    /// The sliding window's counts and rates.
    pub window: WindowSnapshot,
    /// Lifetime call counts by outcome.
    pub totals: CallTotals,
    /// When an `Open` breaker lets probes through.
    pub open_until: Option<Instant>,
    /// Consecutive trips to open since the breaker last closed (drives the wait growth).
    pub consecutive_trips: u32,
    /// The probe counters of a half-open breaker.
    pub half_open: Option<ProbeSnapshot>,
}

/// The probes of a half-open breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSnapshot {
    /// How many probes may run in this half-open period.
    pub permitted: u32,
    /// Probes running now.
    pub outstanding: u32,
    /// Probes finished.
    pub completed: u32,
    /// Finished probes that failed.
    pub failed: u32,
    /// Finished probes that were slow.
    pub slow: u32,
}

/// A circuit breaker. Cheap to clone: clones share one state.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner<StdAtomic>>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Default for CircuitBreaker {
    /// A breaker with [`CircuitBreakerConfig::default`].
    fn default() -> Self {
        CircuitBreaker::new(CircuitBreakerConfig::default())
    }
}

impl CircuitBreaker {
    /// A closed breaker with `config`.
    pub fn new(config: CircuitBreakerConfig) -> CircuitBreaker {
        CircuitBreaker {
            inner: Inner::new(config),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &BreakerName {
        &self.inner.name
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.inner.state()
    }

    /// Asks to make a call. The [`Permit`] reports the call's outcome with
    /// [`record`](Permit::record) or [`complete`](Permit::complete); dropping it
    /// unreported counts the call as cancelled.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, BreakerOpen> {
        match self.inner.acquire() {
            Ok(admission) => Ok(Permit {
                inner: &self.inner,
                admission,
            }),
            Err(open) => Err(open),
        }
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns a handle to the
    /// breaker (for spawned tasks and futures that outlive the borrow).
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, BreakerOpen> {
        self.inner.acquire().map(|admission| OwnedPermit {
            inner: Arc::clone(&self.inner),
            admission,
            finished: false,
        })
    }

    /// Runs `f` if the breaker allows it and records its outcome under the OTLP rules
    /// ([`OtlpClassifier`]). Dropping the returned future before it completes counts the
    /// call as cancelled.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, BreakerError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: OtlpError,
    {
        self.call_with(&OtlpClassifier, f).await
    }

    /// Runs `f` if the breaker allows it and records the outcome `classifier` gives its
    /// result (e.g. [`AnyError`](crate::classify::AnyError), or a closure).
    pub async fn call_with<C, F, Fut, T, E>(
        &self,
        classifier: &C,
        f: F,
    ) -> Result<T, BreakerError<E>>
    where
        C: Classify<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(BreakerError::Open)?;
        let result = f().await;
        permit.complete(classifier.classify(&result));
        result.map_err(BreakerError::Inner)
    }

    /// Opens the breaker until [`reset`](Self::reset): every call is rejected. For
    /// operators (maintenance, a known-bad upstream).
    pub fn force_open(&self) {
        self.inner
            .operator_transition(FORCED_OPEN, TransitionReason::Forced);
    }

    /// Lets every call through without recording anything, until
    /// [`reset`](Self::reset). For operators (a breaker that misjudges an upstream).
    pub fn disable(&self) {
        self.inner
            .operator_transition(DISABLED, TransitionReason::Disabled);
    }

    /// Closes the breaker from any state, clearing the window and the wait growth.
    pub fn reset(&self) {
        self.inner
            .operator_transition(CLOSED, TransitionReason::Reset);
    }

    /// The state, window, and call counts now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.inner.snapshot()
    }

    /// A receiver of every later state change, in the order the changes happened. A
    /// receiver that falls more than `event_capacity` events behind loses the oldest
    /// (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<BreakerEvent> {
        self.inner.events.subscribe()
    }
}

/// Permission to make one call through a breaker. Report the outcome with
/// [`record`](Self::record) or [`complete`](Self::complete); dropping the permit
/// unreported counts the call as cancelled (neither success nor failure) and frees a
/// half-open probe place.
#[must_use = "dropping a permit counts the call as cancelled"]
pub struct Permit<'a> {
    inner: &'a Inner<StdAtomic>,
    admission: Admission,
}

impl Permit<'_> {
    /// Reports the call's outcome and how long it took (compared with the slow-call
    /// threshold, if one is set).
    #[inline(always)]
    pub fn record(self, outcome: Outcome, elapsed: Duration) {
        // Reported: not cancelled, so no `Drop`.
        let this = ManuallyDrop::new(self);
        this.inner
            .finish(&this.admission, outcome, Some(nanos(elapsed)));
    }

    /// Reports the call's outcome; the breaker measures the duration itself if it
    /// needs it (slow-call detection on), from when the permit was granted.
    #[inline(always)]
    pub fn complete(self, outcome: Outcome) {
        let this = ManuallyDrop::new(self);
        this.inner.finish(&this.admission, outcome, None);
    }

    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.admission.kind() == Kind::Probe
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.inner.cancel(&self.admission);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.inner.name)
            .field("kind", &self.admission.kind())
            .finish()
    }
}

/// A [`Permit`] that owns a handle to its breaker.
#[must_use = "dropping a permit counts the call as cancelled"]
pub struct OwnedPermit {
    inner: Arc<Inner<StdAtomic>>,
    admission: Admission,
    /// Reported (so dropping it is not a cancellation).
    finished: bool,
}

impl OwnedPermit {
    /// Reports the call's outcome and how long it took.
    pub fn record(mut self, outcome: Outcome, elapsed: Duration) {
        self.finished = true;
        self.inner
            .finish(&self.admission, outcome, Some(nanos(elapsed)));
    }

    /// Reports the call's outcome; the breaker measures the duration if it needs it.
    pub fn complete(mut self, outcome: Outcome) {
        self.finished = true;
        self.inner.finish(&self.admission, outcome, None);
    }

    /// Whether this is a half-open probe.
    pub fn is_probe(&self) -> bool {
        self.admission.kind() == Kind::Probe
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if !self.finished {
            self.inner.cancel(&self.admission);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &self.inner.name)
            .field("kind", &self.admission.kind())
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    /// A call in the closed state, recorded in the window.
    Call = 0,
    /// A half-open probe.
    Probe = 1,
    /// A call of a disabled breaker (or during a reset): counted, not recorded.
    Unrecorded = 2,
}

/// What a permit remembers: two words, so a permit moves as plain 8-byte copies.
#[derive(Clone, Copy)]
struct Admission {
    /// `generation << 8 | kind`, where generation is that of the admitting state.
    meta: u64,
    /// Nanoseconds since the origin when admitted (0 unless slow-call detection is on).
    start: u64,
}

impl Admission {
    #[inline(always)]
    fn new(kind: Kind, generation: u32, start: u64) -> Admission {
        Admission {
            meta: (u64::from(generation) << 8) | kind as u64,
            start,
        }
    }

    #[inline(always)]
    fn kind(&self) -> Kind {
        match self.meta & 0xff {
            0 => Kind::Call,
            1 => Kind::Probe,
            _ => Kind::Unrecorded,
        }
    }

    #[inline(always)]
    fn generation(&self) -> u32 {
        (self.meta >> 8) as u32
    }
}

impl fmt::Debug for Admission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("kind", &self.kind())
            .field("generation", &self.generation())
            .field("start", &self.start)
            .finish()
    }
}

/// The numbers of the configuration, in the form the hot paths use.
#[derive(Debug)]
struct Settings {
    failure_threshold: f64,
    slow_threshold: f64,
    /// `u64::MAX` when slow-call detection is off.
    slow_nanos: u64,
    min_calls: u64,
    wait_nanos: u64,
    wait_multiplier: f64,
    max_wait_nanos: u64,
    probes: u32,
    /// Arm a timer task for the open-to-half-open transition when a runtime is there.
    auto_half_open: bool,
}

impl Settings {
    #[inline]
    fn slow_detection(&self) -> bool {
        self.slow_nanos != u64::MAX
    }
}

/// Read on every call: kept on its own cache line, away from the window's counters.
struct Hot<A> {
    state: A,
    /// When an open breaker lets probes through (nanoseconds since `origin`); written
    /// before the OPEN word is published, so reading it after the word is safe.
    open_until: A,
    /// +1 whenever the window is cleared: successes a thread has not yet added to the
    /// window (see [`Slot::pending`](metrics::Slot)) count only in their generation.
    window_generation: std::sync::atomic::AtomicU64,
}

pub(crate) struct Inner<A> {
    hot: CachePadded<Hot<A>>,
    /// This breaker, for the automatic half-open timer (which must not keep it alive).
    me: Weak<Inner<A>>,
    /// Consecutive trips since the breaker last closed; only changed by the thread
    /// holding the TRANSIT word.
    trips: A,
    origin: Instant,
    window: Window<A>,
    /// How many successes a thread adds to a count window at once (1: no batching).
    batch: u64,
    pub(crate) counters: Counters,
    settings: Settings,
    name: BreakerName,
    events: broadcast::Sender<BreakerEvent>,
    on_event: Option<EventCallback>,
    instruments: Instruments,
}

impl<A: AtomicCell> fmt::Debug for Inner<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[inline]
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

enum Verdict {
    Pending,
    Close,
    Open,
}

impl<A: AtomicCell> Inner<A> {
    fn new(config: CircuitBreakerConfig) -> Arc<Inner<A>> {
        let window = match config.window {
            SlidingWindow::Count { calls, buckets } => {
                Window::Count(CountWindow::new(calls, buckets))
            }
            SlidingWindow::Time { duration, buckets } => Window::Time(TimeWindow::new(
                nanos(duration) / u64::from(buckets.max(1)),
                buckets,
            )),
        };
        let settings = Settings {
            failure_threshold: config.failure_rate_threshold,
            slow_threshold: config.slow_call_rate_threshold,
            slow_nanos: config.slow_call_duration.map_or(u64::MAX, nanos),
            min_calls: u64::from(config.minimum_calls),
            wait_nanos: nanos(config.wait_in_open),
            wait_multiplier: config.wait_multiplier,
            max_wait_nanos: nanos(config.max_wait_in_open),
            probes: config.permitted_calls_in_half_open,
            auto_half_open: config.automatic_half_open,
        };
        // Batching successes lets a count window lag by up to `batch - 1` calls per
        // thread, which the rates make up for (see `window_sums`); keep it within half a
        // bucket so the window's bucket boundaries stay sharp.
        let batch = match &window {
            Window::Count(w) if settings.slow_nanos == u64::MAX => {
                (w.per_bucket() / 2).clamp(1, 16)
            }
            _ => 1,
        };
        let meter = config
            .meter
            .unwrap_or_else(|| opentelemetry::global::meter("otlp-resilience"));
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        Arc::new_cyclic(|weak| Inner {
            hot: CachePadded(Hot {
                state: A::new(state::word(CLOSED, 0)),
                open_until: A::new(0),
                window_generation: std::sync::atomic::AtomicU64::new(0),
            }),
            me: weak.clone(),
            trips: A::new(0),
            origin: Instant::now(),
            window,
            batch,
            counters: Counters::default(),
            settings,
            instruments: Instruments::new(&meter, &config.name, weak.clone()),
            name: config.name,
            events,
            on_event: config.on_event,
        })
    }

    #[inline(always)]
    fn now_nanos(&self) -> u64 {
        nanos(Instant::now().saturating_duration_since(self.origin))
    }

    #[inline(always)]
    fn instant(&self, nanos: u64) -> Option<Instant> {
        self.origin.checked_add(Duration::from_nanos(nanos))
    }

    pub(crate) fn state(&self) -> BreakerState {
        state::public_state(self.hot.state.load(Ordering::Acquire))
    }

    #[inline]
    fn admit(&self, kind: Kind, generation: u32) -> Admission {
        let start = if self.settings.slow_detection() {
            self.now_nanos()
        } else {
            0
        };
        Admission::new(kind, generation, start)
    }

    #[inline(always)]
    fn acquire(&self) -> Result<Admission, BreakerOpen> {
        let word = self.hot.state.load(Ordering::Acquire);
        let tag = state::tag(word);
        if tag == CLOSED && !self.settings.slow_detection() {
            return Ok(Admission::new(Kind::Call, state::generation(word), 0));
        }
        if tag == OPEN {
            let until = self.instant(self.hot.open_until.load(Ordering::Relaxed));
            if word & ARMED != 0 {
                // A timer makes the half-open transition: no clock read.
                return Err(self.reject_until(BreakerState::Open, until));
            }
            // One clock read, compared with the deadline as an `Instant` (which the
            // rejection carries anyway): no conversion of "now" on the rejection path.
            if let Some(until) = until
                && Instant::now() < until
            {
                return Err(self.reject_until(BreakerState::Open, Some(until)));
            }
        }
        self.acquire_other(word)
    }

    /// Everything but a closed breaker without slow-call detection.
    #[inline(never)]
    fn acquire_other(&self, word: u64) -> Result<Admission, BreakerOpen> {
        match state::tag(word) {
            CLOSED => Ok(self.admit(Kind::Call, state::generation(word))),
            OPEN => {
                let until = self.hot.open_until.load(Ordering::Relaxed);
                let now = self.now_nanos();
                if now < until {
                    Err(self.reject(BreakerState::Open, Some(until)))
                } else {
                    self.acquire_slow(word, now)
                }
            }
            _ => self.acquire_slow(word, 0),
        }
    }

    #[inline(always)]
    fn reject(&self, state: BreakerState, until: Option<u64>) -> BreakerOpen {
        self.reject_until(state, until.and_then(|n| self.instant(n)))
    }

    #[inline(always)]
    fn reject_until(&self, state: BreakerState, until: Option<Instant>) -> BreakerOpen {
        let local = self.counters.local();
        local.bump(&local.slot.rejected);
        BreakerOpen {
            state,
            until,
            name: self.name.clone(),
        }
    }

    /// Everything but a closed breaker and an open one still waiting. `now` is valid
    /// when `word` is OPEN.
    #[inline(never)]
    fn acquire_slow(&self, mut word: u64, now: u64) -> Result<Admission, BreakerOpen> {
        loop {
            match state::tag(word) {
                CLOSED => return Ok(self.admit(Kind::Call, state::generation(word))),
                OPEN => {
                    let until = self.hot.open_until.load(Ordering::Relaxed);
                    if word & ARMED != 0 {
                        return Err(self.reject(BreakerState::Open, Some(until)));
                    }
                    let now = now.max(self.now_nanos_if(now == 0));
                    if now < until {
                        return Err(self.reject(BreakerState::Open, Some(until)));
                    }
                    // The wait is over: whoever moves the breaker to half-open takes the
                    // first probe in the same step.
                    match self.transition(word, HALF_OPEN, TransitionReason::WaitElapsed, Some(now))
                    {
                        Ok(generation) => {
                            let start = if self.settings.slow_detection() {
                                now
                            } else {
                                0
                            };
                            return Ok(Admission::new(Kind::Probe, generation, start));
                        }
                        Err(actual) => word = actual,
                    }
                }
                HALF_OPEN => {
                    let p = Probes::of(word);
                    if p.outstanding + p.completed >= self.settings.probes {
                        return Err(self.reject(BreakerState::HalfOpen, None));
                    }
                    match self.hot.state.compare_exchange(
                        word,
                        word + ONE_OUTSTANDING,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(self.admit(Kind::Probe, state::generation(word))),
                        Err(actual) => word = actual,
                    }
                }
                FORCED_OPEN => return Err(self.reject(BreakerState::ForcedOpen, None)),
                DISABLED => return Ok(self.admit(Kind::Unrecorded, state::generation(word))),
                _ => {
                    // TRANSIT: another thread is mid-transition (a few instructions).
                    // Towards closed or disabled the call may run unrecorded; towards an
                    // open state it is refused.
                    let target = state::transit_target(word);
                    if target == CLOSED || target == DISABLED {
                        return Ok(self.admit(Kind::Unrecorded, state::generation(word)));
                    }
                    return Err(self.reject(state::state_of_tag(target), None));
                }
            }
        }
    }

    #[inline]
    fn now_nanos_if(&self, read: bool) -> u64 {
        if read { self.now_nanos() } else { 0 }
    }

    /// Records a finished call. `elapsed` is the caller's measurement, if it made one.
    #[inline(always)]
    fn finish(&self, admission: &Admission, outcome: Outcome, elapsed: Option<u64>) {
        if self.batch > 1 && admission.kind() == Kind::Call && outcome == Outcome::Success {
            self.record_success_batched(admission.generation());
        } else {
            self.finish_other(admission, outcome, elapsed);
        }
    }

    /// A success in a closed count window without slow-call detection: counted in this
    /// thread's slot and added to the window `batch` at a time, so most successes make
    /// no atomic read-modify-write at all (rates include the pending successes).
    #[inline(always)]
    fn record_success_batched(&self, generation: u32) {
        let local = self.counters.local();
        local.bump(&local.slot.success);
        let word = self.hot.state.load(Ordering::Acquire);
        if word != state::word(CLOSED, generation) || !local.owned {
            // Another state, an older closed period, EVAL set, or a shared slot.
            self.record_call(generation, false, false, None);
            return;
        }
        let window_generation = self.hot.window_generation.load(Ordering::Relaxed) as u32;
        let pending = local.slot.pending.load(Ordering::Relaxed);
        let count = if (pending >> 32) as u32 == window_generation {
            (pending & u64::from(u32::MAX)) + 1
        } else {
            1
        };
        let tag = u64::from(window_generation) << 32;
        if count >= self.batch {
            local.slot.pending.store(tag, Ordering::Relaxed);
            if let Window::Count(window) = &self.window {
                window.record(count, false, false);
            }
        } else {
            local.slot.pending.store(tag | count, Ordering::Relaxed);
        }
    }

    #[inline(never)]
    fn finish_other(&self, admission: &Admission, outcome: Outcome, elapsed: Option<u64>) {
        let local = self.counters.local();
        local.bump(match outcome {
            Outcome::Success => &local.slot.success,
            Outcome::Failure => &local.slot.failure,
            Outcome::Ignored => &local.slot.ignored,
        });
        let slow_detection = self.settings.slow_detection();
        let timed_window = admission.kind() == Kind::Call && self.window.is_time_based();
        let now = if (slow_detection && elapsed.is_none()) || timed_window {
            Some(self.now_nanos())
        } else {
            None
        };
        let slow = slow_detection
            && elapsed.unwrap_or_else(|| now.unwrap_or(0).saturating_sub(admission.start))
                > self.settings.slow_nanos;
        if slow {
            local.bump(&local.slot.slow);
        }
        match admission.kind() {
            Kind::Call if outcome != Outcome::Ignored => {
                self.record_call(
                    admission.generation(),
                    outcome == Outcome::Failure,
                    slow,
                    now,
                );
            }
            Kind::Probe => self.record_probe(admission.generation(), outcome, slow),
            Kind::Call | Kind::Unrecorded => {}
        }
    }

    #[inline]
    fn record_call(&self, generation: u32, failure: bool, slow: bool, now: Option<u64>) {
        let word = self.hot.state.load(Ordering::Acquire);
        if state::tag(word) != CLOSED || state::generation(word) != generation {
            // Admitted by an earlier closed period: the window it belongs to is gone.
            return;
        }
        self.window.record(failure, slow, now.unwrap_or(0));
        if failure || slow || word & EVAL != 0 {
            self.evaluate(word, now);
        }
    }

    /// Checks the rates after a failure or a slow call (or any call while EVAL is set)
    /// and trips the breaker if one reached its threshold.
    #[inline(never)]
    fn evaluate(&self, mut word: u64, now: Option<u64>) {
        let generation = state::generation(word);
        let window_now = match now {
            Some(now) => now,
            None if self.window.is_time_based() => self.now_nanos(),
            None => 0,
        };
        loop {
            let sums = self.window_sums(window_now);
            let next = if sums.calls < self.settings.min_calls {
                // Too few calls for the rates to count. Remember that failures are
                // waiting, so that the successes that bring the window to the minimum
                // evaluate it too.
                if (sums.failures > 0 || sums.slow > 0) && word & EVAL == 0 {
                    word | EVAL
                } else {
                    return;
                }
            } else if let Some(reason) = self.trip_reason(&sums) {
                match self.transition(word, OPEN, reason, now) {
                    Ok(_) => return,
                    Err(actual) => {
                        if state::tag(actual) == CLOSED && state::generation(actual) == generation {
                            word = actual;
                            continue;
                        }
                        return;
                    }
                }
            } else if word & EVAL != 0 {
                word & !EVAL
            } else {
                return;
            };
            match self
                .hot
                .state
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => {
                    if state::tag(actual) == CLOSED && state::generation(actual) == generation {
                        word = actual;
                    } else {
                        return;
                    }
                }
            }
        }
    }

    /// The window's counts, with the successes threads have not yet added to it.
    fn window_sums(&self, now_nanos: u64) -> Sums {
        let mut sums = self.window.sums(now_nanos);
        if self.batch > 1 {
            let generation = self.hot.window_generation.load(Ordering::Relaxed) as u32;
            sums.calls += self.counters.pending(generation);
        }
        sums
    }

    fn trip_reason(&self, sums: &Sums) -> Option<TransitionReason> {
        let failure_rate = sums.failure_rate();
        if failure_rate >= self.settings.failure_threshold {
            return Some(TransitionReason::FailureRate {
                rate: failure_rate,
                threshold: self.settings.failure_threshold,
            });
        }
        if self.settings.slow_detection() {
            let slow_rate = sums.slow_rate();
            if slow_rate >= self.settings.slow_threshold {
                return Some(TransitionReason::SlowCallRate {
                    rate: slow_rate,
                    threshold: self.settings.slow_threshold,
                });
            }
        }
        None
    }

    fn record_probe(&self, generation: u32, outcome: Outcome, slow: bool) {
        let mut word = self.hot.state.load(Ordering::Acquire);
        loop {
            if state::tag(word) != HALF_OPEN || state::generation(word) != generation {
                return;
            }
            let mut p = Probes::of(word);
            p.outstanding = p.outstanding.saturating_sub(1);
            let result = if outcome == Outcome::Ignored {
                // Says nothing about the upstream: free the place for another probe.
                self.cas(word, p.apply(word))
            } else {
                p.completed += 1;
                p.failed += u32::from(outcome == Outcome::Failure);
                p.slow += u32::from(slow);
                match self.probe_verdict(&p) {
                    Verdict::Pending => self.cas(word, p.apply(word)),
                    Verdict::Close => self
                        .transition(
                            word,
                            CLOSED,
                            TransitionReason::ProbesSucceeded {
                                completed: p.completed,
                                failed: p.failed,
                                slow: p.slow,
                            },
                            None,
                        )
                        .map(|_| ()),
                    Verdict::Open => self
                        .transition(
                            word,
                            OPEN,
                            TransitionReason::ProbesFailed {
                                completed: p.completed,
                                failed: p.failed,
                                slow: p.slow,
                            },
                            None,
                        )
                        .map(|_| ()),
                }
            };
            match result {
                Ok(()) => return,
                Err(actual) => word = actual,
            }
        }
    }

    /// Decides as soon as the probes' rates over all permitted probes are certain.
    fn probe_verdict(&self, p: &Probes) -> Verdict {
        let permitted = f64::from(self.settings.probes);
        let pct = |n: u32| f64::from(n) * 100.0 / permitted;
        let slow_detection = self.settings.slow_detection();
        if pct(p.failed) >= self.settings.failure_threshold
            || (slow_detection && pct(p.slow) >= self.settings.slow_threshold)
        {
            return Verdict::Open;
        }
        let remaining = self.settings.probes.saturating_sub(p.completed);
        if pct(p.failed + remaining) < self.settings.failure_threshold
            && (!slow_detection || pct(p.slow + remaining) < self.settings.slow_threshold)
        {
            return Verdict::Close;
        }
        Verdict::Pending
    }

    fn cas(&self, current: u64, new: u64) -> Result<(), u64> {
        self.hot
            .state
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
    }

    #[inline]
    fn cancel(&self, admission: &Admission) {
        let local = self.counters.local();
        local.bump(&local.slot.cancelled);
        if admission.kind() != Kind::Probe {
            return;
        }
        let mut word = self.hot.state.load(Ordering::Acquire);
        loop {
            if state::tag(word) != HALF_OPEN
                || state::generation(word) != admission.generation()
                || Probes::of(word).outstanding == 0
            {
                return;
            }
            match self.cas(word, word - ONE_OUTSTANDING) {
                Ok(()) => return,
                Err(actual) => word = actual,
            }
        }
    }

    fn wait_nanos(&self, trips: u64) -> u64 {
        let s = &self.settings;
        if s.wait_multiplier <= 1.0 || trips <= 1 {
            return s.wait_nanos.min(s.max_wait_nanos);
        }
        let exponent = i32::try_from(trips - 1).unwrap_or(i32::MAX);
        let wait = s.wait_nanos as f64 * s.wait_multiplier.powi(exponent);
        if wait >= s.max_wait_nanos as f64 {
            s.max_wait_nanos
        } else {
            wait as u64
        }
    }

    /// Moves from `from` (never a TRANSIT word) to `to`. Returns the new generation, or
    /// the current word if `from` is no longer current. A caller moving the breaker to
    /// half-open takes the first probe.
    fn transition(
        &self,
        from: u64,
        to: u64,
        reason: TransitionReason,
        now: Option<u64>,
    ) -> Result<u32, u64> {
        self.transition_with(from, to, reason, now, to == HALF_OPEN)
    }

    /// [`transition`](Self::transition); `first_probe`: to half-open with one probe
    /// outstanding (the caller's).
    fn transition_with(
        &self,
        from: u64,
        to: u64,
        reason: TransitionReason,
        now: Option<u64>,
        first_probe: bool,
    ) -> Result<u32, u64> {
        let generation = state::next_generation(from);
        self.hot.state.compare_exchange(
            from,
            state::transit(to, generation),
            Ordering::AcqRel,
            Ordering::Acquire,
        )?;
        // Only this thread can change the state until the store below.
        let now = now.unwrap_or_else(|| self.now_nanos());
        let sums = self.window_sums(now);
        let mut word = state::word(to, generation);
        match to {
            OPEN => {
                let trips = self.trips.load(Ordering::Relaxed).saturating_add(1);
                self.trips.store(trips, Ordering::Relaxed);
                let until = now.saturating_add(self.wait_nanos(trips));
                self.hot.open_until.store(until, Ordering::Relaxed);
                if self.arm_half_open_timer(generation, now, until) {
                    word |= ARMED;
                }
            }
            HALF_OPEN if first_probe => word += ONE_OUTSTANDING,
            CLOSED => {
                self.hot.window_generation.fetch_add(1, Ordering::Relaxed);
                self.window.clear();
                self.trips.store(0, Ordering::Relaxed);
            }
            _ => {}
        }
        let event = BreakerEvent {
            name: self.name.clone(),
            from: state::public_state(from),
            to: state::state_of_tag(to),
            at: self.instant(now).unwrap_or(self.origin),
            reason,
            window: WindowSnapshot::from(&sums),
        };
        // Sent before the new state is published, so subscribers see transitions in
        // order (sending never blocks). No subscriber is not an error.
        let _ = self.events.send(event.clone());
        self.hot.state.store(word, Ordering::Release);
        // The rest may run user code that calls back into the breaker: after publishing.
        self.report(&event);
        Ok(generation)
    }

    /// Spawns the task that moves the breaker, open in `generation` from `now` until
    /// `until`, to half-open, if enabled and a tokio runtime is there. Called by the
    /// thread holding the TRANSIT word. Returns whether the word is to be ARMED: whether
    /// the timer is to end a clock-free stretch [`CLOCK_FREE_MARGIN`] before `until`.
    fn arm_half_open_timer(&self, generation: u32, now: u64, until: u64) -> bool {
        if !self.settings.auto_half_open {
            return false;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let Some(deadline) = self.instant(until) else {
            return false;
        };
        let disarm_at = until
            .checked_sub(CLOCK_FREE_MARGIN)
            .filter(|&at| at > now)
            .and_then(|at| self.instant(at));
        let timer = HalfOpenTimer {
            inner: self.me.clone(),
            generation,
            armed: disarm_at.is_some(),
        };
        // Detached: the task ends once it fired (or when its runtime shuts down).
        drop(runtime.spawn(timer.run(disarm_at, deadline)));
        disarm_at.is_some()
    }

    /// The automatic half-open timer of the open period `generation` fired.
    fn wait_elapsed(&self, generation: u32) {
        let mut word = self.hot.state.load(Ordering::Acquire);
        loop {
            match state::tag(word) {
                // The trip that armed the timer is still publishing the OPEN word.
                state::TRANSIT if state::generation(word) == generation => {
                    A::spin();
                    word = self.hot.state.load(Ordering::Acquire);
                }
                OPEN if state::generation(word) == generation => {
                    match self.transition_with(
                        word,
                        HALF_OPEN,
                        TransitionReason::WaitElapsed,
                        None,
                        false,
                    ) {
                        Ok(_) => return,
                        Err(actual) => word = actual,
                    }
                }
                // Reset, forced open, ... since: a stale timer does nothing.
                _ => return,
            }
        }
    }

    /// Ends the clock-free stretch of the open period `generation`: rejections check the
    /// wait against the clock again.
    fn disarm(&self, generation: u32) {
        let mut word = self.hot.state.load(Ordering::Acquire);
        loop {
            match state::tag(word) {
                state::TRANSIT if state::generation(word) == generation => {
                    A::spin();
                    word = self.hot.state.load(Ordering::Acquire);
                }
                OPEN if state::generation(word) == generation && word & ARMED != 0 => {
                    match self.cas(word, word & !ARMED) {
                        Ok(()) => return,
                        Err(actual) => word = actual,
                    }
                }
                _ => return,
            }
        }
    }

    fn operator_transition(&self, to: u64, reason: TransitionReason) {
        loop {
            let word = self.hot.state.load(Ordering::Acquire);
            match state::tag(word) {
                state::TRANSIT => {
                    A::spin();
                    continue;
                }
                tag if tag == to && to != CLOSED => return,
                _ => {}
            }
            if self.transition(word, to, reason, None).is_ok() {
                return;
            }
        }
    }

    fn report(&self, event: &BreakerEvent) {
        let (from, to, reason, window) = (event.from, event.to, event.reason, &event.window);
        match to {
            BreakerState::ForcedOpen | BreakerState::Disabled => tracing::warn!(
                breaker = %self.name, %from, %to, %reason,
                "circuit breaker {to} by an operator"
            ),
            _ => tracing::info!(
                breaker = %self.name, %from, %to, %reason,
                calls = window.calls, failure_rate = window.failure_rate,
                slow_call_rate = window.slow_call_rate,
                "circuit breaker {from} -> {to}: {reason}"
            ),
        }
        self.instruments.transition(&self.name, from, to);
        if let Some(callback) = &self.on_event {
            callback(event);
        }
    }

    fn snapshot(&self) -> BreakerSnapshot {
        let word = self.hot.state.load(Ordering::Acquire);
        let now = self.now_nanos();
        let open_until = if state::tag(word) == OPEN {
            self.instant(self.hot.open_until.load(Ordering::Relaxed))
        } else {
            None
        };
        let half_open = (state::tag(word) == HALF_OPEN).then(|| {
            let p = Probes::of(word);
            ProbeSnapshot {
                permitted: self.settings.probes,
                outstanding: p.outstanding,
                completed: p.completed,
                failed: p.failed,
                slow: p.slow,
            }
        });
        BreakerSnapshot {
            name: self.name.clone(),
            state: state::public_state(word),
            window: WindowSnapshot::from(&self.window_sums(now)),
            totals: self.counters.totals(),
            open_until,
            consecutive_trips: u32::try_from(self.trips.load(Ordering::Relaxed))
                .unwrap_or(u32::MAX),
            half_open,
        }
    }
}

/// How long before the end of the open wait the automatic half-open timer hands the
/// rejections back to the clock check. The timer itself fires after its deadline (tokio's
/// timer has a 1 ms resolution, and the task must then be scheduled); ending the
/// clock-free stretch early means that a caller who waits exactly until `until` (e.g.
/// the retry layer honouring [`BreakerOpen::retry_after`]) is never rejected because the
/// timer task has not run yet, unless it is later than this.
const CLOCK_FREE_MARGIN: u64 = 50_000_000;

/// The task that moves an open breaker to half-open when its wait is over.
struct HalfOpenTimer<A: AtomicCell> {
    inner: Weak<Inner<A>>,
    /// The generation of the OPEN word that armed it.
    generation: u32,
    /// The OPEN word is ARMED and this timer has not yet disarmed it.
    armed: bool,
}

impl<A: AtomicCell> HalfOpenTimer<A> {
    async fn run(mut self, disarm_at: Option<Instant>, deadline: Instant) {
        if let Some(at) = disarm_at {
            tokio::time::sleep_until(at).await;
            self.armed = false;
            match self.inner.upgrade() {
                Some(inner) => inner.disarm(self.generation),
                None => return,
            }
        }
        tokio::time::sleep_until(deadline).await;
        if let Some(inner) = self.inner.upgrade() {
            inner.wait_elapsed(self.generation);
        }
    }
}

impl<A: AtomicCell> Drop for HalfOpenTimer<A> {
    fn drop(&mut self) {
        // Dropped before it disarmed (its runtime shut down, or the sleep panicked):
        // whoever calls next checks the wait against the clock.
        if self.armed
            && let Some(inner) = self.inner.upgrade()
        {
            inner.disarm(self.generation);
        }
    }
}

impl From<&Sums> for WindowSnapshot {
    fn from(s: &Sums) -> Self {
        WindowSnapshot {
            calls: s.calls,
            failures: s.failures,
            slow_calls: s.slow,
            failure_rate: s.failure_rate(),
            slow_call_rate: s.slow_rate(),
        }
    }
}
