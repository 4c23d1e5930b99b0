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
//! | `resilience` | no | [`resilience`]: circuit breaker, rate limiter, retry, timeout, concurrency limits (`otlp-resilience`) |
//! | `degradation` | no | [`degradation`]: degradation controller, triggers, trace-id sampling policy, memory limiter, canary split (`otlp-degradation`) |
//! | `transport-http` | no | [`transport_http`]: OTLP/HTTP exporter, receiver and SDK exporters (`otlp-transport-http`) |
//! | `transport-grpc` | no | [`transport_grpc`]: OTLP/gRPC exporter, receiver and SDK exporters (`otlp-transport-grpc`) |
//! | `gateway` | no | [`gateway`]: the gateway service as a library: pipeline, queues, admin endpoints, config (`otlp-gateway`) |
//! | `cli` | yes | the `otlp` binary (`gateway`, `send`, `convert`, `check-config`); implies `gateway` |
//! | `full` | no | every library feature |
//!
//! Library users who want only the codecs: `default-features = false, features = ["core"]`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

/// OTLP types, codecs, compression, limits, errors and batching (`otlp-core`).
#[cfg(feature = "core")]
pub use otlp_core as core;

/// Resilience middleware as tower layers (`otlp-resilience`).
#[cfg(feature = "resilience")]
pub use otlp_resilience as resilience;

/// Adaptive degradation (`otlp-degradation`).
#[cfg(feature = "degradation")]
pub use otlp_degradation as degradation;

/// OTLP/HTTP exporter, receiver and SDK exporters (`otlp-transport-http`).
#[cfg(feature = "transport-http")]
pub use otlp_transport_http as transport_http;

/// OTLP/gRPC exporter, receiver and SDK exporters (`otlp-transport-grpc`).
#[cfg(feature = "transport-grpc")]
pub use otlp_transport_grpc as transport_grpc;

/// The telemetry gateway service (`otlp-gateway`).
#[cfg(feature = "gateway")]
pub use otlp_gateway as gateway;
