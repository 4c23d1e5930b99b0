//! # otlp-core
//!
//! The OTLP rules every otlp-rust transport shares, in one place: the data model
//! (re-exported from `opentelemetry-proto`), binary protobuf and OTLP/JSON codecs,
//! bounded decompression, body limits, the error classification of the OTLP
//! specification, the pipeline's unit of work ([`Payload`]), the [`Sink`] and
//! [`Exporter`] traits, and a [`Batcher`]. It has no networking.
//!
//! ```
//! use otlp_core::codec::{self, json};
//! use otlp_core::{Encoding, OtlpRequest, Payload};
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//!
//! // OTLP/JSON as a peer sends it: hex ids, 64-bit integers as strings, enums as integers.
//! let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
//!     "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
//!     "name":"GET /","kind":2,"startTimeUnixNano":"1544712660000000000",
//!     "endTimeUnixNano":1544712661000000000}]}]}]}"#;
//! let request: ExportTraceServiceRequest = codec::decode(Encoding::Json, body)?;
//! assert_eq!(request.item_count(), 1);
//!
//! // Into the pipeline as encoded protobuf, and back out as canonical OTLP/JSON.
//! let payload = Payload::from_request(&request);
//! let again: ExportTraceServiceRequest = payload.decode()?;
//! let text = String::from_utf8(json::to_vec(&again)).unwrap();
//! assert!(text.contains(r#""traceId":"5b8efff798038103d269b633813fc60c""#));
//! assert!(text.contains(r#""startTimeUnixNano":"1544712660000000000""#));
//! # Ok::<(), otlp_core::codec::DecodeError>(())
//! ```
//!
//! ## Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`signal`] | [`Signal`], [`Encoding`], paths and content types |
//! | [`request`] | [`OtlpRequest`] / [`OtlpResponse`]: item counting, partial success |
//! | [`codec`] | [`codec::protobuf`] and [`codec::json`] (OTLP/JSON per the specification) |
//! | [`compression`] | gzip, zstd, deflate with a hard output limit (no decompression bombs) |
//! | [`limits`] | body size limits |
//! | [`error`] | [`ExportError`] classification, retry delays, `google.rpc.Status` mapping |
//! | [`payload`] | [`Payload`]: encoded bytes plus a small header |
//! | [`wire`] | protobuf framing walks: item counts and splits without a full decode |
//! | [`batch`] | [`Batcher`]: join by concatenation, split on resource/scope boundaries |
//! | [`sink`], [`exporter`] | the traits pipeline stages talk through |
//! | `testing` (feature `testing`) | proptest strategies for arbitrary requests |
//!
//! ## Feature flags
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `testing` | no | `otlp_core::testing`: proptest strategies for arbitrary OTLP requests, for property tests in other crates |
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod batch;
pub mod codec;
pub mod compression;
pub mod error;
pub mod exporter;
pub mod limits;
pub mod payload;
pub mod request;
pub mod signal;
pub mod sink;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wire;

/// The OTLP protobuf message types (`opentelemetry-proto`, prost-generated).
pub use opentelemetry_proto::tonic as proto;

pub use batch::{BatchConfig, BatchError, Batcher};
pub use compression::Compression;
pub use error::{ExportError, GrpcCode, Refusal};
pub use exporter::Exporter;
pub use limits::{Limits, TooLarge};
pub use payload::{Payload, PayloadHeader};
pub use request::{OtlpRequest, OtlpResponse, PartialSuccess};
pub use signal::{Encoding, Signal};
pub use sink::{Accepted, Sink};
