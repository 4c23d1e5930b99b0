//! How an export ends: what a retry policy's or a circuit breaker's error means as a
//! [`FailureReason`], and the counters behind [`ExporterStats`].
//!
//! This crate's exporter and the OTLP/gRPC exporter of `otlp-transport-grpc` both end
//! their exports through these, so the two classify give-ups and count items alike.
//!
//! ```
//! use otlp_core::{ExportError, Signal};
//! use otlp_resilience::retry::RetryError;
//! use otlp_transport_http::exporter::FailureReason;
//! use otlp_transport_http::exporter::outcome::{AttemptFailure, ExportCounters, GaveUp};
//!
//! let error = RetryError::Exhausted { attempts: 5, last: ExportError::Transport("reset".into()) };
//! let gave_up = GaveUp::from_retry(error, AttemptFailure::call);
//! assert_eq!(gave_up.reason, FailureReason::AttemptsExhausted);
//!
//! let counters = ExportCounters::default();
//! let failure = counters
//!     .finish(Signal::Logs, 3, "http://collector:4318/v1/logs", 5, Err(gave_up))
//!     .unwrap_err();
//! assert_eq!(failure.items(), 3);
//! assert_eq!(counters.snapshot().items_failed, 3);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otlp_core::sink::Accepted;
use otlp_core::{ExportError, Signal};
use otlp_resilience::breaker::{BreakerError, BreakerOpen};
use otlp_resilience::retry::RetryError;

use super::ExporterStats;
use super::error::{ExportFailure, FailureReason};

/// What one attempt's error means, before the retry policy's verdict.
#[derive(Debug)]
#[non_exhaustive]
pub struct AttemptFailure {
    /// A reason that wins over the retry policy's (an open circuit breaker), unless the
    /// policy found the error not retryable.
    pub reason: Option<FailureReason>,
    /// The error.
    pub error: ExportError,
    /// When to try again, when the attempt says so (a circuit breaker's probe time).
    pub retry_after: Option<Duration>,
}

impl AttemptFailure {
    /// The call was made and failed with `error`.
    pub fn call(error: ExportError) -> AttemptFailure {
        AttemptFailure {
            reason: None,
            error,
            retry_after: None,
        }
    }

    /// A circuit breaker's error: a refusal becomes a retryable transport error whose
    /// message `nothing_sent` writes (nothing was sent), with when the breaker lets
    /// probes through.
    pub fn breaker(
        error: BreakerError<ExportError>,
        nothing_sent: impl FnOnce(&BreakerOpen) -> String,
    ) -> AttemptFailure {
        match error {
            BreakerError::Open(open) => AttemptFailure {
                reason: Some(FailureReason::CircuitOpen),
                error: ExportError::Transport(nothing_sent(&open)),
                retry_after: open.retry_after(),
            },
            BreakerError::Inner(error) => AttemptFailure::call(error),
        }
    }
}

/// Why an export was given up, its last error, and when to try again: what an
/// [`ExportFailure`] is made of.
#[derive(Debug)]
#[non_exhaustive]
pub struct GaveUp {
    /// Why.
    pub reason: FailureReason,
    /// The last error.
    pub error: ExportError,
    /// When to try again, if the server or a circuit breaker said.
    pub retry_after: Option<Duration>,
}

impl GaveUp {
    /// The only attempt failed and there is no retry policy: the reason says whether a
    /// retry could have helped ([`FailureReason::RetryDisabled`]) or not.
    pub fn without_retry(attempt: AttemptFailure) -> GaveUp {
        let reason = attempt.reason.unwrap_or(match &attempt.error {
            ExportError::Shutdown => FailureReason::Shutdown,
            e if e.is_retryable() => FailureReason::RetryDisabled,
            _ => FailureReason::NotRetryable,
        });
        GaveUp {
            reason,
            error: attempt.error,
            retry_after: attempt.retry_after,
        }
    }

    /// The retry policy gave up; `attempt` says what the last attempt's error means. A
    /// reason of the attempt (an open breaker) wins over the policy's, unless the policy
    /// found the error not retryable.
    pub fn from_retry<E>(
        error: RetryError<E>,
        attempt: impl FnOnce(E) -> AttemptFailure,
    ) -> GaveUp {
        let (policy_reason, last, requested) = match error {
            RetryError::NotRetryable(last) => (FailureReason::NotRetryable, last, None),
            RetryError::Exhausted { last, .. } => (FailureReason::AttemptsExhausted, last, None),
            RetryError::BudgetExhausted { last, .. } => {
                (FailureReason::RetryBudgetExhausted, last, None)
            }
            RetryError::Timeout {
                last: Some(last), ..
            } => (FailureReason::TimeLimit, last, None),
            // Every attempt was cut short by the policy's own attempt timeout.
            RetryError::Timeout {
                last: None,
                elapsed,
                ..
            } => {
                return GaveUp {
                    reason: FailureReason::TimeLimit,
                    error: ExportError::Timeout(elapsed),
                    retry_after: None,
                };
            }
            RetryError::ServerDelayTooLong {
                requested, last, ..
            } => (FailureReason::ServerDelayTooLong, last, Some(requested)),
        };
        let attempt = attempt(last);
        let reason = match (attempt.reason, policy_reason) {
            (_, FailureReason::NotRetryable) => FailureReason::NotRetryable,
            (Some(inner), _) => inner,
            (None, policy) => policy,
        };
        let error = attempt.error;
        let retry_after = attempt
            .retry_after
            .or(requested)
            .or_else(|| error.retry_delay());
        GaveUp {
            reason,
            error,
            retry_after,
        }
    }
}

/// An exporter's counters, read as [`ExporterStats`]. Shared by its clones; plain
/// atomics.
#[derive(Debug, Default)]
pub struct ExportCounters {
    requests: AtomicU64,
    exports: AtomicU64,
    failed_exports: AtomicU64,
    partial_successes: AtomicU64,
    items_accepted: AtomicU64,
    items_rejected: AtomicU64,
    items_failed: AtomicU64,
}

impl ExportCounters {
    /// One request (one call) is being made.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// An export of `items` items of `signal` for `endpoint` failed after `attempts`
    /// requests: counted, and described.
    pub fn failure(
        &self,
        signal: Signal,
        items: u64,
        endpoint: impl Into<Arc<str>>,
        attempts: u32,
        reason: FailureReason,
        error: ExportError,
    ) -> ExportFailure {
        self.failed_exports.fetch_add(1, Ordering::Relaxed);
        self.items_failed.fetch_add(items, Ordering::Relaxed);
        ExportFailure::new(signal, items, endpoint, attempts, reason, error)
    }

    /// An export of `items` items ended after `attempts` requests: counts it, and the
    /// items the server accepted and rejected (a partial success is a success), or turns
    /// the give-up into an [`ExportFailure`].
    ///
    /// # Errors
    ///
    /// The [`ExportFailure`] when the export was given up.
    pub fn finish(
        &self,
        signal: Signal,
        items: u64,
        endpoint: impl Into<Arc<str>>,
        attempts: u32,
        outcome: Result<Accepted, GaveUp>,
    ) -> Result<Accepted, ExportFailure> {
        self.exports.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(accepted) => {
                let rejected = accepted
                    .partial_success
                    .as_ref()
                    .map_or(0, |p| p.rejected.min(items));
                self.items_accepted
                    .fetch_add(items - rejected, Ordering::Relaxed);
                if accepted.partial_success.is_some() {
                    self.partial_successes.fetch_add(1, Ordering::Relaxed);
                    self.items_rejected.fetch_add(rejected, Ordering::Relaxed);
                }
                Ok(accepted)
            }
            Err(gave_up) => {
                let mut failure = self.failure(
                    signal,
                    items,
                    endpoint,
                    attempts,
                    gave_up.reason,
                    gave_up.error,
                );
                // Else the failure keeps the delay its error carries.
                if gave_up.retry_after.is_some() {
                    failure = failure.with_retry_after(gave_up.retry_after);
                }
                Err(failure)
            }
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> ExporterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExporterStats {
            requests: get(&self.requests),
            exports: get(&self.exports),
            failed_exports: get(&self.failed_exports),
            partial_successes: get(&self.partial_successes),
            items_accepted: get(&self.items_accepted),
            items_rejected: get(&self.items_rejected),
            items_failed: get(&self.items_failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_breaker_wins_unless_the_policy_found_the_error_final() {
        let open = || AttemptFailure {
            reason: Some(FailureReason::CircuitOpen),
            error: ExportError::Transport("nothing sent".into()),
            retry_after: Some(Duration::from_secs(3)),
        };
        let exhausted = RetryError::Exhausted {
            attempts: 2,
            last: (),
        };
        let gave_up = GaveUp::from_retry(exhausted, |()| open());
        assert_eq!(gave_up.reason, FailureReason::CircuitOpen);
        assert_eq!(gave_up.retry_after, Some(Duration::from_secs(3)));
        let gave_up = GaveUp::from_retry(RetryError::NotRetryable(()), |()| open());
        assert_eq!(gave_up.reason, FailureReason::NotRetryable);
    }

    #[test]
    fn without_retry_says_whether_a_retry_could_have_helped() {
        let reason = |e| GaveUp::without_retry(AttemptFailure::call(e)).reason;
        assert_eq!(
            reason(ExportError::Transport("reset".into())),
            FailureReason::RetryDisabled
        );
        assert_eq!(reason(ExportError::Shutdown), FailureReason::Shutdown);
        assert_eq!(
            reason(ExportError::InvalidRequest("too big".into())),
            FailureReason::NotRetryable
        );
    }

    #[test]
    fn counts_partial_successes_and_failures() {
        let counters = ExportCounters::default();
        counters.count_request();
        let accepted = Accepted::partial(2, "bad");
        assert!(
            counters
                .finish(Signal::Traces, 10, "e", 1, Ok(accepted))
                .is_ok()
        );
        let timeout = RetryError::<ExportError>::Timeout {
            attempts: 1,
            elapsed: Duration::from_secs(1),
            last: None,
        };
        let gave_up = GaveUp::from_retry(timeout, AttemptFailure::call);
        let failure = counters
            .finish(Signal::Traces, 4, "e", 1, Err(gave_up))
            .unwrap_err();
        assert_eq!(failure.reason(), FailureReason::TimeLimit);
        let stats = counters.snapshot();
        assert_eq!(
            (stats.requests, stats.exports, stats.failed_exports),
            (1, 2, 1)
        );
        assert_eq!(
            (
                stats.items_accepted,
                stats.items_rejected,
                stats.items_failed
            ),
            (8, 2, 4)
        );
        assert_eq!(stats.partial_successes, 1);
    }
}
