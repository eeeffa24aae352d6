//! rustls configurations from [`TlsFiles`]: a verifying one presenting the client certificate
//! (`/metrics` and `/health` over https), and a reading one that accepts any server
//! certificate ([`crate::ServedChainReader`]): it only reads the certificate's dates and sends
//! nothing, and an expired certificate, the one most worth reporting, would fail verification.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

use crate::{Error, TlsFiles};

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

/// The bytes of a PEM file, for etcd-client's TLS options.
pub fn read_pem(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::file(path, e))
}

fn identity_of(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Error::pem(cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::pem(cert, e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| Error::pem(key, e))?;
    Ok((chain, key_der))
}

/// A verifying client configuration presenting the client certificate.
pub fn verified_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, Error> {
    verified_config_parts(Some(&files.ca), Some((&files.cert, &files.key))).map(Arc::new)
}

/// A verifying client configuration from loose parts: trusting `ca` (nothing without it),
/// presenting `identity` (certificate, key) when given.
pub fn verified_config_parts(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
) -> Result<ClientConfig, Error> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = ca {
        for cert in CertificateDer::pem_file_iter(ca).map_err(|e| Error::pem(ca, e))? {
            roots
                .add(cert.map_err(|e| Error::pem(ca, e))?)
                .map_err(|source| Error::TlsCa {
                    path: ca.to_path_buf(),
                    source,
                })?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_root_certificates(roots);
    match identity {
        Some((cert, key)) => {
            let (chain, key) = identity_of(cert, key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(Error::Tls)
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// A configuration that accepts any server certificate, to read it; presents the client
/// certificate when given, since members require one.
pub fn reading_config(files: Option<&TlsFiles>) -> Result<Arc<ClientConfig>, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())));
    let config = match files {
        Some(f) => {
            let (chain, key) = identity_of(&f.cert, &f.key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(Error::Tls)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Accepts any certificate (signatures are still checked, so the handshake is sound).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `host` and `port` of an `http(s)://host:port` URL, and whether it is https.
pub fn split_url(url: &str) -> Result<(bool, String, u16), Error> {
    let bad = || Error::BadEndpoint(url.to_string());
    let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(bad());
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((https, host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_scheme_host_and_port() {
        assert_eq!(
            split_url("https://127.0.0.5:2379").expect("url"),
            (true, "127.0.0.5".to_string(), 2379)
        );
        assert_eq!(
            split_url("http://[::1]:2379/").expect("url"),
            (false, "::1".to_string(), 2379)
        );
        assert!(split_url("127.0.0.1:2379").is_err());
    }
}
