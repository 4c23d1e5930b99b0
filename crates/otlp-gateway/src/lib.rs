//! # otlp-gateway
//!
//! The telemetry gateway behind `otlp gateway`: OTLP in on gRPC and HTTP, protected
//! (auth, per-tenant rate limits, memory limiter) and degraded under load, queued durably
//! per exporter, batched, and exported to one or more upstreams with retry and circuit
//! breaking; admin endpoints for health, Prometheus metrics and a status page.
//!
//! ```no_run
//! use otlp_gateway::Gateway;
//! use otlp_gateway::config::GatewayConfig;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GatewayConfig::from_toml_str(r#"
//!     data_dir = "/var/lib/otlp-gateway"
//!     [[exporters]]
//!     name = "backend"
//!     kind = "grpc"
//!     endpoint = "grpc://collector.internal:4317"
//! "#)?;
//! let gateway = Gateway::start(config).await?;
//! println!("OTLP/gRPC on {:?}", gateway.grpc_addr());
//! // ... on SIGTERM:
//! gateway.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The disk queue is our own (segment files with CRC-32 records, group-commit fsync,
//! out-of-order acks): the crates we looked at are single-consumer with in-order commits
//! (`yaque`), one circular file without checksums syncing every operation
//! (`queue-file`), or key-value stores (`sled`, `fjall`); see
//! [`pipeline::queue::DiskQueue`] and docs/adr/0008-disk-queue.md.
//!
//! Module map: [`config`] (TOML, flags, `OTEL_*`), [`pipeline`] (ingress stages, queues,
//! routes and exporters), [`admin`] (health, metrics, status page), [`metrics`] (the one
//! registry every stage reports to), [`loadgen`] (realistic data for `otlp send`).
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod admin;
pub mod config;
pub mod loadgen;
pub mod logs;
pub mod metrics;
pub mod pipeline;
pub mod run;
pub mod self_telemetry;

pub use run::{Gateway, StartError};
