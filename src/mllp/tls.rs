//! TLS for the MLLP listener: the server's certificate and key, and when a
//! client CA is given, a client certificate it signed is required of every
//! connection. A feed may further pin the fingerprints of the certificates
//! its messages must come with (see `Hl7v2Mapping::client_certificates`).

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// Where the listener's TLS material is.
#[derive(Debug, Clone)]
pub struct MllpTls {
    /// PEM: the server's certificate, then its chain.
    pub certificate: PathBuf,
    /// PEM: the server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: the CAs whose client certificates are accepted; none asked for
    /// when unset.
    pub client_ca: Option<PathBuf>,
}

fn certificates(path: &PathBuf) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} holds a malformed certificate", path.display()))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "{} holds no PEM certificate",
        path.display()
    );
    Ok(certificates)
}

/// The acceptor for `tls`; an unreadable or mismatched file stops the
/// start with its path named.
pub fn acceptor(tls: &MllpTls) -> anyhow::Result<TlsAcceptor> {
    let chain = certificates(&tls.certificate)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .with_context(|| format!("{} holds no usable private key", tls.key.display()))?;
    let provider = Arc::new(provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("no TLS protocol version to offer")?;
    let builder = match &tls.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(path)? {
                roots
                    .add(certificate)
                    .with_context(|| format!("{} holds an unusable CA", path.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .context("cannot verify client certificates with the client CA")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .context("the MLLP certificate and key do not go together")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The cryptography: ring, which builds with the C compiler every machine
/// here has, where aws-lc-rs would add CMake-sized build work. rustls marks
/// ring's provider deprecated for lacking post-quantum key exchange, which
/// an MLLP link inside a hospital's network can do without for now.
#[allow(deprecated)]
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A certificate's SHA-256 fingerprint in lower-case hexadecimal, as feeds
/// pin it (and as `openssl x509 -fingerprint -sha256` prints it, colons
/// aside).
pub fn fingerprint(certificate: &[u8]) -> String {
    Sha256::digest(certificate)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
