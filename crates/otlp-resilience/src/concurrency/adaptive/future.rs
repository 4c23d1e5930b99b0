//! The response future of [`AdaptiveConcurrencyLimit`](super::AdaptiveConcurrencyLimit).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower::Service;

use super::{LimitAlgorithm, Token};
use crate::classify::Classify;
use crate::concurrency::error::{ConcurrencyError, Overloaded};

type Acquire<A> = Pin<Box<dyn Future<Output = Result<Token<A>, Overloaded>> + Send>>;

pin_project! {
    #[project = StateProj]
    enum State<F, S, Req, A: LimitAlgorithm, Cl> {
        Running { #[pin] future: F, token: Option<Token<A>>, classifier: Cl },
        Waiting { acquire: Acquire<A>, call: Option<(S, Req)>, classifier: Option<Cl> },
        Overloaded { error: Option<Overloaded> },
    }
}

pin_project! {
    /// The response future of [`AdaptiveConcurrencyLimit`](super::AdaptiveConcurrencyLimit):
    /// holds the slot while the inner call runs and records its latency and outcome when it
    /// completes. Dropped before completion, it frees the slot and records nothing.
    pub struct AdaptiveLimitFuture<F, S, Req, A: LimitAlgorithm, Cl> {
        #[pin]
        state: State<F, S, Req, A, Cl>,
    }
}

impl<F, S, Req, A: LimitAlgorithm, Cl> AdaptiveLimitFuture<F, S, Req, A, Cl> {
    pub(crate) fn running(future: F, token: Token<A>, classifier: Cl) -> Self {
        AdaptiveLimitFuture {
            state: State::Running {
                future,
                token: Some(token),
                classifier,
            },
        }
    }

    pub(crate) fn waiting(acquire: Acquire<A>, service: S, req: Req, classifier: Cl) -> Self {
        AdaptiveLimitFuture {
            state: State::Waiting {
                acquire,
                call: Some((service, req)),
                classifier: Some(classifier),
            },
        }
    }

    pub(crate) fn overloaded(error: Overloaded) -> Self {
        AdaptiveLimitFuture {
            state: State::Overloaded { error: Some(error) },
        }
    }
}

impl<F, S, Req, A: LimitAlgorithm, Cl> std::fmt::Debug for AdaptiveLimitFuture<F, S, Req, A, Cl> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Running { .. } => "running",
            State::Waiting { .. } => "waiting",
            State::Overloaded { .. } => "overloaded",
        };
        f.debug_struct("AdaptiveLimitFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, S, Req, A, Cl, T, E> Future for AdaptiveLimitFuture<F, S, Req, A, Cl>
where
    F: Future<Output = Result<T, E>>,
    S: Service<Req, Response = T, Error = E, Future = F>,
    A: LimitAlgorithm,
    Cl: Classify<T, E>,
{
    type Output = Result<T, ConcurrencyError<E>>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Running {
                    future,
                    token,
                    classifier,
                } => {
                    let out = ready!(future.poll(cx));
                    if let Some(token) = token.take() {
                        token.record(classifier.classify(&out));
                    }
                    return Poll::Ready(out.map_err(ConcurrencyError::Inner));
                }
                StateProj::Waiting {
                    acquire,
                    call,
                    classifier,
                } => {
                    let token = match ready!(acquire.as_mut().poll(cx)) {
                        Ok(token) => token,
                        Err(e) => return Poll::Ready(Err(ConcurrencyError::Overloaded(e))),
                    };
                    let (Some((mut service, req)), Some(classifier)) =
                        (call.take(), classifier.take())
                    else {
                        return Poll::Pending;
                    };
                    let future = service.call(req);
                    self.as_mut().project().state.set(State::Running {
                        future,
                        token: Some(token),
                        classifier,
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
