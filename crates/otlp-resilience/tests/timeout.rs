//! Timeout as a tower layer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use otlp_core::ExportError;
use otlp_resilience::timeout::{Timeout, TimeoutError, TimeoutLayer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt};

fn sleeper()
-> impl Service<Duration, Response = Duration, Error = ExportError, Future: Send> + Clone {
    tower::service_fn(|d: Duration| async move {
        tokio::time::sleep(d).await;
        Ok(d)
    })
}

#[tokio::test(start_paused = true)]
async fn layer_fires_exactly_at_the_deadline() {
    let mut svc = TimeoutLayer::new(Duration::from_millis(250)).layer(sleeper());
    let start = Instant::now();
    let r = svc
        .ready()
        .await
        .expect("ready")
        .call(Duration::from_secs(10))
        .await;
    assert_eq!(r, Err(TimeoutError::Elapsed(Duration::from_millis(250))));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn fast_calls_pass_and_deadline_restarts_per_call() {
    let mut svc = Timeout::new(sleeper(), Duration::from_millis(100));
    assert_eq!(svc.timeout(), Duration::from_millis(100));
    for _ in 0..5 {
        let r = svc
            .ready()
            .await
            .expect("ready")
            .call(Duration::from_millis(99))
            .await;
        assert_eq!(r, Ok(Duration::from_millis(99)));
    }
    // A call made after 495 ms of earlier calls still gets its full 100 ms.
    let r = svc
        .ready()
        .await
        .expect("ready")
        .call(Duration::from_millis(100))
        .await;
    assert_eq!(r, Ok(Duration::from_millis(100)));
}

#[tokio::test(start_paused = true)]
async fn timeout_cancels_the_inner_call() {
    let finished = Arc::new(AtomicBool::new(false));
    let f = finished.clone();
    let inner = tower::service_fn(move |_: ()| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            f.store(true, Ordering::SeqCst);
            Ok::<_, ExportError>(())
        }
    });
    let mut svc = TimeoutLayer::new(Duration::from_millis(10)).layer(inner);
    let r = svc.ready().await.expect("ready").call(()).await;
    assert!(r.as_ref().is_err_and(TimeoutError::is_elapsed));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!finished.load(Ordering::SeqCst), "inner future was dropped");
}

#[tokio::test(start_paused = true)]
async fn maps_back_to_export_error_for_exporters() {
    let mut svc = TimeoutLayer::new(Duration::from_millis(10))
        .layer(sleeper())
        .map_err(ExportError::from);
    let e = svc
        .ready()
        .await
        .expect("ready")
        .call(Duration::from_secs(1))
        .await;
    assert_eq!(e, Err(ExportError::Timeout(Duration::from_millis(10))));
    assert!(e.expect_err("timeout").is_retryable());
}

#[tokio::test(start_paused = true)]
async fn poll_ready_is_the_inner_services_and_not_timed() {
    // A buffer-like inner service that is not ready for 1 s: poll_ready time does not
    // count against the call's timeout.
    let limiter = tower::limit::ConcurrencyLimitLayer::new(1);
    let mut inner = limiter.layer(sleeper());
    let held = inner
        .ready()
        .await
        .expect("ready")
        .call(Duration::from_secs(1));
    let holder = tokio::spawn(held);
    let mut svc = TimeoutLayer::new(Duration::from_millis(100)).layer(inner);
    let t0 = Instant::now();
    let r = svc
        .ready()
        .await
        .expect("ready")
        .call(Duration::from_millis(50))
        .await;
    assert_eq!(r, Ok(Duration::from_millis(50)));
    assert_eq!(t0.elapsed(), Duration::from_millis(1050));
    holder.await.expect("task").expect("holder");
}
