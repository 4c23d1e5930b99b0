//! The `tower` service.

use std::task::{Context, Poll};

use tower::Service;

use super::{BreakerError, CircuitBreaker, ResponseFuture};
use crate::classify::{Classify, OtlpClassifier};

/// A service behind a [`CircuitBreaker`]: calls are refused with
/// [`BreakerError::Open`] while the breaker is open, and every result is classified and
/// recorded.
///
/// `poll_ready` only asks the inner service: the breaker's decision is made in `call`
/// (a rejection is a ready future with the error), following the tower convention that
/// readiness reserves capacity and a breaker has none to reserve. Reserving a half-open
/// probe in `poll_ready` would let a caller that never calls hold it forever. Note that
/// a rejected call does not reach the inner service, so whatever the inner service
/// reserved in `poll_ready` stays reserved for the next call.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C = OtlpClassifier> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
}

impl<S, C> CircuitBreakerService<S, C> {
    /// `inner` behind `breaker`, with `classifier` deciding what its results mean.
    pub fn new(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        CircuitBreakerService {
            inner,
            breaker,
            classifier,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Request> Service<Request> for CircuitBreakerService<S, C>
where
    S: Service<Request>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BreakerError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BreakerError::Inner)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(open) => ResponseFuture::rejected(open, self.classifier.clone()),
        }
    }
}
