//! The tower service of the retry.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::Service;

use super::RetryPolicy;
use super::error::RetryError;
use super::future::ResponseFuture;
use crate::classify::RetryClassify;

/// Retries failed calls to the inner service according to a [`RetryPolicy`].
///
/// The first attempt goes to the service that `poll_ready` made ready; retries go to a
/// clone of it (polled ready before each retry), with a clone of the request.
pub struct Retry<S, C> {
    inner: S,
    policy: RetryPolicy<C>,
}

impl<S, C> Retry<S, C> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: RetryPolicy<C>) -> Self {
        Retry { inner, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy<C> {
        &self.policy
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, by value.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, C> Clone for Retry<S, C> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for Retry<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S, Req, C> Service<Req> for Retry<S, C>
where
    S: Service<Req> + Clone,
    Req: Clone,
    C: RetryClassify<S::Error>,
{
    type Response = S::Response;
    type Error = RetryError<S::Error>;
    type Future = ResponseFuture<S, Req, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RetryError::NotRetryable)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The ready service takes the first attempt; the future keeps a clone for retries
        // (tower's convention: a clone is not ready until polled).
        let retries = self.inner.clone();
        let first = self.inner.call(request.clone());
        ResponseFuture::new(Arc::clone(self.policy.shared()), first, retries, request)
    }
}
