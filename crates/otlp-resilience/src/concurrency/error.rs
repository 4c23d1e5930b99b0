//! Concurrency limit errors, shared by the fixed and the adaptive limit.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use otlp_core::Refusal;

use crate::classify::{OtlpError, Outcome, RetryDecision};

/// A call was refused because the concurrency limit was reached (at once when shedding,
/// or after waiting `waited` for a slot).
///
/// What the caller can do: back off and try again, or raise the limit. It says nothing
/// about the downstream's health (the call was never made). A server answers 503 /
/// UNAVAILABLE with a retry delay: see [`to_refusal`](Overloaded::to_refusal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    limit: usize,
    waited: Duration,
}

impl Overloaded {
    pub(crate) fn new(limit: usize, waited: Duration) -> Overloaded {
        Overloaded { limit, waited }
    }

    /// The limit in force when the call was refused.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How long the call waited for a slot before it was refused (zero when shedding).
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// [`Refusal::Unavailable`] with `retry_after`, for a receiver that sheds load.
    pub fn to_refusal(&self, retry_after: Duration) -> Refusal {
        Refusal::Unavailable {
            reason: self.to_string(),
            retry_after,
        }
    }
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.waited.is_zero() {
            write!(f, "overloaded: {} calls already in flight", self.limit)
        } else {
            write!(
                f,
                "overloaded: {} calls in flight, no slot within {:?}",
                self.limit, self.waited
            )
        }
    }
}

impl StdError for Overloaded {}

/// The error of the concurrency limit services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcurrencyError<E> {
    /// The limit was reached; the inner service was not called. Back off and retry.
    Overloaded(Overloaded),
    /// The inner service failed; see its error.
    Inner(E),
}

impl<E> ConcurrencyError<E> {
    /// The refusal, if the limit refused.
    pub fn as_overloaded(&self) -> Option<&Overloaded> {
        match self {
            ConcurrencyError::Overloaded(o) => Some(o),
            ConcurrencyError::Inner(_) => None,
        }
    }

    /// The inner service's error, if that is what happened.
    pub fn into_inner(self) -> Option<E> {
        match self {
            ConcurrencyError::Overloaded(_) => None,
            ConcurrencyError::Inner(e) => Some(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for ConcurrencyError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcurrencyError::Overloaded(o) => o.fmt(f),
            ConcurrencyError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: StdError + 'static> StdError for ConcurrencyError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            ConcurrencyError::Overloaded(o) => Some(o),
            ConcurrencyError::Inner(e) => Some(e),
        }
    }
}

impl<E> From<Overloaded> for ConcurrencyError<E> {
    fn from(o: Overloaded) -> Self {
        ConcurrencyError::Overloaded(o)
    }
}

/// The OTLP rules through a concurrency limit: the inner error as classified by its own
/// rules; a refusal by the limit is `Ignored` (the downstream was not asked, so it says
/// nothing about its health) and retryable after the retry policy's own backoff.
impl<E: OtlpError> OtlpError for ConcurrencyError<E> {
    fn otlp_outcome(&self) -> Outcome {
        match self {
            ConcurrencyError::Overloaded(_) => Outcome::Ignored,
            ConcurrencyError::Inner(e) => e.otlp_outcome(),
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        match self {
            ConcurrencyError::Overloaded(_) => RetryDecision::Retry { after: None },
            ConcurrencyError::Inner(e) => e.otlp_retry_decision(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::ExportError;

    #[test]
    fn overloaded_display_refusal_and_classification() {
        let shed = Overloaded::new(8, Duration::ZERO);
        assert_eq!(shed.to_string(), "overloaded: 8 calls already in flight");
        let waited = Overloaded::new(8, Duration::from_millis(20));
        assert!(waited.to_string().contains("20ms"));
        assert_eq!(
            (waited.limit(), waited.waited()),
            (8, Duration::from_millis(20))
        );
        let r = shed.to_refusal(Duration::from_secs(1));
        assert_eq!(r.http_status(), 503);
        assert_eq!(r.retry_after(), Some(Duration::from_secs(1)));

        let e: ConcurrencyError<ExportError> = shed.into();
        assert_eq!(e.otlp_outcome(), Outcome::Ignored);
        assert!(e.otlp_retry_decision().is_retry());
        assert_eq!(e.as_overloaded(), Some(&shed));
        let inner = ConcurrencyError::Inner(ExportError::Timeout(Duration::from_secs(1)));
        assert_eq!(inner.otlp_outcome(), Outcome::Failure);
        assert_eq!(
            inner.into_inner(),
            Some(ExportError::Timeout(Duration::from_secs(1)))
        );
    }
}
