//! The OTLP/gRPC receiver over TLS and mutual TLS, with a tonic client on a rustls
//! connector (tonic's own TLS features are not enabled in this workspace).

mod receiver_support;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use otlp_core::Signal;
use otlp_transport_grpc::receiver::{GrpcReceiverConfig, PemSource, TlsConfig};
use receiver_support::{Client, TestSink, bounded, request, start};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::transport::{Channel, Endpoint};

#[path = "../../otlp-transport-http/tests/support/certs.rs"]
#[allow(dead_code, unreachable_pub)]
mod certs;

use certs::TestPki;

/// Dials `addr` and runs a TLS handshake for `localhost` with `config`, whatever URI
/// tonic asks for.
#[derive(Clone)]
struct RustlsConnector {
    addr: SocketAddr,
    config: Arc<ClientConfig>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<http::Uri> for RustlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let tcp = TcpStream::connect(this.addr).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from("localhost")?;
            let tls = TlsConnector::from(this.config).connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

/// A tonic channel over TLS. The URI says `http` because the connector does the TLS:
/// tonic's own `https` handling is not compiled in.
async fn tls_channel(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint =
        Endpoint::from_shared(format!("http://localhost:{}", addr.port())).expect("endpoint");
    bounded(
        "TLS connect",
        endpoint.connect_with_connector(RustlsConnector { addr, config }),
    )
    .await
}

fn server_tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::new(
        PemSource::memory(pki.server_cert_pem.clone()),
        PemSource::memory(pki.server_key_pem.clone()),
    )
}

#[tokio::test]
async fn tls_serves_grpc_over_alpn_h2() {
    let pki = TestPki::new();
    let sink = TestSink::new();
    let receiver = start(
        GrpcReceiverConfig::builder().tls(server_tls(&pki)),
        sink.clone(),
    )
    .await;
    let addr = receiver.local_addr();

    let channel = tls_channel(addr, pki.client_config(&[b"h2"], false))
        .await
        .expect("TLS connect");
    let sent = request(Signal::Traces, 4);
    Client::over(channel)
        .export(Signal::Traces, sent.clone())
        .await
        .expect("OK over TLS");
    assert_eq!(sink.payloads()[0].body(), &sent);

    // gRPC needs HTTP/2: a client offering only http/1.1 fails the handshake instead of
    // speaking HTTP/1.1 to an HTTP/2-only server.
    let http1_only = tls_channel(addr, pki.client_config(&[b"http/1.1"], false)).await;
    assert!(http1_only.is_err(), "ALPN http/1.1 must be refused");

    // Plain h2c to the TLS port fails.
    let plaintext = Client::over(
        Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    )
    .export(Signal::Traces, sent)
    .await;
    assert!(plaintext.is_err(), "plaintext to a TLS port: {plaintext:?}");
    assert_eq!(sink.len(), 1);
    assert!(
        receiver
            .listener_metrics()
            .snapshot()
            .connections
            .tls_handshake_failures
            >= 2
    );
}

#[tokio::test]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = TestPki::new();
    let sink = TestSink::new();
    let tls = server_tls(&pki).with_client_ca(PemSource::memory(pki.ca_pem.clone()));
    let receiver = start(GrpcReceiverConfig::builder().tls(tls), sink.clone()).await;
    let addr = receiver.local_addr();

    let channel = tls_channel(addr, pki.client_config(&[b"h2"], true))
        .await
        .expect("mTLS connect");
    Client::over(channel)
        .export(Signal::Logs, request(Signal::Logs, 2))
        .await
        .expect("OK with a client certificate");

    // Without a certificate: TLS 1.3 clients learn of the refusal on their first read,
    // so the failure shows on the connect or on the call.
    let refused = match tls_channel(addr, pki.client_config(&[b"h2"], false)).await {
        Err(_) => true,
        Ok(channel) => Client::over(channel)
            .export(Signal::Logs, request(Signal::Logs, 2))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must not be served");
    assert_eq!(sink.len(), 1);
    assert!(
        receiver
            .listener_metrics()
            .snapshot()
            .connections
            .tls_handshake_failures
            >= 1
    );
}
