//! The response future of [`ConcurrencyLimit`](super::ConcurrencyLimit).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::sync::OwnedSemaphorePermit;
use tower::Service;

use super::ConcurrencyLimiter;
use crate::concurrency::error::{ConcurrencyError, Overloaded};

type Acquire = Pin<
    Box<
        dyn Future<
                Output = Result<
                    Result<OwnedSemaphorePermit, tokio::sync::AcquireError>,
                    tokio::time::error::Elapsed,
                >,
            > + Send,
    >,
>;

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req> {
        // Holding a slot while the inner call runs (the common case).
        Running { #[pin] future: F, permit: Option<OwnedSemaphorePermit> },
        // Waiting for a slot, then calling `service` (already polled ready).
        Waiting {
            acquire: Acquire,
            limiter: Arc<ConcurrencyLimiter>,
            max_wait: Duration,
            call: Option<(S, Req)>,
        },
        // Refused without calling the inner service.
        Overloaded { error: Option<Overloaded> },
    }
}

pin_project! {
    /// The response future of [`ConcurrencyLimit`](super::ConcurrencyLimit). It holds the
    /// slot until the inner future is done (then frees it at once) or until it is dropped
    /// (a cancelled call frees its slot too). Only waiting for a slot boxes.
    pub struct ConcurrencyLimitFuture<F, S, Req> {
        #[pin]
        state: State<F, S, Req>,
    }
}

impl<F, S, Req> ConcurrencyLimitFuture<F, S, Req> {
    pub(crate) fn running(future: F, permit: OwnedSemaphorePermit) -> Self {
        ConcurrencyLimitFuture {
            state: State::Running {
                future,
                permit: Some(permit),
            },
        }
    }

    pub(crate) fn waiting(
        limiter: Arc<ConcurrencyLimiter>,
        max_wait: Duration,
        service: S,
        req: Req,
    ) -> Self {
        let acquire = Box::pin(tokio::time::timeout(
            max_wait,
            limiter.semaphore().clone().acquire_owned(),
        ));
        ConcurrencyLimitFuture {
            state: State::Waiting {
                acquire,
                limiter,
                max_wait,
                call: Some((service, req)),
            },
        }
    }

    pub(crate) fn overloaded(error: Overloaded) -> Self {
        ConcurrencyLimitFuture {
            state: State::Overloaded { error: Some(error) },
        }
    }
}

impl<F, S, Req> std::fmt::Debug for ConcurrencyLimitFuture<F, S, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Waiting { .. } => "waiting",
            State::Overloaded { .. } => "overloaded",
        };
        f.debug_struct("ConcurrencyLimitFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, S, Req, T, E> Future for ConcurrencyLimitFuture<F, S, Req>
where
    F: Future<Output = Result<T, E>>,
    S: Service<Req, Response = T, Error = E, Future = F>,
{
    type Output = Result<T, ConcurrencyError<E>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Running { future, permit } => {
                    let out = ready!(future.poll(cx));
                    // Free the slot as soon as the call is done, not when the future is
                    // dropped.
                    permit.take();
                    return Poll::Ready(out.map_err(ConcurrencyError::Inner));
                }
                StateProj::Waiting {
                    acquire,
                    limiter,
                    max_wait,
                    call,
                } => {
                    let permit = match ready!(acquire.as_mut().poll(cx)) {
                        Ok(Ok(permit)) => permit,
                        Ok(Err(_)) | Err(_) => {
                            let e = limiter.overloaded(*max_wait);
                            return Poll::Ready(Err(ConcurrencyError::Overloaded(e)));
                        }
                    };
                    let Some((mut service, req)) = call.take() else {
                        return Poll::Pending;
                    };
                    let future = service.call(req);
                    self.as_mut().project().state.set(State::Running {
                        future,
                        permit: Some(permit),
                    });
                }
                StateProj::Overloaded { error } => {
                    return match error.take() {
                        Some(e) => Poll::Ready(Err(ConcurrencyError::Overloaded(e))),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}
