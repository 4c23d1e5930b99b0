//! Canary split: promotion through every step, rollbacks on error rate and latency,
//! the hold and minimum-call gates, the traffic distribution and the decision history.
//! Time is paused and advanced explicitly, so every test is deterministic.

use std::time::Duration;

use otlp_degradation::canary::{
    CanaryConfig, CanaryConfigError, CanaryDecision, CanarySplit, CanaryState, DecisionKind,
    DecisionReason, LatencyStatistic, Target,
};
use tokio::time::advance;

const MS: Duration = Duration::from_millis(1);

fn config() -> CanaryConfig {
    CanaryConfig {
        steps: vec![0.01, 0.05, 0.25, 0.5, 1.0],
        step_hold: Duration::from_secs(10),
        min_calls_per_step: 20,
        min_calls_to_judge: 10,
        seed: Some(42),
        ..CanaryConfig::default()
    }
}

/// Record `n` calls to `target`, all succeeding with `latency` except every
/// `fail_every`-th (0: none fails). The decisions they caused.
fn calls(
    split: &CanarySplit,
    target: Target,
    n: u64,
    fail_every: u64,
    latency: Duration,
) -> Vec<CanaryDecision> {
    (1..=n)
        .filter_map(|i| {
            let success = fail_every == 0 || i % fail_every != 0;
            split.record(target, success, latency)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn healthy_canary_is_promoted_through_every_step() {
    let split = CanarySplit::new(config()).unwrap();
    let steps = split.config().steps.clone();
    for (step, &weight) in steps.iter().enumerate() {
        assert_eq!(split.state(), CanaryState::Stepping { step });
        assert_eq!(split.weight(), weight);
        // At 100 % the stable target gets no traffic; the canary is judged against the
        // baseline the earlier steps left.
        if weight < 1.0 {
            assert!(calls(&split, Target::Stable, 200, 50, 10 * MS).is_empty());
        }
        // Enough canary calls, but the step has not been held long enough yet.
        assert!(calls(&split, Target::Canary, 30, 50, 11 * MS).is_empty());
        advance(Duration::from_secs(10)).await;
        let decision = split
            .record(Target::Canary, true, 11 * MS)
            .expect("the step passed on the next call");
        assert_eq!(decision.from_step, step);
        assert_eq!(decision.from_weight, weight);
        assert_eq!(
            decision.reason,
            DecisionReason::StepPassed {
                held: Duration::from_secs(10)
            }
        );
        assert_eq!(decision.canary.calls, 31);
        if step + 1 < steps.len() {
            assert_eq!(decision.kind, DecisionKind::Advanced);
            assert_eq!(decision.to_step, step + 1);
            assert_eq!(decision.to_weight, steps[step + 1]);
        } else {
            assert_eq!(decision.kind, DecisionKind::Promoted);
            assert_eq!(decision.to_weight, 1.0);
            // The last step was judged against the stable numbers of the step before.
            assert_eq!(decision.stable.calls, 200);
            assert_eq!(decision.stable.errors, 4);
        }
    }
    assert_eq!(split.state(), CanaryState::Promoted);
    assert_eq!(split.weight(), 1.0);
    assert!((0..1000).all(|_| split.pick() == Target::Canary));
    // Nothing moves a promoted split any more.
    assert!(calls(&split, Target::Canary, 100, 1, 500 * MS).is_empty());
    assert_eq!(split.state(), CanaryState::Promoted);

    let kinds: Vec<DecisionKind> = split.history().iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            DecisionKind::Started,
            DecisionKind::Advanced,
            DecisionKind::Advanced,
            DecisionKind::Advanced,
            DecisionKind::Advanced,
            DecisionKind::Promoted
        ]
    );
    let snapshot = split.snapshot();
    assert_eq!(snapshot.canary_calls_total, 5 * 31 + 100);
    assert_eq!(snapshot.canary_errors_total, 100);
    assert_eq!(snapshot.stable_calls_total, 4 * 200);
    assert_eq!(snapshot.stable_errors_total, 4 * 4);
}

#[tokio::test(start_paused = true)]
async fn error_rate_regression_rolls_back_at_once() {
    let split = CanarySplit::new(config()).unwrap();
    let started = tokio::time::Instant::now();
    // Stable: 2 % errors. Canary: 20 % errors.
    assert!(calls(&split, Target::Stable, 500, 50, 10 * MS).is_empty());
    advance(Duration::from_secs(1)).await;
    // Not judged before min_calls_to_judge (10) canary calls, however bad they are.
    assert!(calls(&split, Target::Canary, 9, 1, 10 * MS).is_empty());
    assert_eq!(split.state(), CanaryState::Stepping { step: 0 });
    let decision = split
        .record(Target::Canary, true, 10 * MS)
        .expect("judged at the 10th canary call, long before the step ends");
    assert_eq!(decision.kind, DecisionKind::RolledBack);
    assert_eq!(decision.at - started, Duration::from_secs(1));
    assert_eq!((decision.from_weight, decision.to_weight), (0.01, 0.0));
    assert_eq!((decision.canary.calls, decision.canary.errors), (10, 9));
    assert_eq!((decision.stable.calls, decision.stable.errors), (500, 10));
    match decision.reason {
        DecisionReason::ErrorRateRegression {
            canary,
            stable,
            max_increase,
        } => {
            assert!((canary - 0.9).abs() < 1e-9, "{canary}");
            assert!((stable - 0.02).abs() < 1e-9, "{stable}");
            assert_eq!(max_increase, 0.05);
        }
        other => panic!("{other:?}"),
    }
    assert!(decision.reason.to_string().contains("90.00 %"));
    assert_eq!(split.state(), CanaryState::RolledBack);
    assert_eq!(split.weight(), 0.0);
    assert!((0..1000).all(|_| split.pick() == Target::Stable));
    assert!(
        (0..1000)
            .map(|k| split.pick_for_key(&k))
            .all(|t| t == Target::Stable)
    );
    // Later calls change nothing, but are counted.
    advance(Duration::from_secs(60)).await;
    assert!(calls(&split, Target::Canary, 100, 0, MS).is_empty());
    assert_eq!(split.evaluate(), None);
    assert_eq!(split.history().len(), 2);
    assert_eq!(split.snapshot().canary_calls_total, 110);
}

#[tokio::test(start_paused = true)]
async fn small_error_rate_increase_is_tolerated() {
    let split = CanarySplit::new(config()).unwrap();
    // Stable 2 %, canary 5 %: 3 points worse, within the allowed 5.
    assert!(calls(&split, Target::Stable, 500, 50, 10 * MS).is_empty());
    assert!(calls(&split, Target::Canary, 100, 20, 10 * MS).is_empty());
    advance(Duration::from_secs(10)).await;
    let decision = split.evaluate().expect("promoted by the timer check");
    assert_eq!(decision.kind, DecisionKind::Advanced);
    assert_eq!(split.state(), CanaryState::Stepping { step: 1 });
}

#[tokio::test(start_paused = true)]
async fn latency_regression_rolls_back() {
    let split = CanarySplit::new(config()).unwrap();
    assert!(calls(&split, Target::Stable, 100, 0, 10 * MS).is_empty());
    let decisions = calls(&split, Target::Canary, 50, 0, 40 * MS);
    assert_eq!(decisions.len(), 1, "one rollback, then nothing");
    let decision = &decisions[0];
    assert_eq!(decision.kind, DecisionKind::RolledBack);
    assert_eq!(decision.canary.calls, 10);
    match decision.reason {
        DecisionReason::LatencyRegression {
            canary,
            stable,
            ratio,
            max_ratio,
        } => {
            // The histogram reads within about 6 %.
            assert!(canary >= 38 * MS && canary <= 41 * MS, "{canary:?}");
            assert!(stable >= 9 * MS && stable <= 11 * MS, "{stable:?}");
            assert!((3.5..4.5).contains(&ratio), "{ratio}");
            assert_eq!(max_ratio, 1.5);
        }
        ref other => panic!("{other:?}"),
    }
    assert_eq!(split.state(), CanaryState::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn latency_within_slack_or_ratio_is_not_a_regression() {
    let split = CanarySplit::new(CanaryConfig {
        latency_statistic: LatencyStatistic::Mean,
        ..config()
    })
    .unwrap();
    // 3x slower, but only by 2 ms (slack 5 ms): noise, not a regression.
    assert!(calls(&split, Target::Stable, 100, 0, MS).is_empty());
    assert!(calls(&split, Target::Canary, 20, 0, 3 * MS).is_empty());
    advance(Duration::from_secs(10)).await;
    assert_eq!(split.evaluate().unwrap().kind, DecisionKind::Advanced);
    // 1.4x slower by 40 ms: beyond the slack but within the ratio.
    assert!(calls(&split, Target::Stable, 100, 0, 100 * MS).is_empty());
    assert!(calls(&split, Target::Canary, 20, 0, 140 * MS).is_empty());
    assert_eq!(split.state(), CanaryState::Stepping { step: 1 });
    // A slow tail moves the mean past 1.5x: rolled back.
    let decisions = calls(&split, Target::Canary, 20, 0, 400 * MS);
    assert_eq!(decisions.len(), 1);
    assert!(matches!(
        decisions[0].reason,
        DecisionReason::LatencyRegression { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn latency_at_full_traffic_is_judged_against_the_baseline() {
    let split = CanarySplit::new(CanaryConfig {
        steps: vec![0.5, 1.0],
        ..config()
    })
    .unwrap();
    assert!(calls(&split, Target::Stable, 20, 0, 10 * MS).is_empty());
    assert!(calls(&split, Target::Canary, 20, 0, 10 * MS).is_empty());
    advance(Duration::from_secs(10)).await;
    assert_eq!(split.evaluate().unwrap().kind, DecisionKind::Advanced);
    assert_eq!(split.snapshot().baseline.map(|b| b.calls), Some(20));
    // At 100 % the stable target sees no calls; the canary is slow.
    let decisions = calls(&split, Target::Canary, 10, 0, 30 * MS);
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].kind, DecisionKind::RolledBack);
    assert_eq!(decisions[0].from_step, 1);
    assert_eq!(decisions[0].from_weight, 1.0);
    assert_eq!(decisions[0].stable.calls, 20);
}

#[tokio::test(start_paused = true)]
async fn step_waits_for_both_its_hold_time_and_its_minimum_calls() {
    let split = CanarySplit::new(config()).unwrap();
    assert!(calls(&split, Target::Stable, 100, 0, 10 * MS).is_empty());
    // Held long enough, too few canary calls.
    advance(Duration::from_secs(60)).await;
    assert!(calls(&split, Target::Canary, 19, 0, 10 * MS).is_empty());
    assert_eq!(split.evaluate(), None);
    assert_eq!(split.state(), CanaryState::Stepping { step: 0 });
    // The 20th call completes the step.
    let decision = split.record(Target::Canary, true, 10 * MS).unwrap();
    assert_eq!(decision.kind, DecisionKind::Advanced);
    assert_eq!(
        decision.reason,
        DecisionReason::StepPassed {
            held: Duration::from_secs(60)
        }
    );

    // Next step: plenty of calls at once, but the hold time restarts with the step.
    assert!(calls(&split, Target::Stable, 100, 0, 10 * MS).is_empty());
    assert!(calls(&split, Target::Canary, 100, 0, 10 * MS).is_empty());
    advance(Duration::from_millis(9_999)).await;
    assert_eq!(split.evaluate(), None);
    assert!(calls(&split, Target::Canary, 5, 0, 10 * MS).is_empty());
    assert_eq!(split.state(), CanaryState::Stepping { step: 1 });
    advance(MS).await;
    assert_eq!(split.evaluate().unwrap().to_step, 2);
    // The new step's windows start empty.
    let snapshot = split.snapshot();
    assert_eq!((snapshot.canary.calls, snapshot.stable.calls), (0, 0));
    assert_eq!(snapshot.weight, 0.25);
}

#[tokio::test(start_paused = true)]
async fn operator_roll_back() {
    let split = CanarySplit::new(config()).unwrap();
    let decision = split.roll_back("upstream team asked").unwrap();
    assert_eq!(decision.kind, DecisionKind::RolledBack);
    assert_eq!(
        decision.reason,
        DecisionReason::Operator("upstream team asked".into())
    );
    assert_eq!(split.state(), CanaryState::RolledBack);
    assert_eq!(split.roll_back("again"), None, "already over");
}

/// Binomial bound: `count` of `n` draws at probability `p` lies within 6 standard
/// deviations of `n p` (false failure odds about 1e-9 for a truly fair draw).
fn assert_near(count: u64, n: u64, p: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (count as f64 - mean).abs() <= 6.0 * sd + 1.0,
        "{count} of {n} at p = {p} (expected {mean:.0} +- {:.0})",
        6.0 * sd
    );
}

#[tokio::test(start_paused = true)]
async fn picks_follow_the_weight() {
    for seed in [1, 2, 3] {
        let split = CanarySplit::new(CanaryConfig {
            steps: vec![0.01, 0.05, 0.25, 0.5],
            step_hold: Duration::ZERO,
            min_calls_per_step: 1,
            min_calls_to_judge: 1,
            seed: Some(seed),
            ..config()
        })
        .unwrap();
        let n = 100_000;
        for weight in [0.01, 0.05, 0.25, 0.5] {
            assert_eq!(split.weight(), weight);
            let canary = (0..n).filter(|_| split.pick() == Target::Canary).count() as u64;
            assert_near(canary, n, weight);
            let keyed = (0..n)
                .filter(|k| split.pick_for_key(k) == Target::Canary)
                .count() as u64;
            assert_near(keyed, n, weight);
            split.record(Target::Canary, true, MS).unwrap();
        }
        assert_eq!(split.state(), CanaryState::Promoted);
    }
}

#[tokio::test(start_paused = true)]
async fn keyed_picks_are_stable_and_only_grow_toward_the_canary() {
    let split = CanarySplit::new(CanaryConfig {
        steps: vec![0.1, 0.5],
        step_hold: Duration::ZERO,
        min_calls_per_step: 1,
        min_calls_to_judge: 1,
        seed: Some(9),
        ..config()
    })
    .unwrap();
    let keys: Vec<String> = (0..10_000).map(|i| format!("tenant-{i}")).collect();
    let at_10: Vec<Target> = keys
        .iter()
        .map(|k| split.pick_for_key(k.as_str()))
        .collect();
    // Another split (another gateway instance) with another seed agrees key by key.
    let other = CanarySplit::new(CanaryConfig {
        seed: Some(10),
        ..split.config().clone()
    })
    .unwrap();
    assert!(
        keys.iter()
            .zip(&at_10)
            .all(|(k, t)| other.pick_for_key(k.as_str()) == *t)
    );
    split.record(Target::Canary, true, MS).unwrap();
    assert_eq!(split.weight(), 0.5);
    let at_50: Vec<Target> = keys
        .iter()
        .map(|k| split.pick_for_key(k.as_str()))
        .collect();
    for (before, after) in at_10.iter().zip(&at_50) {
        if *before == Target::Canary {
            assert_eq!(*after, Target::Canary, "a canary key moved back to stable");
        }
    }
    let moved = at_50.iter().filter(|t| **t == Target::Canary).count() as u64;
    assert_near(moved, keys.len() as u64, 0.5);
}

#[tokio::test(start_paused = true)]
async fn history_is_bounded_and_carries_the_numbers() {
    let split = CanarySplit::new(CanaryConfig {
        steps: vec![0.1, 0.2, 0.3, 0.4],
        step_hold: Duration::from_secs(1),
        min_calls_per_step: 10,
        history_len: 3,
        ..config()
    })
    .unwrap();
    for _ in 0..3 {
        calls(&split, Target::Stable, 30, 10, 20 * MS);
        calls(&split, Target::Canary, 10, 0, 20 * MS);
        advance(Duration::from_secs(1)).await;
        assert_eq!(split.evaluate().unwrap().kind, DecisionKind::Advanced);
    }
    calls(&split, Target::Stable, 30, 0, 20 * MS);
    let rollback = calls(&split, Target::Canary, 10, 2, 20 * MS);
    assert_eq!(rollback.len(), 1);

    let history = split.history();
    assert_eq!(
        history.len(),
        3,
        "Started and the first Advanced were dropped"
    );
    let steps: Vec<(DecisionKind, usize, usize)> = history
        .iter()
        .map(|d| (d.kind, d.from_step, d.to_step))
        .collect();
    assert_eq!(
        steps,
        [
            (DecisionKind::Advanced, 1, 2),
            (DecisionKind::Advanced, 2, 3),
            (DecisionKind::RolledBack, 3, 3)
        ]
    );
    let advanced = &history[0];
    assert_eq!((advanced.from_weight, advanced.to_weight), (0.2, 0.3));
    assert_eq!((advanced.stable.calls, advanced.stable.errors), (30, 3));
    assert_eq!((advanced.canary.calls, advanced.canary.errors), (10, 0));
    assert!(history.windows(2).all(|pair| pair[0].at <= pair[1].at));
    let last = &history[2];
    assert_eq!(*last, rollback[0]);
    assert_eq!((last.canary.calls, last.canary.errors), (10, 5));
    assert_eq!(last.stable.error_rate, 0.0);
    assert_eq!(
        last.reason.to_string(),
        "canary error rate 50.00 % exceeds stable 0.00 % by more than 5.00 points"
    );
}

#[test]
fn config_errors_name_the_field() {
    let bad = |change: fn(&mut CanaryConfig)| {
        let mut c = CanaryConfig::default();
        change(&mut c);
        c.validate().unwrap_err()
    };
    assert_eq!(CanaryConfig::default().validate(), Ok(()));
    let cases: Vec<(CanaryConfigError, &str)> = vec![
        (bad(|c| c.steps.clear()), "canary.steps"),
        (bad(|c| c.steps = vec![0.0, 1.0]), "canary.steps[0]"),
        (bad(|c| c.steps = vec![0.5, 1.5]), "canary.steps[1]"),
        (bad(|c| c.steps = vec![f64::NAN]), "canary.steps[0]"),
        (bad(|c| c.steps = vec![0.5, 0.5]), "canary.steps[1]"),
        (
            bad(|c| c.min_calls_per_step = 0),
            "canary.min_calls_per_step",
        ),
        (
            bad(|c| c.min_calls_to_judge = 0),
            "canary.min_calls_to_judge",
        ),
        (
            bad(|c| c.max_error_rate_increase = 5.0),
            "canary.max_error_rate_increase",
        ),
        (
            bad(|c| c.max_latency_ratio = 0.9),
            "canary.max_latency_ratio",
        ),
        (
            bad(|c| c.max_latency_ratio = f64::INFINITY),
            "canary.max_latency_ratio",
        ),
        (
            bad(|c| c.latency_statistic = LatencyStatistic::Quantile(0.0)),
            "canary.latency_statistic",
        ),
        (bad(|c| c.history_len = 0), "canary.history_len"),
    ];
    for (error, field) in cases {
        let message = error.to_string();
        assert!(
            message.starts_with(field),
            "{message:?} should name {field}"
        );
    }
    assert!(matches!(
        bad(|c| c.steps = vec![0.5, 0.25]),
        CanaryConfigError::StepsNotIncreasing {
            index: 1,
            value: 0.25
        }
    ));
    assert!(
        CanarySplit::new(CanaryConfig {
            steps: vec![],
            ..CanaryConfig::default()
        })
        .is_err()
    );
}
