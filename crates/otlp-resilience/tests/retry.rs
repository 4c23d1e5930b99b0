//! Retry: every knob, with paused time (no real sleeps).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use otlp_core::ExportError;
use otlp_resilience::classify::{AnyError, RetryDecision};
use otlp_resilience::retry::{Backoff, RetryBudget, RetryError, RetryPolicy, ServerDelayOverCap};
use tokio::time::Instant;
use tower::{Service, ServiceExt};

/// What one attempt of a scripted downstream does.
#[derive(Clone, Debug)]
enum Step {
    Ok(&'static str),
    Fail(ExportError),
    Hang,
}

fn unavailable() -> Step {
    Step::Fail(ExportError::from_http(
        503,
        None,
        None,
        b"",
        SystemTime::now(),
    ))
}

fn retry_after(secs: &str) -> Step {
    Step::Fail(ExportError::from_http(
        503,
        Some(secs),
        None,
        b"",
        SystemTime::now(),
    ))
}

fn bad_request() -> Step {
    Step::Fail(ExportError::from_http(
        400,
        None,
        None,
        b"",
        SystemTime::now(),
    ))
}

/// A downstream that follows a script (the last step repeats) and records when each
/// attempt started, relative to the test's start.
#[derive(Clone)]
struct Script {
    steps: Arc<Vec<Step>>,
    starts: Arc<Mutex<Vec<Instant>>>,
    origin: Instant,
}

impl Script {
    fn new(steps: Vec<Step>) -> Script {
        Script {
            steps: Arc::new(steps),
            starts: Arc::default(),
            origin: Instant::now(),
        }
    }

    fn attempt(&self) -> impl Future<Output = Result<&'static str, ExportError>> + use<> {
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        let n = starts.len();
        starts.push(Instant::now());
        let step = self.steps[n.min(self.steps.len() - 1)].clone();
        async move {
            match step {
                Step::Ok(v) => Ok(v),
                Step::Fail(e) => Err(e),
                Step::Hang => std::future::pending().await,
            }
        }
    }

    fn attempts(&self) -> usize {
        self.starts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Start times relative to the script's creation.
    fn times(&self) -> Vec<Duration> {
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|t| t.duration_since(self.origin))
            .collect()
    }

    /// Gaps between consecutive attempt starts.
    fn gaps(&self) -> Vec<Duration> {
        let times = self.times();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A policy without budget or elapsed limit unless a test sets them, so each test sees
/// only the knob it is about.
fn base() -> otlp_resilience::retry::RetryPolicyBuilder<otlp_resilience::classify::OtlpClassifier> {
    RetryPolicy::builder()
        .no_budget()
        .max_elapsed(None)
        .jitter_seed(1)
}

#[tokio::test(start_paused = true)]
async fn succeeds_after_retryable_failures() {
    let script = Script::new(vec![unavailable(), unavailable(), Step::Ok("done")]);
    let policy = base().max_attempts(5).build();
    let result = policy.run(|| script.attempt()).await;
    assert_eq!(result, Ok("done"));
    assert_eq!(script.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_bounds_the_attempts() {
    let script = Script::new(vec![unavailable()]);
    let policy = base().max_attempts(3).build();
    let result = policy.run(|| script.attempt()).await;
    match result {
        Err(RetryError::Exhausted { attempts: 3, last }) => {
            assert!(matches!(last, ExportError::Http { status: 503, .. }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(script.attempts(), 3);

    // max_attempts(1): no retry at all; 0 is taken as 1.
    let script = Script::new(vec![unavailable()]);
    let policy = base().max_attempts(0).build();
    assert_eq!(policy.max_attempts(), 1);
    let result = policy.run(|| script.attempt()).await;
    assert!(matches!(
        result,
        Err(RetryError::Exhausted { attempts: 1, .. })
    ));
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_not_retried() {
    let script = Script::new(vec![bad_request(), Step::Ok("never")]);
    let policy = base().max_attempts(5).build();
    let result = policy.run(|| script.attempt()).await;
    match result {
        Err(RetryError::NotRetryable(ExportError::Http { status: 400, .. })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(script.attempts(), 1);

    // A retryable failure followed by a final one stops at the final one.
    let script = Script::new(vec![unavailable(), bad_request(), Step::Ok("never")]);
    let result = policy.run(|| script.attempt()).await;
    assert!(matches!(result, Err(RetryError::NotRetryable(_))));
    assert_eq!(script.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_ok_is_never_retried_even_a_partial_success() {
    // A partial success is an `Ok` carrying the rejected count: it is surfaced, not
    // retried, whatever the classifier.
    let attempts = Arc::new(Mutex::new(0u32));
    let policy = base().classifier(AnyError).max_attempts(5).build();
    let result: Result<u64, RetryError<ExportError>> = policy
        .run(|| {
            let attempts = Arc::clone(&attempts);
            async move {
                *attempts.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                Ok(7) // 7 items rejected
            }
        })
        .await;
    assert_eq!(result, Ok(7));
    assert_eq!(*attempts.lock().unwrap_or_else(|e| e.into_inner()), 1);
}

#[tokio::test(start_paused = true)]
async fn jitter_is_full_and_reproducible_with_a_seed() {
    let backoff = Backoff::new(secs(0.1), secs(1.0), 2.0);
    for seed in [1u64, 2, 3, 99, 12345] {
        let script = Script::new(vec![unavailable()]);
        let policy = base()
            .backoff(backoff)
            .max_attempts(7)
            .jitter_seed(seed)
            .build();
        let result = policy.run(|| script.attempt()).await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted { attempts: 7, .. })
        ));
        // The same seed gives the same draws as the backoff itself.
        let mut rng = fastrand::Rng::with_seed(seed);
        let expected: Vec<Duration> = (1..=6).map(|n| backoff.delay(n, &mut rng)).collect();
        let gaps = script.gaps();
        assert_eq!(gaps.len(), expected.len());
        // tokio's timer has millisecond ticks: a sleep ends on the next tick.
        for (gap, want) in gaps.iter().zip(&expected) {
            assert!(
                *gap >= *want && *gap < *want + Duration::from_millis(1),
                "seed {seed}: {gaps:?} vs {expected:?}"
            );
        }
        // Each delay lies in [0, min(cap, base * 2^(n-1))].
        for (i, gap) in expected.iter().enumerate() {
            let ceiling = secs((0.1 * 2f64.powi(i as i32)).min(1.0));
            assert!(
                *gap <= ceiling,
                "seed {seed} retry {}: {gap:?} > {ceiling:?}",
                i + 1
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn jitter_bounds_hold_over_many_calls() {
    // Unseeded: the draws differ from call to call but stay inside the window.
    let policy = RetryPolicy::builder()
        .no_budget()
        .max_elapsed(None)
        .initial_backoff(secs(0.05))
        .max_backoff(secs(0.2))
        .max_attempts(5)
        .build();
    let mut first_gaps = Vec::new();
    for _ in 0..50 {
        let script = Script::new(vec![unavailable()]);
        let _ = policy.run(|| script.attempt()).await;
        let gaps = script.gaps();
        assert_eq!(gaps.len(), 4);
        for (i, gap) in gaps.iter().enumerate() {
            // Plus the timer's millisecond tick.
            let ceiling = secs((0.05 * 2f64.powi(i as i32)).min(0.2)) + Duration::from_millis(1);
            assert!(*gap <= ceiling, "{gap:?} > {ceiling:?}");
        }
        first_gaps.push(gaps[0]);
    }
    first_gaps.sort();
    first_gaps.dedup();
    // 50 draws over 51 possible millisecond ticks: far more than a handful differ.
    assert!(
        first_gaps.len() > 15,
        "draws should vary between calls: {first_gaps:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_delay_overrides_the_backoff() {
    // Backoff would wait at most 10 ms; the server asks for 3 s, then 1 s.
    let script = Script::new(vec![retry_after("3"), retry_after("1"), Step::Ok("ok")]);
    let policy = base()
        .initial_backoff(secs(0.01))
        .max_backoff(secs(0.01))
        .build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    assert_eq!(script.gaps(), vec![secs(3.0), secs(1.0)]);
}

#[tokio::test(start_paused = true)]
async fn server_delay_over_the_cap_gives_up_by_default() {
    let script = Script::new(vec![retry_after("20"), Step::Ok("never")]);
    let policy = base().max_server_delay(secs(10.0)).build();
    assert_eq!(policy.server_delay_over_cap(), ServerDelayOverCap::GiveUp);
    let started = Instant::now();
    let result = policy.run(|| script.attempt()).await;
    match result {
        Err(RetryError::ServerDelayTooLong {
            attempts: 1,
            requested,
            ..
        }) => assert_eq!(requested, secs(20.0)),
        other => panic!("{other:?}"),
    }
    assert_eq!(script.attempts(), 1);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "gave up at once, no sleep"
    );
}

#[tokio::test(start_paused = true)]
async fn server_delay_over_the_cap_can_wait_the_cap() {
    let script = Script::new(vec![retry_after("20"), Step::Ok("ok")]);
    let policy = base()
        .max_server_delay(secs(10.0))
        .server_delay_over_cap(ServerDelayOverCap::WaitCap)
        .build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    assert_eq!(script.gaps(), vec![secs(10.0)]);
}

#[tokio::test(start_paused = true)]
async fn server_delay_equal_to_the_cap_is_honored() {
    let script = Script::new(vec![retry_after("10"), Step::Ok("ok")]);
    let policy = base().max_server_delay(secs(10.0)).build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    assert_eq!(script.gaps(), vec![secs(10.0)]);
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_stops_before_an_attempt_would_start_too_late() {
    // Attempts start at 0, 0.4, 0.8; the next would start at 1.2 > 1.0: give up at 0.8
    // without sleeping.
    let script = Script::new(vec![Step::Fail(ExportError::Transport("reset".into()))]);
    let policy = base()
        .classifier(|_: &ExportError| RetryDecision::Retry {
            after: Some(secs(0.4)),
        })
        .max_attempts(100)
        .max_elapsed(secs(1.0))
        .build();
    let started = Instant::now();
    let result = policy.run(|| script.attempt()).await;
    match result {
        Err(RetryError::Timeout {
            attempts: 3,
            elapsed,
            last: Some(ExportError::Transport(_)),
        }) => assert_eq!(elapsed, secs(0.8)),
        other => panic!("{other:?}"),
    }
    assert_eq!(script.times(), vec![secs(0.0), secs(0.4), secs(0.8)]);
    assert_eq!(started.elapsed(), secs(0.8));
}

#[tokio::test(start_paused = true)]
async fn an_attempt_exactly_at_max_elapsed_may_start() {
    let script = Script::new(vec![retry_after("1"), Step::Ok("ok")]);
    let policy = base().max_elapsed(secs(1.0)).build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    assert_eq!(script.times(), vec![secs(0.0), secs(1.0)]);
}

#[tokio::test(start_paused = true)]
async fn a_server_delay_crossing_max_elapsed_gives_up() {
    let script = Script::new(vec![retry_after("5"), Step::Ok("never")]);
    let policy = base()
        .max_elapsed(secs(4.0))
        .max_server_delay(secs(10.0))
        .build();
    let result = policy.run(|| script.attempt()).await;
    assert!(
        matches!(
            result,
            Err(RetryError::Timeout {
                attempts: 1,
                last: Some(_),
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_makes_a_hung_attempt_retryable() {
    let script = Script::new(vec![Step::Hang, Step::Hang, Step::Ok("ok")]);
    let policy = base()
        .attempt_timeout(secs(2.0))
        .classifier(|_: &ExportError| RetryDecision::Retry {
            after: Some(secs(0.5)),
        })
        .build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    // Timed-out attempts carry no server delay: the backoff applies.
    let times = script.times();
    assert_eq!(times.len(), 3);
    assert!(times[1] >= secs(2.0) && times[1] <= secs(3.0), "{times:?}");
    assert!(
        times[2] >= times[1] + secs(2.0) && times[2] <= times[1] + secs(4.0),
        "{times:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn every_attempt_timing_out_is_a_timeout_without_error() {
    let script = Script::new(vec![Step::Hang]);
    let policy = base().attempt_timeout(secs(1.0)).max_attempts(3).build();
    let result = policy.run(|| script.attempt()).await;
    match result {
        Err(RetryError::Timeout {
            attempts: 3,
            last: None,
            elapsed,
        }) => assert!(elapsed >= secs(3.0), "{elapsed:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(script.attempts(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_after_an_error_keeps_the_error() {
    let script = Script::new(vec![unavailable(), Step::Hang]);
    let policy = base().attempt_timeout(secs(1.0)).max_attempts(2).build();
    let result = policy.run(|| script.attempt()).await;
    match &result {
        Err(RetryError::Timeout {
            attempts: 2,
            last: Some(ExportError::Http { status: 503, .. }),
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(result.err().and_then(RetryError::into_last_error).is_some());
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_does_not_cut_a_fast_attempt() {
    let script = Script::new(vec![Step::Ok("fast")]);
    let policy = base().attempt_timeout(secs(1.0)).build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("fast"));
    // The deadline of the finished attempt must not fire later into anything.
    tokio::time::sleep(secs(5.0)).await;
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn budget_exhaustion_and_refill() {
    // No ratio, a floor of 1 retry a second over 1 s: one retry per second in total,
    // shared by every call through the policy.
    let budget = Arc::new(RetryBudget::new(0.0, 1, secs(1.0)));
    let policy = base()
        .shared_budget(Arc::clone(&budget))
        .max_attempts(5)
        .initial_backoff(secs(0.01))
        .max_backoff(secs(0.01))
        .build();

    let script = Script::new(vec![unavailable()]);
    let result = policy.run(|| script.attempt()).await;
    match result {
        Err(RetryError::BudgetExhausted { attempts: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(script.attempts(), 2, "one retry, then the budget is empty");

    // Still empty for another call right away.
    let script = Script::new(vec![unavailable()]);
    let result = policy.run(|| script.attempt()).await;
    assert!(matches!(
        result,
        Err(RetryError::BudgetExhausted { attempts: 1, .. })
    ));

    // After the window the floor refills.
    tokio::time::advance(secs(1.1)).await;
    let script = Script::new(vec![unavailable(), Step::Ok("ok")]);
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    assert_eq!(script.attempts(), 2);
}

#[tokio::test(start_paused = true)]
async fn budget_ratio_grows_with_first_attempts() {
    // 50 % of first attempts, no floor.
    let policy = base()
        .budget(RetryBudget::new(0.5, 0, secs(10.0)))
        .max_attempts(2)
        .build();
    // Four successful calls deposit 2 tokens.
    for _ in 0..4 {
        let script = Script::new(vec![Step::Ok("ok")]);
        assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    }
    // The fifth call deposits 0.5 more: 2.5 tokens, two retries possible.
    let mut retried = 0;
    for _ in 0..4 {
        let script = Script::new(vec![unavailable(), Step::Ok("ok")]);
        if policy.run(|| script.attempt()).await.is_ok() {
            retried += 1;
        }
    }
    // Calls 5..8 deposit 0.5 each: balance 2 + 0.5 (>= 1 -> retry, 1.5) + 0.5 (2.0 ->
    // retry, 1.0) + 0.5 (1.5 -> retry, 0.5) + 0.5 (1.0 -> retry, 0.0).
    assert_eq!(retried, 4);
    let script = Script::new(vec![unavailable(), Step::Ok("ok")]);
    let result = policy.run(|| script.attempt()).await;
    // Balance 0.5 after this call's deposit: no retry.
    assert!(
        matches!(result, Err(RetryError::BudgetExhausted { .. })),
        "{result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_sleep_stops_further_attempts() {
    let script = Script::new(vec![retry_after("5"), Step::Ok("never")]);
    let policy = base().build();
    let task = {
        let script = script.clone();
        tokio::spawn(async move { policy.run(|| script.attempt()).await })
    };
    // Let the first attempt fail and the 5 s sleep begin.
    tokio::time::sleep(secs(1.0)).await;
    assert_eq!(script.attempts(), 1);
    task.abort();
    assert!(task.await.is_err_and(|e| e.is_cancelled()));
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(
        script.attempts(),
        1,
        "no attempt after the future was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_future_mid_attempt_cancels_it() {
    let script = Script::new(vec![Step::Hang]);
    let policy = base().attempt_timeout(secs(1.0)).build();
    let fut = policy.run(|| script.attempt());
    // Poll it once (first attempt starts), then drop it.
    let mut fut = Box::pin(fut);
    let _ = tokio::time::timeout(secs(0.5), fut.as_mut()).await;
    drop(fut);
    tokio::time::sleep(secs(60.0)).await;
    assert_eq!(script.attempts(), 1);
}

#[tokio::test(start_paused = true)]
async fn zero_server_delay_retries_at_once() {
    let script = Script::new(vec![retry_after("0"), Step::Ok("ok")]);
    let policy = base().build();
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    assert_eq!(script.gaps(), vec![Duration::ZERO]);
}

#[tokio::test(start_paused = true)]
async fn defaults_are_the_documented_ones() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts(), 5);
    assert_eq!(policy.backoff(), Backoff::default());
    assert_eq!(policy.backoff().initial(), secs(1.0));
    assert_eq!(policy.backoff().max(), secs(5.0));
    assert_eq!(policy.max_elapsed(), Some(secs(30.0)));
    assert_eq!(policy.attempt_timeout(), None);
    assert_eq!(policy.max_server_delay(), secs(10.0));
    assert_eq!(policy.server_delay_over_cap(), ServerDelayOverCap::GiveUp);
    let budget = policy
        .budget()
        .map(|b| (b.ratio(), b.min_retries_per_sec(), b.window()));
    assert_eq!(budget, Some((0.2, 10, secs(10.0))));
    assert_eq!(policy.name(), "retry");
    assert!(format!("{policy:?}").contains("max_attempts"));
}

// ---- As a tower service ----------------------------------------------------------

type BoxFuture = Pin<Box<dyn Future<Output = Result<usize, ExportError>> + Send>>;

/// A service that fails its first `failures` calls with 503, records the requests it
/// saw, and is ready only every other poll (to exercise readiness on retries).
#[derive(Clone)]
struct Flaky {
    failures: Arc<Mutex<u32>>,
    seen: Arc<Mutex<Vec<Bytes>>>,
    polls: Arc<Mutex<u32>>,
}

impl Service<Bytes> for Flaky {
    type Response = usize;
    type Error = ExportError;
    type Future = BoxFuture;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ExportError>> {
        let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
        *polls += 1;
        if (*polls).is_multiple_of(2) {
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, req: Bytes) -> BoxFuture {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(req.clone());
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let fail = *failures > 0;
        *failures = failures.saturating_sub(1);
        Box::pin(async move {
            if fail {
                Err(ExportError::from_http(
                    503,
                    None,
                    None,
                    b"",
                    SystemTime::now(),
                ))
            } else {
                Ok(req.len())
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn service_retries_with_a_cheap_clone_of_the_request() {
    let flaky = Flaky {
        failures: Arc::new(Mutex::new(2)),
        seen: Arc::default(),
        polls: Arc::default(),
    };
    let policy = base().max_attempts(4).build();
    let mut svc = policy.layer().layer_service(flaky.clone());
    let body = Bytes::from(vec![7u8; 1024]);
    let n = svc.ready().await.map(|s| s.call(body.clone()));
    let n = match n {
        Ok(fut) => fut.await,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(n, Ok(1024));
    let seen = flaky.seen.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(seen.len(), 3);
    // Every attempt sent the same buffer, not a copy.
    assert!(seen.iter().all(|b| b.as_ptr() == body.as_ptr()));
}

#[tokio::test(start_paused = true)]
async fn service_surfaces_the_error_when_exhausted() {
    let flaky = Flaky {
        failures: Arc::new(Mutex::new(u32::MAX)),
        seen: Arc::default(),
        polls: Arc::default(),
    };
    let policy = base().max_attempts(3).build();
    let svc = policy.layer().layer_service(flaky.clone());
    let result = svc.oneshot(Bytes::from_static(b"x")).await;
    assert!(matches!(
        result,
        Err(RetryError::Exhausted { attempts: 3, .. })
    ));
    assert_eq!(
        flaky.seen.lock().unwrap_or_else(|e| e.into_inner()).len(),
        3
    );
}

trait LayerExt<S> {
    fn layer_service(
        &self,
        inner: S,
    ) -> otlp_resilience::retry::Retry<S, otlp_resilience::classify::OtlpClassifier>;
}

impl<S> LayerExt<S>
    for otlp_resilience::retry::RetryLayer<otlp_resilience::classify::OtlpClassifier>
{
    fn layer_service(
        &self,
        inner: S,
    ) -> otlp_resilience::retry::Retry<S, otlp_resilience::classify::OtlpClassifier> {
        tower::Layer::layer(self, inner)
    }
}

/// Fails its second `poll_ready` (the first one of a retry) with a retryable error, and
/// its first call.
#[derive(Clone, Default)]
struct FailsToGetReady {
    polls: Arc<Mutex<u32>>,
    calls: Arc<Mutex<u32>>,
}

impl Service<Bytes> for FailsToGetReady {
    type Response = ();
    type Error = ExportError;
    type Future = Pin<Box<dyn Future<Output = Result<(), ExportError>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ExportError>> {
        let mut polls = self.polls.lock().unwrap_or_else(|e| e.into_inner());
        *polls += 1;
        if *polls == 2 {
            std::task::Poll::Ready(Err(ExportError::Transport("connect refused".into())))
        } else {
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn call(&mut self, _req: Bytes) -> Self::Future {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        *calls += 1;
        let first = *calls == 1;
        Box::pin(async move {
            if first {
                Err(ExportError::from_http(
                    503,
                    None,
                    None,
                    b"",
                    SystemTime::now(),
                ))
            } else {
                Ok(())
            }
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_readiness_counts_as_a_failed_attempt() {
    let inner = FailsToGetReady::default();
    let svc = base()
        .max_attempts(3)
        .build()
        .layer()
        .layer_service(inner.clone());
    assert_eq!(svc.oneshot(Bytes::new()).await, Ok(()));
    assert_eq!(*inner.calls.lock().unwrap_or_else(|e| e.into_inner()), 2);

    let inner = FailsToGetReady::default();
    let svc = base()
        .max_attempts(2)
        .build()
        .layer()
        .layer_service(inner.clone());
    match svc.oneshot(Bytes::new()).await {
        Err(RetryError::Exhausted {
            attempts: 2,
            last: ExportError::Transport(_),
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(*inner.calls.lock().unwrap_or_else(|e| e.into_inner()), 1);
}

// ---- Metrics ---------------------------------------------------------------------

/// One counter increment: instrument, attributes, value.
type Measurement = (String, Vec<(String, String)>, u64);

/// A meter that records every counter increment.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Measurement>>>);

struct RecordingCounter {
    name: String,
    recorder: Recorder,
}

impl opentelemetry::metrics::SyncInstrument<u64> for RecordingCounter {
    fn measure(&self, value: u64, attributes: &[opentelemetry::KeyValue]) {
        let attributes = attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        self.recorder
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.name.clone(), attributes, value));
    }
}

impl opentelemetry::metrics::InstrumentProvider for Recorder {
    fn u64_counter(
        &self,
        builder: opentelemetry::metrics::InstrumentBuilder<
            '_,
            opentelemetry::metrics::Counter<u64>,
        >,
    ) -> opentelemetry::metrics::Counter<u64> {
        opentelemetry::metrics::Counter::new(Arc::new(RecordingCounter {
            name: builder.name.to_string(),
            recorder: self.clone(),
        }))
    }
}

impl Recorder {
    /// The sum recorded for `instrument` with every attribute in `with`.
    fn sum(&self, instrument: &str, with: &[(&str, &str)]) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(name, attrs, _)| {
                name == instrument
                    && with
                        .iter()
                        .all(|(k, v)| attrs.iter().any(|(ak, av)| ak == k && av == v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }
}

#[tokio::test(start_paused = true)]
async fn metrics_count_attempts_retries_and_give_ups_by_reason() {
    let recorder = Recorder::default();
    let policy = base()
        .name("upstream-a")
        .meter(opentelemetry::metrics::Meter::new(Arc::new(
            recorder.clone(),
        )))
        .max_attempts(3)
        .build();

    // Succeeds on the third attempt: 3 attempts, 2 retries.
    let script = Script::new(vec![unavailable(), unavailable(), Step::Ok("ok")]);
    assert_eq!(policy.run(|| script.attempt()).await, Ok("ok"));
    // Exhausted: 3 attempts, 2 retries, one give-up.
    let script = Script::new(vec![unavailable()]);
    let _ = policy.run(|| script.attempt()).await;
    // Not retryable: 1 attempt, one give-up.
    let script = Script::new(vec![bad_request()]);
    let _ = policy.run(|| script.attempt()).await;
    // Server delay over the cap: 1 attempt, one give-up.
    let script = Script::new(vec![retry_after("3600")]);
    let _ = policy.run(|| script.attempt()).await;

    let name = ("name", "upstream-a");
    assert_eq!(recorder.sum("otlp.resilience.retry.attempts", &[name]), 8);
    assert_eq!(recorder.sum("otlp.resilience.retry.retries", &[name]), 4);
    for (reason, count) in [
        ("exhausted", 1),
        ("not_retryable", 1),
        ("server_delay_too_long", 1),
        ("budget_exhausted", 0),
        ("timeout", 0),
    ] {
        assert_eq!(
            recorder.sum(
                "otlp.resilience.retry.give_ups",
                &[name, ("reason", reason)]
            ),
            count,
            "{reason}"
        );
    }
}
