//! Exporters built from `[[exporters]]`: OTLP/gRPC, OTLP/HTTP or the JSONL file sink, each
//! with its own circuit breaker and counters.
//!
//! The transports' own retry and breaker are turned off here: the route worker retries
//! (it holds the data in the queue, so it can retry for as long as the queue has room)
//! and one breaker per exporter decides failover in a group.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use otlp_core::{Compression, Exporter};
use otlp_resilience::breaker::{CircuitBreaker, CircuitBreakerConfig, SlidingWindow};
use otlp_transport_grpc::exporter::GrpcExporter;
use otlp_transport_http::exporter::HttpExporter;
use otlp_transport_http::receiver::PemSource;

use super::file_sink::{FileSink, FileSinkConfig};
use crate::config::{CompressionName, ExporterConfig, ExporterKind};
use crate::metrics::ExporterMetrics;

/// One exporter of a route.
pub struct Member {
    /// Its configured name.
    pub name: String,
    exporter: RwLock<(Arc<dyn Exporter>, ExporterConfig)>,
    /// Its breaker, when enabled.
    pub breaker: Option<CircuitBreaker>,
    /// Its counters.
    pub metrics: Arc<ExporterMetrics>,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("breaker", &self.breaker.as_ref().map(CircuitBreaker::state))
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// The transport now (a reload may replace it; calls under way finish on the old one).
    pub fn exporter(&self) -> Arc<dyn Exporter> {
        self.exporter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// The configuration it was built from.
    pub fn config(&self) -> ExporterConfig {
        self.exporter
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Build the transport `config` asks for, when its transport settings (endpoint,
    /// headers, compression, timeout, TLS) differ from the running one; `None` when they
    /// do not (other keys, such as `retry`, are read by the route, not the transport).
    ///
    /// # Errors
    ///
    /// [`BuildError`]; nothing changes then.
    pub fn prepare(
        &self,
        config: &ExporterConfig,
        data_dir: &Path,
    ) -> Result<Option<Prepared>, BuildError> {
        let mut running = self.config();
        running.retry = config.retry.clone();
        if running == *config {
            return Ok(None);
        }
        let (exporter, _, endpoint) = build_transport(config, data_dir)?;
        Ok(Some(Prepared {
            exporter,
            config: config.clone(),
            endpoint,
        }))
    }

    /// Switch to a prepared transport; the old one finishes its calls and shuts down.
    pub fn apply(&self, prepared: Prepared) {
        self.metrics.set_endpoint(prepared.endpoint);
        let old = std::mem::replace(
            &mut *self.exporter.write().unwrap_or_else(|e| e.into_inner()),
            (prepared.exporter, prepared.config),
        );
        tokio::spawn(async move {
            let _ = old.0.shutdown().await;
        });
    }
}

/// A transport built for a reload, not yet in use.
pub struct Prepared {
    exporter: Arc<dyn Exporter>,
    config: ExporterConfig,
    endpoint: String,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("exporter", &self.config.name)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// Why an exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("exporters.{name}: {message}")]
pub struct BuildError {
    /// The exporter's name.
    pub name: String,
    /// What went wrong.
    pub message: String,
}

fn compression(name: CompressionName) -> Compression {
    match name {
        CompressionName::None => Compression::None,
        CompressionName::Gzip => Compression::Gzip,
        CompressionName::Zstd => Compression::Zstd,
    }
}

/// `grpc://` and `grpcs://` are how people write gRPC endpoints; the transport wants
/// `http://` / `https://`.
fn grpc_url(endpoint: &str) -> String {
    if let Some(rest) = endpoint.strip_prefix("grpc://") {
        format!("http://{rest}")
    } else if let Some(rest) = endpoint.strip_prefix("grpcs://") {
        format!("https://{rest}")
    } else {
        endpoint.to_owned()
    }
}

/// Build the exporter `config` describes. `data_dir` is where a file exporter without an
/// endpoint writes.
///
/// # Errors
///
/// [`BuildError`] naming the exporter.
pub fn build(config: &ExporterConfig, data_dir: &Path) -> Result<Member, BuildError> {
    let (exporter, kind, endpoint) = build_transport(config, data_dir)?;
    let err = |message: String| BuildError {
        name: config.name.clone(),
        message,
    };
    let breaker = if config.circuit_breaker.enabled && config.kind != ExporterKind::File {
        let b = &config.circuit_breaker;
        let breaker_config = CircuitBreakerConfig::builder()
            .name(config.name.clone())
            .failure_rate_threshold(b.failure_rate * 100.0)
            .minimum_calls(b.minimum_calls)
            .sliding_window(SlidingWindow::Count {
                calls: b.minimum_calls.max(10) * 2,
                buckets: 10,
            })
            .wait_in_open(b.open_for.get())
            .build()
            .map_err(|e| err(format!("circuit_breaker: {e}")))?;
        Some(CircuitBreaker::new(breaker_config))
    } else {
        None
    };
    let metrics = Arc::new(ExporterMetrics::new(config.name.clone(), kind, endpoint));
    if breaker.is_some() {
        metrics.set_breaker(crate::metrics::BreakerView::Closed);
    }
    Ok(Member {
        name: config.name.clone(),
        exporter: RwLock::new((exporter, config.clone())),
        breaker,
        metrics,
    })
}

/// Headers and TLS material of `config` on an exporter builder (the gRPC and HTTP
/// builders have the same methods but no common trait).
macro_rules! headers_and_tls {
    ($builder:ident, $config:expr) => {{
        let mut b = $builder;
        for (k, v) in &$config.headers {
            b = b.header(k.clone(), v.clone());
        }
        if let Some(tls) = &$config.tls {
            if let Some(ca) = &tls.ca {
                b = b.ca_certificate(PemSource::file(ca));
            }
            if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
                b = b.client_identity(PemSource::file(cert), PemSource::file(key));
            }
        }
        b
    }};
}

type Transport = (Arc<dyn Exporter>, &'static str, String);

fn build_transport(config: &ExporterConfig, data_dir: &Path) -> Result<Transport, BuildError> {
    let err = |message: String| BuildError {
        name: config.name.clone(),
        message,
    };
    let timeout = config.timeout.get();
    let (exporter, kind, endpoint): (Arc<dyn Exporter>, &'static str, String) = match config.kind {
        ExporterKind::Grpc => {
            let url = grpc_url(&config.endpoint);
            let mut b = GrpcExporter::builder()
                .name(config.name.clone())
                .no_env()
                .endpoint(url.clone())
                .timeout(timeout)
                .compression(compression(config.compression))
                .connect_timeout(Duration::from_secs(5).min(timeout))
                .no_retry()
                .no_circuit_breaker();
            b = headers_and_tls!(b, config);
            let exporter = b.build().map_err(|e| err(e.to_string()))?;
            (Arc::new(exporter), "grpc", url)
        }
        ExporterKind::Http => {
            let mut b = HttpExporter::builder()
                .name(config.name.clone())
                .no_env()
                .endpoint(config.endpoint.clone())
                .timeout(timeout)
                .compression(compression(config.compression))
                .no_retry()
                .no_circuit_breaker();
            b = headers_and_tls!(b, config);
            let exporter = b.build().map_err(|e| err(e.to_string()))?;
            (Arc::new(exporter), "http", config.endpoint.clone())
        }
        ExporterKind::File => {
            let dir = if config.endpoint.is_empty() {
                data_dir.to_path_buf()
            } else {
                Path::new(&config.endpoint).to_path_buf()
            };
            let mut file = FileSinkConfig::new(dir.clone());
            if let Some(rotate) = config.rotate_bytes {
                file.rotate_bytes = rotate.bytes();
            }
            if let Some(keep) = config.keep_files {
                file.keep_files = keep;
            }
            let sink = FileSink::open(file).map_err(|e| err(e.to_string()))?;
            (Arc::new(sink), "file", dir.display().to_string())
        }
    };
    Ok((exporter, kind, endpoint))
}
