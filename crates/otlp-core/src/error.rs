//! One error model for every transport, following the OTLP specification.
//!
//! - Exporters turn what a server answered into an [`ExportError`] with
//!   [`ExportError::from_http`] / [`ExportError::from_grpc`], then ask
//!   [`ExportError::is_retryable`] and [`ExportError::retry_delay`]. The retryable sets are
//!   exactly the specification's: HTTP 429, 502, 503, 504; gRPC CANCELLED,
//!   DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and
//!   RESOURCE_EXHAUSTED only when the server sent `RetryInfo`.
//! - Receivers turn why they did not accept a request into a [`Refusal`], which maps to an
//!   HTTP status with a `google.rpc.Status` body and `Retry-After`, or to a gRPC code with
//!   `RetryInfo` details.
//! - Partial success is not an error: see [`crate::PartialSuccess`].
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use otlp_core::{ExportError, GrpcCode};
//!
//! let err = ExportError::from_http(503, Some("7"), None, b"", SystemTime::now());
//! assert!(err.is_retryable());
//! assert_eq!(err.retry_delay(), Some(Duration::from_secs(7)));
//!
//! // RESOURCE_EXHAUSTED is retryable only when the server says when to retry.
//! let err = ExportError::from_grpc(GrpcCode::ResourceExhausted as i32, "quota", &[]);
//! assert!(!err.is_retryable());
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use prost::Message as _;

use crate::signal::Encoding;

/// gRPC status codes (`google.rpc.Code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    /// Not an error.
    Ok = 0,
    /// The operation was cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error.
    Unknown = 2,
    /// The client sent invalid data.
    InvalidArgument = 3,
    /// The deadline expired before the operation completed.
    DeadlineExceeded = 4,
    /// Not found.
    NotFound = 5,
    /// Already exists.
    AlreadyExists = 6,
    /// The caller may not do this.
    PermissionDenied = 7,
    /// A resource (quota, memory, size) is exhausted.
    ResourceExhausted = 8,
    /// The system is not in a state the operation needs.
    FailedPrecondition = 9,
    /// The operation was aborted (e.g. a concurrency conflict).
    Aborted = 10,
    /// Out of range.
    OutOfRange = 11,
    /// Not implemented or not supported.
    Unimplemented = 12,
    /// Internal error.
    Internal = 13,
    /// The service is unavailable right now; retry with backoff.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request lacks valid authentication credentials.
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The code for a numeric value; values outside the defined set are `Unknown`
    /// (as gRPC implementations treat them).
    pub fn from_i32(code: i32) -> GrpcCode {
        use GrpcCode::*;
        match code {
            0 => Ok,
            1 => Cancelled,
            3 => InvalidArgument,
            4 => DeadlineExceeded,
            5 => NotFound,
            6 => AlreadyExists,
            7 => PermissionDenied,
            8 => ResourceExhausted,
            9 => FailedPrecondition,
            10 => Aborted,
            11 => OutOfRange,
            12 => Unimplemented,
            13 => Internal,
            14 => Unavailable,
            15 => DataLoss,
            16 => Unauthenticated,
            _ => Unknown,
        }
    }

    /// The canonical upper-case name, e.g. `UNAVAILABLE`.
    pub const fn as_str(self) -> &'static str {
        use GrpcCode::*;
        match self {
            Ok => "OK",
            Cancelled => "CANCELLED",
            Unknown => "UNKNOWN",
            InvalidArgument => "INVALID_ARGUMENT",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            PermissionDenied => "PERMISSION_DENIED",
            ResourceExhausted => "RESOURCE_EXHAUSTED",
            FailedPrecondition => "FAILED_PRECONDITION",
            Aborted => "ABORTED",
            OutOfRange => "OUT_OF_RANGE",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
            Unavailable => "UNAVAILABLE",
            DataLoss => "DATA_LOSS",
            Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an HTTP status is retryable under the OTLP/HTTP specification: 429, 502, 503
/// and 504 only. Every other non-2xx status is final.
pub const fn http_status_is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// Whether a gRPC code is retryable under the OTLP/gRPC specification.
/// `RESOURCE_EXHAUSTED` is retryable only when the server sent `RetryInfo`.
pub const fn grpc_code_is_retryable(code: GrpcCode, has_retry_info: bool) -> bool {
    match code {
        GrpcCode::Cancelled
        | GrpcCode::DeadlineExceeded
        | GrpcCode::Aborted
        | GrpcCode::OutOfRange
        | GrpcCode::Unavailable
        | GrpcCode::DataLoss => true,
        GrpcCode::ResourceExhausted => has_retry_info,
        _ => false,
    }
}

/// Parse an HTTP `Retry-After` value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
///
/// A date in the past gives a zero delay. Returns `None` for a value that is neither.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use otlp_core::error::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(Duration::from_secs(30)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Saturate absurd values rather than failing: the retry policy caps delays anyway.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `google.rpc.Status`: the error body of OTLP/HTTP and the rich status of gRPC.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// A developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Typed details, e.g. `google.rpc.RetryInfo`.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.RetryInfo`: how long the client should wait before retrying.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// The delay.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<prost_types::Duration>,
}

/// The type URL of `google.rpc.RetryInfo` inside `google.protobuf.Any`.
pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl RpcStatus {
    /// The delay of the first `RetryInfo` detail, if any.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.details
            .iter()
            .filter(|any| any.type_url == RETRY_INFO_TYPE_URL)
            .find_map(|any| RetryInfo::decode(any.value.as_slice()).ok())
            .map(|info| duration_from_proto(info.retry_delay.unwrap_or_default()))
    }

    /// Whether a `RetryInfo` detail is present (even one without a delay).
    pub fn has_retry_info(&self) -> bool {
        self.details
            .iter()
            .any(|any| any.type_url == RETRY_INFO_TYPE_URL)
    }

    /// Encode as OTLP/JSON (protobuf JSON mapping of `google.rpc.Status`).
    pub fn to_json(&self) -> Vec<u8> {
        let details: Vec<serde_json::Value> = self
            .details
            .iter()
            .map(|any| {
                let mut obj = serde_json::Map::new();
                obj.insert("@type".into(), any.type_url.clone().into());
                if any.type_url == RETRY_INFO_TYPE_URL
                    && let Ok(info) = RetryInfo::decode(any.value.as_slice())
                {
                    let d = duration_from_proto(info.retry_delay.unwrap_or_default());
                    obj.insert("retryDelay".into(), format_json_duration(d).into());
                }
                serde_json::Value::Object(obj)
            })
            .collect();
        let mut obj = serde_json::Map::new();
        if self.code != 0 {
            obj.insert("code".into(), self.code.into());
        }
        if !self.message.is_empty() {
            obj.insert("message".into(), self.message.clone().into());
        }
        if !details.is_empty() {
            obj.insert("details".into(), details.into());
        }
        serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default()
    }

    /// Read a `google.rpc.Status` body in `encoding`. Only `code`, `message` and
    /// `RetryInfo` details are kept from JSON; returns `None` for an unreadable body.
    pub fn from_body(encoding: Encoding, body: &[u8]) -> Option<RpcStatus> {
        match encoding {
            Encoding::Protobuf => RpcStatus::decode(body).ok(),
            Encoding::Json => {
                let value: serde_json::Value = serde_json::from_slice(body).ok()?;
                let obj = value.as_object()?;
                let code = obj
                    .get("code")
                    .and_then(|c| c.as_i64())
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(0);
                let message = obj
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("")
                    .to_owned();
                let details = obj
                    .get("details")
                    .and_then(|d| d.as_array())
                    .map(|list| {
                        list.iter()
                            .filter(|d| {
                                d.get("@type").and_then(|t| t.as_str()) == Some(RETRY_INFO_TYPE_URL)
                            })
                            .filter_map(|d| d.get("retryDelay").and_then(|v| v.as_str()))
                            .filter_map(parse_json_duration)
                            .map(retry_info_any)
                            .collect()
                    })
                    .unwrap_or_default();
                Some(RpcStatus {
                    code,
                    message,
                    details,
                })
            }
        }
    }
}

fn duration_from_proto(d: prost_types::Duration) -> Duration {
    if d.seconds < 0 || d.nanos < 0 {
        return Duration::ZERO;
    }
    Duration::new(d.seconds as u64, d.nanos.clamp(0, 999_999_999) as u32)
}

fn duration_to_proto(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos() as i32,
    }
}

fn retry_info_any(delay: Duration) -> prost_types::Any {
    prost_types::Any {
        type_url: RETRY_INFO_TYPE_URL.to_owned(),
        value: RetryInfo {
            retry_delay: Some(duration_to_proto(delay)),
        }
        .encode_to_vec(),
    }
}

/// `google.protobuf.Duration` in JSON: decimal seconds with an `s` suffix, e.g. `"1.5s"`.
fn format_json_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        let frac = format!("{:09}", d.subsec_nanos());
        format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
    }
}

fn parse_json_duration(s: &str) -> Option<Duration> {
    let secs = s.strip_suffix('s')?;
    let (whole, frac) = secs.split_once('.').unwrap_or((secs, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    Some(Duration::new(whole.parse().ok()?, nanos))
}

/// Why an export did not succeed, classified per the OTLP specification.
///
/// Partial success is not an error (see [`crate::PartialSuccess`]); a request that was
/// accepted with some items rejected must not be retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The OTLP/HTTP server answered with a non-success status.
    #[error("HTTP {status}{}: {message}", retry_suffix(*retry_after))]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The `google.rpc.Status` message from the body, or the body's text, if any.
        message: String,
        /// The delay from `Retry-After`, if the server sent one.
        retry_after: Option<Duration>,
    },
    /// The OTLP/gRPC server answered with a non-OK status.
    #[error("gRPC {code}{}: {message}", retry_suffix(*retry_delay))]
    Grpc {
        /// The status code.
        code: GrpcCode,
        /// The status message.
        message: String,
        /// The delay from `RetryInfo`, if the server sent one.
        retry_delay: Option<Duration>,
        /// Whether `RetryInfo` was present (it makes RESOURCE_EXHAUSTED retryable).
        has_retry_info: bool,
    },
    /// The request could not be delivered: connection refused or reset, DNS, TLS
    /// handshake. Retryable: the server never saw the data, or cannot have acknowledged it.
    #[error("transport error: {0}")]
    Transport(String),
    /// No answer within the configured timeout. Retryable.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The server answered success but with a body that is not a valid response message.
    /// Not retryable: the server accepted the data, retrying would duplicate it.
    #[error("invalid response from server: {0}")]
    InvalidResponse(String),
    /// The request could not be built (e.g. invalid header value). Fix the configuration.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The exporter has been shut down and takes no more data.
    #[error("exporter is shut down")]
    Shutdown,
}

fn retry_suffix(delay: Option<Duration>) -> String {
    match delay {
        Some(d) => format!(" (retry after {d:?})"),
        None => String::new(),
    }
}

impl ExportError {
    /// Classify an OTLP/HTTP error response.
    ///
    /// `retry_after` is the raw `Retry-After` header; `content_type` the response's, used
    /// to read a `google.rpc.Status` body (protobuf or JSON); other bodies are kept as
    /// text, truncated to 1 KiB so a misbehaving server cannot flood logs.
    pub fn from_http(
        status: u16,
        retry_after: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> ExportError {
        let status_body = content_type
            .and_then(Encoding::from_content_type)
            .and_then(|encoding| RpcStatus::from_body(encoding, body));
        let message = match status_body {
            Some(s) if !s.message.is_empty() => s.message,
            _ => body_text(body),
        };
        ExportError::Http {
            status,
            message,
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
        }
    }

    /// Classify an OTLP/gRPC error status. `details` is the encoded `google.rpc.Status`
    /// of the `grpc-status-details-bin` trailer (empty when absent).
    pub fn from_grpc(code: i32, message: &str, details: &[u8]) -> ExportError {
        let status = if details.is_empty() {
            None
        } else {
            RpcStatus::decode(details).ok()
        };
        let (retry_delay, has_retry_info) = match &status {
            Some(s) => (s.retry_delay(), s.has_retry_info()),
            None => (None, false),
        };
        ExportError::Grpc {
            code: GrpcCode::from_i32(code),
            message: message.to_owned(),
            retry_delay,
            has_retry_info,
        }
    }

    /// Whether the OTLP specification allows sending the same data again.
    pub fn is_retryable(&self) -> bool {
        match self {
            ExportError::Http { status, .. } => http_status_is_retryable(*status),
            ExportError::Grpc {
                code,
                has_retry_info,
                ..
            } => grpc_code_is_retryable(*code, *has_retry_info),
            ExportError::Transport(_) | ExportError::Timeout(_) => true,
            ExportError::InvalidResponse(_)
            | ExportError::InvalidRequest(_)
            | ExportError::Shutdown => false,
        }
    }

    /// The delay the server asked for (`Retry-After` or `RetryInfo`), if the error is
    /// retryable and the server gave one. A retry policy uses it instead of its backoff,
    /// capped by its own maximum.
    pub fn retry_delay(&self) -> Option<Duration> {
        if !self.is_retryable() {
            return None;
        }
        match self {
            ExportError::Http { retry_after, .. } => *retry_after,
            ExportError::Grpc { retry_delay, .. } => *retry_delay,
            _ => None,
        }
    }
}

fn body_text(body: &[u8]) -> String {
    const MAX: usize = 1024;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut text = text.trim().to_owned();
    if body.len() > MAX {
        text.push_str("...");
    }
    text
}

/// Why a receiver or pipeline stage did not accept a request, and how to tell the client.
///
/// ```
/// use std::time::Duration;
/// use otlp_core::{GrpcCode, Refusal};
///
/// let r = Refusal::Unavailable { reason: "queue full".into(), retry_after: Duration::from_millis(1500) };
/// assert_eq!(r.http_status(), 503);
/// assert_eq!(r.retry_after_header().as_deref(), Some("2")); // seconds, rounded up
/// assert_eq!(r.grpc_code(), GrpcCode::Unavailable);
/// assert!(r.to_status().has_retry_info());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The data is malformed or invalid: 400 / INVALID_ARGUMENT. The client must not retry.
    #[error("bad data: {0}")]
    BadData(String),
    /// The body is larger than the configured limit: 413 / RESOURCE_EXHAUSTED (without
    /// RetryInfo, so not retried). The client should send smaller batches.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// The content type is not one OTLP defines: 415 / INVALID_ARGUMENT.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Missing or invalid credentials: 401 / UNAUTHENTICATED.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Valid credentials without permission: 403 / PERMISSION_DENIED.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The client exceeds its rate: 429 / RESOURCE_EXHAUSTED, both with the retry delay.
    #[error("throttled: {reason} (retry after {retry_after:?})")]
    Throttled {
        /// Which limit was hit.
        reason: String,
        /// When the client may try again.
        retry_after: Duration,
    },
    /// The gateway cannot take data now (queue full, memory limit, draining):
    /// 503 / UNAVAILABLE, both with the retry delay. Nothing was accepted.
    #[error("unavailable: {reason} (retry after {retry_after:?})")]
    Unavailable {
        /// Why.
        reason: String,
        /// When the client may try again.
        retry_after: Duration,
    },
    /// A bug or an unexpected failure: 500 / INTERNAL. Not retried by OTLP clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    /// The OTLP/HTTP status code.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::BadData(_) => 400,
            Refusal::Unauthenticated(_) => 401,
            Refusal::PermissionDenied(_) => 403,
            Refusal::TooLarge(_) => 413,
            Refusal::UnsupportedMediaType(_) => 415,
            Refusal::Throttled { .. } => 429,
            Refusal::Internal(_) => 500,
            Refusal::Unavailable { .. } => 503,
        }
    }

    /// The OTLP/gRPC status code.
    pub fn grpc_code(&self) -> GrpcCode {
        match self {
            Refusal::BadData(_) | Refusal::UnsupportedMediaType(_) => GrpcCode::InvalidArgument,
            Refusal::Unauthenticated(_) => GrpcCode::Unauthenticated,
            Refusal::PermissionDenied(_) => GrpcCode::PermissionDenied,
            Refusal::TooLarge(_) | Refusal::Throttled { .. } => GrpcCode::ResourceExhausted,
            Refusal::Internal(_) => GrpcCode::Internal,
            Refusal::Unavailable { .. } => GrpcCode::Unavailable,
        }
    }

    /// The retry delay to announce, for the retryable refusals.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Refusal::Throttled { retry_after, .. } | Refusal::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// The `Retry-After` header value: whole seconds, rounded up, at least 1 (a zero
    /// would invite an immediate retry storm).
    pub fn retry_after_header(&self) -> Option<String> {
        self.retry_after().map(|d| {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            secs.max(1).to_string()
        })
    }

    /// The `google.rpc.Status` to send: the gRPC code, the message, and `RetryInfo`
    /// for the retryable refusals.
    pub fn to_status(&self) -> RpcStatus {
        RpcStatus {
            code: self.grpc_code() as i32,
            message: self.to_string(),
            details: self.retry_after().map(retry_info_any).into_iter().collect(),
        }
    }

    /// The OTLP/HTTP error body in the request's encoding.
    pub fn http_body(&self, encoding: Encoding) -> Bytes {
        let status = self.to_status();
        match encoding {
            Encoding::Protobuf => Bytes::from(status.encode_to_vec()),
            Encoding::Json => Bytes::from(status.to_json()),
        }
    }

    /// The value for gRPC's `grpc-status-details-bin` trailer (before base64).
    pub fn grpc_status_details(&self) -> Bytes {
        Bytes::from(self.to_status().encode_to_vec())
    }
}

impl From<crate::codec::DecodeError> for Refusal {
    /// Undecodable data is the client's fault: 400 / INVALID_ARGUMENT.
    fn from(err: crate::codec::DecodeError) -> Refusal {
        Refusal::BadData(err.to_string())
    }
}

impl From<crate::limits::TooLarge> for Refusal {
    fn from(err: crate::limits::TooLarge) -> Refusal {
        Refusal::TooLarge(err.to_string())
    }
}

impl From<crate::compression::DecompressError> for Refusal {
    /// A bomb or oversized body is 413; a corrupt body is bad data (400).
    fn from(err: crate::compression::DecompressError) -> Refusal {
        match err {
            crate::compression::DecompressError::TooLarge { .. } => {
                Refusal::TooLarge(err.to_string())
            }
            crate::compression::DecompressError::Corrupt { .. } => {
                Refusal::BadData(err.to_string())
            }
        }
    }
}

impl From<crate::compression::UnsupportedEncoding> for Refusal {
    /// RFC 9110 §15.5.16: an unsupported `Content-Encoding` is 415.
    fn from(err: crate::compression::UnsupportedEncoding) -> Refusal {
        Refusal::UnsupportedMediaType(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn http_retryable_set_is_exact() {
        let retryable: Vec<u16> = (100..600)
            .filter(|s| http_status_is_retryable(*s))
            .collect();
        assert_eq!(retryable, vec![429, 502, 503, 504]);
        for s in [400, 401, 403, 404, 408, 413, 415, 500, 501] {
            let e = ExportError::from_http(s, Some("5"), None, b"", SystemTime::now());
            assert!(!e.is_retryable(), "{s}");
            assert_eq!(e.retry_delay(), None, "no delay for a final error");
        }
    }

    #[test]
    fn grpc_retryable_set_is_exact() {
        let retryable: Vec<GrpcCode> = (0..=16)
            .map(GrpcCode::from_i32)
            .filter(|c| grpc_code_is_retryable(*c, false))
            .collect();
        use GrpcCode::*;
        assert_eq!(
            retryable,
            vec![
                Cancelled,
                DeadlineExceeded,
                Aborted,
                OutOfRange,
                Unavailable,
                DataLoss
            ]
        );
        assert!(grpc_code_is_retryable(ResourceExhausted, true));
        assert_eq!(GrpcCode::from_i32(99), Unknown);
        assert_eq!(GrpcCode::from_i32(-1), Unknown);
    }

    #[test]
    fn resource_exhausted_needs_retry_info() {
        let details = Refusal::Throttled {
            reason: "rate".into(),
            retry_after: Duration::from_millis(2500),
        }
        .grpc_status_details();
        let e = ExportError::from_grpc(8, "slow down", &details);
        assert!(e.is_retryable());
        assert_eq!(e.retry_delay(), Some(Duration::from_millis(2500)));

        let e = ExportError::from_grpc(8, "quota", &[]);
        assert!(!e.is_retryable());
        // Garbage details are ignored, not a panic.
        let e = ExportError::from_grpc(14, "down", &[0xff, 0xff, 0xff]);
        assert!(e.is_retryable());
        assert_eq!(e.retry_delay(), None);
    }

    #[test]
    fn retry_after_forms() {
        let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        // Past date: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        // RFC 850 and asctime forms are also HTTP-dates.
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:20 2015", now),
            Some(Duration::from_secs(20))
        );
    }

    #[test]
    fn http_error_reads_status_bodies() {
        let refusal = Refusal::BadData("span 3 has an invalid trace id".into());
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            let body = refusal.http_body(encoding);
            let e = ExportError::from_http(
                400,
                None,
                Some(encoding.content_type()),
                &body,
                SystemTime::now(),
            );
            match e {
                ExportError::Http {
                    status: 400,
                    message,
                    ..
                } => assert_eq!(message, "bad data: span 3 has an invalid trace id"),
                other => panic!("{other:?}"),
            }
        }
        // Plain text bodies are kept (truncated).
        let long = vec![b'x'; 5000];
        let e = ExportError::from_http(502, None, Some("text/plain"), &long, SystemTime::now());
        assert!(matches!(&e, ExportError::Http { message, .. } if message.len() == 1027));
        assert!(e.is_retryable());
    }

    #[test]
    fn refusal_mapping() {
        let cases: Vec<(Refusal, u16, GrpcCode, bool)> = vec![
            (
                Refusal::BadData("x".into()),
                400,
                GrpcCode::InvalidArgument,
                false,
            ),
            (
                Refusal::TooLarge("x".into()),
                413,
                GrpcCode::ResourceExhausted,
                false,
            ),
            (
                Refusal::UnsupportedMediaType("x".into()),
                415,
                GrpcCode::InvalidArgument,
                false,
            ),
            (
                Refusal::Unauthenticated("x".into()),
                401,
                GrpcCode::Unauthenticated,
                false,
            ),
            (
                Refusal::PermissionDenied("x".into()),
                403,
                GrpcCode::PermissionDenied,
                false,
            ),
            (
                Refusal::Throttled {
                    reason: "x".into(),
                    retry_after: Duration::from_secs(1),
                },
                429,
                GrpcCode::ResourceExhausted,
                true,
            ),
            (
                Refusal::Unavailable {
                    reason: "x".into(),
                    retry_after: Duration::ZERO,
                },
                503,
                GrpcCode::Unavailable,
                true,
            ),
            (
                Refusal::Internal("x".into()),
                500,
                GrpcCode::Internal,
                false,
            ),
        ];
        for (refusal, http, grpc, retryable) in cases {
            assert_eq!(refusal.http_status(), http);
            assert_eq!(refusal.grpc_code(), grpc);
            // What a receiver says is classified back the same way by our exporters.
            let header = refusal.retry_after_header();
            assert_eq!(header.is_some(), retryable);
            let e = ExportError::from_http(http, header.as_deref(), None, b"", SystemTime::now());
            assert_eq!(e.is_retryable(), retryable, "{refusal:?} over HTTP");
            let e = ExportError::from_grpc(grpc as i32, "", &refusal.grpc_status_details());
            assert_eq!(e.is_retryable(), retryable, "{refusal:?} over gRPC");
        }
        // A zero delay is announced as one second.
        let r = Refusal::Unavailable {
            reason: "x".into(),
            retry_after: Duration::ZERO,
        };
        assert_eq!(r.retry_after_header().as_deref(), Some("1"));
    }

    #[test]
    fn input_errors_become_refusals() {
        use crate::compression::{Compression, decompress};
        let bomb = crate::compression::compress(Compression::Gzip, &[0u8; 4096]);
        let r: Refusal = decompress(Compression::Gzip, &bomb, 1024)
            .unwrap_err()
            .into();
        assert_eq!(r.http_status(), 413);
        let r: Refusal = decompress(Compression::Gzip, b"not gzip", 1024)
            .unwrap_err()
            .into();
        assert_eq!(r.http_status(), 400);
        let r: Refusal = Compression::from_content_encoding("br").unwrap_err().into();
        assert_eq!(r.http_status(), 415);
        let bad = crate::codec::protobuf::decode::<
            crate::proto::collector::trace::v1::ExportTraceServiceRequest,
        >(&[0x0a, 0x05]);
        let r: Refusal = bad.unwrap_err().into();
        assert_eq!(r.grpc_code(), GrpcCode::InvalidArgument);
    }

    #[test]
    fn json_status_round_trip() {
        let r = Refusal::Throttled {
            reason: "tenant a".into(),
            retry_after: Duration::from_millis(1250),
        };
        let json = r.to_status().to_json();
        let text = std::str::from_utf8(&json).unwrap();
        assert!(text.contains(r#""retryDelay":"1.25s""#), "{text}");
        assert!(text.contains(r#""code":8"#), "{text}");
        let back = RpcStatus::from_body(Encoding::Json, &json).unwrap();
        assert_eq!(back.retry_delay(), Some(Duration::from_millis(1250)));
        assert_eq!(back.message, r.to_string());
        assert_eq!(RpcStatus::from_body(Encoding::Json, b"[1]"), None);
        assert_eq!(parse_json_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_json_duration("0.000000001s"),
            Some(Duration::from_nanos(1))
        );
        assert_eq!(parse_json_duration("-1s"), None);
        assert_eq!(parse_json_duration("1.0000000001s"), None);
    }
}
