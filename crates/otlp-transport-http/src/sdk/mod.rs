//! The [`HttpExporter`] under the official OpenTelemetry SDK (`opentelemetry_sdk` 0.33):
//! [`TraceExporter`] is a `SpanExporter`, [`LogsExporter`] a `LogExporter`,
//! [`MetricsExporter`] a `PushMetricExporter`. They take the place of
//! `opentelemetry-otlp`'s HTTP exporters under `SdkTracerProvider`, `SdkLoggerProvider`
//! and `SdkMeterProvider` (and so under `tracing-opentelemetry`).
//!
//! ```no_run
//! use opentelemetry::trace::{Tracer, TracerProvider as _};
//! use opentelemetry_sdk::logs::SdkLoggerProvider;
//! use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use opentelemetry_sdk::Resource;
//! use otlp_transport_http::exporter::HttpExporter;
//! use otlp_transport_http::sdk::{LogsExporter, MetricsExporter, TraceExporter};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One exporter (connections, retry budget, circuit breakers) for all three signals.
//! let exporter = HttpExporter::builder().endpoint("http://collector:4318").build()?;
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
//! With `http/protobuf`, spans and log records are written straight from the SDK's data
//! to OTLP protobuf in one pass, without building the intermediate `opentelemetry-proto`
//! messages. The result is the request `opentelemetry-otlp` sends: for spans the very
//! same bytes; for log records the same messages, scopes possibly in another order
//! (`opentelemetry-otlp` groups them through a hash map). About four times the
//! throughput at a quarter of the CPU per span: see `benches/exporter.rs`.
//! With `http/json`, and for metrics, `opentelemetry_proto::transform` builds the
//! messages and `otlp_core`'s codec writes them.
//!
//! # Where requests run
//!
//! The SDK's default processors call exporters from their own threads, outside any
//! tokio runtime, and block on the returned future; reqwest needs a tokio runtime. So
//! each export is encoded on the calling thread and its HTTP request runs on an
//! [`ExportRuntime`]: by default one background thread this crate starts on first use
//! (a current-thread tokio runtime), or a runtime you hand over.
//!
//! # Results
//!
//! A partial success is a success for the SDK (`Ok`), logged at `warn` with the counts
//! and counted in [`HttpExporter::stats`]. A failed export is
//! `OTelSdkError::InternalFailure` with the [`ExportFailure`] text
//! (items, endpoint, attempts, status, server message). Shutting an adapter down
//! stops only that adapter, not the shared [`HttpExporter`].

mod logs;
mod metrics;
mod trace;
pub mod wire;

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use otlp_core::Signal;
use otlp_core::sink::Accepted;
use tokio::runtime::Handle;

pub use logs::LogsExporter;
pub use metrics::MetricsExporter;
pub use trace::TraceExporter;

use crate::exporter::{ExportFailure, FailureReason, HttpExporter};

/// Where the SDK adapters run their HTTP requests.
#[derive(Debug, Clone, Default)]
pub enum ExportRuntime {
    /// A background thread with a current-thread tokio runtime, started by this crate
    /// the first time an adapter exports, shared by every adapter (the default).
    #[default]
    Background,
    /// This runtime. Don't pass the runtime of a thread on which the SDK blocks (e.g.
    /// a current-thread runtime with `SimpleSpanProcessor`): it could not run the request.
    Handle(Handle),
}

impl ExportRuntime {
    fn handle(&self) -> Result<Handle, OTelSdkError> {
        match self {
            ExportRuntime::Handle(handle) => Ok(handle.clone()),
            ExportRuntime::Background => background().map_err(|e| {
                OTelSdkError::InternalFailure(format!(
                    "cannot start the OTLP/HTTP export thread: {e}"
                ))
            }),
        }
    }

    /// Runs `export` on this runtime and waits for it (from any thread or runtime), and
    /// maps its outcome to the SDK's result. Public for the OTLP/gRPC exporter's adapters.
    ///
    /// # Errors
    ///
    /// `AlreadyShutdown` when the exporter was shut down, `InternalFailure` with the
    /// [`ExportFailure`] text otherwise.
    pub async fn run<F>(&self, export: F) -> OTelSdkResult
    where
        F: Future<Output = Result<Accepted, ExportFailure>> + Send + 'static,
    {
        let task = self.handle()?.spawn(export);
        match task.await {
            Ok(Ok(_accepted)) => Ok(()),
            Ok(Err(failure)) if failure.reason() == FailureReason::Shutdown => {
                Err(OTelSdkError::AlreadyShutdown)
            }
            Ok(Err(failure)) => Err(OTelSdkError::InternalFailure(failure.to_string())),
            Err(e) => Err(OTelSdkError::InternalFailure(format!(
                "the export task did not finish: {e}"
            ))),
        }
    }
}

/// The background runtime's handle, starting its thread on first use.
fn background() -> Result<Handle, String> {
    static RUNTIME: OnceLock<Result<Handle, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            std::thread::Builder::new()
                .name("otlp-http-export".to_owned())
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => {
                            let _ = tx.send(Ok(runtime.handle().clone()));
                            // Serves the adapters' requests for the life of the process.
                            runtime.block_on(std::future::pending::<()>());
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e.to_string()));
                        }
                    }
                })
                .map_err(|e| e.to_string())?;
            rx.recv().map_err(|e| e.to_string())?
        })
        .clone()
}

/// An exporter the SDK adapters send through: this crate's [`HttpExporter`], and the
/// OTLP/gRPC exporter of `otlp-transport-grpc`. Plumbing shared by the two crates'
/// adapters, not an API.
#[doc(hidden)]
pub trait SendEncoded: Clone + Send + Sync + 'static {
    /// Sends `body`, an encoded request of `signal` holding `items` items, with the
    /// exporter's retries.
    fn send_encoded(
        &self,
        signal: Signal,
        body: Bytes,
        items: u64,
    ) -> impl Future<Output = Result<Accepted, ExportFailure>> + Send;
}

impl SendEncoded for HttpExporter {
    fn send_encoded(
        &self,
        signal: Signal,
        body: Bytes,
        items: u64,
    ) -> impl Future<Output = Result<Accepted, ExportFailure>> + Send {
        self.send(signal, body, items)
    }
}

/// What an SDK adapter keeps: the exporter, where exports run, and the adapter's own
/// shutdown (which leaves the exporter, shared with other adapters, running). Plumbing
/// shared by this crate's adapters and those of `otlp-transport-grpc`, not an API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Adapter<E> {
    /// The exporter exports go through.
    pub exporter: E,
    /// Where they run.
    pub runtime: ExportRuntime,
    shut_down: AtomicBool,
}

impl<E: SendEncoded> Adapter<E> {
    /// An open adapter over `exporter`, running exports on the background runtime.
    pub fn new(exporter: E) -> Adapter<E> {
        Adapter {
            exporter,
            runtime: ExportRuntime::default(),
            shut_down: AtomicBool::new(false),
        }
    }

    /// `Ok` unless the adapter was shut down.
    ///
    /// # Errors
    ///
    /// `AlreadyShutdown` after [`shutdown`](Self::shutdown).
    pub fn check_open(&self) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Acquire) {
            Err(OTelSdkError::AlreadyShutdown)
        } else {
            Ok(())
        }
    }

    /// Shuts this adapter down (not the exporter).
    ///
    /// # Errors
    ///
    /// `AlreadyShutdown` when it already was.
    pub fn shutdown(&self) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            Err(OTelSdkError::AlreadyShutdown)
        } else {
            Ok(())
        }
    }

    /// Exports `items` items of `signal`: nothing when there are none; else the request
    /// `encode` writes (on the calling thread, so the SDK's data is dropped before the
    /// wait) is sent on the runtime, and the outcome awaited.
    ///
    /// # Errors
    ///
    /// `AlreadyShutdown` when the adapter or the exporter was shut down,
    /// `InternalFailure` with the [`ExportFailure`] text when the export failed.
    pub async fn export(
        &self,
        signal: Signal,
        items: u64,
        encode: impl FnOnce() -> Bytes,
    ) -> OTelSdkResult {
        self.check_open()?;
        if items == 0 {
            return Ok(());
        }
        let body = encode();
        let exporter = self.exporter.clone();
        self.runtime
            .run(async move { exporter.send_encoded(signal, body, items).await })
            .await
    }
}
