//! The response future of [`CircuitBreakerService`](super::CircuitBreakerService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use super::{BreakerError, BreakerOpen, OwnedPermit};
use crate::classify::Classify;

pin_project! {
    /// The future of a call through a [`CircuitBreakerService`](super::CircuitBreakerService):
    /// the inner service's future, whose result is classified and recorded when it
    /// completes, or a ready rejection. Dropping it before it completes counts the call
    /// as cancelled.
    #[derive(Debug)]
    pub struct ResponseFuture<F, C> {
        #[pin]
        kind: Kind<F>,
        permit: Option<OwnedPermit>,
        classifier: C,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Called { #[pin] future: F },
        Rejected { open: BreakerOpen },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn called(future: F, permit: OwnedPermit, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Called { future },
            permit: Some(permit),
            classifier,
        }
    }

    pub(crate) fn rejected(open: BreakerOpen, classifier: C) -> Self {
        ResponseFuture {
            kind: Kind::Rejected { open },
            permit: None,
            classifier,
        }
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
{
    type Output = Result<T, BreakerError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.kind.project() {
            KindProj::Called { future } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = this.permit.take() {
                    permit.complete(this.classifier.classify(&result));
                }
                Poll::Ready(result.map_err(BreakerError::Inner))
            }
            KindProj::Rejected { open } => Poll::Ready(Err(BreakerError::Open(open.clone()))),
        }
    }
}
