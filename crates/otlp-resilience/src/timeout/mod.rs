//! Timeout: a call without a response within a fixed time fails with a typed error.
//!
//! - [`TimeoutLayer`] / [`Timeout`]: the tower middleware; the future is [`TimeoutFuture`]
//!   (named, not boxed) and the error [`TimeoutError`]: `Elapsed(timeout)` or `Inner(e)`.
//! - [`run`]: the same for any future returning a `Result`, without tower.
//!
//! For exporters, `ExportError::from(TimeoutError<ExportError>)` maps a timeout to
//! [`otlp_core::ExportError::Timeout`], which the OTLP rules retry and the circuit
//! breaker counts as a failure.
//!
//! Time is `tokio::time`: the deadline fires exactly `timeout` after the call under paused
//! time, and to the timer's millisecond granularity in real time.
//!
//! ```
//! use std::time::Duration;
//! use otlp_resilience::timeout::{TimeoutError, TimeoutLayer};
//! use tower::{Layer, Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let slow = tower::service_fn(|_: ()| async {
//!     tokio::time::sleep(Duration::from_secs(5)).await;
//!     Ok::<_, std::io::Error>("late")
//! });
//! let mut svc = TimeoutLayer::new(Duration::from_secs(1)).layer(slow);
//! let err = svc.ready().await.unwrap().call(()).await.unwrap_err();
//! assert!(matches!(err, TimeoutError::Elapsed(d) if d == Duration::from_secs(1)));
//!
//! // Without tower:
//! let ok = otlp_resilience::timeout::run(Duration::from_secs(1), async { Ok::<_, ()>(7) }).await;
//! assert_eq!(ok, Ok(7));
//! # }
//! ```

mod error;
mod future;
mod layer;
mod service;

use std::future::Future;
use std::time::Duration;

pub use error::TimeoutError;
pub use future::TimeoutFuture;
pub use layer::TimeoutLayer;
pub use service::Timeout;

/// Runs `future` with a deadline `timeout` from now: its result, or
/// [`TimeoutError::Elapsed`] (and `future` is dropped) if it is not done by then.
pub fn run<F, T, E>(timeout: Duration, future: F) -> TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    TimeoutFuture::new(future, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::pending;
    use tokio::time::{Instant, advance};

    #[tokio::test(start_paused = true)]
    async fn fires_exactly_at_the_deadline() {
        let start = Instant::now();
        let err = run(Duration::from_millis(100), pending::<Result<(), ()>>()).await;
        assert_eq!(err, Err(TimeoutError::Elapsed(Duration::from_millis(100))));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_one_millisecond_before_the_deadline() {
        let fut = run(Duration::from_millis(100), pending::<Result<(), ()>>());
        let deadline = fut.deadline();
        let mut fut = Box::pin(fut);
        advance(Duration::from_millis(99)).await;
        assert!(futures_poll_once(fut.as_mut()).is_none());
        advance(Duration::from_millis(1)).await;
        assert_eq!(Instant::now(), deadline);
        assert_eq!(
            futures_poll_once(fut.as_mut()),
            Some(Err(TimeoutError::Elapsed(Duration::from_millis(100))))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn response_at_the_deadline_wins() {
        let d = Duration::from_millis(100);
        let r = run(d, async move {
            tokio::time::sleep(d).await;
            Ok::<_, ()>("made it")
        })
        .await;
        assert_eq!(r, Ok("made it"));
    }

    #[tokio::test(start_paused = true)]
    async fn inner_error_passes_through() {
        let r = run(Duration::from_secs(1), async { Err::<(), _>("boom") }).await;
        assert_eq!(r, Err(TimeoutError::Inner("boom")));
    }

    fn futures_poll_once<F: Future + Unpin>(f: F) -> Option<F::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match std::pin::Pin::new(&mut f).poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
