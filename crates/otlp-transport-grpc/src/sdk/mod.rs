//! The [`GrpcExporter`] under the official OpenTelemetry SDK (`opentelemetry_sdk` 0.33):
//! [`TraceExporter`] is a `SpanExporter`, [`LogsExporter`] a `LogExporter`,
//! [`MetricsExporter`] a `PushMetricExporter`. They take the place of
//! `opentelemetry-otlp`'s tonic exporters under `SdkTracerProvider`, `SdkLoggerProvider`
//! and `SdkMeterProvider` (and so under `tracing-opentelemetry`).
//!
//! ```no_run
//! use opentelemetry::trace::{Tracer, TracerProvider as _};
//! use opentelemetry_sdk::logs::SdkLoggerProvider;
//! use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use opentelemetry_sdk::Resource;
//! use otlp_transport_grpc::exporter::GrpcExporter;
//! use otlp_transport_grpc::sdk::{LogsExporter, MetricsExporter, TraceExporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One exporter (connections, retry budget, circuit breakers) for all three signals.
//! let exporter = GrpcExporter::builder().endpoint("http://collector:4317").build()?;
//! let resource = Resource::builder().with_service_name("checkout").build();
//!
//! let tracer_provider = SdkTracerProvider::builder()
//!     .with_batch_exporter(TraceExporter::new(exporter.clone()))
//!     .with_resource(resource.clone())
//!     .build();
//! let meter_provider = SdkMeterProvider::builder()
//!     .with_reader(PeriodicReader::builder(MetricsExporter::new(exporter.clone())).build())
//!     .with_resource(resource.clone())
//!     .build();
//! let logger_provider = SdkLoggerProvider::builder()
//!     .with_batch_exporter(LogsExporter::new(exporter))
//!     .with_resource(resource)
//!     .build();
//!
//! tracer_provider.tracer("checkout").in_span("charge card", |_cx| { /* ... */ });
//!
//! tracer_provider.shutdown()?;
//! meter_provider.shutdown()?;
//! logger_provider.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Encoding
//!
//! Spans and log records are written straight from the SDK's data to OTLP protobuf in
//! one pass by the OTLP/HTTP exporter's writer (`otlp_transport_http::sdk::wire`), without
//! building the intermediate `opentelemetry-proto` messages; the bytes go into the gRPC
//! frame as they are. Metrics go through `opentelemetry_proto::transform` and
//! `otlp_core`'s codec (a periodic, small export).
//!
//! # Where calls run
//!
//! The SDK's default processors call exporters from their own threads, outside any
//! tokio runtime, and block on the returned future; tonic needs a tokio runtime. So each
//! export is encoded on the calling thread and its call runs on an [`ExportRuntime`]
//! (shared with the OTLP/HTTP adapters): by default one background thread with a
//! current-thread tokio runtime, started on first use, or a runtime you hand over.
//!
//! # Results
//!
//! A partial success is a success for the SDK (`Ok`), logged at `warn` with the counts
//! and counted in [`GrpcExporter::stats`]. A failed export is
//! `OTelSdkError::InternalFailure` with the [`ExportFailure`] text (items, endpoint,
//! attempts, status, server message). Shutting an adapter down stops only that adapter,
//! not the shared [`GrpcExporter`].

mod logs;
mod metrics;
mod trace;

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use otlp_core::Signal;
use otlp_core::sink::Accepted;
use otlp_transport_http::sdk::SendEncoded;

pub use logs::LogsExporter;
pub use metrics::MetricsExporter;
pub use otlp_transport_http::sdk::ExportRuntime;
pub use trace::TraceExporter;

use crate::exporter::{ExportFailure, GrpcExporter};

/// What the adapters share (the exporter, where calls run, their own shutdown): the
/// OTLP/HTTP adapters' state, over a [`GrpcExporter`].
type Adapter = otlp_transport_http::sdk::Adapter<Sender>;

/// The [`GrpcExporter`] as the shared adapter sends through it (a wrapper, so the
/// exporter's own API stays as it is).
#[derive(Clone)]
struct Sender(GrpcExporter);

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl SendEncoded for Sender {
    fn send_encoded(
        &self,
        signal: Signal,
        body: Bytes,
        items: u64,
    ) -> impl Future<Output = Result<Accepted, ExportFailure>> + Send {
        self.0.send(signal, body, items)
    }
}
