//! Host names to addresses: the system resolver, or your own (service discovery, tests).
//!
//! ```
//! use std::net::SocketAddr;
//! use otlp_transport_grpc::exporter::GrpcExporter;
//!
//! // A static table standing in for service discovery.
//! let table = |host: &str, port: u16| -> std::io::Result<Vec<SocketAddr>> {
//!     match host {
//!         "collector" => Ok(vec![SocketAddr::from(([10, 0, 0, 1], port)), SocketAddr::from(([10, 0, 0, 2], port))]),
//!         _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host")),
//!     }
//! };
//! let exporter = GrpcExporter::builder().no_env().endpoint("http://collector:4317").resolver(table).build()?;
//! # drop(exporter);
//! # Ok::<(), otlp_transport_grpc::exporter::ConfigError>(())
//! ```

use std::io;
use std::net::SocketAddr;

use otlp_core::sink::BoxFuture;

/// Turns a host name and port into the addresses to call. Implemented by
/// [`SystemResolver`] and by every `Fn(&str, u16) -> io::Result<Vec<SocketAddr>>`.
pub trait Resolve: Send + Sync + 'static {
    /// The addresses of `host` (never an IP literal: those are not resolved), with
    /// `port` unless the resolver knows better (e.g. from SRV records).
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver through `tokio::net::lookup_host` (on a blocking
/// thread), as `getaddrinfo` answers: `/etc/hosts`, DNS, ...
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

impl<F> Resolve for F
where
    F: Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
{
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        let result = self(host, port);
        Box::pin(std::future::ready(result))
    }
}
