//! Circuit breaker overhead, side by side with `failsafe` and `recloser`.
//!
//! Each case measures the breaker's own work around a call that does nothing, so the
//! numbers are pure overhead:
//!
//! * `closed_success`: admit a call and record its success. Ours with the permit API
//!   (`try_acquire` + `complete`), with the async API (`call_with`, polled once), and
//!   with a time window (one clock read per call); `failsafe` with its cheapest policy
//!   (consecutive failures: no clock on success) through `CircuitBreaker::call`;
//!   `recloser` with its defaults through its sync `call`.
//! * `open_rejection`: a call refused by an open breaker (each checks its open-until
//!   time against the clock); ours also with `automatic_half_open` on, tripped inside a
//!   tokio runtime (a timer task makes the half-open transition: no clock read), and
//!   when forced open (no clock).
//! * `half_open_permitted`: admission of a half-open call. Ours: acquire a probe and
//!   cancel it (the place is freed, the breaker stays half-open). `failsafe`:
//!   `is_call_permitted` (it admits any number of half-open calls). `recloser` has no
//!   admission-only API: its `call` also records a success in the half-open ring
//!   (sized so that it never fills during a run).
//! * `half_open_rejected`: ours only (the peers never reject in half-open: they have no
//!   probe limit).
//!
//! `*_2_threads` run the same operation on two OS threads at once against one breaker;
//! the time is per operation on each thread (wall time / operations per thread).
//!
//! Run: `cargo bench -p otlp-resilience --bench breaker`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Barrier;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use failsafe::CircuitBreaker as _;
use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, SlidingWindow};
use otlp_resilience::classify::{AnyError, Outcome};
use tokio::time::Instant;

const HOUR: Duration = Duration::from_secs(3600);

fn ours(config: CircuitBreakerConfig) -> CircuitBreaker {
    CircuitBreaker::new(config)
}

fn ours_default() -> CircuitBreaker {
    ours(CircuitBreakerConfig::default())
}

fn ours_time_window() -> CircuitBreaker {
    ours(
        CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::time(Duration::from_secs(10)))
            .build()
            .expect("valid"),
    )
}

fn ours_open() -> CircuitBreaker {
    let b = ours(
        CircuitBreakerConfig::builder()
            .minimum_calls(1)
            .wait_in_open(HOUR)
            .build()
            .expect("valid"),
    );
    b.try_acquire()
        .expect("closed")
        .record(Outcome::Failure, Duration::ZERO);
    assert!(b.try_acquire().is_err());
    b
}

/// Open for an hour with the automatic half-open timer armed on `runtime`, which must
/// outlive the breaker's use (its shutdown disarms the timer).
fn ours_open_auto(runtime: &tokio::runtime::Runtime) -> CircuitBreaker {
    let b = ours(
        CircuitBreakerConfig::builder()
            .minimum_calls(1)
            .wait_in_open(HOUR)
            .automatic_half_open(true)
            .build()
            .expect("valid"),
    );
    let _context = runtime.enter();
    b.try_acquire()
        .expect("closed")
        .record(Outcome::Failure, Duration::ZERO);
    assert!(b.try_acquire().is_err());
    b
}

fn ours_half_open(probes: u32) -> CircuitBreaker {
    let b = ours(
        CircuitBreakerConfig::builder()
            .minimum_calls(1)
            .wait_in_open(Duration::ZERO)
            .permitted_calls_in_half_open(probes)
            .build()
            .expect("valid"),
    );
    b.try_acquire()
        .expect("closed")
        .record(Outcome::Failure, Duration::ZERO);
    b
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

fn failsafe_with_wait(wait: Duration) -> Failsafe {
    failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            1,
            failsafe::backoff::constant(wait),
        ))
        .build()
}

fn failsafe_open() -> Failsafe {
    let b = failsafe_with_wait(HOUR);
    let _ = b.call(|| Err::<(), ()>(()));
    assert!(!b.is_call_permitted());
    b
}

fn failsafe_half_open() -> Failsafe {
    let b = failsafe_with_wait(Duration::ZERO);
    let _ = b.call(|| Err::<(), ()>(()));
    // The wait is over: the next check moves it to half-open.
    assert!(b.is_call_permitted());
    b
}

fn recloser_open() -> recloser::Recloser {
    let r = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(2)
        .open_wait(HOUR)
        .build();
    for _ in 0..3 {
        let _ = r.call(|| Err::<(), ()>(()));
    }
    assert!(matches!(
        r.call(|| Ok::<(), ()>(())),
        Err(recloser::Error::Rejected)
    ));
    r
}

/// A half-open recloser whose ring holds `len` calls before it decides.
fn recloser_half_open(len: usize) -> recloser::Recloser {
    let r = recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(2)
        .half_open_len(len)
        .open_wait(Duration::ZERO)
        .build();
    for _ in 0..3 {
        let _ = r.call(|| Err::<(), ()>(()));
    }
    r
}

/// Polls a future that is ready at once (the breaker's async API around a ready call).
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    pin!(future).poll(&mut cx)
}

/// Runs `op` `iters` times on each of two threads at once; returns the wall time.
fn two_threads<S: Sync>(iters: u64, shared: &S, op: impl Fn(&S) + Sync) -> Duration {
    let barrier = Barrier::new(3);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    op(shared);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn closed_success(c: &mut Criterion) {
    let mut g = c.benchmark_group("breaker/closed_success");
    let b = ours_default();
    g.bench_function("ours_permit", |bench| {
        bench.iter(|| {
            if let Ok(p) = black_box(&b).try_acquire() {
                p.complete(Outcome::Success);
            }
        })
    });
    g.bench_function("ours_async_call", |bench| {
        bench.iter(|| {
            let call = b.call_with(&AnyError, || async { Ok::<_, ()>(black_box(1)) });
            black_box(poll_once(call))
        })
    });
    let t = ours_time_window();
    g.bench_function("ours_time_window", |bench| {
        bench.iter(|| {
            if let Ok(p) = black_box(&t).try_acquire() {
                p.complete(Outcome::Success);
            }
        })
    });
    let f = failsafe_with_wait(HOUR);
    g.bench_function("failsafe", |bench| {
        bench.iter(|| black_box(black_box(&f).call(|| Ok::<_, ()>(black_box(1)))))
    });
    let r = recloser::Recloser::default();
    g.bench_function("recloser", |bench| {
        bench.iter(|| black_box(black_box(&r).call(|| Ok::<_, ()>(black_box(1)))))
    });
    g.finish();

    let mut g = c.benchmark_group("breaker/closed_success_2_threads");
    g.bench_function("ours_permit", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &b, |b| {
                if let Ok(p) = b.try_acquire() {
                    p.complete(Outcome::Success);
                }
            })
        })
    });
    g.bench_function("failsafe", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &f, |f| {
                let _ = black_box(f.call(|| Ok::<_, ()>(black_box(1))));
            })
        })
    });
    g.bench_function("recloser", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &r, |r| {
                let _ = black_box(r.call(|| Ok::<_, ()>(black_box(1))));
            })
        })
    });
    g.finish();
}

fn open_rejection(c: &mut Criterion) {
    let b = ours_open();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let auto = ours_open_auto(&runtime);
    let forced = ours_default();
    forced.force_open();
    let f = failsafe_open();
    let r = recloser_open();

    let mut g = c.benchmark_group("breaker/open_rejection");
    g.bench_function("ours", |bench| {
        bench.iter(|| black_box(black_box(&b).try_acquire().is_err()))
    });
    g.bench_function("ours_auto_half_open_armed", |bench| {
        bench.iter(|| black_box(black_box(&auto).try_acquire().is_err()))
    });
    g.bench_function("ours_forced_open", |bench| {
        bench.iter(|| black_box(black_box(&forced).try_acquire().is_err()))
    });
    g.bench_function("failsafe", |bench| {
        bench.iter(|| black_box(black_box(&f).call(|| Ok::<_, ()>(black_box(1))).is_err()))
    });
    g.bench_function("recloser", |bench| {
        bench.iter(|| black_box(black_box(&r).call(|| Ok::<_, ()>(black_box(1))).is_err()))
    });
    g.finish();

    let mut g = c.benchmark_group("breaker/open_rejection_2_threads");
    g.bench_function("ours", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &b, |b| {
                black_box(b.try_acquire().is_err());
            })
        })
    });
    g.bench_function("ours_auto_half_open_armed", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &auto, |b| {
                black_box(b.try_acquire().is_err());
            })
        })
    });
    g.bench_function("failsafe", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &f, |f| {
                black_box(f.call(|| Ok::<_, ()>(black_box(1))).is_err());
            })
        })
    });
    g.bench_function("recloser", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &r, |r| {
                black_box(r.call(|| Ok::<_, ()>(black_box(1))).is_err());
            })
        })
    });
    g.finish();
}

/// Calls a fresh half-open recloser at most this many times (its ring is twice as big).
const RECLOSER_BATCH: u64 = 1 << 20;

fn recloser_half_open_run(iters: u64, threads: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(RECLOSER_BATCH);
        let r = recloser_half_open((2 * RECLOSER_BATCH * threads) as usize);
        let _ = r.call(|| Ok::<_, ()>(())); // open -> half-open
        total += if threads == 1 {
            let start = Instant::now();
            for _ in 0..n {
                let _ = black_box(r.call(|| Ok::<_, ()>(black_box(1))));
            }
            start.elapsed()
        } else {
            two_threads(n, &r, |r| {
                let _ = black_box(r.call(|| Ok::<_, ()>(black_box(1))));
            })
        };
        left -= n;
    }
    total
}

fn half_open(c: &mut Criterion) {
    let b = ours_half_open(1000);
    let f = failsafe_half_open();
    let held_open = ours_half_open(1);
    let held = held_open.try_acquire().expect("the one probe");
    assert!(held.is_probe());

    let mut g = c.benchmark_group("breaker/half_open_permitted");
    g.bench_function("ours_probe_acquire_cancel", |bench| {
        bench.iter(|| drop(black_box(black_box(&b).try_acquire())))
    });
    g.bench_function("failsafe_is_call_permitted", |bench| {
        bench.iter(|| black_box(black_box(&f).is_call_permitted()))
    });
    g.bench_function("recloser_call", |bench| {
        bench.iter_custom(|iters| recloser_half_open_run(iters, 1))
    });
    g.finish();

    let mut g = c.benchmark_group("breaker/half_open_permitted_2_threads");
    g.bench_function("ours_probe_acquire_cancel", |bench| {
        bench.iter_custom(|iters| two_threads(iters, &b, |b| drop(black_box(b.try_acquire()))))
    });
    g.bench_function("failsafe_is_call_permitted", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &f, |f| {
                black_box(f.is_call_permitted());
            })
        })
    });
    g.bench_function("recloser_call", |bench| {
        bench.iter_custom(|iters| recloser_half_open_run(iters, 2))
    });
    g.finish();

    let mut g = c.benchmark_group("breaker/half_open_rejected");
    g.bench_function("ours", |bench| {
        bench.iter(|| black_box(black_box(&held_open).try_acquire().is_err()))
    });
    g.bench_function("ours_2_threads", |bench| {
        bench.iter_custom(|iters| {
            two_threads(iters, &held_open, |b| {
                black_box(b.try_acquire().is_err());
            })
        })
    });
    g.finish();
    drop(held);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = closed_success, open_rejection, half_open
}
criterion_main!(benches);
