//! Retry overhead: the success path of the retry layer against the bare service, and the
//! lock-free retry budget (deposit on every call, withdraw on every retry), uncontended
//! and with 2 threads.
//!
//! `cargo bench -p otlp-resilience --bench retry`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use otlp_resilience::classify::AnyError;
use otlp_resilience::retry::{RetryBudget, RetryPolicy};
use tower::{Layer, Service};

/// Polls a future that is ready at once (no runtime needed: nothing sleeps).
fn poll_now<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("the benchmarked service is always ready"),
    }
}

#[derive(Clone)]
struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = ();
    type Future = std::future::Ready<Result<u64, ()>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: u64) -> Self::Future {
        std::future::ready(Ok(req))
    }
}

fn success_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry/success_path");
    let mut cx = Context::from_waker(Waker::noop());

    let mut bare = Echo;
    group.bench_function("bare_service", |b| {
        b.iter(|| {
            let _ = bare.poll_ready(&mut cx);
            poll_now(bare.call(black_box(7)))
        })
    });

    let no_budget = RetryPolicy::builder()
        .classifier(AnyError)
        .no_budget()
        .build();
    let mut svc = no_budget.layer().layer(Echo);
    group.bench_function("retry_layer_no_budget", |b| {
        b.iter(|| {
            let _ = svc.poll_ready(&mut cx);
            poll_now(svc.call(black_box(7)))
        })
    });

    let with_budget = RetryPolicy::builder().classifier(AnyError).build();
    let mut svc = with_budget.layer().layer(Echo);
    group.bench_function("retry_layer_with_budget", |b| {
        b.iter(|| {
            let _ = svc.poll_ready(&mut cx);
            poll_now(svc.call(black_box(7)))
        })
    });

    group.bench_function("run_plain_api_with_budget", |b| {
        b.iter(|| poll_now(with_budget.run(|| std::future::ready(Ok::<_, ()>(black_box(7))))))
    });
    group.finish();
}

fn budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry/budget");
    let budget = RetryBudget::new(0.2, 10, Duration::from_secs(10));
    group.bench_function("deposit", |b| b.iter(|| budget.deposit()));
    group.bench_function("try_withdraw", |b| {
        b.iter(|| {
            budget.deposit();
            black_box(budget.try_withdraw())
        })
    });

    // The same with a second thread hammering the budget.
    let shared = Arc::new(RetryBudget::new(0.2, 10, Duration::from_secs(10)));
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let shared = Arc::clone(&shared);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                shared.deposit();
                black_box(shared.try_withdraw());
            }
        })
    };
    group.bench_function("deposit_2_threads", |b| b.iter(|| shared.deposit()));
    group.bench_function("try_withdraw_2_threads", |b| {
        b.iter(|| {
            shared.deposit();
            black_box(shared.try_withdraw())
        })
    });
    stop.store(true, Ordering::Relaxed);
    let _ = other.join();
    group.finish();
}

criterion_group!(benches, success_path, budget);
criterion_main!(benches);
