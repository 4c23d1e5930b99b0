//! The OTLP/gRPC receiver: tonic's gRPC protocol handling on the listener of
//! `otlp-transport-http` (HTTP/2, optional TLS and mutual TLS), handing the bytes each
//! client sent to a [`Sink`](otlp_core::Sink) without decoding and re-encoding them.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use std::time::Duration;
//! use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
//! use otlp_core::sink::{Accepted, BoxFuture, Sink};
//! use otlp_core::{Payload, Refusal, Signal};
//! use otlp_transport_grpc::codec::BytesCodec;
//! use otlp_transport_grpc::receiver::{GrpcReceiver, GrpcReceiverConfig, Sinks};
//!
//! /// Keeps what arrives; a real pipeline queues it.
//! #[derive(Default)]
//! struct Collect(Mutex<Vec<Payload>>);
//! impl Sink for Collect {
//!     fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
//!         self.0.lock().unwrap().push(payload);
//!         Box::pin(async { Ok(Accepted::full()) })
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let sink = Arc::new(Collect::default());
//! let config = GrpcReceiverConfig::builder().addr("127.0.0.1:0").build()?;
//! let receiver = GrpcReceiver::bind(config, Sinks::all(sink.clone())).await?;
//! println!("export OTLP/gRPC to http://{}", receiver.local_addr());
//!
//! // Any OTLP/gRPC exporter can send now; here tonic with the pass-through codec.
//! let endpoint = format!("http://{}", receiver.local_addr());
//! let channel = tonic::transport::Endpoint::from_shared(endpoint)?.connect().await?;
//! let mut client = tonic::client::Grpc::new(channel);
//! client.ready().await?;
//! let request = Payload::from_request(&ExportTraceServiceRequest::default());
//! let path = http::uri::PathAndQuery::from_static(Signal::Traces.grpc_path());
//! client.unary(tonic::Request::new(request.body().clone()), path, BytesCodec).await?;
//! assert_eq!(sink.0.lock().unwrap()[0].body(), request.body());
//!
//! // ... serve until it is time to stop:
//! let report = receiver.shutdown(Duration::from_secs(5)).await?;
//! assert_eq!(report.connections_aborted, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## What a call goes through
//!
//! | step | answered with |
//! |---|---|
//! | HTTP method POST | HTTP 405 (+ `grpc-status` UNIMPLEMENTED) |
//! | `content-type` `application/grpc` (or `+proto`) | HTTP 415 (+ `grpc-status` INVALID_ARGUMENT); other `application/grpc+...`: INVALID_ARGUMENT |
//! | auth (if configured): bearer token or API key in the metadata, constant-time | UNAUTHENTICATED |
//! | method -> signal ([`Signal::grpc_path`](otlp_core::Signal::grpc_path)); a signal without a sink is not served | UNIMPLEMENTED |
//! | tenant ([`TenantSource`]) | what the hook says |
//! | concurrency limit (`max_concurrent_calls`) | UNAVAILABLE + `RetryInfo` |
//! | `grpc-encoding` (gzip, zstd, deflate, identity) | UNIMPLEMENTED + `grpc-accept-encoding` |
//! | message size against `max_message_bytes`, before reading it | RESOURCE_EXHAUSTED, no `RetryInfo` (not retried) |
//! | message read within `message_read_timeout` | DEADLINE_EXCEEDED |
//! | decompression, stopping at `max_message_bytes` (no bombs) | RESOURCE_EXHAUSTED; INTERNAL if corrupt (gRPC spec) |
//! | validation ([`Validation::Full`] by default, or framing only) | INVALID_ARGUMENT naming the problem |
//! | [`Sink::accept`](otlp_core::Sink::accept) | the refusal's code with `RetryInfo` when retryable; OK with `partial_success` |
//!
//! Codes, messages and `grpc-status-details-bin` (a `google.rpc.Status`, with
//! `RetryInfo` for UNAVAILABLE and throttling RESOURCE_EXHAUSTED) come from
//! [`otlp_core::Refusal`], the mapping every transport shares, so
//! [`otlp_core::ExportError::from_grpc`] reads them back. tonic's own answer to an
//! oversized message, OUT_OF_RANGE, is in OTLP's retryable set; the receiver answers
//! RESOURCE_EXHAUSTED without `RetryInfo` instead, so clients drop the message rather
//! than retry it forever.
//!
//! ## Protocol and limits
//!
//! - HTTP/2 only (prior knowledge, or ALPN `h2` over TLS), unless the port also serves
//!   OTLP/HTTP ([`GrpcReceiverConfigBuilder::serve_http`]): then requests whose
//!   `content-type` is not `application/grpc...` go to an
//!   [`OtlpHttpService`](otlp_transport_http::receiver::OtlpHttpService) and the port
//!   speaks HTTP/1.1 too.
//! - At most `max_connections` connections, `max_concurrent_streams` calls per
//!   connection and `max_concurrent_calls` calls in all; memory held by messages is
//!   about `max_concurrent_calls` times `max_message_bytes` at worst.
//! - The TLS handshake and first request within `header_read_timeout`; connections
//!   without a call closed after `idle_timeout`; keepalive PINGs find dead peers.
//! - Shutdown: GOAWAY, in-flight calls finish within the grace period.
//!
//! ## Counters
//!
//! [`GrpcReceiverMetrics`] counts calls by signal, outcome and gRPC code, items accepted
//! and refused, bytes received and decompressed;
//! [`RunningGrpcReceiver::listener_metrics`] counts connections.
//!
//! ## Not supported
//!
//! gRPC-Web, reflection, health checking (`grpc.health.v1`), and the `grpc-timeout`
//! header (clients cancel their own calls at their deadline, which drops the sink call).

mod body;
mod config;
mod metrics;
mod server;
mod service;
mod status;

pub use config::{
    DEFAULT_ADDR, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_LISTEN_BACKLOG, DEFAULT_MAX_CONCURRENT_CALLS,
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MESSAGE_READ_TIMEOUT, DEFAULT_OVERLOAD_RETRY_AFTER, DEFAULT_SHUTDOWN_GRACE,
    GrpcReceiverConfig, GrpcReceiverConfigBuilder, GrpcReceiverConfigError,
};
pub use metrics::{GrpcReceiverMetrics, GrpcReceiverMetricsSnapshot, GrpcSignalSnapshot};
pub use server::{GrpcReceiver, RunningGrpcReceiver};
pub use service::{OtlpGrpcService, ResponseFuture};

/// Shared with the OTLP/HTTP receiver, re-exported so one import serves both.
pub use otlp_transport_http::receiver::{
    AuthConfig, AuthenticatedKey, BindError, ConnectionLimitPolicy, Outcome, PemSource, ServeError,
    ShutdownHandle, ShutdownReport, Sinks, TenantFn, TenantSource, TlsConfig, TlsError, Validation,
};
