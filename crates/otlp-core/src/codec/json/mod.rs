//! OTLP/JSON: the JSON Protobuf Encoding of the OTLP specification.
//!
//! This is the proto3 JSON mapping with the OTLP deviations, written straight onto the
//! prost-generated types (no intermediate `serde_json::Value`, no copy of the message on
//! output):
//!
//! | rule | written | accepted |
//! |---|---|---|
//! | keys | lowerCamelCase (`startTimeUnixNano`) | lowerCamelCase or the proto name (`start_time_unix_nano`); unknown keys are skipped at any depth |
//! | `traceId`, `spanId`, `parentSpanId` | lowercase hex | hex in either case; `""` is empty; any other length is an error |
//! | other bytes (`bytesValue`) | standard base64, padded | standard or URL-safe, padded or not |
//! | enums | integers | integers or the enum names (`"SPAN_KIND_SERVER"`); unknown values are kept |
//! | 64-bit integers | decimal strings | strings or numbers |
//! | 32-bit integers | numbers | numbers or strings |
//! | doubles | numbers; `"NaN"`, `"Infinity"`, `"-Infinity"` | numbers, those strings, numeric strings |
//! | default values | omitted, except set oneof members and present messages | `null` or missing means default |
//!
//! Encoding then decoding a message gives back the same protobuf bytes, with one limit:
//! JSON has one NaN, so NaN payload bits and the sign of a NaN are not kept. Doubles come
//! back bit-exact only with `serde_json`'s `float_roundtrip` feature: its default float
//! parser is faster but can land one unit in the last place off.
//!
//! ```
//! use otlp_core::codec::json;
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//!
//! let body = br#"{"resource_spans":[{"scopeSpans":[{"spans":[{
//!     "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
//!     "kind":"SPAN_KIND_SERVER","startTimeUnixNano":1544712660000000000}]}]}]}"#;
//! let request: ExportTraceServiceRequest = json::from_slice(body)?;
//! let span = &request.resource_spans[0].scope_spans[0].spans[0];
//! assert_eq!(span.kind, 2);
//! assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
//!
//! let text = String::from_utf8(json::to_vec(&request)).unwrap();
//! assert_eq!(
//!     text,
//!     r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":2,"startTimeUnixNano":"1544712660000000000"}]}]}]}"#
//! );
//!
//! let error = json::from_slice::<ExportTraceServiceRequest>(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc"}]}]}]}"#)
//!     .unwrap_err();
//! assert_eq!(error.path(), "resourceSpans[0].scopeSpans[0].spans[0].traceId");
//! assert!(error.to_string().contains("expected 32 hex digits, got 3"));
//! # Ok::<(), json::JsonError>(())
//! ```
//!
//! Nesting is bounded by `serde_json`'s recursion limit (128 arrays or objects), so a
//! hostile document of deeply nested `AnyValue`s is an error, not a stack overflow.

mod message;
mod scalar;
mod schema;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io;

use crate::proto::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use crate::proto::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use crate::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};

/// A message with an OTLP/JSON mapping: the three `Export*ServiceRequest` and the three
/// `Export*ServiceResponse` messages.
///
/// The trait is sealed: the mapping is defined by the OTLP specification, not by users.
pub trait JsonMessage: Sized + private::Sealed {}

mod private {
    /// The codec entry points, kept off the public trait so they can change freely.
    pub trait Sealed: Sized {
        fn decode_json(bytes: &[u8]) -> Result<Self, super::JsonError>;
        fn encode_json<W: std::io::Write>(&self, writer: W) -> Result<(), serde_json::Error>;
    }
}

macro_rules! json_message {
    ($($ty:ty),* $(,)?) => {$(
        impl JsonMessage for $ty {}
        impl private::Sealed for $ty {
            fn decode_json(bytes: &[u8]) -> Result<Self, JsonError> {
                message::decode_document(bytes)
            }
            fn encode_json<W: io::Write>(&self, writer: W) -> Result<(), serde_json::Error> {
                message::encode_document(self, writer)
            }
        }
    )*};
}

json_message!(
    ExportTraceServiceRequest,
    ExportMetricsServiceRequest,
    ExportLogsServiceRequest,
    ExportTraceServiceResponse,
    ExportMetricsServiceResponse,
    ExportLogsServiceResponse,
);

/// Decode an OTLP/JSON document.
///
/// A leading UTF-8 byte order mark is skipped; anything after the top-level object other
/// than whitespace is an error.
///
/// # Errors
///
/// [`JsonError`] when the bytes are not JSON, or not OTLP/JSON for `T`: it names the
/// field path, the line and column, and what was wrong.
pub fn from_slice<T: JsonMessage>(bytes: &[u8]) -> Result<T, JsonError> {
    T::decode_json(bytes)
}

/// Encode `message` as compact OTLP/JSON.
pub fn to_vec<T: JsonMessage>(message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    // Our `Serialize` impls never fail and a `Vec` never fails to grow short of aborting,
    // so this cannot return an error.
    let written = message.encode_json(&mut out);
    debug_assert!(
        written.is_ok(),
        "encoding OTLP/JSON into a Vec failed: {written:?}"
    );
    out
}

/// Encode `message` as compact OTLP/JSON into `writer`.
///
/// The encoder issues many small writes: give it a buffered writer (or use [`to_vec`]).
///
/// # Errors
///
/// The first error `writer` returns.
pub fn to_writer<T: JsonMessage, W: io::Write>(message: &T, writer: W) -> io::Result<()> {
    message.encode_json(writer).map_err(io::Error::from)
}

/// Why a body is not valid OTLP/JSON: bad data, never worth retrying.
///
/// The message names the field path, what was wrong and where, e.g.
/// `resourceSpans[0].scopeSpans[0].spans[3].traceId: expected 32 hex digits, got 31 at line 1 column 120`.
#[derive(Debug)]
pub struct JsonError {
    path: String,
    inner: serde_json::Error,
}

/// What kind of problem a [`JsonError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The bytes are not well-formed JSON: fix the sender's serializer.
    Syntax,
    /// The body ends in the middle of a value: it was truncated on the way.
    Eof,
    /// Well-formed JSON that does not follow the OTLP/JSON mapping (wrong type, bad id,
    /// out-of-range number, unknown enum name).
    Data,
}

impl JsonError {
    fn new(inner: serde_json::Error, path: String) -> Self {
        JsonError { path, inner }
    }

    /// The field path of the offending value, e.g. `resourceLogs[0].scopeLogs[1].logRecords[7].spanId`;
    /// empty when the problem is at the top level.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The 1-based line of the input where the problem was found.
    pub fn line(&self) -> usize {
        self.inner.line()
    }

    /// The 1-based column of the input where the problem was found.
    pub fn column(&self) -> usize {
        self.inner.column()
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> JsonErrorKind {
        match self.inner.classify() {
            serde_json::error::Category::Eof => JsonErrorKind::Eof,
            serde_json::error::Category::Data => JsonErrorKind::Data,
            // Reading from a slice does no I/O; count it with syntax if it ever shows up.
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => {
                JsonErrorKind::Syntax
            }
        }
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.inner)
        } else {
            write!(f, "{}: {}", self.path, self.inner)
        }
    }
}

// No `source()`: the message above already holds the serde_json error's text, and a
// reporter walking the chain would print it twice.
impl std::error::Error for JsonError {}
