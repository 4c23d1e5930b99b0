//! The composed stacks (`otlp_resilience::stack`), with paused time: the order of the
//! layers matters, and these tests pin down why.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use otlp_core::ExportError;
use otlp_resilience::breaker::{
    BreakerError, BreakerState, CircuitBreaker, CircuitBreakerConfig, SlidingWindow,
};
use otlp_resilience::concurrency::{ConcurrencyError, ConcurrencyLimitLayer};
use otlp_resilience::rate_limit::{KeyedRateLimiter, Quota, RateLimitError, RateLimitLayer};
use otlp_resilience::retry::{RetryError, RetryPolicy};
use otlp_resilience::stack::{InboundStack, ResilienceStack};
use otlp_resilience::timeout::TimeoutError;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};

type BoxFuture = Pin<Box<dyn Future<Output = Result<(), ExportError>> + Send>>;

/// An upstream that fails its first `failures` calls with `failure`, then answers OK
/// after `latency`; counts its calls.
#[derive(Clone)]
struct Upstream {
    calls: Arc<AtomicU32>,
    failures: u32,
    failure: Failure,
    latency: Duration,
}

#[derive(Clone, Copy)]
enum Failure {
    Unavailable,
    Hang,
}

impl Upstream {
    fn new(failures: u32, failure: Failure) -> Upstream {
        Upstream {
            calls: Arc::default(),
            failures,
            failure,
            latency: Duration::ZERO,
        }
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn service(
        &self,
    ) -> impl tower::Service<Bytes, Response = (), Error = ExportError, Future = BoxFuture> + Clone + use<>
    {
        let this = self.clone();
        tower::service_fn(move |_body: Bytes| -> BoxFuture {
            let n = this.calls.fetch_add(1, Ordering::SeqCst);
            let fail = n < this.failures;
            let failure = this.failure;
            let latency = this.latency;
            Box::pin(async move {
                if fail {
                    match failure {
                        Failure::Unavailable => Err(ExportError::from_http(
                            503,
                            None,
                            None,
                            b"",
                            SystemTime::now(),
                        )),
                        Failure::Hang => std::future::pending().await,
                    }
                } else {
                    tokio::time::sleep(latency).await;
                    Ok(())
                }
            })
        })
    }
}

fn breaker(min_calls: u32, wait: Duration) -> CircuitBreaker {
    CircuitBreaker::new(
        CircuitBreakerConfig::builder()
            .name("upstream")
            .sliding_window(SlidingWindow::count(10))
            .minimum_calls(min_calls)
            .failure_rate_threshold(50.0)
            .wait_in_open(wait)
            .permitted_calls_in_half_open(1)
            .build()
            .expect("valid breaker config"),
    )
}

fn retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .no_budget()
        .max_attempts(attempts)
        .initial_backoff(Duration::from_millis(10))
        .max_backoff(Duration::from_millis(10))
        .max_elapsed(Duration::from_secs(60))
        .max_server_delay(Duration::from_secs(10))
        .jitter_seed(3)
        .build()
}

#[tokio::test(start_paused = true)]
async fn a_hanging_upstream_opens_the_breaker_through_the_attempt_timeout() {
    let upstream = Upstream::new(u32::MAX, Failure::Hang);
    let stack = ResilienceStack::builder()
        .retry(retry(4))
        .breaker(breaker(4, Duration::from_secs(30)))
        .attempt_timeout(Duration::from_secs(1))
        .build();
    let client = stack.layer(upstream.service());

    let result = client.clone().oneshot(Bytes::from_static(b"x")).await;
    // Four attempts, each cut by the timeout, each seen by the breaker as a failure.
    match result {
        Err(RetryError::Exhausted { attempts: 4, last }) => assert!(matches!(
            last,
            BreakerError::Inner(ConcurrencyError::Inner(TimeoutError::Elapsed(_)))
        )),
        other => panic!("{other:?}"),
    }
    assert_eq!(upstream.calls(), 4);
    assert_eq!(stack.breaker().state(), BreakerState::Open);
    assert_eq!(stack.breaker().snapshot().totals.failure, 4);

    // Open for 30 s, longer than the retry waits (10 s): rejected at once, with the
    // time to come back, and the upstream is not called.
    let started = Instant::now();
    let result = client.oneshot(Bytes::from_static(b"x")).await;
    match result {
        Err(RetryError::ServerDelayTooLong {
            attempts: 1,
            requested,
            last: BreakerError::Open(_),
        }) => assert!(requested > Duration::from_secs(25), "{requested:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(upstream.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_retry_waits_out_an_open_breaker_and_the_probe_closes_it() {
    let upstream = Upstream::new(4, Failure::Unavailable);
    let stack = ResilienceStack::builder()
        .retry(retry(4))
        .breaker(breaker(4, Duration::from_secs(2)))
        .build();
    let client = stack.layer(upstream.service());

    let result = client.clone().oneshot(Bytes::from_static(b"x")).await;
    assert!(
        matches!(result, Err(RetryError::Exhausted { attempts: 4, .. })),
        "{result:?}"
    );
    assert_eq!(stack.breaker().state(), BreakerState::Open);

    // The breaker says "in 2 s": within the retry's max_server_delay, so the retry waits
    // for it, and its next attempt is the half-open probe, which succeeds.
    let started = Instant::now();
    let result = client.oneshot(Bytes::from_static(b"x")).await;
    assert_eq!(result, Ok(()));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1990) && waited <= Duration::from_millis(2100),
        "{waited:?}"
    );
    assert_eq!(upstream.calls(), 5);
    assert_eq!(stack.breaker().state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn overload_is_retried_and_not_held_against_the_upstream() {
    let mut upstream = Upstream::new(0, Failure::Unavailable);
    upstream.latency = Duration::from_millis(100);
    let stack = ResilienceStack::builder()
        .retry(retry(20))
        .breaker(breaker(1, Duration::from_secs(30)))
        .concurrency(ConcurrencyLimitLayer::new(1))
        .build();
    let client = stack.layer(upstream.service());

    // Two calls at once through a limit of one that sheds at once: the second is
    // refused, backs off, and gets through once the first is done.
    let (a, b) = tokio::join!(
        client.clone().oneshot(Bytes::from_static(b"a")),
        client.clone().oneshot(Bytes::from_static(b"b")),
    );
    assert_eq!(a, Ok(()));
    assert_eq!(b, Ok(()));
    assert_eq!(upstream.calls(), 2);
    let totals = stack.breaker().snapshot().totals;
    assert_eq!(
        totals.failure, 0,
        "a shed call says nothing about the upstream"
    );
    assert!(totals.ignored >= 1, "{totals:?}");
    assert_eq!(stack.breaker().state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_is_shared_by_every_call_through_the_stack() {
    let upstream = Upstream::new(u32::MAX, Failure::Unavailable);
    let policy = RetryPolicy::builder()
        .budget(otlp_resilience::retry::RetryBudget::new(
            0.0,
            1,
            Duration::from_secs(10),
        ))
        .initial_backoff(Duration::from_millis(1))
        .max_attempts(5)
        .build();
    let stack = ResilienceStack::builder()
        .retry(policy)
        .breaker(breaker(1000, Duration::from_secs(30)))
        .build();
    let client = stack.layer(upstream.service());
    // The floor allows 10 retries in the 10 s window, for all calls together.
    let mut attempts = 0;
    for _ in 0..10 {
        match client.clone().oneshot(Bytes::from_static(b"x")).await {
            Err(e) => attempts += e.attempts().unwrap_or(0),
            Ok(()) => panic!("the upstream always fails"),
        }
    }
    assert_eq!(attempts, 10 + 10, "10 first attempts and 10 retries");
    assert_eq!(upstream.calls(), 20);
}

#[tokio::test(start_paused = true)]
async fn inbound_stack_limits_rate_then_sheds_then_times_out() {
    struct Req {
        tenant: &'static str,
        work: Duration,
    }
    let per_tenant = Arc::new(KeyedRateLimiter::<&'static str>::new(Quota::per_second(
        NonZeroU32::new(2).expect("non-zero"),
    )));
    let stack = InboundStack::builder(RateLimitLayer::keyed(per_tenant, |r: &Req| Some(r.tenant)))
        .concurrency(ConcurrencyLimitLayer::new(1))
        .timeout(Duration::from_secs(1))
        .build();
    let route = stack.layer(tower::service_fn(|r: Req| async move {
        tokio::time::sleep(r.work).await;
        Ok::<_, ExportError>("accepted")
    }));

    // Tenant a: two fast requests pass, the third is over its rate.
    for _ in 0..2 {
        let ok = route
            .clone()
            .oneshot(Req {
                tenant: "a",
                work: Duration::ZERO,
            })
            .await;
        assert_eq!(ok, Ok("accepted"));
    }
    let refused = route
        .clone()
        .oneshot(Req {
            tenant: "a",
            work: Duration::ZERO,
        })
        .await;
    assert!(matches!(refused, Err(RateLimitError::Limited(_))));

    // Tenant b holds the only slot with slow work; tenant c is shed at once.
    let slow = tokio::spawn(route.clone().oneshot(Req {
        tenant: "b",
        work: Duration::from_secs(5),
    }));
    tokio::task::yield_now().await;
    let shed = route
        .clone()
        .oneshot(Req {
            tenant: "c",
            work: Duration::ZERO,
        })
        .await;
    assert!(matches!(
        shed,
        Err(RateLimitError::Inner(ConcurrencyError::Overloaded(_)))
    ));
    // The slow one is cut by the timeout.
    let timed_out = slow.await.expect("task ran");
    assert!(matches!(
        timed_out,
        Err(RateLimitError::Inner(ConcurrencyError::Inner(
            TimeoutError::Elapsed(_)
        )))
    ));
}

#[tokio::test(start_paused = true)]
async fn the_stack_takes_an_adaptive_concurrency_limit() {
    use otlp_resilience::classify::OtlpClassifier;
    use otlp_resilience::concurrency::{AdaptiveConcurrencyLimitLayer, AdaptiveLimiter, Aimd};

    let limiter = AdaptiveLimiter::new(Aimd::builder().initial_limit(4).build());
    let stack = ResilienceStack::builder()
        .retry(retry(3))
        .breaker(breaker(10, Duration::from_secs(30)))
        .concurrency(
            AdaptiveConcurrencyLimitLayer::new(limiter.clone())
                .classify(OtlpClassifier)
                .wait_up_to(Duration::from_millis(100)),
        )
        .attempt_timeout(Duration::from_secs(1))
        .build();
    let upstream = Upstream::new(1, Failure::Unavailable);
    let client = stack.layer(upstream.service());
    assert_eq!(client.oneshot(Bytes::from_static(b"x")).await, Ok(()));
    assert_eq!(upstream.calls(), 2);
    assert!(limiter.limit() >= 1);
    assert_eq!(limiter.in_flight(), 0, "slots are given back");
}
