//! The timeout [`Layer`].

use std::time::Duration;

use tower::Layer;

use super::service::Timeout;

/// Wraps a service in a [`Timeout`].
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// Every call fails with [`TimeoutError::Elapsed`](super::TimeoutError::Elapsed) if it
    /// has no response `timeout` after it was made.
    pub fn new(timeout: Duration) -> TimeoutLayer {
        TimeoutLayer { timeout }
    }

    /// The timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout::new(inner, self.timeout)
    }
}
