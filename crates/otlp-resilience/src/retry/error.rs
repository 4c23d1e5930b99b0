//! Why a retried call did not succeed.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::classify::{OtlpError, Outcome, RetryDecision};

/// Why a retried call did not succeed. Every variant carries the last error the inner
/// service returned (when there was one): see [`RetryError::last_error`].
///
/// What the caller can do:
///
/// - [`NotRetryable`](RetryError::NotRetryable): sending the same request again will not
///   help (bad data, an answer that must not be repeated): surface or drop it.
/// - [`Exhausted`](RetryError::Exhausted), [`Timeout`](RetryError::Timeout),
///   [`BudgetExhausted`](RetryError::BudgetExhausted): the downstream is failing
///   transiently and this call has used what it may: keep the data (e.g. in a queue) and
///   try later, or shed it.
/// - [`ServerDelayTooLong`](RetryError::ServerDelayTooLong): the server asked to wait
///   longer than the policy allows inside one call: keep the data and send it again
///   after `requested`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryError<E> {
    /// The classifier said the error must not be retried (or the inner service failed
    /// while getting ready). The inner error, as it was.
    NotRetryable(E),
    /// Every allowed attempt failed with a retryable error.
    Exhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        last: E,
    },
    /// The retry budget had no token left: the downstream is failing for many calls at
    /// once, and retrying would add more load than the budget allows.
    BudgetExhausted {
        /// How many attempts were made.
        attempts: u32,
        /// The error of the last attempt.
        last: E,
    },
    /// The time budget ran out: the maximum elapsed time left no room for the next
    /// attempt (after its backoff or the server's delay), or the last attempt timed out.
    Timeout {
        /// How many attempts were made (a timed-out attempt counts).
        attempts: u32,
        /// Time since the first attempt started.
        elapsed: Duration,
        /// The last error an attempt returned, if any did (`None` when every attempt
        /// timed out).
        last: Option<E>,
    },
    /// The server (or an open circuit breaker below the retry) asked for a delay longer
    /// than the policy's `max_server_delay`, and the policy gives up rather than retry
    /// earlier than asked.
    ServerDelayTooLong {
        /// How many attempts were made.
        attempts: u32,
        /// The delay the server asked for.
        requested: Duration,
        /// The error carrying the delay.
        last: E,
    },
}

impl<E> RetryError<E> {
    /// The last error the inner service returned, if any.
    pub fn last_error(&self) -> Option<&E> {
        match self {
            RetryError::NotRetryable(last)
            | RetryError::Exhausted { last, .. }
            | RetryError::BudgetExhausted { last, .. }
            | RetryError::ServerDelayTooLong { last, .. } => Some(last),
            RetryError::Timeout { last, .. } => last.as_ref(),
        }
    }

    /// The last error the inner service returned, if any, by value.
    pub fn into_last_error(self) -> Option<E> {
        match self {
            RetryError::NotRetryable(last)
            | RetryError::Exhausted { last, .. }
            | RetryError::BudgetExhausted { last, .. }
            | RetryError::ServerDelayTooLong { last, .. } => Some(last),
            RetryError::Timeout { last, .. } => last,
        }
    }

    /// How many attempts were made (`None` for [`RetryError::NotRetryable`], which does
    /// not track it: it can follow any attempt).
    pub fn attempts(&self) -> Option<u32> {
        match self {
            RetryError::NotRetryable(_) => None,
            RetryError::Exhausted { attempts, .. }
            | RetryError::BudgetExhausted { attempts, .. }
            | RetryError::Timeout { attempts, .. }
            | RetryError::ServerDelayTooLong { attempts, .. } => Some(*attempts),
        }
    }

    /// Whether the failure is transient, so keeping the data and sending it again later
    /// makes sense (everything except [`RetryError::NotRetryable`]).
    pub fn is_transient(&self) -> bool {
        !matches!(self, RetryError::NotRetryable(_))
    }

    /// The metric label of the reason, e.g. `"exhausted"`.
    pub fn reason(&self) -> &'static str {
        match self {
            RetryError::NotRetryable(_) => "not_retryable",
            RetryError::Exhausted { .. } => "exhausted",
            RetryError::BudgetExhausted { .. } => "budget_exhausted",
            RetryError::Timeout { .. } => "timeout",
            RetryError::ServerDelayTooLong { .. } => "server_delay_too_long",
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryError::NotRetryable(e) => write!(f, "not retryable: {e}"),
            RetryError::Exhausted { attempts, last } => {
                write!(f, "gave up after {attempts} attempt(s): {last}")
            }
            RetryError::BudgetExhausted { attempts, last } => write!(
                f,
                "retry budget exhausted after {attempts} attempt(s): {last}"
            ),
            RetryError::Timeout {
                attempts,
                elapsed,
                last: Some(last),
            } => write!(
                f,
                "retry time limit reached after {attempts} attempt(s) in {elapsed:?}: {last}"
            ),
            RetryError::Timeout {
                attempts,
                elapsed,
                last: None,
            } => write!(
                f,
                "retry time limit reached after {attempts} attempt(s) in {elapsed:?}: the last attempt timed out"
            ),
            RetryError::ServerDelayTooLong {
                attempts,
                requested,
                last,
            } => write!(
                f,
                "asked to retry after {requested:?}, longer than allowed, after {attempts} attempt(s): {last}"
            ),
        }
    }
}

impl<E: StdError + 'static> StdError for RetryError<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.last_error().map(|e| e as &(dyn StdError + 'static))
    }
}

/// A retry error means to an outer layer what its last inner error means; a timeout
/// without one is a retryable failure; a too-long server delay is retryable after it.
impl<E: OtlpError> OtlpError for RetryError<E> {
    fn otlp_outcome(&self) -> Outcome {
        match self.last_error() {
            Some(e) => e.otlp_outcome(),
            None => Outcome::Failure,
        }
    }

    fn otlp_retry_decision(&self) -> RetryDecision {
        match self {
            RetryError::NotRetryable(_) => RetryDecision::DoNotRetry,
            RetryError::ServerDelayTooLong { requested, .. } => RetryDecision::Retry {
                after: Some(*requested),
            },
            RetryError::Timeout { last: None, .. } => RetryDecision::Retry { after: None },
            RetryError::Exhausted { last, .. }
            | RetryError::BudgetExhausted { last, .. }
            | RetryError::Timeout {
                last: Some(last), ..
            } => last.otlp_retry_decision(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_core::ExportError;

    #[test]
    fn accessors_and_display() {
        let e: RetryError<ExportError> = RetryError::Timeout {
            attempts: 3,
            elapsed: Duration::from_secs(2),
            last: None,
        };
        assert_eq!(e.last_error(), None);
        assert_eq!(e.attempts(), Some(3));
        assert!(e.is_transient());
        assert!(e.to_string().contains("the last attempt timed out"));
        assert!(e.source().is_none());
        assert_eq!(
            e.otlp_retry_decision(),
            RetryDecision::Retry { after: None }
        );
        assert_eq!(e.otlp_outcome(), Outcome::Failure);

        let e = RetryError::ServerDelayTooLong {
            attempts: 1,
            requested: Duration::from_secs(60),
            last: ExportError::Shutdown,
        };
        assert_eq!(
            e.otlp_retry_decision(),
            RetryDecision::Retry {
                after: Some(Duration::from_secs(60))
            }
        );
        assert_eq!(e.reason(), "server_delay_too_long");
        assert!(e.source().is_some());
        assert_eq!(e.into_last_error(), Some(ExportError::Shutdown));

        let e = RetryError::NotRetryable(ExportError::InvalidRequest("header".into()));
        assert!(!e.is_transient());
        assert_eq!(e.attempts(), None);
        assert_eq!(e.otlp_retry_decision(), RetryDecision::DoNotRetry);
        assert_eq!(e.otlp_outcome(), Outcome::Ignored);
        assert!(e.to_string().starts_with("not retryable"));

        let e = RetryError::Exhausted {
            attempts: 5,
            last: ExportError::Transport("reset".into()),
        };
        assert!(e.otlp_retry_decision().is_retry());
        assert!(e.to_string().contains("5 attempt(s)"));
        let e = RetryError::BudgetExhausted {
            attempts: 1,
            last: ExportError::Transport("reset".into()),
        };
        assert_eq!(e.reason(), "budget_exhausted");
        assert!(e.to_string().contains("budget"));
    }
}
