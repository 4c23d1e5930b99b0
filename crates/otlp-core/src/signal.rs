//! The three OTLP signals and the protocol constants attached to each.

use std::fmt;
use std::str::FromStr;

/// One of the three OTLP signals.
///
/// ```
/// use otlp_core::Signal;
///
/// assert_eq!(Signal::Traces.http_path(), "/v1/traces");
/// assert_eq!("logs".parse::<Signal>().unwrap(), Signal::Logs);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Spans (`ExportTraceServiceRequest`).
    Traces,
    /// Metric data points (`ExportMetricsServiceRequest`).
    Metrics,
    /// Log records (`ExportLogsServiceRequest`).
    Logs,
}

impl Signal {
    /// Every signal, in a stable order.
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The signal's position in [`Signal::ALL`], e.g. to index a per-signal array.
    ///
    /// ```
    /// use otlp_core::Signal;
    ///
    /// assert!(Signal::ALL.iter().enumerate().all(|(i, s)| s.index() == i));
    /// ```
    pub const fn index(self) -> usize {
        match self {
            Signal::Traces => 0,
            Signal::Metrics => 1,
            Signal::Logs => 2,
        }
    }

    /// Lower-case name, as used in paths, file names and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The OTLP/HTTP path the specification assigns to this signal.
    pub const fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
            Signal::Logs => "/v1/logs",
        }
    }

    /// The fully qualified gRPC service name.
    pub const fn grpc_service(self) -> &'static str {
        match self {
            Signal::Traces => "opentelemetry.proto.collector.trace.v1.TraceService",
            Signal::Metrics => "opentelemetry.proto.collector.metrics.v1.MetricsService",
            Signal::Logs => "opentelemetry.proto.collector.logs.v1.LogsService",
        }
    }

    /// The gRPC method path (`/package.Service/Export`).
    pub const fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        }
    }

    /// What one item of this signal is called in counts and partial-success messages.
    pub const fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        }
    }

    /// The signal-specific endpoint environment variable of the OpenTelemetry exporter spec.
    pub const fn endpoint_env(self) -> &'static str {
        match self {
            Signal::Traces => "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            Signal::Metrics => "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            Signal::Logs => "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        }
    }

    /// The signal whose OTLP/HTTP path is `path`, if any.
    pub fn from_http_path(path: &str) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.http_path() == path)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Signal`] from a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signal {0:?}: expected one of traces, metrics, logs")]
pub struct UnknownSignal(pub String);

impl FromStr for Signal {
    type Err = UnknownSignal;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "traces" | "trace" | "spans" => Ok(Signal::Traces),
            "metrics" | "metric" => Ok(Signal::Metrics),
            "logs" | "log" => Ok(Signal::Logs),
            _ => Err(UnknownSignal(s.to_owned())),
        }
    }
}

/// The body encodings OTLP defines for HTTP, and how they appear in `Content-Type`.
///
/// ```
/// use otlp_core::Encoding;
///
/// assert_eq!(Encoding::from_content_type("application/json; charset=utf-8"), Some(Encoding::Json));
/// assert_eq!(Encoding::from_content_type("text/plain"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// Binary protobuf, `application/x-protobuf`.
    Protobuf,
    /// OTLP/JSON, `application/json`.
    Json,
}

impl Encoding {
    /// The `Content-Type` value to send.
    pub const fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => content_type::PROTOBUF,
            Encoding::Json => content_type::JSON,
        }
    }

    /// Parse a `Content-Type` header value; media type parameters are ignored and the
    /// comparison is case-insensitive. `application/protobuf` is accepted as protobuf.
    pub fn from_content_type(value: &str) -> Option<Encoding> {
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(content_type::PROTOBUF)
            || media.eq_ignore_ascii_case("application/protobuf")
        {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case(content_type::JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Protobuf => "protobuf",
            Encoding::Json => "json",
        })
    }
}

/// `Content-Type` values used by OTLP.
pub mod content_type {
    /// Binary protobuf over HTTP.
    pub const PROTOBUF: &str = "application/x-protobuf";
    /// OTLP/JSON over HTTP.
    pub const JSON: &str = "application/json";
    /// gRPC (protobuf framing).
    pub const GRPC: &str = "application/grpc";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for s in Signal::ALL {
            assert_eq!(Signal::from_http_path(s.http_path()), Some(s));
            assert_eq!(s.as_str().parse::<Signal>(), Ok(s));
            assert!(s.grpc_path().starts_with(&format!("/{}", s.grpc_service())));
        }
        assert_eq!(Signal::from_http_path("/v1/profiles"), None);
        assert!("span".parse::<Signal>().is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Encoding::from_content_type("Application/X-Protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type("application/protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(
            Encoding::from_content_type(" application/json ;charset=UTF-8"),
            Some(Encoding::Json)
        );
        assert_eq!(Encoding::from_content_type("application/jsonl"), None);
        assert_eq!(Encoding::from_content_type(""), None);
    }
}
