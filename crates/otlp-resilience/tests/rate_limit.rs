//! Rate limiter as a tower layer, and properties of the keyed limiter under any schedule.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use otlp_core::Refusal;
use otlp_resilience::rate_limit::{
    KeyedRateLimiter, Quota, RateLimitError, RateLimitLayer, RateLimiter, Unkeyed,
};
use proptest::prelude::*;
use tokio::time::{Instant, advance};
use tower::{Layer, Service, ServiceExt};

fn quota(per_sec: u32, burst: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_sec).expect("non-zero"))
        .allow_burst(NonZeroU32::new(burst).expect("non-zero"))
}

/// A service that counts its calls and answers at once.
fn counting() -> (
    Arc<AtomicUsize>,
    impl Service<Request, Response = (), Error = &'static str, Future: Send> + Clone,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let svc = tower::service_fn(move |_r: Request| {
        c.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, &'static str>(()) }
    });
    (calls, svc)
}

#[derive(Debug, Clone)]
struct Request {
    tenant: Option<&'static str>,
    ip: IpAddr,
}

fn req(tenant: Option<&'static str>) -> Request {
    Request {
        tenant,
        ip: IpAddr::from([127, 0, 0, 1]),
    }
}

#[tokio::test(start_paused = true)]
async fn direct_layer_rejects_without_calling_inner() {
    let (calls, inner) = counting();
    let limiter = Arc::new(RateLimiter::new(quota(10, 2)));
    let mut svc = RateLimitLayer::new(limiter).layer(inner);
    for _ in 0..2 {
        svc.ready()
            .await
            .expect("ready")
            .call(req(None))
            .await
            .expect("admitted");
    }
    let err = svc.ready().await.expect("ready").call(req(None)).await;
    let Err(RateLimitError::Limited(limited)) = err else {
        panic!("expected a refusal, got {err:?}");
    };
    assert_eq!(*limited.key(), Unkeyed);
    assert_eq!(limited.retry_after(), Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let refusal = Refusal::from(limited);
    assert_eq!(refusal.http_status(), 429);
    assert_eq!(refusal.retry_after_header().as_deref(), Some("1"));
}

#[tokio::test(start_paused = true)]
async fn wait_mode_delays_within_bound_and_rejects_beyond() {
    let (calls, inner) = counting();
    let limiter = Arc::new(RateLimiter::new(quota(10, 1)));
    let layer = RateLimitLayer::new(limiter).wait_up_to(Duration::from_millis(150));
    let svc = layer.layer(inner);

    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..3 {
        let mut svc = svc.clone();
        handles.push(tokio::spawn(async move {
            let r = svc.ready().await.expect("ready").call(req(None)).await;
            (r.is_ok(), t0.elapsed())
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.expect("task"));
    }
    results.sort();
    // First at once, second after 100 ms, third would wait 200 ms > 150 ms: refused at once.
    assert_eq!(
        results,
        vec![
            (false, Duration::ZERO),
            (true, Duration::ZERO),
            (true, Duration::from_millis(100)),
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelled_waiter_does_not_call_inner_and_never_over_admits() {
    let (calls, inner) = counting();
    let limiter = Arc::new(RateLimiter::new(quota(10, 1)));
    let mut svc = RateLimitLayer::new(limiter.clone())
        .wait_up_to(Duration::from_secs(1))
        .layer(inner);
    svc.ready()
        .await
        .expect("ready")
        .call(req(None))
        .await
        .expect("first");
    let waiting = svc.ready().await.expect("ready").call(req(None));
    drop(waiting);
    advance(Duration::from_millis(100)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The cell booked for 100 ms by the cancelled waiter is not handed out again: the
    // limiter errs on the side of admitting less.
    assert!(limiter.check().is_err());
    advance(Duration::from_millis(100)).await;
    assert!(limiter.check().is_ok());
}

#[tokio::test(start_paused = true)]
async fn keyed_layer_limits_per_key_and_passes_unkeyed() {
    let (calls, inner) = counting();
    let limiter = Arc::new(KeyedRateLimiter::<&'static str>::new(quota(1, 1)));
    let mut svc = RateLimitLayer::keyed(limiter.clone(), |r: &Request| r.tenant).layer(inner);

    svc.ready()
        .await
        .expect("ready")
        .call(req(Some("a")))
        .await
        .expect("a");
    let e = svc.ready().await.expect("ready").call(req(Some("a"))).await;
    assert!(
        matches!(&e, Err(RateLimitError::Limited(l)) if *l.key() == "a"),
        "{e:?}"
    );
    svc.ready()
        .await
        .expect("ready")
        .call(req(Some("b")))
        .await
        .expect("b");
    // No key: not limited, and not tracked.
    for _ in 0..10 {
        svc.ready()
            .await
            .expect("ready")
            .call(req(None))
            .await
            .expect("unkeyed");
    }
    assert_eq!(limiter.len(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 12);
}

#[tokio::test(start_paused = true)]
async fn keyed_by_client_ip_with_runtime_quota_change() {
    let (_calls, inner) = counting();
    let limiter = Arc::new(KeyedRateLimiter::<IpAddr>::new(quota(10, 2)));
    let mut svc = RateLimitLayer::keyed(limiter.clone(), |r: &Request| Some(r.ip)).layer(inner);
    let mut admitted = 0;
    for _ in 0..5 {
        if svc
            .ready()
            .await
            .expect("ready")
            .call(req(None))
            .await
            .is_ok()
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 2);
    // Raising the burst through the shared limiter applies to the running layer, and the
    // client's used burst carries over: 4 - 2 = 2 more now.
    limiter.set_quota(quota(10, 4));
    let mut more = 0;
    for _ in 0..5 {
        if svc
            .ready()
            .await
            .expect("ready")
            .call(req(None))
            .await
            .is_ok()
        {
            more += 1;
        }
    }
    assert_eq!(more, 2);
}

#[tokio::test(start_paused = true)]
async fn refusal_conversion_for_receivers() {
    let limiter = Arc::new(RateLimiter::new(quota(1, 1)));
    let inner =
        tower::service_fn(|_r: Request| async { Err::<(), _>(Refusal::BadData("no".into())) });
    let mut svc = RateLimitLayer::new(limiter).layer(inner);
    let first: Refusal = svc
        .ready()
        .await
        .expect("ready")
        .call(req(None))
        .await
        .map_err(Refusal::from)
        .expect_err("inner refuses");
    assert_eq!(first.http_status(), 400);
    let second: Refusal = svc
        .ready()
        .await
        .expect("ready")
        .call(req(None))
        .await
        .map_err(Refusal::from)
        .expect_err("limited");
    assert_eq!(second.http_status(), 429);
    assert_eq!(second.retry_after(), Some(Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn stale_keys_are_evicted_and_memory_stays_bounded() {
    let limiter = KeyedRateLimiter::<u32>::builder(quota(100, 5))
        .max_keys(1_000)
        .sweep_interval(Duration::from_secs(1))
        .build();
    // Ten waves of 1000 new keys each (think: scanning clients), 1.1 s apart.
    for wave in 0..10u32 {
        for k in 0..1_000 {
            assert!(limiter.check_key(&(wave * 1_000 + k)).is_ok());
        }
        assert!(limiter.len() <= 1_000);
        advance(Duration::from_millis(1100)).await;
    }
    // Every key has been idle > 50 ms (its burst refill time): all stale.
    limiter.sweep();
    assert!(limiter.is_empty());
}

// ---- properties -------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Request(u8),
    SetQuota(u32, u32),
}

fn op(with_quota_changes: bool) -> impl Strategy<Value = Op> {
    let base = prop_oneof![
        3 => (0u64..300).prop_map(Op::Advance),
        6 => (0u8..4).prop_map(Op::Request),
    ];
    if with_quota_changes {
        prop_oneof![
            20 => base,
            1 => (1u32..50, 1u32..8).prop_map(|(r, b)| Op::SetQuota(r, b)),
        ]
        .boxed()
    } else {
        base.boxed()
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// What a schedule did: per key, the admitted request times (ns since start) with the
/// epoch (quota index) they fell in; the quotas in order; every decision.
struct Run {
    admitted: HashMap<u8, Vec<(u64, usize)>>,
    quotas: Vec<Quota>,
    decisions: Vec<(u8, u64, bool)>,
}

/// Runs `ops` against a keyed limiter on the tokio clock (paused time).
fn run_schedule(initial: Quota, ops: &[Op], sweep_ms: u64) -> Run {
    paused_runtime().block_on(async {
        let limiter = KeyedRateLimiter::<u8>::builder(initial)
            .sweep_interval(Duration::from_millis(sweep_ms))
            .build();
        let start = Instant::now();
        let mut quotas = vec![initial];
        let mut admitted: HashMap<u8, Vec<(u64, usize)>> = HashMap::new();
        let mut decisions = Vec::new();
        for op in ops {
            match *op {
                Op::Advance(ms) => advance(Duration::from_millis(ms)).await,
                Op::Request(k) => {
                    let now = start.elapsed().as_nanos() as u64;
                    let ok = limiter.check_key(&k).is_ok();
                    decisions.push((k, now, ok));
                    if ok {
                        admitted.entry(k).or_default().push((now, quotas.len() - 1));
                    }
                }
                Op::SetQuota(r, b) => {
                    let q = quota(r, b);
                    limiter.set_quota(q);
                    quotas.push(q);
                }
            }
        }
        Run {
            admitted,
            quotas,
            decisions,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Over any window [a, b] inside one quota epoch, a key is admitted at most
    /// floor((b - a) / T) + burst times (T = one cell's replenish interval), whatever the
    /// schedule of requests, time advances, sweeps and quota changes.
    #[test]
    fn keyed_never_admits_more_than_rate_times_elapsed_plus_burst(
        rate in 1u32..50,
        burst in 1u32..8,
        sweep_ms in 1u64..500,
        ops in prop::collection::vec(op(true), 1..300),
    ) {
        let Run { admitted, quotas, .. } = run_schedule(quota(rate, burst), &ops, sweep_ms);
        for (key, times) in admitted {
            for i in 0..times.len() {
                for j in i..times.len() {
                    let (a, epoch_a) = times[i];
                    let (b, epoch_b) = times[j];
                    if epoch_a != epoch_b {
                        continue;
                    }
                    let q = quotas[epoch_a];
                    let t = q.replenish_interval().as_nanos() as u64;
                    let bound = (b - a) / t + u64::from(q.burst_size().get());
                    let count = (j - i + 1) as u64;
                    prop_assert!(
                        count <= bound,
                        "key {key}: {count} admitted in [{a}, {b}] ns, bound {bound} ({q:?})"
                    );
                }
            }
        }
    }

    /// Without quota changes every decision equals a reference token bucket's (capacity
    /// `burst`, one token per T, exact integer arithmetic): the limiter is neither stricter
    /// nor looser than GCRA, and evicting stale keys (sweeps as often as every 1 ms)
    /// changes no decision.
    #[test]
    fn keyed_decisions_match_a_reference_token_bucket(
        rate in 1u32..50,
        burst in 1u32..8,
        sweep_ms in 1u64..500,
        ops in prop::collection::vec(op(false), 1..300),
    ) {
        let q = quota(rate, burst);
        let decisions = run_schedule(q, &ops, sweep_ms).decisions;
        let t = q.replenish_interval().as_nanos() as u64;
        let cap = t * u64::from(burst);
        // Per key: (level in ns-tokens, time of last update).
        let mut buckets: HashMap<u8, (u64, u64)> = HashMap::new();
        for (key, now, ok) in decisions {
            let (level, last) = buckets.get(&key).copied().unwrap_or((cap, now));
            let level = (level + (now - last)).min(cap);
            let expect = level >= t;
            prop_assert_eq!(ok, expect, "key {} at {} ns", key, now);
            buckets.insert(key, (if expect { level - t } else { level }, now));
        }
    }
}
