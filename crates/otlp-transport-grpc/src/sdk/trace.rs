//! `opentelemetry_sdk::trace::SpanExporter` over a [`GrpcExporter`].

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use otlp_core::Signal;
use otlp_transport_http::sdk::wire::{self, EncodedResource};

use super::{Adapter, ExportRuntime, Sender};
use crate::exporter::GrpcExporter;

/// A `SpanExporter` for `SdkTracerProvider`, sending through a [`GrpcExporter`] (see the
/// [module docs](super)).
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otlp_transport_grpc::exporter::GrpcExporter;
/// use otlp_transport_grpc::sdk::TraceExporter;
///
/// let exporter = GrpcExporter::builder().no_env().endpoint("http://127.0.0.1:4317").build()?;
/// let provider = SdkTracerProvider::builder()
///     .with_batch_exporter(TraceExporter::new(exporter))
///     .build();
/// # drop(provider);
/// # Ok::<(), otlp_transport_grpc::exporter::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct TraceExporter {
    adapter: Adapter,
    encoded: EncodedResource,
}

impl TraceExporter {
    /// Exports spans through `exporter`, running calls on the background runtime.
    pub fn new(exporter: GrpcExporter) -> TraceExporter {
        TraceExporter {
            adapter: Adapter::new(Sender(exporter)),
            encoded: EncodedResource::default(),
        }
    }

    /// Runs calls on `runtime` instead.
    #[must_use]
    pub fn with_runtime(mut self, runtime: ExportRuntime) -> TraceExporter {
        self.adapter.runtime = runtime;
        self
    }

    /// The exporter calls go through (for its settings and stats).
    pub fn grpc_exporter(&self) -> &GrpcExporter {
        &self.adapter.exporter.0
    }
}

impl From<GrpcExporter> for TraceExporter {
    fn from(exporter: GrpcExporter) -> TraceExporter {
        TraceExporter::new(exporter)
    }
}

impl SpanExporter for TraceExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let items = batch.len() as u64;
        let encoded = &self.encoded;
        self.adapter
            .export(Signal::Traces, items, move || {
                Bytes::from(wire::encode_spans(&batch, encoded))
            })
            .await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.adapter.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.encoded = EncodedResource::new(resource);
    }
}
