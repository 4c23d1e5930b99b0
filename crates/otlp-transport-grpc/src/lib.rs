//! # otlp-transport-grpc
//!
//! The OTLP/gRPC exporter and receiver, built on tonic, with a pass-through codec
//! ([`codec::BytesCodec`]) that forwards encoded bytes without decoding and re-encoding
//! them.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod codec;
pub mod exporter;
pub mod receiver;
pub mod sdk;

pub use exporter::{ExportFailure, FailureReason, GrpcExporter, GrpcExporterBuilder};
pub use receiver::{GrpcReceiver, GrpcReceiverConfig, OtlpGrpcService, RunningGrpcReceiver};
pub use sdk::{LogsExporter, MetricsExporter, TraceExporter};
