//! # otlp-transport-http
//!
//! OTLP/HTTP for Rust services and gateways, following the OTLP specification to the
//! letter and interoperating with the official OpenTelemetry SDKs:
//!
//! - [`exporter`]: [`HttpExporter`] (reqwest, HTTP/1.1 and HTTP/2, rustls on ring,
//!   protobuf or OTLP/JSON, gzip or zstd, `OTEL_EXPORTER_OTLP_*` configuration, retries and
//!   a circuit breaker from `otlp-resilience`, status rules from `otlp-core`);
//! - [`sdk`]: the exporter under `opentelemetry_sdk`'s tracer, logger and meter providers,
//!   in place of `opentelemetry-otlp`;
//! - [`receiver`]: [`HttpReceiver`] (hyper 1, HTTP/1.1 and h2c on one port, TLS and mTLS,
//!   bounded decompression, slow-client timeouts, connection limits, auth, CORS, graceful
//!   shutdown) handing each request to an [`otlp_core::Sink`].
//!
//! A receiver and an exporter talking to each other:
//!
//! ```no_run
//! use std::sync::Arc;
//! use otlp_core::sink::{Accepted, BoxFuture, Sink};
//! use otlp_core::{Payload, Refusal};
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_transport_http::{HttpExporter, HttpReceiver, HttpReceiverConfig, Sinks};
//!
//! struct Print;
//! impl Sink for Print {
//!     fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
//!         println!("{} {} ({} bytes)", payload.items(), payload.signal().item_name(), payload.len());
//!         Box::pin(async { Ok(Accepted::full()) })
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = HttpReceiverConfig::builder().addr("127.0.0.1:0").build()?;
//! let receiver = HttpReceiver::bind(config, Sinks::all(Arc::new(Print))).await?;
//!
//! let exporter = HttpExporter::builder()
//!     .endpoint(format!("http://{}", receiver.local_addr()))
//!     .build()?;
//! exporter.export_traces(&ExportTraceServiceRequest::default()).await?;
//! receiver.shutdown(std::time::Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! TLS uses rustls with the ring provider only (no aws-lc-rs). reqwest is built with
//! `rustls-no-provider`, so in a process where some other reqwest client is built without
//! its own TLS configuration (for example `opentelemetry-otlp`'s default client), install
//! a process-wide provider first:
//! `let _ = rustls::crypto::ring::default_provider().install_default();`.
//! Our exporter passes its own configuration and does not need it.
//!
//! This crate has no feature flags.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod exporter;
pub mod receiver;
pub mod sdk;

pub use exporter::{
    ExportFailure, FailureReason, HttpExporter, HttpExporterBuilder, HttpVersion, Protocol,
};
pub use receiver::{HttpReceiver, HttpReceiverConfig, OtlpHttpService, RunningReceiver, Sinks};
pub use sdk::{LogsExporter, MetricsExporter, TraceExporter};
