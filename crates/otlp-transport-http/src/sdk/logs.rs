//! `opentelemetry_sdk::logs::LogExporter` over an [`HttpExporter`].

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use otlp_core::Signal;
use otlp_core::codec::json;
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;

use super::wire::{self, EncodedResource};
use super::{Adapter, ExportRuntime};
use crate::exporter::{HttpExporter, Protocol};

/// A `LogExporter` for `SdkLoggerProvider`, sending through an [`HttpExporter`]
/// (see the [module docs](super)).
///
/// ```
/// use opentelemetry_sdk::logs::SdkLoggerProvider;
/// use otlp_transport_http::exporter::HttpExporter;
/// use otlp_transport_http::sdk::LogsExporter;
///
/// let exporter = HttpExporter::builder().no_env().endpoint("http://127.0.0.1:4318").build()?;
/// let provider = SdkLoggerProvider::builder()
///     .with_simple_exporter(LogsExporter::new(exporter))
///     .build();
/// # drop(provider);
/// # Ok::<(), otlp_transport_http::exporter::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct LogsExporter {
    adapter: Adapter<HttpExporter>,
    resource: Resource,
    encoded: EncodedResource,
}

impl LogsExporter {
    /// Exports log records through `exporter`, running requests on the background runtime.
    pub fn new(exporter: HttpExporter) -> LogsExporter {
        LogsExporter {
            adapter: Adapter::new(exporter),
            resource: Resource::builder_empty().build(),
            encoded: EncodedResource::default(),
        }
    }

    /// Runs requests on `runtime` instead.
    #[must_use]
    pub fn with_runtime(mut self, runtime: ExportRuntime) -> LogsExporter {
        self.adapter.runtime = runtime;
        self
    }

    /// The exporter requests go through (for its settings and stats).
    pub fn http_exporter(&self) -> &HttpExporter {
        &self.adapter.exporter
    }

    fn encode(&self, batch: &LogBatch<'_>) -> Bytes {
        match self.adapter.exporter.settings(Signal::Logs).protocol() {
            Protocol::HttpProtobuf => Bytes::from(wire::encode_logs(batch, &self.encoded)),
            Protocol::HttpJson => {
                let resource = ResourceAttributesWithSchema::from(&self.resource);
                let request = ExportLogsServiceRequest {
                    resource_logs: group_logs_by_resource_and_scope(batch, &resource),
                };
                Bytes::from(json::to_vec(&request))
            }
        }
    }
}

impl From<HttpExporter> for LogsExporter {
    fn from(exporter: HttpExporter) -> LogsExporter {
        LogsExporter::new(exporter)
    }
}

impl LogExporter for LogsExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let items = batch.iter().count() as u64;
        self.adapter
            .export(Signal::Logs, items, move || self.encode(&batch))
            .await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.adapter.shutdown()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = resource.clone();
        self.encoded = EncodedResource::new(resource);
    }
}
