//! TLS for the connections the inspector opens itself (the etcd client has its own): reading
//! `/metrics` on an https client port with the inspector's certificate, and reading the
//! certificates a member serves ([`ServedChainReader`], also used by `cairn certs status`). The latter accepts any certificate on purpose: it only reads
//! the certificate's dates and sends nothing, and an expired certificate, the one most worth
//! reporting, would fail verification.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::Error;

/// The CA to trust and the client certificate to present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate (PEM), the inspector's.
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(crypto::ring::default_provider())
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::TlsFile {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

fn identity(
    files: &TlsFiles,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| io_error(&files.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error(&files.cert, e))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| io_error(&files.key, e))?;
    Ok((chain, key))
}

/// A verifying client configuration presenting the client certificate.
pub fn verified_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca).map_err(|e| io_error(&files.ca, e))? {
        roots
            .add(cert.map_err(|e| io_error(&files.ca, e))?)
            .map_err(|e| io_error(&files.ca, e))?;
    }
    let (chain, key) = identity(files)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// A configuration that accepts any server certificate, to read it; presents the client
/// certificate when given, since members require one.
pub fn reading_config(files: Option<&TlsFiles>) -> Result<Arc<ClientConfig>, Error> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())));
    let config = match files {
        Some(f) => {
            let (chain, key) = identity(f)?;
            builder.with_client_auth_cert(chain, key)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Reads the certificate chain a TLS port presents (a member's client or peer port), through
/// [`reading_config`]: shared by the inspector's certificate check and `cairn certs status`.
#[derive(Clone, Debug)]
pub struct ServedChainReader {
    config: Arc<ClientConfig>,
    timeout: Duration,
}

impl ServedChainReader {
    /// A reader presenting `files`' client certificate when given (members require one);
    /// connecting and the handshake are each given up after `timeout`.
    pub fn new(files: Option<&TlsFiles>, timeout: Duration) -> Result<Self, Error> {
        Ok(Self {
            config: reading_config(files)?,
            timeout,
        })
    }

    /// The chain presented on `url` (`https://host:port`), leaf first, as DER.
    pub async fn chain(&self, url: &str) -> Result<Vec<Vec<u8>>, Error> {
        let connect_error = |source| Error::Connect {
            endpoint: url.to_string(),
            source,
        };
        let (_, host, port) = split_url(url)?;
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        let name = ServerName::try_from(host)
            .map_err(|e| connect_error(std::io::Error::other(e.to_string())))?;
        let handshake = TlsConnector::from(self.config.clone()).connect(name, stream);
        let tls = tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| connect_error(std::io::ErrorKind::TimedOut.into()))?
            .map_err(connect_error)?;
        Ok(tls
            .get_ref()
            .1
            .peer_certificates()
            .unwrap_or_default()
            .iter()
            .map(|c| c.to_vec())
            .collect())
    }
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
