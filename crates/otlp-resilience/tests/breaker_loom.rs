//! Model checks of the circuit breaker's lock-free state machine with `loom`.
//!
//! The breaker's internals are generic over their atomics; `ModelBreaker<LoomCell>` is
//! the same code as `CircuitBreaker` (state word, open-until time, probe accounting,
//! sliding window, permits) with `loom`'s atomics, so `loom` explores every interleaving
//! of two threads up to a preemption bound (3, or `LOOM_MAX_PREEMPTIONS`).
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p otlp-resilience --test breaker_loom --release`
#![cfg(loom)]

use std::sync::atomic::Ordering as StdOrdering;
use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::thread;
use otlp_resilience::breaker::model::{AtomicCell, ModelBreaker};
use otlp_resilience::breaker::{BreakerState, CircuitBreakerConfig, SlidingWindow};
use otlp_resilience::classify::Outcome;

/// `loom`'s `AtomicU64` as the breaker's atomic cell.
struct LoomCell(AtomicU64);

impl AtomicCell for LoomCell {
    fn new(value: u64) -> Self {
        LoomCell(AtomicU64::new(value))
    }
    fn load(&self, order: StdOrdering) -> u64 {
        self.0.load(order)
    }
    fn store(&self, value: u64, order: StdOrdering) {
        self.0.store(value, order)
    }
    fn fetch_add(&self, value: u64, order: StdOrdering) -> u64 {
        self.0.fetch_add(value, order)
    }
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: StdOrdering,
        failure: StdOrdering,
    ) -> Result<u64, u64> {
        self.0.compare_exchange(current, new, success, failure)
    }
    fn spin() {
        thread::yield_now();
    }
}

type CircuitBreaker = ModelBreaker<LoomCell>;

/// Opens after one failure, goes half-open on the next call (no wait), one probe.
fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            // Two calls in one bucket: a trip does not also recycle a bucket, which
            // keeps the models small enough to check exhaustively.
            .sliding_window(SlidingWindow::count(2).with_buckets(1))
            .minimum_calls(1)
            .failure_rate_threshold(50.0)
            .wait_in_open(Duration::ZERO)
            .permitted_calls_in_half_open(1)
            .build()
            .expect("valid"),
    )
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}

/// Takes a probe, checks nobody else holds one, and gives it back with `outcome`
/// (or cancels it).
fn probe(b: &CircuitBreaker, held: &AtomicUsize, outcome: Option<Outcome>) -> bool {
    let Ok(permit) = b.try_acquire() else {
        return false;
    };
    let is_probe = permit.is_probe();
    if is_probe {
        let before = held.fetch_add(1, Ordering::SeqCst);
        assert_eq!(before, 0, "two half-open probes out at once");
        held.fetch_sub(1, Ordering::SeqCst);
    }
    match outcome {
        Some(outcome) => permit.record(outcome, Duration::ZERO),
        None => drop(permit),
    }
    is_probe
}

/// One thread fails a call, tripping the breaker, then asks again (moving it to
/// half-open and taking the single probe); the other thread calls at the same time
/// and may be admitted closed, rejected, or race for the probe.
#[test]
fn closed_open_half_open_permit_race() {
    model(|| {
        let b = breaker();
        let held = Arc::new(AtomicUsize::new(0));
        let other = {
            let (b, held) = (b.clone(), Arc::clone(&held));
            thread::spawn(move || probe(&b, &held, Some(Outcome::Success)))
        };
        b.try_acquire()
            .expect("nothing can open it before this call")
            .record(Outcome::Failure, Duration::ZERO);
        let mine = probe(&b, &held, Some(Outcome::Success));
        let theirs = other.join().expect("thread");
        let snap = b.snapshot();
        assert_eq!(snap.totals.attempted(), 3);
        assert!(mine || theirs, "after the trip someone must have probed");
        if let Some(p) = snap.half_open {
            panic!("still half-open after every probe succeeded: {p:?}");
        }
        assert_eq!(
            snap.state,
            BreakerState::Closed,
            "the successful probe closes it"
        );
    });
}

/// A cancelled probe and a new caller race: the place is freed exactly once and never
/// shared.
#[test]
fn cancelled_probe_frees_its_place_once() {
    model(|| {
        let b = breaker();
        b.try_acquire()
            .expect("closed")
            .record(Outcome::Failure, Duration::ZERO);
        let held = Arc::new(AtomicUsize::new(0));
        let t = {
            let (b, held) = (b.clone(), Arc::clone(&held));
            thread::spawn(move || probe(&b, &held, None))
        };
        let mine = probe(&b, &held, Some(Outcome::Failure));
        let theirs = t.join().expect("thread");
        assert!(mine || theirs);
        let snap = b.snapshot();
        if let Some(p) = snap.half_open {
            assert_eq!(p.outstanding, 0, "every probe was given back");
        }
    });
}

/// An operator reset races with a trip and a probe: the state ends consistent and a
/// reset is never lost.
#[test]
fn reset_races_with_trip_and_probe() {
    model(|| {
        let b = breaker();
        let held = Arc::new(AtomicUsize::new(0));
        let t = {
            let (b, held) = (b.clone(), Arc::clone(&held));
            thread::spawn(move || {
                if let Ok(p) = b.try_acquire() {
                    p.record(Outcome::Failure, Duration::ZERO);
                }
                probe(&b, &held, Some(Outcome::Failure));
            })
        };
        b.reset();
        t.join().expect("thread");
        let state = b.state();
        assert!(
            matches!(
                state,
                BreakerState::Closed | BreakerState::Open | BreakerState::HalfOpen
            ),
            "{state}"
        );
        if let Some(p) = b.snapshot().half_open {
            assert_eq!(p.outstanding, 0);
        }
        b.reset();
        assert_eq!(b.state(), BreakerState::Closed);
    });
}
