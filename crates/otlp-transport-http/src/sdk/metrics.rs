//! `opentelemetry_sdk::metrics::exporter::PushMetricExporter` over an [`HttpExporter`].

use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::{OtlpRequest, Signal, codec};

use super::{Adapter, ExportRuntime};
use crate::exporter::HttpExporter;

/// A `PushMetricExporter` for `SdkMeterProvider` (under a `PeriodicReader`), sending
/// through an [`HttpExporter`] (see the [module docs](super)).
///
/// The SDK's data is converted with `opentelemetry_proto::transform` and encoded by
/// `otlp_core`'s codec.
///
/// ```
/// use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
/// use otlp_transport_http::exporter::HttpExporter;
/// use otlp_transport_http::sdk::MetricsExporter;
///
/// let exporter = HttpExporter::builder().no_env().endpoint("http://127.0.0.1:4318").build()?;
/// let metrics = MetricsExporter::new(exporter).with_temporality(Temporality::Delta);
/// let provider = SdkMeterProvider::builder()
///     .with_reader(PeriodicReader::builder(metrics).build())
///     .build();
/// # drop(provider);
/// # Ok::<(), otlp_transport_http::exporter::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct MetricsExporter {
    adapter: Adapter<HttpExporter>,
    temporality: Temporality,
}

impl MetricsExporter {
    /// Exports metrics through `exporter` with cumulative temporality (the SDK's
    /// default), running requests on the background runtime.
    pub fn new(exporter: HttpExporter) -> MetricsExporter {
        MetricsExporter {
            adapter: Adapter::new(exporter),
            temporality: Temporality::default(),
        }
    }

    /// The temporality the SDK aggregates with for this exporter.
    #[must_use]
    pub fn with_temporality(mut self, temporality: Temporality) -> MetricsExporter {
        self.temporality = temporality;
        self
    }

    /// Runs requests on `runtime` instead.
    #[must_use]
    pub fn with_runtime(mut self, runtime: ExportRuntime) -> MetricsExporter {
        self.adapter.runtime = runtime;
        self
    }

    /// The exporter requests go through (for its settings and stats).
    pub fn http_exporter(&self) -> &HttpExporter {
        &self.adapter.exporter
    }
}

impl From<HttpExporter> for MetricsExporter {
    fn from(exporter: HttpExporter) -> MetricsExporter {
        MetricsExporter::new(exporter)
    }
}

impl PushMetricExporter for MetricsExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        // Before converting: a shut-down adapter does no work.
        self.adapter.check_open()?;
        let request = ExportMetricsServiceRequest::from(metrics);
        let items = request.item_count();
        let encoding = self
            .adapter
            .exporter
            .settings(Signal::Metrics)
            .protocol()
            .encoding();
        self.adapter
            .export(Signal::Metrics, items, move || {
                codec::encode(encoding, &request)
            })
            .await
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.adapter.shutdown()
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}
