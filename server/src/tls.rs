//! Client TLS from etcd's flags: `--cert-file`/`--key-file` for https listeners, and with
//! `--client-cert-auth` client certificates must chain to `--trusted-ca-file`.
//!
//! The handshake is done here rather than by tonic because the client port carries HTTP/1.1
//! as well as gRPC: tonic's TLS offers only `h2` in ALPN, which makes TLS clients that ask for
//! `http/1.1` alone (Prometheus with HTTP/2 off, many health checkers) fail the handshake.
//! Offering both, `h2` first, keeps gRPC on HTTP/2 and lets those clients in, as etcd does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::Config;
use crate::Error;

/// How long accepting pauses after it failed (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Client TLS handshakes in progress at most.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path) -> impl FnOnce(rustls_pki_types::pem::Error) -> Error + '_ {
    move |source| Error::Pem {
        path: path.to_path_buf(),
        source,
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(path))
}

/// The TLS setup of the client listeners, if certificates are configured.
pub fn client_tls(config: &Config) -> Result<Option<TlsAcceptor>, Error> {
    let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) else {
        return Ok(None);
    };
    acceptor(
        cert,
        key,
        config.trusted_ca_file.as_deref(),
        config.client_cert_auth,
    )
    .map(Some)
}

/// The TLS setup of the peer listeners (`--peer-cert-file`, `--peer-key-file`, and with
/// `--peer-client-cert-auth` peers must present a certificate from `--peer-trusted-ca-file`).
pub fn peer_tls(config: &Config) -> Result<Option<TlsAcceptor>, Error> {
    let (Some(cert), Some(key)) = (&config.peer_cert_file, &config.peer_key_file) else {
        return Ok(None);
    };
    acceptor(
        cert,
        key,
        config.peer_trusted_ca_file.as_deref(),
        config.peer_client_cert_auth,
    )
    .map(Some)
}

/// How this member dials its peers over TLS: the peer CA to trust and the peer certificate to
/// present (etcd uses the same certificate as client and server towards peers).
pub fn peer_client_tls(
    config: &Config,
) -> Result<Option<tonic::transport::ClientTlsConfig>, Error> {
    let (Some(cert), Some(key)) = (&config.peer_cert_file, &config.peer_key_file) else {
        return Ok(None);
    };
    let mut tls = tonic::transport::ClientTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(read(cert)?, read(key)?),
    );
    if let Some(ca) = &config.peer_trusted_ca_file {
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
    }
    Ok(Some(tls))
}

fn acceptor(
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
    client_auth: bool,
) -> Result<TlsAcceptor, Error> {
    // ring, named: with other crates of the build enabling rustls' aws-lc-rs backend too,
    // rustls cannot pick a process-wide default and would panic.
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(certificates(ca)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider);
            let verifier = if client_auth {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(pem_error(key))?;
    let mut tls = builder.with_single_cert(certificates(cert)?, key)?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

/// Connections accepted on `listener` after their TLS handshake, for tonic to serve. Each
/// handshake runs on its own task, so a slow client holds up no one; failed ones are logged
/// and dropped. Accepting stops once the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    // At most this many handshakes at once: a flood of idle connections cannot pile up tasks.
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: retrying at once would spin, so
                    // give closing connections a moment, as servers commonly do.
                    tracing::warn!(error = %e, "accepting a client connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let Ok(permit) = handshakes.clone().acquire_owned().await else {
                return;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                let _permit = permit;
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(rx)
}
