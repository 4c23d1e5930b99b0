//! The exporter's errors: a configuration that cannot work, and data that could not be
//! delivered.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use otlp_core::{ExportError, Signal};

/// The exporter cannot be built from this configuration. Every variant names the setting
/// (the environment variable or the builder method) and says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint is not an absolute `http://` or `https://` URL.
    #[error(
        "{key}: invalid endpoint {value:?} ({reason}); give an absolute http:// or https:// URL, e.g. http://localhost:4318"
    )]
    InvalidEndpoint {
        /// The variable or builder method.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The protocol is `grpc`, which this crate does not speak.
    #[error(
        "{key}: protocol grpc is OTLP/gRPC, which the otlp-transport-grpc crate's exporter sends; use it, or set http/protobuf or http/json for this exporter"
    )]
    GrpcProtocol {
        /// The variable or builder method.
        key: String,
    },
    /// The protocol is not one OTLP/HTTP defines.
    #[error("{key}: unknown protocol {value:?}; use http/protobuf or http/json")]
    InvalidProtocol {
        /// The variable.
        key: String,
        /// The value given.
        value: String,
    },
    /// The compression is not one this exporter can send.
    #[error("{key}: unknown compression {value:?}; use gzip, zstd or none")]
    InvalidCompression {
        /// The variable or builder method.
        key: String,
        /// The value given.
        value: String,
    },
    /// The timeout is not a whole number of milliseconds.
    #[error("{key}: invalid timeout {value:?}; give a whole number of milliseconds, e.g. 10000")]
    InvalidTimeout {
        /// The variable.
        key: String,
        /// The value given.
        value: String,
    },
    /// A header entry is malformed.
    #[error(
        "{key}: invalid header entry {entry:?} ({reason}); write key=value pairs separated by commas, percent-encoding special characters"
    )]
    InvalidHeader {
        /// The variable or builder method.
        key: String,
        /// The entry.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate or key file could not be read.
    #[error("{key}: cannot read {}: {source}; check the path and its permissions", path.display())]
    ReadFile {
        /// The variable or builder method.
        key: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A certificate or key is not usable PEM, or the TLS settings do not fit together.
    #[error("{key}: {reason}")]
    Tls {
        /// The variable or builder method.
        key: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The circuit breaker settings are invalid.
    #[error("circuit breaker: {0}")]
    CircuitBreaker(otlp_resilience::breaker::ConfigError),
    /// The HTTP client could not be created (reqwest's reason).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Why an export gave up; see [`ExportFailure::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The server refused the data for good (400-class or 500, bad data, an unreadable
    /// success response): sending it again cannot help. Fix the data or the server.
    NotRetryable,
    /// Every allowed attempt failed with a retryable error. The upstream is down or
    /// overloaded: keep the data and try later, or drop it.
    AttemptsExhausted,
    /// The retry budget had no token left (many exports are failing at once).
    RetryBudgetExhausted,
    /// The retry policy's time limit left no room for another attempt.
    TimeLimit,
    /// The server asked to wait longer than the retry policy allows inside one export.
    /// Send the data again after the delay in [`ExportFailure::retry_after`].
    ServerDelayTooLong,
    /// The endpoint's circuit breaker is open: it failed too often recently, so nothing
    /// was sent. Try again after [`ExportFailure::retry_after`].
    CircuitOpen,
    /// A retryable error, but retries are switched off for this exporter.
    RetryDisabled,
    /// The exporter was shut down.
    Shutdown,
}

impl FailureReason {
    /// A short label, e.g. for metrics: `not_retryable`, `attempts_exhausted`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureReason::NotRetryable => "not_retryable",
            FailureReason::AttemptsExhausted => "attempts_exhausted",
            FailureReason::RetryBudgetExhausted => "retry_budget_exhausted",
            FailureReason::TimeLimit => "time_limit",
            FailureReason::ServerDelayTooLong => "server_delay_too_long",
            FailureReason::CircuitOpen => "circuit_open",
            FailureReason::RetryDisabled => "retry_disabled",
            FailureReason::Shutdown => "shutdown",
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureReason::NotRetryable => "not retryable",
            FailureReason::AttemptsExhausted => "attempts exhausted",
            FailureReason::RetryBudgetExhausted => "retry budget exhausted",
            FailureReason::TimeLimit => "retry time limit reached",
            FailureReason::ServerDelayTooLong => "server asked to wait longer than allowed",
            FailureReason::CircuitOpen => "circuit breaker open",
            FailureReason::RetryDisabled => "retries disabled",
            FailureReason::Shutdown => "exporter shut down",
        })
    }
}

/// Data the exporter could not deliver: what, where, after how many attempts, why, and
/// the last error (classified by `otlp-core`: it names the HTTP status and the server's
/// `google.rpc.Status` message).
///
/// ```
/// use std::time::SystemTime;
/// use otlp_core::{ExportError, Signal};
/// use otlp_transport_http::exporter::{ExportFailure, FailureReason};
///
/// let failure = ExportFailure::new(
///     Signal::Traces, 512, "http://collector:4318/v1/traces", 1, FailureReason::NotRetryable,
///     ExportError::from_http(400, None, Some("application/json"),
///         br#"{"code":3,"message":"span 7 has an empty trace id"}"#, SystemTime::now()),
/// );
/// assert_eq!(
///     failure.to_string(),
///     "512 spans not delivered to http://collector:4318/v1/traces after 1 attempt(s) \
///      (not retryable): HTTP 400: span 7 has an empty trace id"
/// );
/// assert!(!failure.is_transient());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{items} {} not delivered to {endpoint} after {attempts} attempt(s) ({reason}): {error}", signal.item_name())]
pub struct ExportFailure {
    signal: Signal,
    items: u64,
    endpoint: Arc<str>,
    attempts: u32,
    reason: FailureReason,
    #[source]
    error: ExportError,
    retry_after: Option<Duration>,
}

impl ExportFailure {
    /// A failure record (exporters build these; public for tests and other exporters).
    pub fn new(
        signal: Signal,
        items: u64,
        endpoint: impl Into<Arc<str>>,
        attempts: u32,
        reason: FailureReason,
        error: ExportError,
    ) -> ExportFailure {
        ExportFailure {
            signal,
            items,
            endpoint: endpoint.into(),
            attempts,
            reason,
            retry_after: error.retry_delay(),
            error,
        }
    }

    /// Sets when to try again (e.g. when the circuit breaker lets probes through).
    #[must_use]
    pub fn with_retry_after(mut self, after: Option<Duration>) -> ExportFailure {
        self.retry_after = after;
        self
    }

    /// The signal of the data.
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// How many items (spans, data points, log records) were not delivered.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The URL the data was for.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// How many HTTP requests were made (0 when none was: shut down, circuit open).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the exporter stopped trying.
    pub fn reason(&self) -> FailureReason {
        self.reason
    }

    /// The last error, classified per the OTLP specification.
    pub fn error(&self) -> &ExportError {
        &self.error
    }

    /// The last error, by value.
    pub fn into_error(self) -> ExportError {
        self.error
    }

    /// Whether sending the same data later may succeed (the last error was retryable).
    pub fn is_transient(&self) -> bool {
        self.error.is_retryable()
    }

    /// When the server (or the circuit breaker) said to try again, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl From<ExportFailure> for ExportError {
    fn from(failure: ExportFailure) -> ExportError {
        failure.error
    }
}
