//! The exporter over TLS and mutual TLS (rustls on ring) against the scripted tonic
//! server with rcgen certificates: a private CA, a server certificate for `localhost`
//! and 127.0.0.1, a client certificate. Real time: TLS handshakes run on the same
//! runtime, and nothing here waits on a timer.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use otlp_core::codec::protobuf;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{ExportError, Signal};
use otlp_transport_grpc::exporter::{FailureReason, GrpcExporter, PemSource};
use support::certs::TestPki;
use support::tonic_server::{
    ServerOptions, Step, TonicServer, bounded, fast_retry, server_tls, test_exporter, traces,
};

async fn tls_server(pki: &TestPki, require_client_certificate: bool) -> TonicServer {
    let client_ca = require_client_certificate.then_some(pki.ca_pem.as_str());
    let tls = server_tls(&pki.server_cert_pem, &pki.server_key_pem, client_ca);
    TonicServer::start(
        Vec::new(),
        Step::ok(),
        ServerOptions {
            tls: Some(tls),
            ..ServerOptions::default()
        },
    )
    .await
}

fn ca(pki: &TestPki) -> PemSource {
    PemSource::memory(pki.ca_pem.clone())
}

#[tokio::test]
async fn tls_with_a_custom_ca_verifies_the_host_name() {
    let pki = TestPki::new();
    let server = tls_server(&pki, false).await;
    let port = server.addr().port();
    let exporter = test_exporter(&format!("https://localhost:{port}"))
        .ca_certificate(ca(&pki))
        .build()
        .unwrap();
    let settings = exporter.settings(Signal::Traces);
    assert!(settings.uses_tls() && settings.has_custom_ca());
    let request = traces(4);
    bounded("export", exporter.export_traces(&request))
        .await
        .unwrap();
    let arrival = &server.arrivals()[0];
    // The server name is the configured host, not the address it resolved to.
    assert_eq!(arrival.sni.as_deref(), Some("localhost"));
    assert_eq!(arrival.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(arrival.authority, format!("localhost:{port}"));
    assert!(!arrival.client_certificate);
    let back: ExportTraceServiceRequest = protobuf::decode(&arrival.body).unwrap();
    assert_eq!(back, request);

    // An IP address endpoint is verified against the certificate's IP name.
    let exporter = test_exporter(&format!("https://127.0.0.1:{port}"))
        .ca_certificate(ca(&pki))
        .build()
        .unwrap();
    bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap();
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn a_name_the_certificate_does_not_cover_is_refused_even_at_a_covered_address() {
    let pki = TestPki::new();
    let server = tls_server(&pki, false).await;
    let addr = server.addr();
    // `otlp.example` resolves to 127.0.0.1, which the certificate covers; the name is
    // what must be verified, so the handshake fails.
    let exporter = test_exporter(&format!("https://otlp.example:{}", addr.port()))
        .ca_certificate(ca(&pki))
        .resolver(move |_host: &str, _port: u16| Ok(vec![addr]))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(3)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert_eq!((failure.attempts(), failure.items()), (2, 3));
    assert_eq!(failure.reason(), FailureReason::AttemptsExhausted);
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn an_untrusted_server_is_a_transport_error() {
    let pki = TestPki::new();
    let server = tls_server(&pki, false).await;
    // No CA configured: the operating system's trust store, which does not know ours.
    let exporter = test_exporter(&format!("https://localhost:{}", server.addr().port()))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert!(failure.is_transient());
    assert_eq!(server.count(), 0);

    // A plaintext client against the TLS port gets no answer it can use either.
    let exporter = test_exporter(&format!("http://localhost:{}", server.addr().port()))
        .retry(fast_retry(1))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap_err();
    assert!(failure.is_transient(), "{failure}");
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn mutual_tls() {
    let pki = TestPki::new();
    let server = tls_server(&pki, true).await;
    let url = format!("https://localhost:{}", server.addr().port());
    let exporter = test_exporter(&url)
        .ca_certificate(ca(&pki))
        .client_identity(
            PemSource::memory(pki.client_cert_pem.clone()),
            PemSource::memory(pki.client_key_pem.clone()),
        )
        .build()
        .unwrap();
    assert!(exporter.settings(Signal::Logs).has_client_certificate());
    bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap();
    assert_eq!(server.count(), 1);
    assert!(server.arrivals()[0].client_certificate);

    // Without a client certificate the server refuses the connection.
    let exporter = test_exporter(&url)
        .ca_certificate(ca(&pki))
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let failure = bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{:?}",
        failure.error()
    );
    assert_eq!(failure.items(), 2);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn tls_files_from_the_environment() {
    let pki = TestPki::new();
    let server = tls_server(&pki, true).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    let env = HashMap::from([
        // No scheme: TLS, since OTEL_EXPORTER_OTLP_INSECURE is not true.
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("localhost:{}", server.addr().port()),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            write("ca.pem", &pki.ca_pem),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            write("client.pem", &pki.client_cert_pem),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            write("client-key.pem", &pki.client_key_pem),
        ),
    ]);
    let exporter = GrpcExporter::builder()
        .env(env)
        .retry(fast_retry(2))
        .build()
        .unwrap();
    let settings = exporter.settings(Signal::Metrics);
    assert_eq!(
        settings.endpoint(),
        format!("https://localhost:{}", server.addr().port())
    );
    assert!(settings.has_custom_ca() && settings.has_client_certificate());
    bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap();
    let arrival = &server.arrivals()[0];
    assert!(arrival.client_certificate);
    assert_eq!(arrival.sni.as_deref(), Some("localhost"));
}

#[test]
fn bad_pem_names_the_setting() {
    let err = GrpcExporter::builder()
        .no_env()
        .endpoint("https://localhost:4317")
        .ca_certificate(PemSource::memory("not a certificate"))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("ca_certificate()"), "{err}");
}
