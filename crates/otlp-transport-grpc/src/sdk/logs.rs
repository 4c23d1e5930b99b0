//! `opentelemetry_sdk::logs::LogExporter` over a [`GrpcExporter`].

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use otlp_core::Signal;
use otlp_transport_http::sdk::wire::{self, EncodedResource};

use super::{Adapter, ExportRuntime};
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
            adapter: Adapter::new(exporter),
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
        &self.adapter.exporter
    }
}

impl From<GrpcExporter> for LogsExporter {
    fn from(exporter: GrpcExporter) -> LogsExporter {
        LogsExporter::new(exporter)
    }
}

impl LogExporter for LogsExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        self.adapter.check_open()?;
        let items = batch.iter().count() as u64;
        if items == 0 {
            return Ok(());
        }
        let body = Bytes::from(wire::encode_logs(&batch, &self.encoded));
        let exporter = self.adapter.exporter.clone();
        self.adapter
            .runtime
            .run(async move { exporter.send(Signal::Logs, body, items).await })
            .await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.adapter.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.encoded = EncodedResource::new(resource);
    }
}
