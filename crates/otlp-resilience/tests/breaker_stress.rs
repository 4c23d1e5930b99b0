//! Circuit breaker under many tasks on a multi-thread runtime: bounded work, no sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlp_resilience::breaker::{
    BreakerState, CircuitBreaker, CircuitBreakerConfig, SlidingWindow, TransitionReason,
};
use otlp_resilience::classify::Outcome;
use tokio::sync::{Barrier, broadcast};

const TASKS: u64 = 64;
const OPS: u64 = 2_000;
const PROBES: u32 = 3;

#[derive(Default)]
struct Tally {
    success: AtomicU64,
    failure: AtomicU64,
    ignored: AtomicU64,
    rejected: AtomicU64,
    cancelled: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_add_up_and_events_form_one_chain() {
    // 2 calls a bucket: every success goes to the window at once.
    run(SlidingWindow::count(20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_add_up_with_batched_successes() {
    // 40 calls a bucket: threads add successes to the window 16 at a time.
    run(SlidingWindow::count(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_add_up_with_a_time_window() {
    run(SlidingWindow::time(Duration::from_millis(50))).await;
}

async fn run(window: SlidingWindow) {
    let breaker = CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            .name("stress")
            .sliding_window(window)
            .minimum_calls(5)
            .failure_rate_threshold(50.0)
            // No wait: an open breaker goes half-open on the next call, so the run
            // cycles through every state many times.
            .wait_in_open(Duration::ZERO)
            .permitted_calls_in_half_open(PROBES)
            .event_capacity(1 << 17)
            .build()
            .expect("valid"),
    );
    let mut rx = breaker.subscribe();
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        loop {
            match rx.recv().await {
                Ok(event) => events.push(event),
                Err(broadcast::error::RecvError::Closed) => return Ok(events),
                Err(broadcast::error::RecvError::Lagged(n)) => return Err(n),
            }
        }
    });

    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for seed in 0..TASKS {
        let breaker = breaker.clone();
        let tally = Arc::clone(&tally);
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            for op in 0..OPS {
                let permit = match breaker.try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => {
                        add(&tally.rejected);
                        continue;
                    }
                };
                if rng.u8(..4) == 0 {
                    tokio::task::yield_now().await;
                }
                // Alternate unhealthy and healthy phases.
                let failure_percent = if (op / 250) % 2 == 0 { 80 } else { 10 };
                let roll = rng.u8(..100);
                if roll < 5 {
                    add(&tally.cancelled);
                    drop(permit);
                } else if roll < 10 {
                    add(&tally.ignored);
                    permit.complete(Outcome::Ignored);
                } else if rng.u8(..100) < failure_percent {
                    add(&tally.failure);
                    permit.complete(Outcome::Failure);
                } else {
                    add(&tally.success);
                    permit.complete(Outcome::Success);
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }

    let snapshot = breaker.snapshot();
    let totals = snapshot.totals;
    assert_eq!(totals.attempted(), TASKS * OPS);
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert_eq!(totals.success, load(&tally.success));
    assert_eq!(totals.failure, load(&tally.failure));
    assert_eq!(totals.ignored, load(&tally.ignored));
    assert_eq!(totals.rejected, load(&tally.rejected));
    assert_eq!(totals.cancelled, load(&tally.cancelled));
    if let Some(probes) = snapshot.half_open {
        assert!(probes.outstanding == 0 && probes.completed <= PROBES);
    }

    drop(breaker);
    let events = collector
        .await
        .expect("collector")
        .unwrap_or_else(|lagged| panic!("subscriber lagged by {lagged}"));
    assert!(events.len() > 2, "only {} transitions", events.len());
    assert_eq!(events[0].from, BreakerState::Closed);
    for pair in events.windows(2) {
        assert_eq!(pair[0].to, pair[1].from, "{:?} then {:?}", pair[0], pair[1]);
    }
    assert_eq!(events.last().map(|e| e.to), Some(snapshot.state));
    for event in &events {
        match event.reason {
            TransitionReason::ProbesSucceeded { completed, .. }
            | TransitionReason::ProbesFailed { completed, .. } => {
                assert!(completed <= PROBES)
            }
            _ => {}
        }
    }
    let half_opens = events
        .iter()
        .filter(|e| e.to == BreakerState::HalfOpen)
        .count();
    assert!(half_opens > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_get_exactly_the_permitted_probes() {
    for _round in 0..20 {
        let breaker = CircuitBreaker::new(
            CircuitBreakerConfig::builder()
                .minimum_calls(1)
                .wait_in_open(Duration::ZERO)
                .permitted_calls_in_half_open(PROBES)
                .build()
                .expect("valid"),
        );
        breaker
            .try_acquire()
            .expect("closed")
            .record(Outcome::Failure, Duration::ZERO);
        assert_eq!(breaker.state(), BreakerState::Open);

        // Every task asks at once and holds what it gets until all have asked.
        let asked = Arc::new(Barrier::new(TASKS as usize));
        let start = Arc::new(Barrier::new(TASKS as usize));
        let admitted = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let (breaker, asked, start, admitted) = (
                breaker.clone(),
                Arc::clone(&asked),
                Arc::clone(&start),
                Arc::clone(&admitted),
            );
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let permit = breaker.try_acquire_owned().ok();
                if let Some(p) = &permit {
                    assert!(p.is_probe());
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
                asked.wait().await;
                drop(permit);
            }));
        }
        for task in tasks {
            task.await.expect("task");
        }
        assert_eq!(admitted.load(Ordering::Relaxed), u64::from(PROBES));
        let totals = breaker.snapshot().totals;
        assert_eq!(totals.rejected, TASKS - u64::from(PROBES));
        assert_eq!(totals.cancelled, u64::from(PROBES));
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
    }
}
