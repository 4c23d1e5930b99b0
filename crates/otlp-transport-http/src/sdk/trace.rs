//! `opentelemetry_sdk::trace::SpanExporter` over an [`HttpExporter`].

use std::time::Duration;

use bytes::Bytes;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use otlp_core::Signal;
use otlp_core::codec::json;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;

use super::wire::{self, EncodedResource};
use super::{Adapter, ExportRuntime};
use crate::exporter::{HttpExporter, Protocol};

/// A `SpanExporter` for `SdkTracerProvider`, sending through an [`HttpExporter`]
/// (see the [module docs](super)).
///
/// ```
/// use opentelemetry_sdk::trace::SdkTracerProvider;
/// use otlp_transport_http::exporter::HttpExporter;
/// use otlp_transport_http::sdk::TraceExporter;
///
/// let exporter = HttpExporter::builder().no_env().endpoint("http://127.0.0.1:4318").build()?;
/// let provider = SdkTracerProvider::builder()
///     .with_simple_exporter(TraceExporter::new(exporter))
///     .build();
/// # drop(provider);
/// # Ok::<(), otlp_transport_http::exporter::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct TraceExporter {
    adapter: Adapter<HttpExporter>,
    resource: Resource,
    encoded: EncodedResource,
}

impl TraceExporter {
    /// Exports spans through `exporter`, running requests on the background runtime.
    pub fn new(exporter: HttpExporter) -> TraceExporter {
        TraceExporter {
            adapter: Adapter::new(exporter),
            resource: Resource::builder_empty().build(),
            encoded: EncodedResource::default(),
        }
    }

    /// Runs requests on `runtime` instead.
    #[must_use]
    pub fn with_runtime(mut self, runtime: ExportRuntime) -> TraceExporter {
        self.adapter.runtime = runtime;
        self
    }

    /// The exporter requests go through (for its settings and stats).
    pub fn http_exporter(&self) -> &HttpExporter {
        &self.adapter.exporter
    }

    /// The request body for `batch` in the exporter's protocol.
    fn encode(&self, batch: Vec<SpanData>) -> Bytes {
        match self.adapter.exporter.settings(Signal::Traces).protocol() {
            Protocol::HttpProtobuf => Bytes::from(wire::encode_spans(&batch, &self.encoded)),
            Protocol::HttpJson => {
                let resource = ResourceAttributesWithSchema::from(&self.resource);
                let request = ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(batch, &resource),
                };
                Bytes::from(json::to_vec(&request))
            }
        }
    }
}

impl From<HttpExporter> for TraceExporter {
    fn from(exporter: HttpExporter) -> TraceExporter {
        TraceExporter::new(exporter)
    }
}

impl SpanExporter for TraceExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let items = batch.len() as u64;
        self.adapter
            .export(Signal::Traces, items, move || self.encode(batch))
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
