//! The rate limiting [`Service`].

use std::task::{Context, Poll};
use std::time::Duration;

use tower::Service;

use super::error::RateLimitError;
use super::future::RateLimitFuture;
use super::request::RequestLimit;

/// Takes a cell from a limiter before calling the inner service; see
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// `poll_ready` is the inner service's: the limiter is asked in `call`, where the request
/// (and so its key) is known, and a service clone that is only polled takes no cell.
/// When a request has to wait, the inner service that was polled ready goes into the
/// response future and a clone takes its place (hence `S: Clone`), as `tower::util::Oneshot`
/// would; the wait never blocks other requests on this service.
#[derive(Debug, Clone)]
pub struct RateLimit<S, L> {
    inner: S,
    limiter: L,
    max_wait: Duration,
}

impl<S, L> RateLimit<S, L> {
    /// Wraps `inner`; `max_wait` as in [`RateLimitLayer::wait_up_to`](super::RateLimitLayer::wait_up_to).
    pub fn new(inner: S, limiter: L, max_wait: Duration) -> RateLimit<S, L> {
        RateLimit {
            inner,
            limiter,
            max_wait,
        }
    }

    /// The limiter.
    pub fn limiter(&self) -> &L {
        &self.limiter
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, dropping the limiter.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, L, Req> Service<Req> for RateLimit<S, L>
where
    S: Service<Req> + Clone,
    L: RequestLimit<Req>,
{
    type Response = S::Response;
    type Error = RateLimitError<L::Key, S::Error>;
    type Future = RateLimitFuture<S::Future, S, Req, L::Key>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RateLimitError::Inner)
    }

    #[inline]
    fn call(&mut self, req: Req) -> Self::Future {
        match self.limiter.reserve_request(&req, self.max_wait) {
            Ok(wait) if wait.is_zero() => RateLimitFuture::called(self.inner.call(req)),
            Ok(wait) => {
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                RateLimitFuture::waiting(wait, ready, req)
            }
            Err(limited) => RateLimitFuture::limited(limited),
        }
    }
}
