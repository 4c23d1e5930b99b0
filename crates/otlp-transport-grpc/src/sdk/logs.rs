//! `opentelemetry_sdk::logs::LogExporter` over a [`GrpcExporter`].

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use otlp_core::Signal;
use otlp_transport_http::sdk::wire::{self, EncodedResource};

use super::{Adapter, ExportRuntime, Sender};
use crate::exporter::GrpcExporter;

/// A `LogExporter` for `SdkLoggerProvider`, sending through a [`GrpcExporter`] (see the
/// [module docs](super)).
///
/// ```
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use otlp_transport_grpc::exporter::GrpcExporter;
/// use otlp_transport_grpc::sdk::LogsExporter;
///
/// let exporter = GrpcExporter::builder().no_env().endpoint("http://127.0.0.1:4317").build()?;
/// let provider = SdkLoggerProvider::builder()
///     .with_batch_exporter(LogsExporter::new(exporter))
///     .build();
/// # drop(provider);
/// # Ok::<(), otlp_transport_grpc::exporter::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct LogsExporter {
    adapter: Adapter,
    encoded: EncodedResource,
}

impl LogsExporter {
    /// Exports log records through `exporter`, running calls on the background runtime.
    pub fn new(exporter: GrpcExporter) -> LogsExporter {
        LogsExporter {
            adapter: Adapter::new(Sender(exporter)),
            encoded: EncodedResource::default(),
        }
    }

    /// Runs calls on `runtime` instead.
    #[must_use]
    pub fn with_runtime(mut self, runtime: ExportRuntime) -> LogsExporter {
        self.adapter.runtime = runtime;
        self
    }

    /// The exporter calls go through (for its settings and stats).
    pub fn grpc_exporter(&self) -> &GrpcExporter {
        &self.adapter.exporter.0
    }
}

impl From<GrpcExporter> for LogsExporter {
    fn from(exporter: GrpcExporter) -> LogsExporter {
        LogsExporter::new(exporter)
    }
}

impl LogExporter for LogsExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let items = batch.iter().count() as u64;
        let encoded = &self.encoded;
        self.adapter
            .export(Signal::Logs, items, move || {
                Bytes::from(wire::encode_logs(&batch, encoded))
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
