//! The certificate chain a TLS port presents (a member's client or peer port): read by the
//! inspector's certificate check and `cairn certs status`.

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::tls::{reading_config, split_url};
use crate::{Error, TlsFiles};

/// Reads the certificate chain a TLS port presents (a member's client or peer port), through
/// [`reading_config`].
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
