//! Call counters and the OpenTelemetry instruments that report them.
//!
//! Counting a call must cost next to nothing and never contend, so each thread owns a
//! slot of counters (its own cache line) that only it writes, with a plain load and
//! store; readers sum the slots. Slots are claimed on a thread's first call and given
//! back when it exits; past 64 live threads, the others share one slot with atomic adds. The OpenTelemetry instruments
//! are asynchronous (observable): the SDK reads the stripes when it collects, so no
//! attribute lookup or SDK lock is ever on the call path. Only transitions, which are
//! rare, use a synchronous counter.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Meter, ObservableCounter, ObservableGauge};

use super::sync::AtomicCell;
use super::{BreakerName, BreakerState, Inner};

/// Threads that can own a slot at once; later threads share the overflow slot.
const OWNED_SLOTS: usize = 64;
const OVERFLOW: usize = OWNED_SLOTS;

/// Which slots are owned by a live thread (bit i: slot i).
static OWNED: AtomicU64 = AtomicU64::new(0);

/// This thread's slot, claimed on first use and given back when the thread exits.
struct SlotGuard(usize);

impl SlotGuard {
    fn claim() -> SlotGuard {
        let mut bits = OWNED.load(Ordering::Relaxed);
        loop {
            if bits == u64::MAX {
                return SlotGuard(OVERFLOW);
            }
            let i = (!bits).trailing_zeros() as usize;
            // Acquire: see the counts the previous owner of the slot left.
            match OWNED.compare_exchange_weak(
                bits,
                bits | (1 << i),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return SlotGuard(i),
                Err(actual) => bits = actual,
            }
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if self.0 < OWNED_SLOTS {
            // Release: the next owner sees this thread's last counts.
            OWNED.fetch_and(!(1 << self.0), Ordering::Release);
        }
    }
}

thread_local! {
    static SLOT: SlotGuard = SlotGuard::claim();
}

/// This thread's slot index (the overflow slot while the thread is exiting).
#[inline(always)]
fn slot_index() -> usize {
    SLOT.try_with(|s| s.0).unwrap_or(OVERFLOW)
}

/// One thread's counters: written by that thread only (so a plain load and store
/// counts, no atomic read-modify-write), read by anyone.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Slot {
    pub(crate) success: AtomicU64,
    pub(crate) failure: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) slow: AtomicU64,
    /// Successes recorded by this thread and not yet added to the count window, with
    /// the window generation they belong to: `generation << 32 | count`.
    pub(crate) pending: AtomicU64,
}

/// A thread's slot and whether the thread owns it (the overflow slot is shared).
#[derive(Clone, Copy)]
pub(crate) struct Local<'a> {
    pub(crate) slot: &'a Slot,
    pub(crate) owned: bool,
}

impl Local<'_> {
    #[inline(always)]
    pub(crate) fn bump(&self, counter: &AtomicU64) {
        if self.owned {
            counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        } else {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Lifetime call counts (and pending window successes), one slot per thread.
#[derive(Debug)]
pub(crate) struct Counters {
    slots: Box<[Slot]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            slots: (0..=OWNED_SLOTS).map(|_| Slot::default()).collect(),
        }
    }
}

impl Counters {
    /// This thread's slot.
    #[inline(always)]
    pub(crate) fn local(&self) -> Local<'_> {
        let i = slot_index();
        Local {
            slot: &self.slots[i.min(OVERFLOW)],
            owned: i < OWNED_SLOTS,
        }
    }

    /// Successes not yet added to the window, of window generation `generation`.
    pub(crate) fn pending(&self, generation: u32) -> u64 {
        self.slots
            .iter()
            .map(|s| {
                let p = s.pending.load(Ordering::Relaxed);
                if (p >> 32) as u32 == generation {
                    p & u64::from(u32::MAX)
                } else {
                    0
                }
            })
            .sum()
    }

    pub(crate) fn totals(&self) -> CallTotals {
        let mut t = CallTotals::default();
        for s in self.slots.iter() {
            t.success += s.success.load(Ordering::Relaxed);
            t.failure += s.failure.load(Ordering::Relaxed);
            t.ignored += s.ignored.load(Ordering::Relaxed);
            t.rejected += s.rejected.load(Ordering::Relaxed);
            t.cancelled += s.cancelled.load(Ordering::Relaxed);
            t.slow += s.slow.load(Ordering::Relaxed);
        }
        t
    }
}

/// Lifetime call counts of a breaker, by outcome.
///
/// `success + failure + ignored + rejected + cancelled` is the number of calls that
/// asked the breaker for permission; `slow` counts the completed calls (of any outcome)
/// slower than the slow-call threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTotals {
    /// Calls classified as [`Outcome::Success`](crate::classify::Outcome::Success).
    pub success: u64,
    /// Calls classified as [`Outcome::Failure`](crate::classify::Outcome::Failure).
    pub failure: u64,
    /// Calls classified as [`Outcome::Ignored`](crate::classify::Outcome::Ignored).
    pub ignored: u64,
    /// Calls the breaker refused (open, forced open, or half-open with every probe taken).
    pub rejected: u64,
    /// Calls admitted but dropped before they finished.
    pub cancelled: u64,
    /// Completed calls slower than the slow-call threshold.
    pub slow: u64,
}

impl CallTotals {
    /// Every call that asked for permission.
    pub fn attempted(&self) -> u64 {
        self.success + self.failure + self.ignored + self.rejected + self.cancelled
    }
}

/// The instruments of one breaker; dropping them does not unregister the callbacks
/// (OpenTelemetry has no such API), which observe nothing once the breaker is gone.
pub(crate) struct Instruments {
    transitions: Counter<u64>,
    _calls: ObservableCounter<u64>,
    _state: ObservableGauge<u64>,
}

impl std::fmt::Debug for Instruments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instruments").finish_non_exhaustive()
    }
}

const STATES: [BreakerState; 5] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
    BreakerState::ForcedOpen,
    BreakerState::Disabled,
];

impl Instruments {
    pub(crate) fn new<A: AtomicCell>(
        meter: &Meter,
        name: &BreakerName,
        inner: Weak<Inner<A>>,
    ) -> Instruments {
        let calls_inner = inner.clone();
        let calls_name = name.to_string();
        let calls = meter
            .u64_observable_counter("otlp.resilience.breaker.calls")
            .with_description("Calls through the circuit breaker, by outcome")
            .with_unit("{call}")
            .with_callback(move |observer| {
                let Some(inner) = calls_inner.upgrade() else {
                    return;
                };
                let t = inner.counters.totals();
                for (outcome, value) in [
                    ("success", t.success),
                    ("failure", t.failure),
                    ("ignored", t.ignored),
                    ("rejected", t.rejected),
                    ("cancelled", t.cancelled),
                ] {
                    observer.observe(
                        value,
                        &[
                            KeyValue::new("name", calls_name.clone()),
                            KeyValue::new("outcome", outcome),
                        ],
                    );
                }
            })
            .build();
        let state_name = name.to_string();
        let state = meter
            .u64_observable_gauge("otlp.resilience.breaker.state")
            .with_description("1 for the circuit breaker's current state, 0 for the others")
            .with_callback(move |observer| {
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let current = inner.state();
                for s in STATES {
                    observer.observe(
                        u64::from(s == current),
                        &[
                            KeyValue::new("name", state_name.clone()),
                            KeyValue::new("state", s.as_str()),
                        ],
                    );
                }
            })
            .build();
        let transitions = meter
            .u64_counter("otlp.resilience.breaker.transitions")
            .with_description("Circuit breaker state changes")
            .with_unit("{transition}")
            .build();
        Instruments {
            transitions,
            _calls: calls,
            _state: state,
        }
    }

    pub(crate) fn transition(&self, name: &BreakerName, from: BreakerState, to: BreakerState) {
        self.transitions.add(
            1,
            &[
                KeyValue::new("name", name.to_string()),
                KeyValue::new("from", from.as_str()),
                KeyValue::new("to", to.as_str()),
            ],
        );
    }
}
