//! The exporter's rustls client configuration, on the ring provider.
//!
//! reqwest is built with `rustls-no-provider` and handed this configuration
//! (`ClientBuilder::tls_backend_preconfigured`), so no other crypto provider is linked.
//! Server certificates are checked against the configured CA when there is one
//! (`OTEL_EXPORTER_OTLP_CERTIFICATE`), else against the operating system's trust store
//! (`rustls-platform-verifier`, as reqwest does by default).

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{HttpVersion, TlsMaterial};
use super::error::ConfigError;

/// The rustls configuration for `material`, offering the ALPN protocols `version` allows
/// (`HttpVersion::Http2Only` offers `h2` alone, as gRPC needs). Public for the OTLP/gRPC
/// exporter, which shares this TLS setup.
///
/// # Errors
///
/// [`ConfigError::Tls`] naming the setting whose PEM cannot be used.
pub fn client_config(
    material: &TlsMaterial,
    version: HttpVersion,
) -> Result<ClientConfig, ConfigError> {
    let ca_key = material.ca.as_ref().map_or("TLS", |pem| pem.from.as_str());
    let tls_error = |reason: String| ConfigError::Tls {
        key: ca_key.to_owned(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("TLS versions: {e}")))?;
    let builder = match &material.ca {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            let certs = certificates(&pem.bytes).map_err(|e| {
                tls_error(format!("the CA certificate is not valid PEM ({e}); give a PEM file with one or more CERTIFICATE blocks"))
            })?;
            if certs.is_empty() {
                return Err(tls_error(
                    "the CA file holds no CERTIFICATE block; give the PEM of the CA that signed the server's certificate".to_owned(),
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| tls_error(format!("the CA certificate cannot be used ({e})")))?;
            }
            builder.with_root_certificates(roots)
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider).map_err(|e| {
                tls_error(format!(
                    "cannot use the operating system's trust store ({e}); set a CA certificate"
                ))
            })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    };
    let mut config = match &material.client_identity {
        Some((cert_pem, key_pem)) => {
            let tls_error = |reason: String| ConfigError::Tls {
                key: cert_pem.from.clone(),
                reason,
            };
            let chain = certificates(&cert_pem.bytes)
                .map_err(|e| tls_error(format!("the client certificate is not valid PEM ({e})")))?;
            if chain.is_empty() {
                return Err(tls_error(
                    "the client certificate file holds no CERTIFICATE block".to_owned(),
                ));
            }
            let key = private_key(&key_pem.bytes)
                .map_err(|e| tls_error(format!("the client key is not valid PEM ({e})")))?
                .ok_or_else(|| {
                    tls_error(
                        "the client key file holds no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)"
                            .to_owned(),
                    )
                })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                tls_error(format!(
                    "the client certificate and key do not fit together ({e})"
                ))
            })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = match version {
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpVersion::Http1Only => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2Only => vec![b"h2".to_vec()],
    };
    Ok(config)
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, std::io::Error> {
    rustls_pemfile::certs(&mut &pem[..]).collect()
}

fn private_key(pem: &[u8]) -> Result<Option<PrivateKeyDer<'static>>, std::io::Error> {
    rustls_pemfile::private_key(&mut &pem[..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_the_platform_verifier() {
        let config = client_config(&TlsMaterial::default(), HttpVersion::Auto).unwrap();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let config = client_config(&TlsMaterial::default(), HttpVersion::Http1Only).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_pem_is_reported() {
        let material = TlsMaterial {
            ca: Some(super::super::config::Pem {
                bytes: Arc::from(&b"not pem"[..]),
                from: "OTEL_EXPORTER_OTLP_CERTIFICATE".to_owned(),
            }),
            client_identity: None,
        };
        let err = client_config(&material, HttpVersion::Auto).unwrap_err();
        assert!(
            err.to_string().contains("OTEL_EXPORTER_OTLP_CERTIFICATE"),
            "{err}"
        );
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    }
}
