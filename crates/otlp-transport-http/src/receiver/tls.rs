//! TLS and mutual TLS for the receiver: rustls with the ring provider, PEM from files or
//! memory.
//!
//! The server offers ALPN `h2` and `http/1.1`, so TLS clients can use either. With a
//! client CA configured every client must present a certificate that chains to it
//! (mutual TLS); a client without one fails the handshake.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// Where a PEM document comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// Read from this file when the configuration is built.
    File(PathBuf),
    /// These PEM bytes.
    Memory(Vec<u8>),
}

impl PemSource {
    /// A PEM file.
    pub fn file(path: impl Into<PathBuf>) -> PemSource {
        PemSource::File(path.into())
    }

    /// PEM text held in memory.
    pub fn memory(pem: impl Into<Vec<u8>>) -> PemSource {
        PemSource::Memory(pem.into())
    }

    fn read(&self, what: &'static str) -> Result<Vec<u8>, TlsError> {
        match self {
            PemSource::File(path) => std::fs::read(path).map_err(|source| TlsError::Read {
                what,
                path: path.clone(),
                source,
            }),
            PemSource::Memory(bytes) => Ok(bytes.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            PemSource::File(path) => path.display().to_string(),
            PemSource::Memory(_) => "PEM in memory".to_owned(),
        }
    }
}

impl fmt::Debug for PemSource {
    /// Never prints PEM contents: a private key may be among them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(path) => f.debug_tuple("File").field(path).finish(),
            PemSource::Memory(bytes) => write!(f, "Memory({} bytes)", bytes.len()),
        }
    }
}

/// The receiver's TLS settings: a certificate chain and its private key, and optionally
/// the CA that client certificates must chain to (mutual TLS).
///
/// ```
/// use otlp_transport_http::receiver::{PemSource, TlsConfig};
///
/// let tls = TlsConfig::new(PemSource::file("/etc/otlp/tls.crt"), PemSource::file("/etc/otlp/tls.key"))
///     .with_client_ca(PemSource::file("/etc/otlp/clients-ca.crt"));
/// assert!(tls.requires_client_certificate());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    cert_chain: PemSource,
    private_key: PemSource,
    client_ca: Option<PemSource>,
}

impl TlsConfig {
    /// TLS with this certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or
    /// SEC1), both PEM.
    pub fn new(cert_chain: PemSource, private_key: PemSource) -> TlsConfig {
        TlsConfig {
            cert_chain,
            private_key,
            client_ca: None,
        }
    }

    /// Require client certificates that chain to one of the CA certificates in `ca`
    /// (PEM, one or more certificates): mutual TLS.
    #[must_use]
    pub fn with_client_ca(mut self, ca: PemSource) -> TlsConfig {
        self.client_ca = Some(ca);
        self
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificate(&self) -> bool {
        self.client_ca.is_some()
    }

    /// Load the PEM documents and build the rustls configuration (ring provider, TLS 1.2
    /// and 1.3, ALPN `h2` and `http/1.1`).
    ///
    /// # Errors
    ///
    /// [`TlsError`] naming the file or document that is missing or wrong.
    pub fn build(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let certs = parse_certs(
            &self.cert_chain.read("certificate chain")?,
            "certificate chain",
            &self.cert_chain,
        )?;
        let key_pem = self.private_key.read("private key")?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .map_err(|source| TlsError::Pem {
                what: "private key",
                from: self.private_key.describe(),
                source,
            })?
            .ok_or_else(|| TlsError::NoPrivateKey {
                from: self.private_key.describe(),
            })?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in parse_certs(&ca.read("client CA")?, "client CA", ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| TlsError::ClientCa(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(TlsError::Rustls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn parse_certs(
    pem: &[u8],
    what: &'static str,
    from: &PemSource,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what,
            from: from.describe(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            what,
            from: from.describe(),
        });
    }
    Ok(certs)
}

/// Why the TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("`tls`: cannot read the {what} from {}: {source}; check the path and its permissions", path.display())]
    Read {
        /// Which document.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A PEM document is malformed.
    #[error("`tls`: the {what} in {from} is not valid PEM: {source}")]
    Pem {
        /// Which document.
        what: &'static str,
        /// Where it came from.
        from: String,
        /// The parse error.
        source: io::Error,
    },
    /// A PEM document holds no certificate.
    #[error(
        "`tls`: no CERTIFICATE block in the {what} ({from}); give a PEM file with `-----BEGIN CERTIFICATE-----`"
    )]
    NoCertificate {
        /// Which document.
        what: &'static str,
        /// Where it came from.
        from: String,
    },
    /// The key document holds no private key.
    #[error("`tls`: no private key in {from}; give a PEM PKCS#8, PKCS#1 (RSA) or SEC1 (EC) key")]
    NoPrivateKey {
        /// Where it came from.
        from: String,
    },
    /// The client CA certificates cannot be used to verify clients.
    #[error(
        "`tls.client_ca`: {0}; give the PEM certificate of the CA that signs client certificates"
    )]
    ClientCa(String),
    /// rustls refused the certificate, key or protocol settings (e.g. the key does not
    /// match the certificate).
    #[error("`tls`: {0}; check that the key belongs to the certificate")]
    Rustls(rustls::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_named() {
        let err = TlsConfig::new(
            PemSource::file("/nonexistent/cert.pem"),
            PemSource::memory(""),
        )
        .build()
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/nonexistent/cert.pem"), "{text}");
        assert!(text.contains("certificate chain"), "{text}");
    }

    #[test]
    fn empty_pem_is_refused() {
        let err = TlsConfig::new(PemSource::memory("hello"), PemSource::memory(""))
            .build()
            .unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
    }

    #[test]
    fn debug_hides_pem() {
        let shown = format!(
            "{:?}",
            PemSource::memory("-----BEGIN PRIVATE KEY-----secret")
        );
        assert!(!shown.contains("secret"), "{shown}");
    }
}
