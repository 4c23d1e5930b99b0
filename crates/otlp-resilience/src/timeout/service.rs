//! The timeout [`Service`].

use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::error::TimeoutError;
use super::future::TimeoutFuture;

/// Fails a call that has no response within a fixed time; see [`TimeoutLayer`](super::TimeoutLayer).
///
/// The clock starts in `call`, not in `poll_ready`: time spent waiting for the inner
/// service to be ready (say, for a concurrency permit) is not counted. Put a timeout
/// outside the layers whose waiting should count.
#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Timeout<S> {
        Timeout { inner, timeout }
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, dropping the timeout.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for Timeout<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = TimeoutError<S::Error>;
    type Future = TimeoutFuture<S::Future>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(TimeoutError::Inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        TimeoutFuture::new(self.inner.call(req), self.timeout)
    }
}
