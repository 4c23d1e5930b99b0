//! The exporter's configuration errors. Data that could not be delivered is an
//! [`ExportFailure`](super::ExportFailure), the type the OTLP/HTTP exporter uses too.

/// The exporter cannot be built from this configuration. Every variant names the setting
/// (the environment variable or the builder method) and says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The endpoint is not a usable gRPC endpoint.
    #[error(
        "{key}: invalid endpoint {value:?} ({reason}); give http://host:port (plaintext), https://host:port (TLS) or host:port, e.g. http://localhost:4317"
    )]
    InvalidEndpoint {
        /// The variable or builder method.
        key: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`endpoints`](super::GrpcExporterBuilder::endpoints) was given an empty list.
    #[error("endpoints(): the list is empty; give at least one endpoint URL")]
    NoEndpoints,
    /// `OTEL_EXPORTER_OTLP_*INSECURE` is not a boolean.
    #[error("{key}: invalid value {value:?}; use true or false")]
    InvalidInsecure {
        /// The variable.
        key: String,
        /// The value given.
        value: String,
    },
    /// The user agent is not a valid header value.
    #[error("user_agent(): {value:?} is not a valid HTTP header value; use visible ASCII")]
    InvalidUserAgent {
        /// The value given.
        value: String,
    },
    /// A setting shared with the OTLP/HTTP exporter (headers, timeout, compression,
    /// certificates and keys) is invalid; the message names it.
    #[error(transparent)]
    Setting(#[from] otlp_transport_http::exporter::ConfigError),
    /// The circuit breaker settings are invalid.
    #[error("circuit breaker: {0}")]
    CircuitBreaker(otlp_resilience::breaker::ConfigError),
}
