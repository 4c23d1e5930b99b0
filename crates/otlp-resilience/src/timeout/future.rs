//! The response future of [`Timeout`](super::Timeout).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use super::error::TimeoutError;

pin_project! {
    /// The inner future raced against a timer. The inner future is polled first, so a
    /// response that is ready exactly at the deadline wins. Dropping this future drops the
    /// inner one (the call is cancelled) and the timer.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        timeout: Duration,
    }
}

impl<F> TimeoutFuture<F> {
    /// `inner` with a deadline `timeout` from now.
    pub fn new(inner: F, timeout: Duration) -> TimeoutFuture<F> {
        TimeoutFuture {
            inner,
            sleep: tokio::time::sleep(timeout),
            timeout,
        }
    }

    /// The deadline.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.sleep.deadline()
    }
}

impl<F> std::fmt::Debug for TimeoutFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeoutFuture")
            .field("timeout", &self.timeout)
            .field("deadline", &self.sleep.deadline())
            .finish_non_exhaustive()
    }
}

impl<F, T, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<T, E>>,
{
    type Output = Result<T, TimeoutError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map_err(TimeoutError::Inner));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TimeoutError::Elapsed(*this.timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}
