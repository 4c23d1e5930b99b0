//! The OTLP/HTTP receiver: hyper 1 with a tower stack, HTTP/1.1 and h2c on one port,
//! optional TLS and mutual TLS, protobuf and OTLP/JSON.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use otlp_core::sink::{Accepted, BoxFuture, Sink};
//! use otlp_core::{Payload, Refusal};
//! use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks};
//!
//! /// Prints what arrives; a real pipeline queues it.
//! struct Print;
//! impl Sink for Print {
//!     fn accept(&self, payload: Payload) -> BoxFuture<'_, Result<Accepted, Refusal>> {
//!         println!("{} {} ({} bytes)", payload.items(), payload.signal().item_name(), payload.len());
//!         Box::pin(async { Ok(Accepted::full()) })
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = HttpReceiverConfig::builder().addr("127.0.0.1:0").build()?;
//! let receiver = HttpReceiver::bind(config, Sinks::all(Arc::new(Print))).await?;
//! println!("POST OTLP to http://{}/v1/traces", receiver.local_addr());
//! // ... serve until it is time to stop:
//! let report = receiver.shutdown(Duration::from_secs(5)).await?;
//! assert_eq!(report.connections_aborted, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! ## What a request goes through
//!
//! | step | refused with |
//! |---|---|
//! | CORS (if configured): preflight `OPTIONS` answered here | - |
//! | auth (if configured): bearer token or API key header, constant-time | 401 + `WWW-Authenticate: Bearer realm="otlp"` |
//! | path -> signal (configurable paths; a signal without a sink is not served) | 404 |
//! | method | 405 + `Allow: POST` |
//! | `Content-Type`: `application/x-protobuf` or `application/json` | 415 |
//! | `Content-Encoding`: gzip, zstd, deflate, identity | 415 + `Accept-Encoding` |
//! | tenant hook ([`TenantSource`]) | what the hook says |
//! | `Content-Length` against the wire limit, before reading | 413 |
//! | body read, bounded in size and time | 413, 408 |
//! | decompression, stopping at the body limit (no bombs) | 413, 400 if corrupt |
//! | validation ([`Validation::Full`] by default, or framing only) | 400 naming the problem |
//! | [`Sink::accept`](otlp_core::Sink::accept) | the refusal's status, `Retry-After` for 429/503 |
//!
//! Every answer is in the request's encoding: an `Export*ServiceResponse` (with
//! `partial_success` when the sink rejected some items) on 200, a `google.rpc.Status`
//! otherwise (OTLP/JSON when the request's content type was not an OTLP one). Status
//! codes, `Retry-After` and Status bodies come from `otlp_core::Refusal`, the one mapping
//! every transport shares.
//!
//! ## Protocols
//!
//! HTTP/1.1 and HTTP/2 share the port: hyper's `auto` connection reads the first bytes
//! and serves HTTP/2 to clients that start with its preface (h2c with prior knowledge,
//! as gRPC-style clients do; the HTTP/1.1 `Upgrade: h2c` dance is not supported) and
//! HTTP/1.1 to everyone else. Over TLS, ALPN offers `h2` and `http/1.1`.
//!
//! ## Slow and greedy clients
//!
//! - the TLS handshake and the first request's headers within `header_read_timeout`
//!   (HTTP/1.1: every request's headers), the whole body within `body_read_timeout`;
//! - connections without a request in flight closed after `idle_timeout`;
//! - at most `max_connections` connections ([`ConnectionLimitPolicy`] says what happens
//!   to more), at most `max_concurrent_streams` requests per HTTP/2 connection;
//! - memory per request bounded by the wire limit plus the body limit.
//!
//! ## Mounting in your own server
//!
//! [`OtlpHttpService`] is the whole stack (CORS, auth, OTLP handler) as a
//! `tower::Service` over `http::Request<B>` for any body with `Bytes` data; route
//! `/v1/*` to it in axum (`Router::route_service`) or serve it with hyper directly.
//! [`AuthLayer`] is usable on its own.
//!
//! ## Counters
//!
//! [`ReceiverMetrics::snapshot`]: requests by signal, outcome and status, items accepted
//! and refused, bytes received before and after decompression, connections.

mod auth;
mod config;
mod decode;
mod metrics;
mod reply;
mod routes;
mod server;
mod service;
mod tls;

pub use auth::{
    Auth, AuthConfig, AuthFuture, AuthLayer, AuthenticatedKey, Credentials, WWW_AUTHENTICATE_VALUE,
};
pub use config::{
    ConfigError, ConnectionLimitPolicy, CorsConfig, DEFAULT_ADDR, DEFAULT_BODY_READ_TIMEOUT,
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN_BACKLOG,
    DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_MAX_CONNECTIONS, DEFAULT_SHUTDOWN_GRACE,
    HttpReceiverConfig, HttpReceiverConfigBuilder, TenantFn, TenantSource, Validation,
};
pub use metrics::{
    ConnectionSnapshot, Outcome, ReceiverMetrics, ReceiverMetricsSnapshot, SignalSnapshot,
};
pub use reply::ResponseBody;
pub use routes::Sinks;
pub use server::{
    BindError, HttpReceiver, ListenerConfig, RunningReceiver, ServeBody, ServeError, ServeService,
    ShutdownHandle, ShutdownReport, serve, serve_with_shutdown,
};
pub use service::{OtlpHttpService, ResponseFuture};
pub use tls::{PemSource, TlsConfig, TlsError};
