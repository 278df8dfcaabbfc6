//! Optional TLS: a self-signed serving certificate for `localhost` and `127.0.0.1`, whose PEM goes into the
//! kubeconfig as the cluster's certificate authority.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating the key or certificate failed.
    #[error("generating the self-signed certificate failed")]
    Generate(#[source] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("configuring rustls with the generated certificate failed")]
    Config(#[source] rustls::Error),
}

/// A TLS acceptor and the PEM of its certificate (the trust anchor for clients).
pub struct Tls {
    /// Accepts TLS connections (ALPN h2 and http/1.1).
    pub acceptor: TlsAcceptor,
    /// The self-signed certificate, PEM-encoded.
    pub cert_pem: String,
}

/// Generates a certificate valid for `localhost`, `127.0.0.1`, `::1` and `extra_host`.
pub fn self_signed(extra_host: &str) -> Result<Tls, TlsError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !extra_host.is_empty() && !names.iter().any(|n| n == extra_host) {
        names.push(extra_host.to_string());
    }
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names).map_err(TlsError::Generate)?;
    let cert_pem = cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_pem,
    })
}
