//! What a finished call means for resilience decisions.
//!
//! Every middleware of this crate asks one of two questions about a call's result:
//!
//! - the circuit breaker and the adaptive concurrency limit ask [`Classify`]: was this
//!   call a [`Outcome::Success`], a [`Outcome::Failure`] (the downstream is unhealthy), or
//!   [`Outcome::Ignored`] (says nothing about the downstream's health, e.g. a 400 for bad
//!   data);
//! - the retry asks [`RetryClassify`]: may this error be retried, and does the server say
//!   when ([`RetryDecision`]).
//!
//! [`OtlpClassifier`] answers both with the OTLP rules of
//! [`otlp_core::ExportError::is_retryable`] and [`otlp_core::ExportError::retry_delay`];
//! [`AnyError`] treats every error as a retryable failure; closures work too.
//!
//! ```
//! use std::time::Duration;
//! use std::time::SystemTime;
//! use otlp_core::ExportError;
//! use otlp_resilience::classify::{Classify, Outcome, OtlpClassifier, RetryClassify, RetryDecision};
//!
//! let unavailable = ExportError::from_http(503, Some("2"), None, b"", SystemTime::now());
//! let bad_data = ExportError::from_http(400, None, None, b"", SystemTime::now());
//!
//! let c = OtlpClassifier;
//! assert_eq!(Classify::<(), _>::classify(&c, &Err(unavailable.clone())), Outcome::Failure);
//! assert_eq!(Classify::<(), _>::classify(&c, &Err(bad_data.clone())), Outcome::Ignored);
//! assert_eq!(
//!     c.retry_decision(&unavailable),
//!     RetryDecision::Retry { after: Some(Duration::from_secs(2)) }
//! );
//! assert_eq!(c.retry_decision(&bad_data), RetryDecision::DoNotRetry);
//!
//! // Any closure over the result is a classifier too.
//! let slow_is_bad = |r: &Result<u32, ()>| match r {
//!     Ok(ms) if *ms > 100 => Outcome::Failure,
//!     Ok(_) => Outcome::Success,
//!     Err(()) => Outcome::Failure,
//! };
//! assert_eq!(slow_is_bad.classify(&Ok(500)), Outcome::Failure);
//! ```
//!
//! Cancelled calls (the future dropped before it completed) never reach a classifier:
//! they are neither a success nor a failure, and each middleware handles the drop in its
//! own future.

use std::error::Error as StdError;
use std::time::Duration;

use otlp_core::ExportError;

/// What a finished call means for resilience decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The downstream did its job (including an OTLP partial success: it answered).
    Success,
    /// The downstream is unhealthy: counts toward opening a breaker and lowering a limit.
    Failure,
    /// Says nothing about the downstream's health (e.g. the caller sent bad data):
    /// counted neither as a success nor as a failure.
    Ignored,
}

/// Decides the [`Outcome`] of a call's result (used by the breaker and the adaptive limiter).
///
/// Implemented by [`OtlpClassifier`], [`AnyError`] and every
/// `Fn(&Result<T, E>) -> Outcome + Send + Sync` closure.
pub trait Classify<T, E>: Send + Sync {
    /// The outcome of `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;
}

/// Whether and when to retry after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryDecision {
    /// Sending the same request again cannot help or is not allowed (bad data, a server
    /// that accepted the data, a closed exporter): surface the error.
    DoNotRetry,
    /// The request may be sent again.
    Retry {
        /// The delay the server asked for (`Retry-After`, gRPC `RetryInfo`); `None` lets
        /// the retry policy pick its own backoff.
        after: Option<Duration>,
    },
}

impl RetryDecision {
    /// Whether the decision allows a retry.
    pub const fn is_retry(&self) -> bool {
        matches!(self, RetryDecision::Retry { .. })
    }
}

/// Decides whether and when to retry an error (used by retry).
///
/// Implemented by [`OtlpClassifier`], [`AnyError`] and every
/// `Fn(&E) -> RetryDecision + Send + Sync` closure.
pub trait RetryClassify<E>: Send + Sync {
    /// The decision for `error`.
    fn retry_decision(&self, error: &E) -> RetryDecision;
}

/// An error whose meaning under the OTLP rules is known, so [`OtlpClassifier`] can
/// classify it.
///
/// Implemented for [`ExportError`] and for boxed errors (which are looked into for an
/// `ExportError`). Error types that wrap an `ExportError` (e.g. a middleware's
/// `Inner(E)` variant) implement it by delegating to the wrapped error, and say what
/// their own variants mean (a timed-out attempt is a retryable failure; a load-shedding
/// rejection is retryable but says nothing about the downstream's health).
pub trait OtlpError {
    /// The outcome for the breaker and adaptive limits.
    fn otlp_outcome(&self) -> Outcome;
    /// The decision for the retry.
    fn otlp_retry_decision(&self) -> RetryDecision;
}

impl OtlpError for ExportError {
    /// Retryable errors (429, 502, 503, 504, the retryable gRPC codes, transport errors,
    /// timeouts) are failures; everything else (400-class, bad data, invalid response,
    /// shutdown) is ignored: it says nothing about the server's health.
    fn otlp_outcome(&self) -> Outcome {
        if self.is_retryable() {
            Outcome::Failure
        } else {
            Outcome::Ignored
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        if self.is_retryable() {
            RetryDecision::Retry {
                after: self.retry_delay(),
            }
        } else {
            RetryDecision::DoNotRetry
        }
    }
}

impl<T: OtlpError + ?Sized> OtlpError for &T {
    fn otlp_outcome(&self) -> Outcome {
        (**self).otlp_outcome()
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        (**self).otlp_retry_decision()
    }
}

/// Finds an [`ExportError`] in a boxed error or its `source()` chain.
fn find_export_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a ExportError> {
    let mut current: Option<&'a (dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<ExportError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// A boxed error (tower's `BoxError`) is classified by the first [`ExportError`] found in
/// it or its `source()` chain; an error without one is a failure that is not retried
/// (its meaning is unknown, so the retry surfaces it rather than repeat a request that
/// may not be safe to repeat).
impl OtlpError for Box<dyn StdError + Send + Sync> {
    fn otlp_outcome(&self) -> Outcome {
        match find_export_error(self.as_ref()) {
            Some(e) => e.otlp_outcome(),
            None => Outcome::Failure,
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        match find_export_error(self.as_ref()) {
            Some(e) => e.otlp_retry_decision(),
            None => RetryDecision::DoNotRetry,
        }
    }
}

/// The OTLP rules: errors that [`ExportError::is_retryable`] are failures and are retried
/// (after [`ExportError::retry_delay`] when the server gave one); non-retryable errors
/// (400-class, bad data) are [`Outcome::Ignored`] by the breaker and not retried. Any
/// `Ok` (including a partial success) is a success and is never retried.
///
/// Works for every error type implementing [`OtlpError`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpClassifier;

impl<T, E: OtlpError> Classify<T, E> for OtlpClassifier {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) => e.otlp_outcome(),
        }
    }
}

impl<E: OtlpError> RetryClassify<E> for OtlpClassifier {
    fn retry_decision(&self, error: &E) -> RetryDecision {
        error.otlp_retry_decision()
    }
}

/// Any `Err` is a failure and retryable without a server delay; any `Ok` is a success.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnyError;

impl<T, E> Classify<T, E> for AnyError {
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

impl<E> RetryClassify<E> for AnyError {
    fn retry_decision(&self, _error: &E) -> RetryDecision {
        RetryDecision::Retry { after: None }
    }
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome + Send + Sync,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

impl<E, F> RetryClassify<E> for F
where
    F: Fn(&E) -> RetryDecision + Send + Sync,
{
    fn retry_decision(&self, error: &E) -> RetryDecision {
        self(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::GrpcCode;
    use std::fmt;
    use std::time::SystemTime;

    fn http(status: u16, retry_after: Option<&str>) -> ExportError {
        ExportError::from_http(status, retry_after, None, b"", SystemTime::now())
    }

    #[test]
    fn otlp_http_statuses() {
        let c = OtlpClassifier;
        for status in [429, 502, 503, 504] {
            let e = http(status, None);
            assert_eq!(
                Classify::<(), _>::classify(&c, &Err(e.clone())),
                Outcome::Failure
            );
            assert_eq!(c.retry_decision(&e), RetryDecision::Retry { after: None });
        }
        for status in [400, 401, 403, 404, 413, 415, 500, 501] {
            let e = http(status, Some("3"));
            assert_eq!(
                Classify::<(), _>::classify(&c, &Err(e.clone())),
                Outcome::Ignored
            );
            assert_eq!(c.retry_decision(&e), RetryDecision::DoNotRetry, "{status}");
        }
        assert_eq!(
            c.retry_decision(&http(429, Some("3"))),
            RetryDecision::Retry {
                after: Some(Duration::from_secs(3))
            }
        );
    }

    #[test]
    fn otlp_grpc_and_local_errors() {
        let c = OtlpClassifier;
        let unavailable = ExportError::from_grpc(GrpcCode::Unavailable as i32, "down", &[]);
        assert_eq!(
            c.retry_decision(&unavailable),
            RetryDecision::Retry { after: None }
        );
        let quota = ExportError::from_grpc(GrpcCode::ResourceExhausted as i32, "quota", &[]);
        assert_eq!(c.retry_decision(&quota), RetryDecision::DoNotRetry);
        assert_eq!(quota.otlp_outcome(), Outcome::Ignored);

        let timeout = ExportError::Timeout(Duration::from_secs(1));
        assert_eq!(timeout.otlp_outcome(), Outcome::Failure);
        assert!(c.retry_decision(&timeout).is_retry());
        let transport = ExportError::Transport("refused".into());
        assert!(c.retry_decision(&transport).is_retry());
        for e in [
            ExportError::InvalidResponse("x".into()),
            ExportError::InvalidRequest("x".into()),
            ExportError::Shutdown,
        ] {
            assert_eq!(c.retry_decision(&e), RetryDecision::DoNotRetry);
            assert_eq!(e.otlp_outcome(), Outcome::Ignored);
        }
    }

    #[test]
    fn ok_is_always_success() {
        let ok: Result<(), ExportError> = Ok(());
        assert_eq!(OtlpClassifier.classify(&ok), Outcome::Success);
        assert_eq!(AnyError.classify(&ok), Outcome::Success);
    }

    #[derive(Debug)]
    struct Wrapper(ExportError);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "wrapped")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn boxed_errors_are_searched() {
        let c = OtlpClassifier;
        let direct: Box<dyn StdError + Send + Sync> = Box::new(http(503, Some("1")));
        assert_eq!(
            c.retry_decision(&direct),
            RetryDecision::Retry {
                after: Some(Duration::from_secs(1))
            }
        );
        let wrapped: Box<dyn StdError + Send + Sync> = Box::new(Wrapper(http(400, None)));
        assert_eq!(c.retry_decision(&wrapped), RetryDecision::DoNotRetry);
        assert_eq!(wrapped.otlp_outcome(), Outcome::Ignored);
        let unknown: Box<dyn StdError + Send + Sync> = "boom".into();
        assert_eq!(c.retry_decision(&unknown), RetryDecision::DoNotRetry);
        assert_eq!(unknown.otlp_outcome(), Outcome::Failure);
    }

    #[test]
    fn any_error_and_closures() {
        let err: Result<(), &str> = Err("x");
        assert_eq!(AnyError.classify(&err), Outcome::Failure);
        assert_eq!(
            RetryClassify::<&str>::retry_decision(&AnyError, &"x"),
            RetryDecision::Retry { after: None }
        );
        let only_timeouts = |e: &&str| {
            if *e == "timeout" {
                RetryDecision::Retry { after: None }
            } else {
                RetryDecision::DoNotRetry
            }
        };
        assert!(only_timeouts.retry_decision(&"timeout").is_retry());
        assert!(!only_timeouts.retry_decision(&"bad").is_retry());
        let ignore_all = |_: &Result<(), &str>| Outcome::Ignored;
        assert_eq!(ignore_all.classify(&err), Outcome::Ignored);
    }
}
