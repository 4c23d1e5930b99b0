//! The exporter over TLS (rustls on ring): a custom CA, mutual TLS with a client
//! certificate, ALPN choosing HTTP/2 or HTTP/1.1, certificates from the
//! `OTEL_EXPORTER_OTLP_*` variables, and our own receiver at the other end.

mod exporter_support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use exporter_support::certs::TestPki;
use exporter_support::{
    Collect, ScriptedServer, Step, bounded, fast_retry, logs, metrics, test_exporter, traces,
};
use otlp_core::proto::collector::logs::v1::ExportLogsServiceRequest;
use otlp_core::proto::collector::metrics::v1::ExportMetricsServiceRequest;
use otlp_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use otlp_core::{Compression, ExportError, Signal};
use otlp_transport_http::exporter::{HttpExporter, HttpVersion, PemSource, Protocol};
use otlp_transport_http::receiver::{HttpReceiver, HttpReceiverConfig, Sinks, TlsConfig};

fn server_tls(pki: &TestPki, mutual: bool) -> Arc<rustls::ServerConfig> {
    let mut config = TlsConfig::new(
        PemSource::memory(pki.server_cert_pem.clone()),
        PemSource::memory(pki.server_key_pem.clone()),
    );
    if mutual {
        config = config.with_client_ca(PemSource::memory(pki.ca_pem.clone()));
    }
    config.build().expect("server TLS config")
}

async fn tls_server(pki: &TestPki, mutual: bool) -> ScriptedServer {
    ScriptedServer::start_with(Vec::new(), Step::ok(), Some(server_tls(pki, mutual))).await
}

#[tokio::test]
async fn custom_ca_and_alpn_h2() {
    let pki = TestPki::new();
    let server = tls_server(&pki, false).await;
    let exporter = test_exporter(&server.https_url())
        .ca_certificate(PemSource::memory(pki.ca_pem.clone()))
        .build()
        .unwrap();
    assert!(exporter.settings(Signal::Traces).has_custom_ca());
    bounded("export", exporter.export_traces(&traces(3)))
        .await
        .unwrap();
    bounded("export", exporter.export_logs(&logs(3)))
        .await
        .unwrap();
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 2);
    assert!(
        arrivals.iter().all(|a| a.version == http::Version::HTTP_2),
        "ALPN picks h2 when the server offers it"
    );
    assert_eq!(
        server.connections(),
        1,
        "both signals share one pooled connection"
    );

    let exporter = test_exporter(&server.https_url())
        .ca_certificate(PemSource::memory(pki.ca_pem.clone()))
        .http_version(HttpVersion::Http1Only)
        .build()
        .unwrap();
    bounded("export", exporter.export_traces(&traces(1)))
        .await
        .unwrap();
    assert_eq!(server.arrivals()[2].version, http::Version::HTTP_11);
}

#[tokio::test]
async fn an_untrusted_server_is_refused() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let server = tls_server(&pki, false).await;
    for builder in [
        // The operating system's trust store does not know the test CA.
        test_exporter(&server.https_url()),
        // Nor does another CA.
        test_exporter(&server.https_url()).ca_certificate(PemSource::memory(other.ca_pem.clone())),
    ] {
        let exporter = builder.retry(fast_retry(1)).build().unwrap();
        let failure = bounded("export", exporter.export_traces(&traces(1)))
            .await
            .unwrap_err();
        match failure.error() {
            ExportError::Transport(message) => {
                assert!(message.contains("certificate"), "{message}")
            }
            other => panic!("expected a transport error, got {other:?}"),
        }
    }
    assert_eq!(server.requests(), 0);
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = TestPki::new();
    let server = tls_server(&pki, true).await;
    let without = test_exporter(&server.https_url())
        .ca_certificate(PemSource::memory(pki.ca_pem.clone()))
        .retry(fast_retry(1))
        .build()
        .unwrap();
    let failure = bounded("export", without.export_logs(&logs(1)))
        .await
        .unwrap_err();
    assert!(
        matches!(failure.error(), ExportError::Transport(_)),
        "{failure}"
    );
    assert_eq!(server.requests(), 0);

    let with = test_exporter(&server.https_url())
        .ca_certificate(PemSource::memory(pki.ca_pem.clone()))
        .client_identity(
            PemSource::memory(pki.client_cert_pem.clone()),
            PemSource::memory(pki.client_key_pem.clone()),
        )
        .build()
        .unwrap();
    assert!(with.settings(Signal::Logs).has_client_certificate());
    bounded("export", with.export_logs(&logs(1))).await.unwrap();
    assert_eq!(server.requests(), 1);
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("otlp-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn certificates_from_the_environment() {
    let pki = TestPki::new();
    let server = tls_server(&pki, true).await;
    let dir = TempDir::new("exporter-tls-env");
    let env = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), server.https_url()),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE".to_owned(),
            dir.write("ca.pem", &pki.ca_pem),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE".to_owned(),
            dir.write("client.pem", &pki.client_cert_pem),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY".to_owned(),
            dir.write("client.key", &pki.client_key_pem),
        ),
        // Metrics trust another CA: they must fail, the other signals not.
        (
            "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE".to_owned(),
            dir.write("other-ca.pem", &TestPki::new().ca_pem),
        ),
    ]);
    let exporter = HttpExporter::builder()
        .env(env)
        .retry(fast_retry(1))
        .no_circuit_breaker()
        .build()
        .unwrap();
    bounded("export", exporter.export_traces(&traces(2)))
        .await
        .unwrap();
    bounded("export", exporter.export_logs(&logs(2)))
        .await
        .unwrap();
    bounded("export", exporter.export_metrics(&metrics(1)))
        .await
        .unwrap_err();
    assert_eq!(server.requests(), 2);

    // A certificate file that is not PEM is a configuration error naming the variable.
    let env = HashMap::from([(
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE".to_owned(),
        dir.write("bad.pem", "not a certificate"),
    )]);
    let err = HttpExporter::builder().env(env).build().unwrap_err();
    assert!(
        err.to_string()
            .contains("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"),
        "{err}"
    );
}

#[tokio::test]
async fn all_signals_to_our_receiver_over_mutual_tls() {
    let pki = TestPki::new();
    let sink = Collect::new();
    let config = HttpReceiverConfig::builder()
        .addr("127.0.0.1:0")
        .tls(
            TlsConfig::new(
                PemSource::memory(pki.server_cert_pem.clone()),
                PemSource::memory(pki.server_key_pem.clone()),
            )
            .with_client_ca(PemSource::memory(pki.ca_pem.clone())),
        )
        .build()
        .unwrap();
    let receiver = HttpReceiver::bind(config, Sinks::all(sink.clone()))
        .await
        .unwrap();
    let base = format!("https://{}", receiver.local_addr());
    let identity = |b: otlp_transport_http::exporter::HttpExporterBuilder| {
        b.ca_certificate(PemSource::memory(pki.ca_pem.clone()))
            .client_identity(
                PemSource::memory(pki.client_cert_pem.clone()),
                PemSource::memory(pki.client_key_pem.clone()),
            )
    };
    let (t, m, l) = (traces(50), metrics(5), logs(20));
    for (protocol, compression) in [
        (Protocol::HttpProtobuf, Compression::Gzip),
        (Protocol::HttpJson, Compression::Zstd),
        (Protocol::HttpProtobuf, Compression::None),
    ] {
        let exporter = identity(test_exporter(&base))
            .protocol(protocol)
            .compression(compression)
            .build()
            .unwrap();
        bounded("traces", exporter.export_traces(&t)).await.unwrap();
        bounded("metrics", exporter.export_metrics(&m))
            .await
            .unwrap();
        bounded("logs", exporter.export_logs(&l)).await.unwrap();
    }
    let payloads = sink.payloads();
    assert_eq!(payloads.len(), 9);
    for payload in payloads {
        match payload.signal() {
            Signal::Traces => assert_eq!(payload.decode::<ExportTraceServiceRequest>().unwrap(), t),
            Signal::Metrics => {
                assert_eq!(payload.decode::<ExportMetricsServiceRequest>().unwrap(), m)
            }
            Signal::Logs => assert_eq!(payload.decode::<ExportLogsServiceRequest>().unwrap(), l),
        }
    }
    receiver.shutdown(Duration::from_secs(5)).await.unwrap();
}
