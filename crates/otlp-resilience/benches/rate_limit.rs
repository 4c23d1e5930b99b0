//! Rate limiter and concurrency limit overhead, side by side with governor and tower.
//!
//! Run: `cargo bench -p otlp-resilience --bench rate_limit`.
//!
//! - `rate_limit/direct`: bare governor `check()` (its default clock, and our `TokioClock`),
//!   our direct limiter (default `TokioClock`, and governor's `MonotonicClock`), the
//!   alternative design (a governor limiter behind `RwLock<Arc<_>>` so the quota can be
//!   swapped), our `RateLimit` layer over a no-op service, and the same no-op service bare.
//! - `rate_limit/rejected`: the refusal path (ours builds a typed error with retry_after).
//! - `rate_limit/keyed`: governor keyed vs ours, one key and 10 000 keys.
//! - `rate_limit/contended`: direct check from 2 threads at once.
//! - `rate_limit/clock`: the clocks alone.
//! - `concurrency`: fixed limit acquire/release, our layer vs `tower::limit::ConcurrencyLimit`,
//!   and the adaptive layer, each around a no-op service.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::{Clock, MonotonicClock};
use otlp_resilience::classify::AnyError;
use otlp_resilience::concurrency::{
    AdaptiveConcurrencyLimitLayer, AdaptiveLimiter, Aimd, ConcurrencyLimitLayer, ConcurrencyLimiter,
};
use otlp_resilience::rate_limit::{
    KeyedRateLimiter, Quota, RateLimitLayer, RateLimiter, TokioClock,
};
use tower::{Layer, Service};

/// A quota that never refuses at benchmark speed.
fn open_quota() -> Quota {
    Quota::per_second(NonZeroU32::MAX).allow_burst(NonZeroU32::MAX)
}

/// A quota that refuses everything after the first cell.
fn closed_quota() -> Quota {
    Quota::per_hour(NonZeroU32::MIN)
}

fn noop() -> impl Service<
    (),
    Response = (),
    Error = Infallible,
    Future = std::future::Ready<Result<(), Infallible>>,
> + Clone {
    tower::service_fn(|()| std::future::ready(Ok::<(), Infallible>(())))
}

/// `poll_ready`, `call` and one poll of the response, as a server drives a service.
#[inline]
fn drive<S: Service<()>>(svc: &mut S, cx: &mut Context<'_>) -> bool {
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        _ => return false,
    }
    let fut = pin!(svc.call(()));
    matches!(fut.poll(cx), Poll::Ready(Ok(_)))
}

fn direct(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit/direct");

    let gov = governor::RateLimiter::direct(open_quota());
    g.bench_function("governor_check", |b| {
        b.iter(|| black_box(gov.check().is_ok()))
    });

    let gov_tokio = governor::RateLimiter::direct_with_clock(open_quota(), TokioClock::default());
    g.bench_function("governor_check_tokio_clock", |b| {
        b.iter(|| black_box(gov_tokio.check().is_ok()))
    });

    let ours = RateLimiter::new(open_quota());
    g.bench_function("ours_check", |b| b.iter(|| black_box(ours.check().is_ok())));

    let ours_mono = RateLimiter::builder(open_quota())
        .clock(MonotonicClock)
        .build();
    g.bench_function("ours_check_monotonic_clock", |b| {
        b.iter(|| black_box(ours_mono.check().is_ok()))
    });

    // The alternative to our sequence-locked quota: swap whole governor limiters.
    let swappable = RwLock::new(Arc::new(governor::RateLimiter::direct(open_quota())));
    g.bench_function("governor_behind_rwlock", |b| {
        b.iter(|| {
            let guard = swappable.read().unwrap_or_else(|e| e.into_inner());
            black_box(guard.check().is_ok())
        })
    });

    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut bare = noop();
    g.bench_function("noop_service_bare", |b| {
        b.iter(|| black_box(drive(&mut bare, &mut cx)))
    });

    let mut layered = RateLimitLayer::new(Arc::new(RateLimiter::new(open_quota()))).layer(noop());
    g.bench_function("ours_layer_noop_service", |b| {
        b.iter(|| black_box(drive(&mut layered, &mut cx)))
    });
    g.finish();
}

fn rejected(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit/rejected");
    let gov = governor::RateLimiter::direct(closed_quota());
    let _ = gov.check();
    g.bench_function("governor_check", |b| {
        b.iter(|| black_box(gov.check().is_err()))
    });
    let ours = RateLimiter::new(closed_quota());
    let _ = ours.check();
    g.bench_function("ours_check", |b| {
        b.iter(|| black_box(ours.check().is_err()))
    });
    let ours_mono = RateLimiter::builder(closed_quota())
        .clock(MonotonicClock)
        .build();
    let _ = ours_mono.check();
    g.bench_function("ours_check_monotonic_clock", |b| {
        b.iter(|| black_box(ours_mono.check().is_err()))
    });
    g.finish();
}

fn keyed(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit/keyed");
    let gov = governor::RateLimiter::<u64, _, _>::keyed(open_quota());
    g.bench_function("governor_1_key", |b| {
        b.iter(|| black_box(gov.check_key(&7).is_ok()))
    });
    let ours = KeyedRateLimiter::<u64>::new(open_quota());
    g.bench_function("ours_1_key", |b| {
        b.iter(|| black_box(ours.check_key(&7).is_ok()))
    });

    const KEYS: u64 = 10_000;
    let gov = governor::RateLimiter::<u64, _, _>::keyed(open_quota());
    let ours = KeyedRateLimiter::<u64>::new(open_quota());
    for k in 0..KEYS {
        let _ = gov.check_key(&k);
        let _ = ours.check_key(&k);
    }
    let mut k = 0u64;
    g.bench_function("governor_10k_keys", |b| {
        b.iter(|| {
            k = (k + 7919) % KEYS;
            black_box(gov.check_key(&k).is_ok())
        })
    });
    g.bench_function("ours_10k_keys", |b| {
        b.iter(|| {
            k = (k + 7919) % KEYS;
            black_box(ours.check_key(&k).is_ok())
        })
    });
    g.finish();
}

/// Both threads check the same limiter; reports time per check on the measuring thread.
fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit/contended");
    fn two_threads(b: &mut criterion::Bencher<'_>, check: Arc<dyn Fn() -> bool + Send + Sync>) {
        b.iter_custom(|iters| {
            let other = {
                let check = check.clone();
                std::thread::spawn(move || {
                    for _ in 0..iters {
                        black_box(check());
                    }
                })
            };
            let start = tokio::time::Instant::now();
            for _ in 0..iters {
                black_box(check());
            }
            let elapsed = start.elapsed();
            let _ = other.join();
            elapsed
        })
    }
    let gov = Arc::new(governor::RateLimiter::direct(open_quota()));
    g.bench_function("governor_check_2_threads", |b| {
        let gov = gov.clone();
        two_threads(b, Arc::new(move || gov.check().is_ok()))
    });
    let ours = Arc::new(RateLimiter::new(open_quota()));
    g.bench_function("ours_check_2_threads", |b| {
        let ours = ours.clone();
        two_threads(b, Arc::new(move || ours.check().is_ok()))
    });
    g.finish();
}

fn clocks(c: &mut Criterion) {
    let mut g = c.benchmark_group("rate_limit/clock");
    let tokio_clock = TokioClock::default();
    g.bench_function("tokio_clock_now", |b| {
        b.iter(|| black_box(tokio_clock.now()))
    });
    let mono = MonotonicClock;
    g.bench_function("governor_monotonic_clock_now", |b| {
        b.iter(|| black_box(mono.now()))
    });
    g.finish();
}

fn concurrency(c: &mut Criterion) {
    let mut g = c.benchmark_group("concurrency");
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);

    let limiter = ConcurrencyLimiter::new(1_000_000);
    g.bench_function("ours_acquire_release", |b| {
        b.iter(|| black_box(limiter.try_acquire().is_ok()))
    });

    let mut tower_limited = tower::limit::ConcurrencyLimit::new(noop(), 1_000_000);
    g.bench_function("tower_concurrency_limit_noop_service", |b| {
        b.iter(|| black_box(drive(&mut tower_limited, &mut cx)))
    });
    let mut ours = ConcurrencyLimitLayer::new(1_000_000).layer(noop());
    g.bench_function("ours_concurrency_limit_noop_service", |b| {
        b.iter(|| black_box(drive(&mut ours, &mut cx)))
    });
    let adaptive = AdaptiveLimiter::new(
        Aimd::builder()
            .initial_limit(1_000_000)
            .max_limit(1_000_000)
            .latency_threshold(Duration::from_secs(60))
            .build(),
    );
    let mut adaptive_svc = AdaptiveConcurrencyLimitLayer::new(adaptive)
        .classify(AnyError)
        .layer(noop());
    g.bench_function("ours_adaptive_aimd_noop_service", |b| {
        b.iter(|| black_box(drive(&mut adaptive_svc, &mut cx)))
    });
    g.finish();
}

criterion_group!(
    benches,
    direct,
    rejected,
    keyed,
    contended,
    clocks,
    concurrency
);
criterion_main!(benches);
