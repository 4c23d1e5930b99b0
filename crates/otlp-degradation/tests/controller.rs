//! The controller's rules, with paused time and scripted trigger readings.

use std::time::Duration;

use otlp_degradation::DegradationLevel::{self, Emergency, Heavy, Light, Moderate, Normal};
use otlp_degradation::controller::{
    ControlMode, Controller, ControllerError, ControllerSnapshot, DegradationHandle,
    TransitionReason,
};
use otlp_degradation::trigger::{ThresholdProblem, Thresholds};
use tokio::time::Instant;

mod support;

use support::scripted::{Feed, scripted, thresholds};

const COOL_DOWN: Duration = Duration::from_secs(10);
const SECOND: Duration = Duration::from_secs(1);

/// A controller with one scripted trigger named `load`.
fn one_trigger() -> (Controller, Feed) {
    let (trigger, feed) = scripted("load");
    let controller = Controller::builder()
        .cool_down(COOL_DOWN)
        .trigger(trigger, thresholds())
        .build()
        .unwrap();
    (controller, feed)
}

/// Advance the paused clock by `by` and evaluate.
async fn step(controller: &mut Controller, by: Duration) -> DegradationLevel {
    tokio::time::advance(by).await;
    controller.evaluate_once(Instant::now())
}

/// Evaluate once a second for `seconds` seconds; the level after each evaluation.
async fn run(controller: &mut Controller, seconds: usize) -> Vec<DegradationLevel> {
    let mut levels = Vec::with_capacity(seconds);
    for _ in 0..seconds {
        levels.push(step(controller, SECOND).await);
    }
    levels
}

fn levels_of(handle: &DegradationHandle) -> Vec<(DegradationLevel, DegradationLevel)> {
    handle.history().iter().map(|t| (t.from, t.to)).collect()
}

#[tokio::test(start_paused = true)]
async fn escalation_jumps_straight_to_the_asked_level() {
    let (mut controller, feed) = one_trigger();
    let handle = controller.handle();
    assert_eq!(controller.evaluate_once(Instant::now()), Normal);

    feed.set(35.0);
    assert_eq!(step(&mut controller, SECOND).await, Heavy);
    assert_eq!(handle.level(), Heavy);
    let history = handle.history();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].from, history[0].to), (Normal, Heavy));
    assert_eq!(
        history[0].reason,
        TransitionReason::Escalated {
            trigger: "load".to_owned(),
            reading: 35.0,
            threshold: 30.0
        }
    );

    // Escalation ignores the cool-down: one second later Emergency is taken at once.
    feed.set(41.0);
    assert_eq!(step(&mut controller, SECOND).await, Emergency);
    assert_eq!(
        levels_of(&handle),
        vec![(Normal, Heavy), (Heavy, Emergency)]
    );
}

#[tokio::test(start_paused = true)]
async fn every_level_is_reached_at_its_threshold_and_not_below_it() {
    for (level, threshold) in [
        (Light, 10.0),
        (Moderate, 20.0),
        (Heavy, 30.0),
        (Emergency, 40.0),
    ] {
        let (mut controller, feed) = one_trigger();
        feed.set(threshold - 0.001);
        assert_eq!(
            controller.evaluate_once(Instant::now()),
            level.down(),
            "just below {level}"
        );
        feed.set(threshold);
        assert_eq!(
            step(&mut controller, SECOND).await,
            level,
            "at the {level} threshold"
        );
        let history = controller.handle().history();
        assert_eq!(history.last().map(|t| t.to), Some(level));
    }
    // And each step up from every lower level.
    for from in [Light, Moderate, Heavy] {
        for to in DegradationLevel::ALL.into_iter().filter(|&l| l > from) {
            let (mut controller, feed) = one_trigger();
            feed.set(10.0 * from.index() as f64);
            assert_eq!(controller.evaluate_once(Instant::now()), from);
            feed.set(10.0 * to.index() as f64 + 1.0);
            assert_eq!(step(&mut controller, SECOND).await, to);
            assert_eq!(
                levels_of(&controller.handle()),
                vec![(Normal, from), (from, to)]
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn recovery_steps_down_one_level_per_cool_down() {
    let (mut controller, feed) = one_trigger();
    let handle = controller.handle();
    feed.set(45.0);
    let start = Instant::now();
    assert_eq!(controller.evaluate_once(start), Emergency);

    feed.set(0.0);
    let levels = run(&mut controller, 60).await;
    // The first calm evaluation is at 1 s; each step needs a full cool-down of calm.
    let changes: Vec<(usize, DegradationLevel)> = levels
        .iter()
        .enumerate()
        .filter(|&(i, level)| i == 0 || levels[i - 1] != *level)
        .map(|(i, &level)| (i + 1, level))
        .collect();
    assert_eq!(
        changes,
        vec![
            (1, Emergency),
            (11, Heavy),
            (21, Moderate),
            (31, Light),
            (41, Normal)
        ]
    );
    let history = handle.history();
    assert_eq!(history.len(), 5);
    for (transition, at) in history[1..].iter().zip([11u64, 21, 31, 41]) {
        assert_eq!(transition.to, transition.from.down(), "one level at a time");
        assert_eq!(transition.at, start + Duration::from_secs(at));
        assert!(
            matches!(transition.reason, TransitionReason::Recovered { calm_for } if calm_for >= COOL_DOWN)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn cool_down_is_respected_and_restarts_when_calm_is_broken() {
    let (mut controller, feed) = one_trigger();
    feed.set(25.0);
    controller.evaluate_once(Instant::now());
    assert_eq!(controller.level(), Moderate);

    feed.set(0.0);
    let levels = run(&mut controller, 10).await;
    assert!(
        levels.iter().all(|&l| l == Moderate),
        "no recovery within the cool-down: {levels:?}"
    );
    assert_eq!(
        step(&mut controller, SECOND).await,
        Light,
        "recovers once calm for 10 s"
    );

    // At Light: calm for 6 s, one reading at the recovery threshold (5, not below), calm again.
    let levels = run(&mut controller, 6).await;
    assert!(levels.iter().all(|&l| l == Light));
    feed.set(5.0);
    assert_eq!(step(&mut controller, SECOND).await, Light);
    feed.set(0.0);
    let levels = run(&mut controller, 11).await;
    assert_eq!(
        &levels[..10],
        &[Light; 10],
        "the broken calm restarted the cool-down"
    );
    assert_eq!(levels[10], Normal);
}

#[tokio::test(start_paused = true)]
async fn a_reading_between_recovery_and_escalate_thresholds_holds_the_level() {
    let (mut controller, feed) = one_trigger();
    feed.set(22.0);
    controller.evaluate_once(Instant::now());
    assert_eq!(controller.level(), Moderate);

    // 17 is below Moderate's escalate threshold (20) but not below its recovery one (15).
    feed.set(17.0);
    assert!(
        run(&mut controller, 120)
            .await
            .iter()
            .all(|&l| l == Moderate)
    );

    // 12 is below Moderate's recovery threshold (15): one step down; 12 also reaches
    // Light's escalate threshold (10), so Light is both asked for and held.
    feed.set(12.0);
    let levels = run(&mut controller, 120).await;
    assert_eq!(levels[9], Moderate);
    assert_eq!(levels[10], Light, "after ten calm seconds");
    assert!(levels[10..].iter().all(|&l| l == Light));

    // 7: below Light's escalate threshold, above its recovery threshold: still held.
    feed.set(7.0);
    assert!(run(&mut controller, 120).await.iter().all(|&l| l == Light));
    assert_eq!(controller.handle().snapshot().transitions(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_oscillating_reading_does_not_flap() {
    let (mut controller, feed) = one_trigger();
    controller.evaluate_once(Instant::now());
    // High and low on alternate seconds for five minutes.
    for i in 0..300 {
        feed.set(if i % 2 == 0 { 25.0 } else { 0.0 });
        step(&mut controller, SECOND).await;
    }
    let snapshot = controller.handle().snapshot();
    assert_eq!(
        snapshot.transitions(),
        1,
        "{:?}",
        controller.handle().history()
    );
    assert_eq!(snapshot.level, Moderate);

    // Jitter around an escalate threshold (19 / 21 around 20) at Moderate changes nothing.
    for i in 0..300 {
        feed.set(if i % 2 == 0 { 19.0 } else { 21.0 });
        step(&mut controller, SECOND).await;
    }
    assert_eq!(controller.handle().snapshot().transitions(), 1);

    // A slower oscillation (3 s high, 3 s low) is not calm long enough either.
    for i in 0..300 {
        feed.set(if (i / 3) % 2 == 0 { 31.0 } else { 0.0 });
        step(&mut controller, SECOND).await;
    }
    let snapshot = controller.handle().snapshot();
    assert_eq!(
        snapshot.transitions(),
        2,
        "one escalation to Heavy and no recovery"
    );
    assert_eq!(snapshot.level, Heavy);
}

#[tokio::test(start_paused = true)]
async fn the_highest_trigger_wins_and_every_trigger_must_be_calm_to_recover() {
    let (cpu, cpu_feed) = scripted("cpu");
    let (queue, queue_feed) = scripted("queue");
    // The queue trigger uses its own scale (a fill ratio).
    let queue_thresholds = Thresholds::new([0.5, 0.7, 0.85, 0.95], [0.3, 0.5, 0.7, 0.85]);
    let mut controller = Controller::builder()
        .cool_down(COOL_DOWN)
        .trigger(cpu, thresholds())
        .trigger(queue, queue_thresholds)
        .build()
        .unwrap();
    let handle = controller.handle();

    cpu_feed.set(12.0); // Light
    queue_feed.set(0.9); // Heavy
    assert_eq!(controller.evaluate_once(Instant::now()), Heavy);
    assert!(matches!(
        &handle.history()[0].reason,
        TransitionReason::Escalated { trigger, reading, threshold }
            if trigger == "queue" && *reading == 0.9 && *threshold == 0.85
    ));

    // The queue drains but CPU reads 27: at or above Heavy's recovery threshold (25).
    queue_feed.set(0.0);
    cpu_feed.set(27.0);
    assert!(run(&mut controller, 60).await.iter().all(|&l| l == Heavy));

    // CPU at 20 is below Heavy's recovery threshold: one step down, and Moderate holds
    // because 20 asks for it.
    cpu_feed.set(20.0);
    let levels = run(&mut controller, 60).await;
    assert_eq!(levels[10], Moderate);
    assert!(levels[10..].iter().all(|&l| l == Moderate));

    // Ties go to the trigger added first.
    let (a, a_feed) = scripted("a");
    let (b, b_feed) = scripted("b");
    let mut tie = Controller::builder()
        .trigger(a, thresholds())
        .trigger(b, thresholds())
        .build()
        .unwrap();
    a_feed.set(21.0);
    b_feed.set(22.0);
    tie.evaluate_once(Instant::now());
    assert!(
        matches!(&tie.handle().history()[0].reason, TransitionReason::Escalated { trigger, .. } if trigger == "a")
    );
}

#[tokio::test(start_paused = true)]
async fn pin_holds_a_level_until_unpinned() {
    let (mut controller, feed) = one_trigger();
    let handle = controller.handle();
    feed.set(0.0);
    controller.evaluate_once(Instant::now());

    // Pinning takes effect at once, without an evaluation.
    assert!(handle.pin(Heavy));
    assert!(
        !handle.pin(Heavy),
        "pinning the same level again changes nothing"
    );
    assert_eq!(handle.level(), Heavy);
    assert_eq!(handle.mode(), ControlMode::Pinned(Heavy));

    // Calm readings do not lower a pinned level, high ones do not raise it.
    assert!(run(&mut controller, 30).await.iter().all(|&l| l == Heavy));
    feed.set(45.0);
    assert!(run(&mut controller, 5).await.iter().all(|&l| l == Heavy));
    // The triggers are still read while pinned.
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.evaluations, 36);
    assert_eq!(snapshot.trigger("load").unwrap().reading, Some(45.0));
    assert_eq!(snapshot.trigger("load").unwrap().asks, Emergency);

    // Unpinned, the triggers decide again: 45 asks for Emergency at once.
    assert!(handle.unpin());
    assert!(!handle.unpin(), "unpinning twice changes nothing");
    assert_eq!(handle.level(), Heavy, "unpinning keeps the level");
    assert_eq!(step(&mut controller, SECOND).await, Emergency);

    // Pinned low under load, then unpinned: up at once.
    handle.pin(Light);
    assert_eq!(handle.level(), Light);
    assert_eq!(step(&mut controller, SECOND).await, Light);
    handle.unpin();
    assert_eq!(step(&mut controller, SECOND).await, Emergency);

    // Pinned high without load, then unpinned: down one level per cool-down.
    feed.set(0.0);
    handle.pin(Emergency);
    handle.unpin();
    let levels = run(&mut controller, 60).await;
    assert_eq!(levels[9], Emergency);
    assert_eq!(levels[10], Heavy);
    assert_eq!(levels[20], Moderate);

    let reasons: Vec<TransitionReason> = handle.history().into_iter().map(|t| t.reason).collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == TransitionReason::Pinned)
            .count(),
        3
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == TransitionReason::Unpinned)
            .count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn disable_keeps_normal_and_enable_lets_triggers_decide() {
    let (mut controller, feed) = one_trigger();
    let handle = controller.handle();
    feed.set(45.0);
    assert_eq!(controller.evaluate_once(Instant::now()), Emergency);

    assert!(handle.disable());
    assert!(!handle.disable());
    assert_eq!(handle.level(), Normal, "disabling takes effect at once");
    assert_eq!(handle.mode(), ControlMode::Disabled);
    assert!(!handle.unpin(), "unpin does not enable");
    assert!(run(&mut controller, 20).await.iter().all(|&l| l == Normal));
    assert_eq!(
        handle.snapshot().trigger("load").unwrap().readings,
        21,
        "triggers are still read"
    );

    assert!(handle.enable());
    assert!(!handle.enable());
    assert_eq!(handle.mode(), ControlMode::Automatic);
    assert_eq!(handle.level(), Normal);
    assert_eq!(step(&mut controller, SECOND).await, Emergency);

    // Pinning while disabled pins; unpinning then gives control to the triggers.
    handle.disable();
    handle.pin(Light);
    assert_eq!(handle.level(), Light);
    handle.unpin();
    assert_eq!(handle.mode(), ControlMode::Automatic);

    let history = handle.history();
    let summary: Vec<(DegradationLevel, DegradationLevel, TransitionReason)> = history
        .into_iter()
        .map(|t| (t.from, t.to, t.reason))
        .collect();
    assert_eq!(summary[1], (Emergency, Normal, TransitionReason::Disabled));
    assert_eq!(summary[2], (Normal, Normal, TransitionReason::Enabled));
    assert_eq!(summary[4], (Emergency, Normal, TransitionReason::Disabled));
    assert_eq!(summary[5], (Normal, Light, TransitionReason::Pinned));
    assert_eq!(summary[6], (Light, Light, TransitionReason::Unpinned));
}

#[tokio::test(start_paused = true)]
async fn history_is_bounded_and_ordered() {
    let (trigger, feed) = scripted("load");
    let mut controller = Controller::builder()
        .history_len(3)
        .cool_down(Duration::ZERO)
        .trigger(trigger, thresholds())
        .build()
        .unwrap();
    let handle = controller.handle();
    // Up one level a second to Emergency, then down one a second (zero cool-down).
    let mut expected = Vec::new();
    let mut previous = Normal;
    for level in [Light, Moderate, Heavy, Emergency] {
        feed.set(10.0 * level.index() as f64);
        step(&mut controller, SECOND).await;
        expected.push((previous, level));
        previous = level;
    }
    feed.set(0.0);
    for _ in 0..4 {
        let level = step(&mut controller, SECOND).await;
        expected.push((previous, level));
        previous = level;
    }
    assert_eq!(handle.level(), Normal);
    assert_eq!(expected.len(), 8);

    let history = handle.history();
    assert_eq!(history.len(), 3);
    let pairs: Vec<_> = history.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        pairs,
        expected[5..].to_vec(),
        "the newest three, oldest first"
    );
    assert!(history.windows(2).all(|w| w[0].at < w[1].at));
    assert_eq!(handle.snapshot().history_recorded, 8);
}

#[tokio::test(start_paused = true)]
async fn none_and_non_finite_readings_are_ignored() {
    let (busy, busy_feed) = scripted("busy");
    let (quiet, quiet_feed) = scripted("quiet");
    let mut controller = Controller::builder()
        .cool_down(COOL_DOWN)
        .trigger(busy, thresholds())
        .trigger(quiet, thresholds())
        .build()
        .unwrap();
    let handle = controller.handle();

    // No readings at all: nothing happens.
    assert_eq!(controller.evaluate_once(Instant::now()), Normal);
    busy_feed.set(f64::NAN);
    quiet_feed.push(Some(f64::INFINITY));
    assert_eq!(step(&mut controller, SECOND).await, Normal);

    busy_feed.set(35.0);
    quiet_feed.set(0.0);
    assert_eq!(step(&mut controller, SECOND).await, Heavy);

    // `busy` stops reporting: it no longer holds the level, `quiet` is calm, so recovery
    // proceeds as if `busy` were not there.
    busy_feed.silence();
    let levels = run(&mut controller, 41).await;
    assert_eq!(levels[10], Moderate);
    assert_eq!(levels[30], Normal);

    let snapshot = handle.snapshot();
    let busy = snapshot.trigger("busy").unwrap();
    assert_eq!(busy.reading, Some(35.0), "the last real reading is kept");
    assert_eq!(busy.readings, 1);
    assert_eq!(busy.missed, 2 + 41);
    let quiet = snapshot.trigger("quiet").unwrap();
    assert_eq!(quiet.missed, 1 + 1);
}

#[tokio::test(start_paused = true)]
async fn snapshot_counts_transitions_time_and_readings() {
    let (mut controller, feed) = one_trigger();
    let handle = controller.handle();
    let start = Instant::now();
    controller.evaluate_once(start);

    feed.set(21.0);
    tokio::time::advance(Duration::from_secs(5)).await;
    controller.evaluate_once(Instant::now()); // Normal for 5 s, then Moderate
    feed.set(45.0);
    tokio::time::advance(Duration::from_secs(3)).await;
    controller.evaluate_once(Instant::now()); // Moderate for 3 s, then Emergency
    tokio::time::advance(Duration::from_secs(7)).await;
    controller.evaluate_once(Instant::now());

    let snapshot: ControllerSnapshot = handle.snapshot();
    assert_eq!(snapshot.level, Emergency);
    assert_eq!(snapshot.mode, ControlMode::Automatic);
    assert_eq!(snapshot.evaluations, 4);
    assert_eq!(
        snapshot.last_evaluation,
        Some(start + Duration::from_secs(15))
    );
    assert_eq!(snapshot.level_since, start + Duration::from_secs(8));
    assert_eq!(snapshot.transitions_into(Moderate), 1);
    assert_eq!(snapshot.transitions_into(Emergency), 1);
    assert_eq!(snapshot.transitions_into(Light), 0);
    assert_eq!(snapshot.transitions(), 2);
    assert_eq!(snapshot.time_in(Normal), Duration::from_secs(5));
    assert_eq!(snapshot.time_in(Moderate), Duration::from_secs(3));
    assert_eq!(
        snapshot.time_in(Emergency),
        Duration::from_secs(7),
        "current stretch counted up to now"
    );
    assert_eq!(snapshot.time_in(Heavy), Duration::ZERO);
    let load = snapshot.trigger("load").unwrap();
    assert_eq!(load.reading, Some(45.0));
    assert_eq!(load.asks, Emergency);
    assert_eq!(load.readings, 3);
    assert_eq!(load.missed, 1);

    // The time keeps counting between evaluations.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(handle.snapshot().time_in(Emergency), Duration::from_secs(9));
}

#[tokio::test(start_paused = true)]
async fn level_changes_reach_subscribers_and_the_atomic_cell() {
    let (mut controller, feed) = one_trigger();
    let handle = controller.handle();
    let cell = handle.level_cell();
    let mut changes = handle.subscribe();
    feed.set(31.0);
    controller.evaluate_once(Instant::now());
    assert_eq!(cell.load(), Heavy);
    tokio::time::timeout(SECOND, changes.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*changes.borrow_and_update(), Heavy);
}

#[tokio::test(start_paused = true)]
async fn spawned_controller_evaluates_every_interval_and_stops() {
    let (trigger, feed) = scripted("load");
    let controller = Controller::builder()
        .interval(Duration::from_millis(500))
        .cool_down(Duration::from_secs(2))
        .trigger(trigger, thresholds())
        .build()
        .unwrap();
    let task = controller.spawn();
    let handle = task.handle();
    let mut changes = handle.subscribe();

    feed.set(33.0);
    tokio::time::timeout(Duration::from_secs(5), changes.wait_for(|&l| l == Heavy))
        .await
        .unwrap()
        .unwrap();
    feed.set(0.0);
    tokio::time::timeout(Duration::from_secs(60), changes.wait_for(|&l| l == Normal))
        .await
        .unwrap()
        .unwrap();
    let snapshot = handle.snapshot();
    assert_eq!(snapshot.transitions_into(Normal), 1);
    assert_eq!(handle.history().len(), 4, "{:?}", handle.history());

    let evaluations = snapshot.evaluations;
    let controller = task.stop().await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        handle.snapshot().evaluations,
        evaluations,
        "no evaluation after stop"
    );
    assert_eq!(controller.level(), Normal);

    // Dropping the task stops it too.
    let task = controller.spawn();
    let handle = task.handle();
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(task);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_drop = handle.snapshot().evaluations;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(handle.snapshot().evaluations, after_drop);
}

#[test]
fn invalid_thresholds_are_rejected_with_the_trigger_and_level() {
    let build = |t: Thresholds| {
        let (trigger, _) = scripted("cpu");
        Controller::builder()
            .trigger(trigger, t)
            .build()
            .unwrap_err()
    };
    let threshold_error = |e: ControllerError| match e {
        ControllerError::Thresholds(t) => t,
        other => panic!("expected a threshold error, got {other:?}"),
    };

    let e = threshold_error(build(Thresholds::new(
        [10.0, 20.0, 30.0, 40.0],
        [5.0, 20.0, 25.0, 35.0],
    )));
    assert_eq!(e.trigger, "cpu");
    assert_eq!(e.level, Moderate);
    assert!(
        matches!(e.problem, ThresholdProblem::RecoverNotBelowEscalate { recover, escalate } if recover == 20.0 && escalate == 20.0)
    );
    let message = e.to_string();
    assert!(
        message.contains("\"cpu\"") && message.contains("moderate") && message.contains("flap"),
        "{message}"
    );

    let e = threshold_error(build(Thresholds::new(
        [10.0, 30.0, 20.0, 40.0],
        [5.0, 15.0, 16.0, 35.0],
    )));
    assert_eq!(e.level, Heavy);
    assert!(matches!(
        e.problem,
        ThresholdProblem::EscalateNotAscending {
            previous: Moderate,
            ..
        }
    ));
    assert!(e.to_string().contains("ascending"), "{e}");

    let e = threshold_error(build(Thresholds::new(
        [10.0, 20.0, 30.0, 40.0],
        [5.0, 15.0, 25.0, 3.0],
    )));
    assert_eq!(e.level, Emergency);
    assert!(matches!(
        e.problem,
        ThresholdProblem::RecoverDescending { .. }
    ));

    let e = threshold_error(build(Thresholds::new(
        [f64::NAN, 20.0, 30.0, 40.0],
        [5.0, 15.0, 25.0, 35.0],
    )));
    assert_eq!(e.level, Light);
    assert!(matches!(
        e.problem,
        ThresholdProblem::EscalateNotANumber { .. }
    ));

    let e = threshold_error(build(Thresholds::new(
        [10.0, 20.0, 30.0, 40.0],
        [5.0, f64::NEG_INFINITY, 25.0, 35.0],
    )));
    assert!(matches!(
        e.problem,
        ThresholdProblem::RecoverNotFinite { .. }
    ));

    // Equal escalate thresholds are not ascending.
    let e = threshold_error(build(Thresholds::new(
        [10.0, 10.0, 30.0, 40.0],
        [5.0, 6.0, 25.0, 35.0],
    )));
    assert_eq!(e.level, Moderate);

    // Infinity at the top means "never asks for this level" and is accepted.
    let (trigger, feed) = scripted("cpu");
    let mut capped = Controller::builder()
        .trigger(
            trigger,
            Thresholds::new(
                [10.0, 20.0, f64::INFINITY, f64::INFINITY],
                [5.0, 15.0, 25.0, 35.0],
            ),
        )
        .build()
        .unwrap();
    feed.set(1e12);
    assert_eq!(capped.evaluate_once(Instant::now()), Moderate);

    // with_gap gives valid thresholds.
    let gap = Thresholds::with_gap([0.75, 0.85, 0.92, 0.97], 0.10);
    assert!(gap.validate("cpu").is_ok());
    assert!((gap.recover_below(Heavy).unwrap() - 0.82).abs() < 1e-9);
    assert_eq!(gap.escalate_at(Normal), None);
}

#[test]
fn builder_rejects_bad_settings() {
    let (a, _) = scripted("same");
    let (b, _) = scripted("same");
    let e = Controller::builder()
        .trigger(a, thresholds())
        .trigger(b, thresholds())
        .build()
        .unwrap_err();
    assert_eq!(e, ControllerError::DuplicateTrigger("same".to_owned()));
    assert!(e.to_string().contains("with_name"));

    let e = Controller::builder()
        .interval(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e, ControllerError::ZeroInterval);
    let e = Controller::builder().history_len(0).build().unwrap_err();
    assert_eq!(e, ControllerError::ZeroHistory);

    // A controller without triggers is valid: only operators move it.
    let controller = Controller::builder().build().unwrap();
    assert!(controller.trigger_names().is_empty());
}

#[test]
fn default_thresholds_of_the_built_in_triggers_are_valid() {
    use otlp_degradation::trigger::{
        CpuTrigger, ErrorRateTrigger, LagTrigger, LatencyTrigger, MemoryTrigger, QueueTrigger,
    };
    for (name, t) in [
        ("cpu", CpuTrigger::default_thresholds()),
        ("memory", MemoryTrigger::default_thresholds()),
        ("queue", QueueTrigger::default_thresholds()),
        ("export_latency", LatencyTrigger::default_thresholds()),
        ("export_errors", ErrorRateTrigger::default_thresholds()),
        ("scheduler_lag", LagTrigger::default_thresholds()),
    ] {
        t.validate(name).unwrap();
    }
}
