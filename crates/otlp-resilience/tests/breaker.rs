//! Circuit breaker: every transition and every knob, on paused tokio time.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use otlp_core::ExportError;
use otlp_resilience::breaker::{
    BreakerError, BreakerEvent, BreakerOpen, BreakerState, CircuitBreaker, CircuitBreakerConfig,
    CircuitBreakerConfigBuilder, CircuitBreakerLayer, SlidingWindow, TransitionReason,
};
use otlp_resilience::classify::{AnyError, OtlpError, Outcome, RetryDecision};
use tokio::time::{Instant, advance};
use tower::{Layer, Service, ServiceExt};

fn builder() -> CircuitBreakerConfigBuilder {
    CircuitBreakerConfig::builder()
        .name("test")
        .sliding_window(SlidingWindow::count(10))
        .minimum_calls(4)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_secs(10))
        .permitted_calls_in_half_open(3)
}

fn breaker(b: CircuitBreakerConfigBuilder) -> CircuitBreaker {
    CircuitBreaker::new(b.build().expect("valid config"))
}

fn record(b: &CircuitBreaker, outcome: Outcome) {
    b.try_acquire()
        .expect("call admitted")
        .record(outcome, Duration::ZERO);
}

fn ok(b: &CircuitBreaker) {
    record(b, Outcome::Success);
}

fn fail(b: &CircuitBreaker) {
    record(b, Outcome::Failure);
}

fn rejected(b: &CircuitBreaker) -> BreakerOpen {
    b.try_acquire().expect_err("call rejected")
}

/// Trips a breaker built by `builder()` (4 failures = 100 % of the minimum).
fn trip(b: &CircuitBreaker) {
    for _ in 0..4 {
        fail(b);
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn stays_closed_below_minimum_calls_then_opens() {
    let b = breaker(builder());
    for _ in 0..3 {
        fail(&b);
    }
    assert_eq!(b.state(), BreakerState::Closed, "3 calls < minimum 4");
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    let open = rejected(&b);
    assert_eq!(open.state, BreakerState::Open);
    assert_eq!(open.until, Some(Instant::now() + Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn a_success_reaching_the_minimum_evaluates_earlier_failures() {
    let b = breaker(builder());
    for _ in 0..3 {
        fail(&b);
    }
    // 3 failures of 4 calls = 75 %: the success that reaches the minimum trips it.
    ok(&b);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn successes_reaching_the_minimum_below_threshold_keep_it_closed() {
    let b = breaker(builder().minimum_calls(6));
    fail(&b);
    fail(&b);
    for _ in 0..10 {
        ok(&b);
    }
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().window.failures, 1);
}

#[tokio::test(start_paused = true)]
async fn failure_rate_threshold_is_inclusive_over_the_count_window() {
    let b = breaker(builder().sliding_window(SlidingWindow::count(10).with_buckets(10)));
    for _ in 0..6 {
        ok(&b);
    }
    for _ in 0..4 {
        fail(&b);
    }
    let snap = b.snapshot();
    assert_eq!(snap.window.calls, 10);
    assert_eq!(snap.window.failure_rate, 40.0);
    assert_eq!(b.state(), BreakerState::Closed);
    // The oldest success leaves the window: 5 of 10 = 50 % >= 50 %.
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn batched_successes_count_in_the_rates_at_once() {
    // 100 calls in 10 buckets: threads add successes to the window 5 at a time.
    let b = breaker(builder().sliding_window(SlidingWindow::count(100)));
    for _ in 0..3 {
        ok(&b);
    }
    fail(&b);
    let window = b.snapshot().window;
    assert_eq!((window.calls, window.failures), (4, 1));
    assert_eq!(b.state(), BreakerState::Closed);
    for _ in 0..96 {
        ok(&b);
    }
    assert_eq!(b.snapshot().window.calls, 100);
    // 100 more successes push the failure out of the window (it moves by 10 calls).
    for _ in 0..100 {
        ok(&b);
    }
    let window = b.snapshot().window;
    assert!((100..=110).contains(&window.calls), "{window:?}");
    assert_eq!(window.failures, 0);
    // 50 % of the window failing opens it, pending successes included.
    for _ in 0..120 {
        if b.state() == BreakerState::Closed {
            fail(&b);
        }
    }
    assert_eq!(b.state(), BreakerState::Open);
    let at_trip = b.snapshot().window;
    assert!(
        at_trip.failure_rate >= 50.0 && at_trip.failure_rate < 60.0,
        "{at_trip:?}"
    );
    // Closing clears the window, pending successes included.
    b.reset();
    assert_eq!(b.snapshot().window.calls, 0);
    ok(&b);
    assert_eq!(b.snapshot().window.calls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_lower_failure_threshold_opens_sooner() {
    let b = breaker(builder().failure_rate_threshold(25.0));
    ok(&b);
    ok(&b);
    ok(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn old_calls_leave_the_count_window() {
    let b = breaker(
        builder()
            .failure_rate_threshold(80.0)
            .sliding_window(SlidingWindow::count(4).with_buckets(4)),
    );
    fail(&b);
    fail(&b);
    fail(&b);
    for _ in 0..4 {
        ok(&b);
    }
    // The three failures are out of the window.
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().window.failures, 2);
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_calls_older_than_its_duration() {
    let b = breaker(
        builder()
            .minimum_calls(3)
            .sliding_window(SlidingWindow::time(Duration::from_secs(10))),
    );
    fail(&b);
    fail(&b);
    advance(Duration::from_secs(10)).await;
    fail(&b);
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "the first two are forgotten"
    );
    assert_eq!(b.snapshot().window.calls, 1);

    advance(Duration::from_secs(5)).await;
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open, "3 failures within 10 s");
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker_whatever_their_outcome() {
    let b = breaker(
        builder()
            .slow_call_duration(Duration::from_millis(100))
            .slow_call_rate_threshold(50.0),
    );
    let slow = Duration::from_millis(101);
    let p = b.try_acquire().expect("admitted");
    p.record(Outcome::Success, Duration::from_millis(100));
    assert_eq!(
        b.snapshot().window.slow_calls,
        0,
        "exactly the threshold is not slow"
    );
    ok(&b);
    b.try_acquire()
        .expect("admitted")
        .record(Outcome::Success, slow);
    assert_eq!(b.state(), BreakerState::Closed);
    let (tx, mut rx) = (b.clone(), b.subscribe());
    tx.try_acquire()
        .expect("admitted")
        .record(Outcome::Success, slow);
    assert_eq!(b.state(), BreakerState::Open);
    let event = rx.recv().await.expect("event");
    assert_eq!(
        event.reason,
        TransitionReason::SlowCallRate {
            rate: 50.0,
            threshold: 50.0
        }
    );
    assert_eq!(b.snapshot().totals.slow, 2);
}

#[tokio::test(start_paused = true)]
async fn the_breaker_measures_slow_calls_itself() {
    let b = breaker(
        builder()
            .slow_call_duration(Duration::from_millis(100))
            .slow_call_rate_threshold(100.0),
    );
    for _ in 0..4 {
        let result = b
            .call(|| async {
                tokio::time::sleep(Duration::from_millis(150)).await;
                Ok::<_, ExportError>(())
            })
            .await;
        assert!(result.is_ok());
    }
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.snapshot().totals.slow, 4);
    assert_eq!(b.snapshot().totals.success, 4);
}

#[tokio::test(start_paused = true)]
async fn without_a_slow_threshold_durations_do_not_matter() {
    let b = breaker(builder());
    for _ in 0..10 {
        b.try_acquire()
            .expect("admitted")
            .record(Outcome::Success, Duration::from_secs(3600));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().totals.slow, 0);
}

#[tokio::test(start_paused = true)]
async fn open_waits_exactly_wait_in_open_then_admits_a_probe() {
    let b = breaker(builder());
    trip(&b);
    advance(Duration::from_millis(9_999)).await;
    let open = rejected(&b);
    assert_eq!(open.retry_after(), Some(Duration::from_millis(1)));
    advance(Duration::from_millis(1)).await;
    let probe = b.try_acquire().expect("probe admitted");
    assert!(probe.is_probe());
    assert_eq!(b.state(), BreakerState::HalfOpen);
    drop(probe);
}

#[tokio::test(start_paused = true)]
async fn wait_grows_exponentially_on_consecutive_trips_up_to_the_cap() {
    let b = breaker(
        builder()
            .wait_in_open(Duration::from_secs(1))
            .exponential_wait(2.0, Duration::from_secs(5))
            .permitted_calls_in_half_open(1),
    );
    trip(&b);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let until = b.snapshot().open_until.expect("open");
        waits.push(until - Instant::now());
        tokio::time::sleep_until(until).await;
        // The single probe fails: open again, for longer.
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
    }
    let until = b.snapshot().open_until.expect("open");
    waits.push(until - Instant::now());
    assert_eq!(
        waits,
        [1, 2, 4, 5, 5].map(Duration::from_secs),
        "1 s doubling, capped at 5 s"
    );
    assert_eq!(b.snapshot().consecutive_trips, 5);

    // A successful probe closes it and the growth starts over.
    tokio::time::sleep_until(until).await;
    ok(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().consecutive_trips, 0);
    trip(&b);
    let until = b.snapshot().open_until.expect("open");
    assert_eq!(until - Instant::now(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn without_growth_every_trip_waits_the_same() {
    let b = breaker(builder().permitted_calls_in_half_open(1));
    trip(&b);
    for _ in 0..3 {
        let until = b.snapshot().open_until.expect("open");
        assert_eq!(until - Instant::now(), Duration::from_secs(10));
        tokio::time::sleep_until(until).await;
        fail(&b);
    }
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_permitted_probes() {
    let b = breaker(builder());
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let probes: Vec<_> = (0..3)
        .map(|_| b.try_acquire().expect("probe admitted"))
        .collect();
    assert!(probes.iter().all(|p| p.is_probe()));
    let open = rejected(&b);
    assert_eq!(open.state, BreakerState::HalfOpen);
    assert_eq!(open.until, None);
    let snap = b.snapshot().half_open.expect("half-open");
    assert_eq!(
        (snap.permitted, snap.outstanding, snap.completed),
        (3, 3, 0)
    );

    // A cancelled probe frees its place, and only its place.
    drop(probes);
    let again: Vec<_> = (0..3)
        .map(|_| b.try_acquire().expect("probe admitted"))
        .collect();
    assert!(b.try_acquire().is_err());
    drop(again);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert_eq!(b.snapshot().totals.cancelled, 6);
}

#[tokio::test(start_paused = true)]
async fn probes_close_the_breaker_once_the_outcome_is_certain() {
    let b = breaker(builder());
    trip(&b);
    advance(Duration::from_secs(10)).await;
    let mut rx = b.subscribe();
    // 3 probes, 50 %: two successes make a failure rate of at most 33 %.
    ok(&b);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    ok(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(rx.recv().await.expect("event").to, BreakerState::HalfOpen);
    let event = rx.recv().await.expect("event");
    assert_eq!(
        (event.from, event.to),
        (BreakerState::HalfOpen, BreakerState::Closed)
    );
    assert_eq!(
        event.reason,
        TransitionReason::ProbesSucceeded {
            completed: 2,
            failed: 0,
            slow: 0
        }
    );
    assert_eq!(b.snapshot().window.calls, 0, "closing clears the window");
    // The window starts afresh: one failure does not reopen it.
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn probes_failing_reopen_the_breaker() {
    let b = breaker(builder());
    trip(&b);
    advance(Duration::from_secs(10)).await;
    fail(&b);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open, "2 of 3 = 67 % >= 50 %");
    assert_eq!(
        b.snapshot().open_until,
        Some(Instant::now() + Duration::from_secs(10))
    );
}

#[tokio::test(start_paused = true)]
async fn mixed_probes_wait_for_the_last_one() {
    for (last, expected) in [
        (Outcome::Success, BreakerState::Closed),
        (Outcome::Failure, BreakerState::Open),
    ] {
        let b = breaker(builder());
        trip(&b);
        advance(Duration::from_secs(10)).await;
        ok(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        record(&b, last);
        assert_eq!(b.state(), expected);
    }
}

#[tokio::test(start_paused = true)]
async fn slow_probes_reopen_the_breaker() {
    let b = breaker(
        builder()
            .slow_call_duration(Duration::from_millis(100))
            .slow_call_rate_threshold(50.0),
    );
    trip(&b);
    advance(Duration::from_secs(10)).await;
    for _ in 0..2 {
        b.try_acquire()
            .expect("probe")
            .record(Outcome::Success, Duration::from_secs(1));
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_count_neither_way() {
    let b = breaker(builder());
    for _ in 0..10 {
        record(&b, Outcome::Ignored);
    }
    let snap = b.snapshot();
    assert_eq!(snap.window.calls, 0);
    assert_eq!(snap.totals.ignored, 10);
    trip(&b);
    advance(Duration::from_secs(10)).await;
    // An ignored probe frees its place: three more probes are still admitted.
    record(&b, Outcome::Ignored);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("probe")).collect();
    assert!(b.try_acquire().is_err());
    drop(probes);
}

#[tokio::test(start_paused = true)]
async fn cancelled_calls_are_neither_success_nor_failure() {
    let b = breaker(builder());
    for _ in 0..10 {
        drop(b.try_acquire().expect("admitted"));
    }
    // A call future dropped before it completes.
    let pending = b.call(std::future::pending::<Result<(), ExportError>>);
    let timed_out = tokio::time::timeout(Duration::from_secs(1), pending).await;
    assert!(timed_out.is_err());
    let snap = b.snapshot();
    assert_eq!(snap.window.calls, 0);
    assert_eq!(snap.totals.cancelled, 11);
    assert_eq!(snap.totals.attempted(), 11);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_permit_from_before_a_trip_is_not_recorded_after_it() {
    let b = breaker(builder());
    let late = b.try_acquire().expect("admitted");
    trip(&b);
    advance(Duration::from_secs(10)).await;
    ok(&b);
    ok(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    late.record(Outcome::Failure, Duration::ZERO);
    assert_eq!(b.snapshot().window.calls, 0, "stale permit ignored");
    assert_eq!(b.snapshot().totals.failure, 5, "but counted in the metrics");
}

#[tokio::test(start_paused = true)]
async fn forced_open_rejects_until_reset() {
    let b = breaker(builder());
    let mut rx = b.subscribe();
    b.force_open();
    assert_eq!(b.state(), BreakerState::ForcedOpen);
    let open = rejected(&b);
    assert_eq!(open.state, BreakerState::ForcedOpen);
    assert_eq!(open.until, None);
    assert_eq!(open.retry_after(), None);
    advance(Duration::from_secs(3600)).await;
    assert!(b.try_acquire().is_err(), "no wait ends a forced open");
    b.force_open();
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    ok(&b);
    let reasons: Vec<_> = [rx.recv().await, rx.recv().await]
        .into_iter()
        .map(|e| e.expect("event").reason)
        .collect();
    assert_eq!(
        reasons,
        [TransitionReason::Forced, TransitionReason::Reset],
        "forcing twice is one event"
    );
}

#[tokio::test(start_paused = true)]
async fn disabled_lets_everything_through_without_recording() {
    let b = breaker(builder());
    trip(&b);
    b.disable();
    assert_eq!(b.state(), BreakerState::Disabled);
    for _ in 0..20 {
        fail(&b);
    }
    assert_eq!(b.state(), BreakerState::Disabled);
    assert_eq!(b.snapshot().totals.failure, 24);
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().window.calls, 0);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn reset_closes_from_every_state_and_clears_window_and_growth() {
    let b = breaker(
        builder()
            .wait_in_open(Duration::from_secs(1))
            .exponential_wait(3.0, Duration::from_secs(60))
            .permitted_calls_in_half_open(1),
    );
    trip(&b);
    advance(Duration::from_secs(1)).await;
    fail(&b);
    assert_eq!(b.snapshot().consecutive_trips, 2);
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().consecutive_trips, 0);
    assert_eq!(b.snapshot().window.calls, 0);
    trip(&b);
    assert_eq!(
        b.snapshot().open_until,
        Some(Instant::now() + Duration::from_secs(1))
    );
    // From half-open, with a probe out: the probe's late result is ignored.
    advance(Duration::from_secs(1)).await;
    let probe = b.try_acquire().expect("probe");
    b.reset();
    probe.record(Outcome::Failure, Duration::ZERO);
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().window.calls, 0);
    // From closed it clears the window.
    fail(&b);
    b.reset();
    assert_eq!(b.snapshot().window.calls, 0);
}

#[tokio::test(start_paused = true)]
async fn events_reach_subscribers_and_the_callback() {
    let seen: Arc<Mutex<Vec<BreakerEvent>>> = Arc::default();
    let sink = Arc::clone(&seen);
    let b = breaker(builder().on_event(move |e| {
        if let Ok(mut v) = sink.lock() {
            v.push(e.clone());
        }
    }));
    let mut rx = b.subscribe();
    let start = Instant::now();
    ok(&b);
    fail(&b);
    fail(&b);
    fail(&b);
    advance(Duration::from_secs(10)).await;
    ok(&b);
    ok(&b);

    let mut received = Vec::new();
    while let Ok(e) = rx.try_recv() {
        received.push(e);
    }
    let from_callback = seen.lock().expect("lock").clone();
    assert_eq!(received, from_callback);
    let path: Vec<_> = received.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        path,
        [
            (BreakerState::Closed, BreakerState::Open),
            (BreakerState::Open, BreakerState::HalfOpen),
            (BreakerState::HalfOpen, BreakerState::Closed),
        ]
    );
    let opened = &received[0];
    assert_eq!(opened.name.as_str(), "test");
    assert_eq!(opened.at, start);
    assert_eq!(
        opened.reason,
        TransitionReason::FailureRate {
            rate: 75.0,
            threshold: 50.0
        }
    );
    assert_eq!(opened.reason.to_string(), "failure rate 75.0% >= 50.0%");
    assert_eq!((opened.window.calls, opened.window.failures), (4, 3));
    assert_eq!(received[1].reason, TransitionReason::WaitElapsed);
    assert_eq!(received[1].at, start + Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn call_classifies_with_the_otlp_rules() {
    let b = breaker(builder());
    let now = SystemTime::now();
    for _ in 0..10 {
        let bad_request = ExportError::from_http(400, None, None, b"", now);
        let r: Result<(), _> = b.call(|| async { Err(bad_request) }).await;
        assert!(matches!(r, Err(BreakerError::Inner(_))));
    }
    assert_eq!(b.state(), BreakerState::Closed, "400s are ignored");
    assert_eq!(b.snapshot().totals.ignored, 10);
    for _ in 0..4 {
        let unavailable = ExportError::from_http(503, None, None, b"", now);
        let _ = b.call(|| async { Err::<(), _>(unavailable) }).await;
    }
    assert_eq!(b.state(), BreakerState::Open);
    let r = b.call(|| async { Ok::<_, ExportError>(1) }).await;
    let Err(BreakerError::Open(open)) = r else {
        panic!("expected a rejection, got {r:?}");
    };
    assert_eq!(open.name.as_str(), "test");
    assert_eq!(
        open.to_string(),
        "circuit breaker `test` is open; probes allowed in 10s"
    );
}

#[tokio::test(start_paused = true)]
async fn call_with_takes_any_classifier() {
    let b = breaker(builder());
    for _ in 0..4 {
        let r = b
            .call_with(&AnyError, || async { Err::<(), _>("boom") })
            .await;
        assert_eq!(r, Err(BreakerError::Inner("boom")));
    }
    assert_eq!(b.state(), BreakerState::Open);
    b.reset();
    let only_odd_fail = |r: &Result<u32, ()>| match r {
        Ok(n) if n % 2 == 1 => Outcome::Failure,
        _ => Outcome::Success,
    };
    for n in 0..8u32 {
        let _ = b.call_with(&only_odd_fail, || async move { Ok(n) }).await;
    }
    assert_eq!(b.snapshot().window.failure_rate, 50.0);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn rejection_is_retryable_after_the_wait_and_ignored_by_the_breaker() {
    let b = breaker(builder());
    trip(&b);
    advance(Duration::from_secs(4)).await;
    let err: BreakerError<ExportError> = BreakerError::Open(rejected(&b));
    assert_eq!(err.otlp_outcome(), Outcome::Ignored);
    assert_eq!(
        err.otlp_retry_decision(),
        RetryDecision::Retry {
            after: Some(Duration::from_secs(6))
        }
    );
    let inner: BreakerError<ExportError> =
        BreakerError::Inner(ExportError::Timeout(Duration::ZERO));
    assert_eq!(inner.otlp_outcome(), Outcome::Failure);
    let source = std::error::Error::source(&inner).map(|s| s.to_string());
    assert_eq!(source.as_deref(), Some("no response within 0ns"));
}

#[derive(Clone)]
struct Upstream {
    fail: Arc<Mutex<bool>>,
    calls: Arc<Mutex<u32>>,
}

impl Service<u32> for Upstream {
    type Response = u32;
    type Error = ExportError;
    type Future = std::future::Ready<Result<u32, ExportError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ExportError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u32) -> Self::Future {
        if let Ok(mut calls) = self.calls.lock() {
            *calls += 1;
        }
        let fail = self.fail.lock().map(|f| *f).unwrap_or(false);
        std::future::ready(if fail {
            Err(ExportError::Transport("refused".into()))
        } else {
            Ok(req)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn tower_service_rejects_without_calling_the_upstream() {
    let b = breaker(builder());
    let upstream = Upstream {
        fail: Arc::new(Mutex::new(true)),
        calls: Arc::default(),
    };
    let mut svc = CircuitBreakerLayer::new(b.clone()).layer(upstream.clone());
    for _ in 0..4 {
        let r = svc.ready().await.expect("ready").call(1).await;
        assert!(matches!(
            r,
            Err(BreakerError::Inner(ExportError::Transport(_)))
        ));
    }
    assert_eq!(b.state(), BreakerState::Open);
    // Readiness does not take permits: poll_ready many times, then call.
    for _ in 0..10 {
        let _ = svc.ready().await.expect("ready");
    }
    let r = svc.call(1).await;
    assert!(matches!(r, Err(BreakerError::Open(_))));
    assert_eq!(
        *upstream.calls.lock().expect("lock"),
        4,
        "not called when open"
    );

    advance(Duration::from_secs(10)).await;
    *upstream.fail.lock().expect("lock") = false;
    // A call future dropped unpolled is a cancelled probe: its place is freed.
    drop(svc.ready().await.expect("ready").call(1));
    for _ in 0..2 {
        assert_eq!(svc.ready().await.expect("ready").call(7).await, Ok(7));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    let totals = b.snapshot().totals;
    assert_eq!(
        (
            totals.success,
            totals.failure,
            totals.rejected,
            totals.cancelled
        ),
        (2, 4, 1, 1)
    );
    assert_eq!(svc.breaker().name().as_str(), "test");
}

#[tokio::test(start_paused = true)]
async fn tower_layer_takes_a_classifier() {
    let b = breaker(builder());
    let layer = CircuitBreakerLayer::new(b.clone()).with_classifier(
        |r: &Result<u16, Infallible>| match r {
            Ok(status) if *status >= 500 => Outcome::Failure,
            _ => Outcome::Success,
        },
    );
    let mut svc = layer.layer(tower::service_fn(|status: u16| async move {
        Ok::<_, Infallible>(status)
    }));
    for status in [200, 503, 502, 504] {
        let _ = svc.ready().await.expect("ready").call(status).await;
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn owned_permits_work_across_tasks() {
    let b = breaker(builder());
    let mut handles = Vec::new();
    for i in 0..4 {
        let permit = b.try_acquire_owned().expect("admitted");
        handles.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i)).await;
            permit.complete(Outcome::Failure);
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    assert_eq!(b.state(), BreakerState::Open);
    let owned = b.try_acquire_owned().expect_err("open");
    assert_eq!(owned.state, BreakerState::Open);
}

#[test]
fn default_breaker_and_names() {
    let b = CircuitBreaker::default();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.name().as_str(), "circuit-breaker");
    let owned = CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            .name(format!("upstream-{}", 3))
            .build()
            .expect("valid"),
    );
    assert_eq!(owned.name().to_string(), "upstream-3");
    assert!(format!("{owned:?}").contains("upstream-3"));
    assert_eq!(BreakerState::HalfOpen.to_string(), "half_open");
}

// ---- automatic half-open (a timer task instead of the clock check) ----

fn auto(b: CircuitBreakerConfigBuilder) -> CircuitBreaker {
    breaker(b.automatic_half_open(true))
}

async fn next_event(events: &mut tokio::sync::broadcast::Receiver<BreakerEvent>) -> BreakerEvent {
    events.recv().await.expect("an event")
}

#[tokio::test(start_paused = true)]
async fn automatic_half_open_happens_at_exactly_the_wait_with_an_event() {
    let b = auto(builder());
    let mut events = b.subscribe();
    let tripped = Instant::now();
    trip(&b);
    let opened = next_event(&mut events).await;
    assert_eq!(opened.to, BreakerState::Open);

    tokio::time::sleep(Duration::from_millis(9_999)).await;
    let open = rejected(&b);
    assert_eq!(open.state, BreakerState::Open);
    assert_eq!(open.until, Some(tripped + Duration::from_secs(10)));

    // Nobody calls: the timer makes the transition, at exactly the wait.
    let half_open = next_event(&mut events).await;
    assert_eq!(
        (half_open.from, half_open.to, half_open.reason),
        (
            BreakerState::Open,
            BreakerState::HalfOpen,
            TransitionReason::WaitElapsed
        )
    );
    assert_eq!(half_open.at, opened.at + Duration::from_secs(10));
    assert_eq!(Instant::now(), tripped + Duration::from_secs(10));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probes = b.snapshot().half_open.expect("half-open");
    assert_eq!(
        (probes.outstanding, probes.completed),
        (0, 0),
        "no probe taken"
    );

    // All the permitted probes are there for callers.
    let taken: Vec<_> = (0..3)
        .map(|_| b.try_acquire().expect("probe admitted"))
        .collect();
    assert!(taken.iter().all(|p| p.is_probe()));
    assert_eq!(rejected(&b).state, BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn an_armed_rejection_does_not_read_the_clock() {
    let b = auto(builder());
    trip(&b);
    // Paused time jumps past the wait; `advance` yields once, before the timer task
    // runs: the breaker still rejects, which it would not if it read the clock.
    advance(Duration::from_secs(10)).await;
    assert_eq!(rejected(&b).retry_after(), Some(Duration::ZERO));
    // Once the task ran, the breaker is half-open.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.try_acquire().expect("probe").is_probe());

    // The same breaker without the timer admits at once.
    let lazy = breaker(builder());
    trip(&lazy);
    advance(Duration::from_secs(10)).await;
    assert!(lazy.try_acquire().expect("probe").is_probe());
}

#[tokio::test(start_paused = true)]
async fn a_reset_or_force_open_before_the_timer_fires_makes_it_a_no_op() {
    let b = auto(builder());
    let mut events = b.subscribe();
    trip(&b);
    b.reset();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(next_event(&mut events).await.to, BreakerState::Open);
    assert_eq!(next_event(&mut events).await.to, BreakerState::Closed);
    assert!(events.try_recv().is_err(), "the timer did nothing");

    trip(&b);
    b.force_open();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(b.state(), BreakerState::ForcedOpen);
    assert_eq!(next_event(&mut events).await.to, BreakerState::Open);
    assert_eq!(next_event(&mut events).await.to, BreakerState::ForcedOpen);
    assert!(events.try_recv().is_err(), "the timer did nothing");

    // A reset and a new trip half-way through: only the new trip's timer acts.
    b.reset();
    trip(&b);
    tokio::time::sleep(Duration::from_secs(5)).await;
    b.reset();
    let tripped = Instant::now();
    trip(&b);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(b.state(), BreakerState::Open, "the first timer was stale");
    while events.try_recv().is_ok() {}
    let half_open = next_event(&mut events).await;
    assert_eq!(half_open.to, BreakerState::HalfOpen);
    assert_eq!(half_open.at, tripped + Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn every_trip_arms_a_timer_with_the_grown_wait() {
    let b = auto(
        builder()
            .wait_in_open(Duration::from_secs(1))
            .exponential_wait(2.0, Duration::from_secs(5))
            .permitted_calls_in_half_open(1),
    );
    let mut events = b.subscribe();
    trip(&b);
    let mut waits = Vec::new();
    for _ in 0..4 {
        let opened = next_event(&mut events).await;
        assert_eq!(opened.to, BreakerState::Open);
        let half_open = next_event(&mut events).await;
        assert_eq!(half_open.to, BreakerState::HalfOpen);
        assert_eq!(half_open.reason, TransitionReason::WaitElapsed);
        waits.push(half_open.at - opened.at);
        // The single probe fails: open again, for longer, with a new timer.
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
    }
    assert_eq!(waits, [1, 2, 4, 5].map(Duration::from_secs));
    assert_eq!(next_event(&mut events).await.to, BreakerState::Open);
    assert_eq!(next_event(&mut events).await.to, BreakerState::HalfOpen);
    ok(&b);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_timer_task_ends_once_it_fired() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let b = auto(builder().permitted_calls_in_half_open(1));
    let mut events = b.subscribe();
    assert_eq!(metrics.num_alive_tasks(), 0);
    trip(&b);
    assert_eq!(metrics.num_alive_tasks(), 1, "one timer per trip");
    assert_eq!(next_event(&mut events).await.to, BreakerState::Open);
    assert_eq!(next_event(&mut events).await.to, BreakerState::HalfOpen);
    for _ in 0..10 {
        if metrics.num_alive_tasks() == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(metrics.num_alive_tasks(), 0, "the timer task ended");

    // The timer of a dropped breaker ends at its deadline too.
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(metrics.num_alive_tasks(), 1);
    drop(b);
    tokio::time::sleep(Duration::from_secs(11)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(metrics.num_alive_tasks(), 0);
}

#[test]
fn without_a_running_runtime_the_clock_decides() {
    // No runtime means no paused time: real sleeps. The wait must outlast the trip and
    // the first rejection check even on a loaded machine (30 ms was too short).
    let wait = Duration::from_millis(100);
    // No runtime: the clock check.
    let b = auto(builder().wait_in_open(wait));
    trip(&b);
    assert_eq!(rejected(&b).state, BreakerState::Open);
    std::thread::sleep(wait + Duration::from_millis(20));
    assert!(b.try_acquire().expect("probe").is_probe());

    // A runtime that never runs the timer keeps the breaker open; once it shuts down,
    // the clock decides again.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let b = auto(builder().wait_in_open(wait));
    {
        let _context = runtime.enter();
        trip(&b);
    }
    std::thread::sleep(wait + Duration::from_millis(20));
    assert_eq!(
        rejected(&b).state,
        BreakerState::Open,
        "the timer never ran"
    );
    drop(runtime);
    assert!(b.try_acquire().expect("probe").is_probe());
}
