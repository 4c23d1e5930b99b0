//! Rate limiter errors.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use governor::Quota;
use otlp_core::Refusal;

use super::gcra::Params;
use crate::classify::{OtlpError, Outcome, RetryDecision};

/// The key of a direct (not keyed) limiter: every request shares one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Unkeyed;

impl fmt::Display for Unkeyed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("all requests")
    }
}

/// A request was refused because its key exceeds its rate.
///
/// What the caller can do: try again after [`retry_after`](RateLimited::retry_after). A
/// server answers 429 with `Retry-After` (OTLP/HTTP) or RESOURCE_EXHAUSTED with `RetryInfo`
/// (OTLP/gRPC): `Refusal::from(rate_limited)` gives [`Refusal::Throttled`], which does both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimited<K = Unkeyed> {
    key: K,
    retry_after: Duration,
    /// The GCRA parameters; the [`Quota`] is rebuilt from them only when asked for, so the
    /// refusal path does no division.
    params: Params,
}

impl<K> RateLimited<K> {
    pub(crate) fn new(key: K, retry_after: Duration, params: Params) -> RateLimited<K> {
        RateLimited {
            key,
            retry_after,
            params,
        }
    }

    /// The key that hit its limit ([`Unkeyed`] for a direct limiter).
    pub fn key(&self) -> &K {
        &self.key
    }

    /// How long until the same request would be admitted, had nobody else come in between.
    /// Always more than zero.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// The quota that was in force.
    pub fn quota(&self) -> Quota {
        self.params.quota()
    }

    /// The key, dropping the rest.
    pub fn into_key(self) -> K {
        self.key
    }
}

impl<K: fmt::Display> fmt::Display for RateLimited<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limit exceeded for {} (one request every {:?}, burst {}); retry after {:?}",
            self.key,
            self.quota().replenish_interval(),
            self.quota().burst_size(),
            self.retry_after
        )
    }
}

impl<K: fmt::Display + fmt::Debug> StdError for RateLimited<K> {}

impl<K: fmt::Display> From<RateLimited<K>> for Refusal {
    /// [`Refusal::Throttled`]: 429 + `Retry-After` / RESOURCE_EXHAUSTED + `RetryInfo`.
    fn from(limited: RateLimited<K>) -> Refusal {
        Refusal::Throttled {
            reason: format!(
                "rate limit exceeded for {} (one request every {:?}, burst {})",
                limited.key,
                limited.quota().replenish_interval(),
                limited.quota().burst_size()
            ),
            retry_after: limited.retry_after,
        }
    }
}

/// The error of the [`RateLimit`](super::RateLimit) service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitError<K, E> {
    /// The limiter refused the request; the inner service was not called. Retry after
    /// [`RateLimited::retry_after`].
    Limited(RateLimited<K>),
    /// The inner service failed; see its error.
    Inner(E),
}

impl<K, E> RateLimitError<K, E> {
    /// The refusal, if the limiter refused.
    pub fn as_limited(&self) -> Option<&RateLimited<K>> {
        match self {
            RateLimitError::Limited(l) => Some(l),
            RateLimitError::Inner(_) => None,
        }
    }

    /// The inner service's error, if that is what happened.
    pub fn into_inner(self) -> Option<E> {
        match self {
            RateLimitError::Limited(_) => None,
            RateLimitError::Inner(e) => Some(e),
        }
    }
}

impl<K: fmt::Display, E: fmt::Display> fmt::Display for RateLimitError<K, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateLimitError::Limited(l) => l.fmt(f),
            RateLimitError::Inner(e) => e.fmt(f),
        }
    }
}

impl<K, E> StdError for RateLimitError<K, E>
where
    K: fmt::Display + fmt::Debug,
    E: StdError + 'static,
{
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            RateLimitError::Limited(_) => None,
            RateLimitError::Inner(e) => Some(e),
        }
    }
}

impl<K, E> From<RateLimited<K>> for RateLimitError<K, E> {
    fn from(limited: RateLimited<K>) -> Self {
        RateLimitError::Limited(limited)
    }
}

impl<K: fmt::Display> From<RateLimitError<K, Refusal>> for Refusal {
    /// For receivers whose inner service already refuses with [`Refusal`]: a rate limit
    /// becomes [`Refusal::Throttled`], the inner refusal stays as it is.
    fn from(e: RateLimitError<K, Refusal>) -> Refusal {
        match e {
            RateLimitError::Limited(l) => l.into(),
            RateLimitError::Inner(r) => r,
        }
    }
}

/// The OTLP rules through a rate limiter: a local refusal is `Ignored` (the downstream
/// was not asked, so it says nothing about its health) and retryable after
/// [`RateLimited::retry_after`]; an inner error is classified by its own rules.
impl<K, E: OtlpError> OtlpError for RateLimitError<K, E> {
    fn otlp_outcome(&self) -> Outcome {
        match self {
            RateLimitError::Limited(_) => Outcome::Ignored,
            RateLimitError::Inner(e) => e.otlp_outcome(),
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        match self {
            RateLimitError::Limited(l) => RetryDecision::Retry {
                after: Some(l.retry_after),
            },
            RateLimitError::Inner(e) => e.otlp_retry_decision(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_classification() {
        let e: RateLimitError<&str, otlp_core::ExportError> = limited().into();
        assert_eq!(e.otlp_outcome(), Outcome::Ignored);
        assert_eq!(
            e.otlp_retry_decision(),
            RetryDecision::Retry {
                after: Some(Duration::from_millis(1500))
            }
        );
        let inner: RateLimitError<&str, _> =
            RateLimitError::Inner(otlp_core::ExportError::Shutdown);
        assert_eq!(inner.otlp_outcome(), Outcome::Ignored);
    }
    use std::num::NonZeroU32;

    fn limited() -> RateLimited<&'static str> {
        let quota = Quota::per_second(NonZeroU32::new(10).expect("non-zero"));
        RateLimited::new(
            "tenant-a",
            Duration::from_millis(1500),
            Params::from_quota(quota),
        )
    }

    #[test]
    fn maps_to_throttled_refusal_with_retry_after() {
        let r = Refusal::from(limited());
        assert_eq!(r.http_status(), 429);
        assert_eq!(r.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(r.retry_after_header().as_deref(), Some("2"));
        assert!(r.to_status().has_retry_info());
        assert!(r.to_string().contains("tenant-a"));
    }

    #[test]
    fn display_names_key_quota_and_delay() {
        let text = limited().to_string();
        assert!(text.contains("tenant-a"), "{text}");
        assert!(text.contains("100ms"), "{text}");
        assert!(text.contains("1.5s"), "{text}");
        assert_eq!(Unkeyed.to_string(), "all requests");
    }

    #[test]
    fn service_error_accessors_and_refusal_passthrough() {
        let e: RateLimitError<&str, Refusal> = limited().into();
        assert_eq!(
            e.as_limited().map(RateLimited::retry_after),
            Some(Duration::from_millis(1500))
        );
        let inner: RateLimitError<&str, Refusal> =
            RateLimitError::Inner(Refusal::BadData("x".into()));
        assert!(inner.as_limited().is_none());
        assert_eq!(Refusal::from(inner), Refusal::BadData("x".into()));
        assert_eq!(Refusal::from(e).http_status(), 429);
    }
}
