//! Fixed and adaptive concurrency limits as tower layers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use otlp_core::ExportError;
use otlp_resilience::classify::{OtlpClassifier, Outcome};
use otlp_resilience::concurrency::{
    AdaptiveConcurrencyLimitLayer, AdaptiveLimiter, Aimd, ConcurrencyError, ConcurrencyLimitLayer,
    ConcurrencyLimiter, Gradient, LimitAlgorithm,
};
use otlp_resilience::timeout::TimeoutLayer;
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Tracks calls in flight inside the inner service and the most ever seen.
#[derive(Debug, Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
    done: AtomicUsize,
}

impl Gauge {
    fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
    }
}

/// A service that takes `latency` (paused-time sleep) and records concurrency.
fn sleeping(
    gauge: Arc<Gauge>,
) -> impl Service<Duration, Response = (), Error = ExportError, Future: Send> + Clone + Send {
    tower::service_fn(move |latency: Duration| {
        let gauge = gauge.clone();
        async move {
            gauge.enter();
            tokio::time::sleep(latency).await;
            gauge.exit();
            Ok(())
        }
    })
}

/// A service that yields a few times instead of sleeping (for real-time stress runs).
fn yielding(
    gauge: Arc<Gauge>,
) -> impl Service<u32, Response = (), Error = ExportError, Future: Send> + Clone + Send {
    tower::service_fn(move |yields: u32| {
        let gauge = gauge.clone();
        async move {
            gauge.enter();
            for _ in 0..yields {
                tokio::task::yield_now().await;
            }
            gauge.exit();
            Ok(())
        }
    })
}

// ---- fixed ------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn fixed_sheds_at_once_when_full() {
    let gauge = Arc::new(Gauge::default());
    let layer = ConcurrencyLimitLayer::new(2);
    let limiter = layer.limiter().clone();
    let svc = layer.layer(sleeping(gauge.clone()));
    let mut running = Vec::new();
    for _ in 0..2 {
        let mut s = svc.clone();
        running.push(tokio::spawn(
            async move { s.ready().await?.call(ms(100)).await },
        ));
    }
    tokio::task::yield_now().await;
    assert_eq!(limiter.in_flight(), 2);
    let t0 = Instant::now();
    let mut s = svc.clone();
    let r = s.ready().await.expect("ready").call(ms(100)).await;
    let Err(ConcurrencyError::Overloaded(o)) = r else {
        panic!("expected shedding, got {r:?}")
    };
    assert_eq!(
        (o.limit(), o.waited(), t0.elapsed()),
        (2, Duration::ZERO, Duration::ZERO)
    );
    for r in running {
        r.await.expect("task").expect("admitted");
    }
    assert_eq!(limiter.in_flight(), 0);
    assert_eq!(gauge.max.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn fixed_bounded_wait_gets_slot_or_refuses_at_the_bound() {
    let gauge = Arc::new(Gauge::default());
    let svc = ConcurrencyLimitLayer::new(1)
        .wait_up_to(ms(150))
        .layer(sleeping(gauge.clone()));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let mut s = svc.clone();
        tasks.push(tokio::spawn(async move {
            let r = s.ready().await.expect("ready").call(ms(100)).await;
            (r.is_ok(), t0.elapsed())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("task"));
    }
    results.sort();
    // #1 runs 0-100, #2 waits 100 ms then runs 100-200, #3 gives up at 150 ms.
    assert_eq!(
        results,
        vec![(false, ms(150)), (true, ms(100)), (true, ms(200))]
    );
    assert_eq!(gauge.max.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn fixed_releases_on_cancellation_and_polling_takes_no_slot() {
    let gauge = Arc::new(Gauge::default());
    let limiter = Arc::new(ConcurrencyLimiter::new(1));
    let layer = ConcurrencyLimitLayer::with_limiter(limiter.clone());
    let mut a = layer.layer(sleeping(gauge.clone()));
    let mut b = a.clone();
    // Both clones are ready at once: readiness holds no slot.
    a.ready().await.expect("ready");
    b.ready().await.expect("ready");
    assert_eq!(limiter.in_flight(), 0);
    let fut = a.call(ms(1000));
    assert_eq!(limiter.in_flight(), 1);
    drop(fut); // cancelled before it ran
    assert_eq!(limiter.in_flight(), 0);
    // Cancelled mid-flight.
    let task = tokio::spawn(b.call(ms(1000)));
    tokio::time::sleep(ms(10)).await;
    assert_eq!(limiter.in_flight(), 1);
    task.abort();
    let _ = task.await;
    assert_eq!(limiter.in_flight(), 0);
    // A waiter cancelled while waiting leaves the queue.
    let held = limiter.try_acquire().expect("slot");
    let mut c = ConcurrencyLimitLayer::with_limiter(limiter.clone())
        .wait_up_to(ms(500))
        .layer(sleeping(gauge.clone()));
    let waiting = c.ready().await.expect("ready").call(ms(1));
    drop(waiting);
    drop(held);
    assert_eq!(limiter.in_flight(), 0);
    assert!(limiter.try_acquire().is_ok());
}

#[tokio::test(start_paused = true)]
async fn fixed_slot_is_freed_when_the_call_completes_not_when_dropped() {
    let gauge = Arc::new(Gauge::default());
    let layer = ConcurrencyLimitLayer::new(1);
    let limiter = layer.limiter().clone();
    let mut svc = layer.layer(sleeping(gauge));
    let mut fut = Box::pin(svc.ready().await.expect("ready").call(ms(5)));
    (&mut fut).await.expect("done");
    // The completed future is still alive, its slot is not.
    assert_eq!(limiter.in_flight(), 0);
    drop(fut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_stress_never_exceeds_the_limit() {
    const LIMIT: usize = 8;
    const TASKS: usize = 64;
    const CALLS: usize = 50;
    let gauge = Arc::new(Gauge::default());
    let layer = ConcurrencyLimitLayer::new(LIMIT).wait_up_to(Duration::from_secs(30));
    let svc = layer.layer(yielding(gauge.clone()));
    let refused = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let mut s = svc.clone();
        let refused = refused.clone();
        // Half the tasks shed instead of waiting.
        let mut shed = ConcurrencyLimitLayer::with_limiter(layer.limiter().clone())
            .layer(yielding(gauge.clone()));
        tasks.push(tokio::spawn(async move {
            for c in 0..CALLS {
                let yields = (c % 5) as u32;
                let r = if i % 2 == 0 {
                    s.ready().await.expect("ready").call(yields).await
                } else {
                    shed.ready().await.expect("ready").call(yields).await
                };
                if r.is_err() {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert!(gauge.max.load(Ordering::SeqCst) <= LIMIT);
    assert_eq!(
        gauge.done.load(Ordering::SeqCst) + refused.load(Ordering::SeqCst),
        TASKS * CALLS
    );
    assert_eq!(layer.limiter().in_flight(), 0);
}

// ---- adaptive ---------------------------------------------------------------------------

/// Runs `rounds` rounds of `limit`-many concurrent calls (each of `latency`), i.e. keeps
/// the limiter busy, and returns the limit after each round.
async fn busy_rounds<A, S>(
    limiter: &Arc<AdaptiveLimiter<A>>,
    svc: &S,
    rounds: usize,
    latency: Duration,
) -> Vec<usize>
where
    A: LimitAlgorithm,
    S: Service<Duration> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    S::Response: Send,
{
    let mut seen = Vec::new();
    for _ in 0..rounds {
        let n = limiter.limit();
        let mut tasks = Vec::new();
        for _ in 0..n {
            let mut s = svc.clone();
            tasks.push(tokio::spawn(async move {
                let _ = s.ready().await.ok()?.call(latency).await;
                Some(())
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        seen.push(limiter.limit());
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn aimd_layer_grows_under_fast_successes() {
    let gauge = Arc::new(Gauge::default());
    let limiter = AdaptiveLimiter::new(Aimd::builder().initial_limit(4).max_limit(40).build());
    let svc = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
        .classify(OtlpClassifier)
        .layer(sleeping(gauge.clone()));
    let seen = busy_rounds(&limiter, &svc, 4, ms(5)).await;
    assert!(
        seen.windows(2).all(|w| w[1] > w[0]),
        "grows each round: {seen:?}"
    );
    assert!(*seen.last().expect("rounds") > 20);
    let seen = busy_rounds(&limiter, &svc, 10, ms(5)).await;
    assert_eq!(*seen.last().expect("rounds"), 40, "never above max");
    assert!(gauge.max.load(Ordering::SeqCst) <= 40);
}

#[tokio::test(start_paused = true)]
async fn aimd_layer_halves_on_failures_and_on_timeouts() {
    let limiter = AdaptiveLimiter::new(
        Aimd::builder()
            .initial_limit(32)
            .min_limit(2)
            .latency_threshold(ms(500))
            .build(),
    );
    // Inner: fails with 503 when asked for a zero latency, else sleeps.
    let inner = tower::service_fn(|latency: Duration| async move {
        if latency.is_zero() {
            return Err(ExportError::from_http(
                503,
                None,
                None,
                b"",
                std::time::SystemTime::now(),
            ));
        }
        tokio::time::sleep(latency).await;
        Ok(())
    });
    // Timeout inside the limit: a timeout is an ExportError::Timeout, a failure.
    let timed = TimeoutLayer::new(ms(100))
        .layer(inner)
        .map_err(ExportError::from);
    let mut svc = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
        .classify(OtlpClassifier)
        .layer(timed);

    let r = svc.ready().await.expect("ready").call(Duration::ZERO).await;
    assert!(matches!(r, Err(ConcurrencyError::Inner(_))));
    assert_eq!(limiter.limit(), 16, "halved on a 503");
    let r = svc.ready().await.expect("ready").call(ms(1000)).await;
    assert!(matches!(
        r,
        Err(ConcurrencyError::Inner(ExportError::Timeout(_)))
    ));
    assert_eq!(limiter.limit(), 8, "halved on a timeout");
    // Ignored outcomes (400: bad data) leave the limit alone.
    let bad = tower::service_fn(|_: Duration| async {
        Err::<(), _>(ExportError::from_http(
            400,
            None,
            None,
            b"",
            std::time::SystemTime::now(),
        ))
    });
    let mut bad = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
        .classify(OtlpClassifier)
        .layer(bad);
    let _ = bad.ready().await.expect("ready").call(ms(1)).await;
    assert_eq!(limiter.limit(), 8);
    for _ in 0..10 {
        let _ = svc.ready().await.expect("ready").call(Duration::ZERO).await;
    }
    assert_eq!(limiter.limit(), 2, "never below min");
}

#[tokio::test(start_paused = true)]
async fn aimd_slow_calls_over_threshold_shrink() {
    let gauge = Arc::new(Gauge::default());
    let limiter = AdaptiveLimiter::new(
        Aimd::builder()
            .initial_limit(16)
            .latency_threshold(ms(50))
            .build(),
    );
    let svc = AdaptiveConcurrencyLimitLayer::new(limiter.clone()).layer(sleeping(gauge));
    let seen = busy_rounds(&limiter, &svc, 3, ms(60)).await;
    // Each round's calls all started before the round's first decrease: one halving per round.
    assert_eq!(seen, vec![8, 4, 2]);
}

#[tokio::test(start_paused = true)]
async fn gradient_layer_shrinks_when_latency_rises_and_recovers() {
    let gauge = Arc::new(Gauge::default());
    let limiter = AdaptiveLimiter::new(
        Gradient::builder()
            .initial_limit(20)
            .min_limit(4)
            .max_limit(100)
            .build(),
    );
    let svc = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
        .classify(OtlpClassifier)
        .layer(sleeping(gauge.clone()));
    let baseline = busy_rounds(&limiter, &svc, 4, ms(10)).await;
    let high = *baseline.last().expect("rounds");
    assert!(high > 20, "grows at the baseline latency: {baseline:?}");

    let slow = busy_rounds(&limiter, &svc, 4, ms(50)).await;
    let low = *slow.last().expect("rounds");
    assert!(
        low < high / 2,
        "shrinks when latency rises: {high} -> {slow:?}"
    );
    assert!(low >= 4, "never below min");

    let recovered = busy_rounds(&limiter, &svc, 4, ms(10)).await;
    assert!(
        *recovered.last().expect("rounds") > low * 2,
        "recovers when latency falls: {low} -> {recovered:?}"
    );
    let capped = busy_rounds(&limiter, &svc, 10, ms(10)).await;
    assert_eq!(*capped.last().expect("rounds"), 100, "never above max");
    assert!(gauge.max.load(Ordering::SeqCst) <= 100);
}

#[tokio::test(start_paused = true)]
async fn adaptive_sheds_or_waits_over_the_limit() {
    let gauge = Arc::new(Gauge::default());
    let limiter = AdaptiveLimiter::new(Aimd::builder().initial_limit(1).max_limit(1).build());
    let shed = AdaptiveConcurrencyLimitLayer::new(limiter.clone()).layer(sleeping(gauge.clone()));
    let wait = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
        .wait_up_to(ms(100))
        .layer(sleeping(gauge.clone()));
    let mut first = shed.clone();
    let running = tokio::spawn(async move { first.ready().await?.call(ms(50)).await });
    tokio::task::yield_now().await;
    let mut s = shed.clone();
    let r = s.ready().await.expect("ready").call(ms(1)).await;
    assert!(matches!(r, Err(ConcurrencyError::Overloaded(o)) if o.limit() == 1));
    let t0 = Instant::now();
    let mut w = wait.clone();
    w.ready()
        .await
        .expect("ready")
        .call(ms(1))
        .await
        .expect("waited for the slot");
    assert_eq!(t0.elapsed(), ms(51));
    running.await.expect("task").expect("first");
    assert_eq!(limiter.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn adaptive_cancelled_calls_record_nothing() {
    let gauge = Arc::new(Gauge::default());
    let limiter = AdaptiveLimiter::new(
        Aimd::builder()
            .initial_limit(4)
            .grow_only_when_busy(false)
            .build(),
    );
    let mut svc = AdaptiveConcurrencyLimitLayer::new(limiter.clone()).layer(sleeping(gauge));
    let fut = svc.ready().await.expect("ready").call(ms(100));
    assert_eq!(limiter.in_flight(), 1);
    drop(fut);
    assert_eq!((limiter.in_flight(), limiter.limit()), (0, 4));
    // Manual tokens too.
    let t = limiter.try_acquire().expect("slot");
    t.record(Outcome::Ignored);
    assert_eq!((limiter.in_flight(), limiter.limit()), (0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_stress_never_exceeds_max_limit() {
    const MAX: usize = 8;
    const TASKS: usize = 64;
    const CALLS: usize = 50;
    let gauge = Arc::new(Gauge::default());
    let limiter = AdaptiveLimiter::new(
        Aimd::builder()
            .initial_limit(4)
            .max_limit(MAX)
            .grow_only_when_busy(false)
            .build(),
    );
    // Every 7th call fails so the limit moves both ways while tasks race.
    let flaky = {
        let gauge = gauge.clone();
        tower::service_fn(move |n: u32| {
            let gauge = gauge.clone();
            async move {
                gauge.enter();
                for _ in 0..(n % 4) {
                    tokio::task::yield_now().await;
                }
                gauge.exit();
                if n.is_multiple_of(7) {
                    Err(ExportError::Transport("reset".into()))
                } else {
                    Ok(())
                }
            }
        })
    };
    let svc = AdaptiveConcurrencyLimitLayer::new(limiter.clone())
        .classify(OtlpClassifier)
        .wait_up_to(Duration::from_secs(30))
        .layer(flaky);
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let mut s = svc.clone();
        tasks.push(tokio::spawn(async move {
            for c in 0..CALLS {
                let _ = s
                    .ready()
                    .await
                    .expect("ready")
                    .call((i * CALLS + c) as u32)
                    .await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert!(gauge.max.load(Ordering::SeqCst) <= MAX);
    assert_eq!(gauge.done.load(Ordering::SeqCst), TASKS * CALLS);
    assert_eq!(limiter.in_flight(), 0);
    assert!((1..=MAX).contains(&limiter.limit()));
}
