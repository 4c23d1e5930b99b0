//! # otlp
//!
//! The facade of the otlp-rust toolkit: one dependency that re-exports the focused crates
//! behind features, and the `otlp` command line tool.
//!
//! ```
//! use otlp::core::codec::json;
//! use otlp::core::proto::collector::logs::v1::ExportLogsServiceRequest;
//!
//! let request: ExportLogsServiceRequest = json::from_slice(br#"{"resourceLogs":[]}"#).unwrap();
//! assert_eq!(json::to_vec(&request), b"{}");
//! ```
//!
//! ## Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `core` | yes | [`core`]: OTLP types, protobuf and OTLP/JSON codecs, compression, limits, error classification, batching |
//! | `full` | no | every feature |
//!
//! The resilience, degradation, transport and gateway crates are not built yet; their
//! features will appear here as they land.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

/// OTLP types, codecs, compression, limits, errors and batching (`otlp-core`).
#[cfg(feature = "core")]
pub use otlp_core as core;
