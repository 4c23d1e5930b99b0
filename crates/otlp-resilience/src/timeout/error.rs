//! Timeout errors.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use otlp_core::ExportError;

use crate::classify::{OtlpError, Outcome, RetryDecision};

/// The error of [`Timeout`](super::Timeout) and [`run`](super::run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeoutError<E> {
    /// No response within the timeout (the value); the inner call was cancelled (its future
    /// dropped). Retry if the operation is idempotent, or raise the timeout.
    Elapsed(Duration),
    /// The inner service failed first; see its error.
    Inner(E),
}

impl<E> TimeoutError<E> {
    /// Whether the timeout fired.
    pub fn is_elapsed(&self) -> bool {
        matches!(self, TimeoutError::Elapsed(_))
    }

    /// The inner service's error, if that is what happened.
    pub fn into_inner(self) -> Option<E> {
        match self {
            TimeoutError::Elapsed(_) => None,
            TimeoutError::Inner(e) => Some(e),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TimeoutError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutError::Elapsed(d) => write!(f, "no response within {d:?}"),
            TimeoutError::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: StdError + 'static> StdError for TimeoutError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            TimeoutError::Elapsed(_) => None,
            TimeoutError::Inner(e) => Some(e),
        }
    }
}

impl From<TimeoutError<ExportError>> for ExportError {
    /// For exporters: a timeout becomes [`ExportError::Timeout`] (retryable under the OTLP
    /// rules, counted as a failure by `classify::OtlpClassifier`), an inner error stays as
    /// it is. So `Timeout<S>` over an exporter service can be mapped back to the plain
    /// `ExportError` with `.map_err(ExportError::from)`.
    fn from(e: TimeoutError<ExportError>) -> ExportError {
        match e {
            TimeoutError::Elapsed(d) => ExportError::Timeout(d),
            TimeoutError::Inner(e) => e,
        }
    }
}

/// The OTLP rules through a timeout: a timeout is a failure and retryable (as
/// [`ExportError::Timeout`]); an inner error is classified by its own rules.
impl<E: OtlpError> OtlpError for TimeoutError<E> {
    fn otlp_outcome(&self) -> Outcome {
        match self {
            TimeoutError::Elapsed(_) => Outcome::Failure,
            TimeoutError::Inner(e) => e.otlp_outcome(),
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        match self {
            TimeoutError::Elapsed(_) => RetryDecision::Retry { after: None },
            TimeoutError::Inner(e) => e.otlp_retry_decision(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_classification() {
        let e: TimeoutError<ExportError> = TimeoutError::Elapsed(Duration::from_secs(1));
        assert_eq!(e.otlp_outcome(), Outcome::Failure);
        assert_eq!(
            e.otlp_retry_decision(),
            RetryDecision::Retry { after: None }
        );
        let bad = TimeoutError::Inner(ExportError::InvalidRequest("x".into()));
        assert_eq!(bad.otlp_outcome(), Outcome::Ignored);
        assert_eq!(bad.otlp_retry_decision(), RetryDecision::DoNotRetry);
    }

    #[test]
    fn converts_to_export_error() {
        let d = Duration::from_secs(10);
        assert_eq!(
            ExportError::from(TimeoutError::Elapsed(d)),
            ExportError::Timeout(d)
        );
        assert!(ExportError::from(TimeoutError::Elapsed(d)).is_retryable());
        assert_eq!(
            ExportError::from(TimeoutError::Inner(ExportError::Shutdown)),
            ExportError::Shutdown
        );
    }

    #[test]
    fn accessors_and_display() {
        let e: TimeoutError<ExportError> = TimeoutError::Elapsed(Duration::from_millis(250));
        assert!(e.is_elapsed());
        assert_eq!(e.to_string(), "no response within 250ms");
        assert!(e.into_inner().is_none());
        let i = TimeoutError::Inner(ExportError::Shutdown);
        assert!(!i.is_elapsed());
        assert!(StdError::source(&i).is_some());
        assert_eq!(i.into_inner(), Some(ExportError::Shutdown));
    }
}
