//! The response future of [`RateLimit`](super::RateLimit).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::Service;

use super::error::{RateLimitError, RateLimited};

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req, K> {
        // The inner service was called (the common case: no wait).
        Called { #[pin] future: F },
        // Waiting for a booked cell, then calling `service` (already polled ready).
        Waiting { sleep: Pin<Box<Sleep>>, call: Option<(S, Req)> },
        // Refused without calling the inner service.
        Limited { error: Option<RateLimited<K>> },
    }
}

pin_project! {
    /// The response future of [`RateLimit`](super::RateLimit): the inner service's future,
    /// a wait for a booked cell, or a refusal. Not boxed; the wait (rare, bounded) boxes
    /// its timer.
    pub struct RateLimitFuture<F, S, Req, K> {
        #[pin]
        state: State<F, S, Req, K>,
    }
}

impl<F, S, Req, K> RateLimitFuture<F, S, Req, K> {
    pub(crate) fn called(future: F) -> Self {
        RateLimitFuture {
            state: State::Called { future },
        }
    }

    pub(crate) fn waiting(wait: Duration, service: S, req: Req) -> Self {
        RateLimitFuture {
            state: State::Waiting {
                sleep: Box::pin(tokio::time::sleep(wait)),
                call: Some((service, req)),
            },
        }
    }

    pub(crate) fn limited(error: RateLimited<K>) -> Self {
        RateLimitFuture {
            state: State::Limited { error: Some(error) },
        }
    }
}

impl<F, S, Req, K> std::fmt::Debug for RateLimitFuture<F, S, Req, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Waiting { .. } => "waiting",
            State::Limited { .. } => "limited",
        };
        f.debug_struct("RateLimitFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, S, Req, K, T, E> Future for RateLimitFuture<F, S, Req, K>
where
    F: Future<Output = Result<T, E>>,
    S: Service<Req, Response = T, Error = E, Future = F>,
{
    type Output = Result<T, RateLimitError<K, E>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Called { future } => {
                    return future.poll(cx).map_err(RateLimitError::Inner);
                }
                StateProj::Waiting { sleep, call } => {
                    ready!(sleep.as_mut().poll(cx));
                    let Some((mut service, req)) = call.take() else {
                        // Only reachable if polled again after a panic in `call`.
                        return Poll::Pending;
                    };
                    let future = service.call(req);
                    self.as_mut().project().state.set(State::Called { future });
                }
                StateProj::Limited { error } => {
                    return match error.take() {
                        Some(e) => Poll::Ready(Err(RateLimitError::Limited(e))),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}
