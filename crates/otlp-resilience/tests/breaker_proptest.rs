//! Circuit breaker property: whatever the interleaving of acquire, record, drop, operator
//! actions and time advances, a half-open breaker never has more than N probes out, and
//! it admits exactly N (it only rejects once N are out or done).

use std::time::Duration;

use otlp_resilience::breaker::{
    BreakerState, CircuitBreaker, CircuitBreakerConfig, Permit, SlidingWindow,
};
use otlp_resilience::classify::Outcome;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Record {
        which: usize,
        outcome: Outcome,
        slow: bool,
    },
    Drop {
        which: usize,
    },
    Advance {
        millis: u64,
    },
    ForceOpen,
    Reset,
    Disable,
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => Just(Outcome::Success),
        6 => Just(Outcome::Failure),
        1 => Just(Outcome::Ignored),
    ]
}

/// Weighted so that most cases reach half-open periods, some several times.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => Just(Op::Acquire),
        30 => (any::<usize>(), outcome(), any::<bool>())
            .prop_map(|(which, outcome, slow)| Op::Record { which, outcome, slow }),
        6 => any::<usize>().prop_map(|which| Op::Drop { which }),
        12 => (0u64..1500).prop_map(|millis| Op::Advance { millis }),
        1 => Just(Op::ForceOpen),
        1 => Just(Op::Reset),
        1 => Just(Op::Disable),
    ]
}

struct Held<'a> {
    permit: Permit<'a>,
    /// The half-open period the probe was admitted in (None: not a probe).
    period: Option<u64>,
}

fn run(probes: u32, minimum_calls: u32, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    runtime.block_on(async move {
        let breaker = CircuitBreaker::new(
            CircuitBreakerConfig::builder()
                .sliding_window(SlidingWindow::count(4))
                .minimum_calls(minimum_calls)
                .failure_rate_threshold(50.0)
                .slow_call_duration(Duration::from_millis(100))
                .slow_call_rate_threshold(50.0)
                .wait_in_open(Duration::from_secs(1))
                .permitted_calls_in_half_open(probes)
                .event_capacity(4096)
                .build()
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
        let mut events = breaker.subscribe();
        let mut held: Vec<Held<'_>> = Vec::new();
        // The current half-open period and how many of its probes finished (a success
        // or a failure; ignored and cancelled probes free their place).
        let mut period = 0u64;
        let mut completed = 0u32;

        for op in ops {
            let mut admitted = None;
            match op {
                Op::Acquire => match breaker.try_acquire() {
                    Ok(permit) => admitted = Some(permit),
                    Err(open) if open.state == BreakerState::HalfOpen => {
                        let out = held.iter().filter(|h| h.period == Some(period)).count();
                        prop_assert_eq!(
                            out as u32 + completed,
                            probes,
                            "rejected in half-open before N probes were out or done"
                        );
                    }
                    Err(_) => {}
                },
                Op::Record {
                    which,
                    outcome,
                    slow,
                } if !held.is_empty() => {
                    let h = held.swap_remove(which % held.len());
                    if h.period == Some(period) && outcome != Outcome::Ignored {
                        completed += 1;
                    }
                    let elapsed = Duration::from_millis(if slow { 500 } else { 1 });
                    h.permit.record(outcome, elapsed);
                }
                Op::Drop { which } if !held.is_empty() => {
                    drop(held.swap_remove(which % held.len()));
                }
                Op::Advance { millis } => tokio::time::advance(Duration::from_millis(millis)).await,
                Op::ForceOpen => breaker.force_open(),
                Op::Reset => breaker.reset(),
                Op::Disable => breaker.disable(),
                Op::Record { .. } | Op::Drop { .. } => {}
            }
            // Transitions caused by this op (an acquire may open a half-open period).
            while let Ok(event) = events.try_recv() {
                if event.to == BreakerState::HalfOpen {
                    period += 1;
                    completed = 0;
                }
            }
            if let Some(permit) = admitted {
                let is_probe = permit.is_probe();
                prop_assert_eq!(is_probe, breaker.state() == BreakerState::HalfOpen);
                held.push(Held {
                    period: is_probe.then_some(period),
                    permit,
                });
            }

            let out = held.iter().filter(|h| h.period == Some(period)).count() as u32;
            if breaker.state() == BreakerState::HalfOpen {
                prop_assert!(out <= probes, "{out} probes out, {probes} permitted");
                prop_assert!(out + completed <= probes);
                let snap = breaker.snapshot().half_open.expect("half-open snapshot");
                prop_assert_eq!(snap.outstanding, out);
                prop_assert_eq!(snap.completed, completed);
            }
        }
        let totals = breaker.snapshot().totals;
        prop_assert!(totals.attempted() >= totals.success + totals.failure);
        drop(held);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn half_open_never_exceeds_the_permitted_probes(
        probes in 1u32..5,
        minimum_calls in 1u32..4,
        ops in prop::collection::vec(op(), 1..150),
    ) {
        run(probes, minimum_calls, ops)?;
    }
}
