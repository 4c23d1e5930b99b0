//! The tower layer of the retry.

use std::fmt;

use tower::Layer;

use super::RetryPolicy;
use super::service::Retry;

/// Wraps a service in [`Retry`] with a [`RetryPolicy`]. Every service built from one
/// layer shares the policy's retry budget.
pub struct RetryLayer<C> {
    policy: RetryPolicy<C>,
}

impl<C> RetryLayer<C> {
    /// A layer applying `policy`.
    pub fn new(policy: RetryPolicy<C>) -> Self {
        RetryLayer { policy }
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy<C> {
        &self.policy
    }
}

impl<C> Clone for RetryLayer<C> {
    fn clone(&self) -> Self {
        RetryLayer {
            policy: self.policy.clone(),
        }
    }
}

impl<C> fmt::Debug for RetryLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("policy", &self.policy)
            .finish()
    }
}

impl<S, C> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry::new(inner, self.policy.clone())
    }
}
