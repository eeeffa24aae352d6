//! The crate's one error type.
//!
//! The rule for every message in this file: it says what failed, where (member, URL or file)
//! and what to do; the cause is the `#[source]`, never also interpolated into the message, so
//! a printed chain names each cause once.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a member could not be reached or its answer used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TLS file (CA, client certificate or key) does not exist.
    #[error("{}: no such file; `cairn provision` (`cairn up` on a local inventory) issues the cluster's certificates: run it first, or name certificate files that exist", path.display())]
    TlsFileMissing {
        /// The file.
        path: PathBuf,
    },
    /// A TLS file (CA, client certificate or key) could not be read.
    #[error("{}: cannot read it (check its permissions, or give --cacert/--cert/--key)", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file holds no usable PEM certificate or key.
    #[error("{}: not a PEM certificate or key (reissue it with `cairn certs rotate`, or give --cacert/--cert/--key)", path.display())]
    TlsPem {
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// A CA file's certificate cannot be trusted as a root.
    #[error("{}: its certificate cannot serve as a CA", path.display())]
    TlsCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    /// A TLS client could not be set up from files that were read.
    #[error("cannot set up TLS with the given CA and client certificate")]
    Tls(#[source] tokio_rustls::rustls::Error),
    /// An endpoint is not `http(s)://host:port`.
    #[error("{0}: not a client URL; write it as http://host:port or https://host:port")]
    BadEndpoint(String),
    /// A member could not be connected to.
    #[error("cannot reach {endpoint} (is the member running, and is the endpoint right?)")]
    Unreachable {
        /// The member's client URL.
        endpoint: String,
        /// The connection's failure.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake with a member failed: the CA, the client certificate or the
    /// address does not fit the member's certificate.
    #[error("{endpoint}: the TLS handshake failed; {}", tls_hint(source))]
    TlsHandshake {
        /// The member's client URL.
        endpoint: String,
        /// rustls' reason.
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    /// A member's API answered with an error.
    #[error("{endpoint}: the request failed")]
    Etcd {
        /// The member's client URL.
        endpoint: String,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// A member did not answer in time.
    #[error(
        "{endpoint}: no answer to {what} within {after:?} (is the member overloaded or cut off?)"
    )]
    Timeout {
        /// The member's client URL.
        endpoint: String,
        /// The request.
        what: &'static str,
        /// How long it was waited for.
        after: Duration,
    },
    /// No endpoint answered a status request naming itself the leader.
    #[error("no member of {endpoints} says it leads (is the cluster up and has it a quorum?)")]
    NoLeader {
        /// The endpoints asked.
        endpoints: String,
    },
    /// None of the endpoints could be reached.
    #[error("none of {endpoints} answered (check that the members run and that the endpoints and client certificate are right)")]
    NoMember {
        /// The endpoints tried.
        endpoints: String,
        /// The last member's error.
        #[source]
        source: Box<Error>,
    },
    /// An HTTP request (`/metrics`, `/health`) failed.
    #[error("{url}: the HTTP request failed")]
    Http {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP request was answered with a status other than 200.
    #[error("{url}: answered HTTP {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A `/metrics` answer is not Prometheus text.
    #[error("{url}: not Prometheus text")]
    MetricsText {
        /// The URL.
        url: String,
        /// The parser's complaint.
        #[source]
        source: std::io::Error,
    },
    /// A TCP or TLS connection (to read a served certificate) failed.
    #[error("{endpoint}: cannot connect")]
    Connect {
        /// The URL.
        endpoint: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A request's failure at `endpoint`: [`Error::Unreachable`] when it never got a
    /// connection (the cause a user can act on is then the socket's error, buried under
    /// gRPC's and the transport's wrappers), else [`Error::Etcd`].
    pub fn from_etcd(endpoint: impl Into<String>, source: etcd_client::Error) -> Self {
        let endpoint = endpoint.into();
        // etcd-client's error names no source: its variants are unpacked here.
        let io = match &source {
            etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Unavailable => {
                io_cause(s)
            }
            etcd_client::Error::TransportError(t) => io_cause(t),
            etcd_client::Error::IoError(e) => Some(e),
            _ => None,
        };
        if let Some(tls) = io.and_then(tls_cause) {
            return Self::TlsHandshake {
                endpoint,
                source: tls,
            };
        }
        if let Some(io) = io {
            let io = match io.raw_os_error() {
                Some(code) => std::io::Error::from_raw_os_error(code),
                None => std::io::Error::from(io.kind()),
            };
            return Self::Unreachable {
                endpoint,
                source: io,
            };
        }
        Self::Etcd { endpoint, source }
    }

    /// A PEM file's failure with its path.
    pub(crate) fn pem(path: &Path, e: rustls_pki_types::pem::Error) -> Self {
        match e {
            rustls_pki_types::pem::Error::Io(e) => Self::file(path, e),
            e => Self::TlsPem {
                path: path.to_path_buf(),
                source: e,
            },
        }
    }

    /// A TLS file's read failure with its path.
    pub(crate) fn file(path: &Path, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Self::TlsFileMissing {
                path: path.to_path_buf(),
            }
        } else {
            Self::TlsFile {
                path: path.to_path_buf(),
                source: e,
            }
        }
    }
}

/// An error and its causes on one line, each once: `what: cause: cause` (the way every cairn
/// tool shows an error it reports rather than returns).
pub fn chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// What to do about a failed handshake, by rustls' reason.
fn tls_hint(e: &tokio_rustls::rustls::Error) -> &'static str {
    use tokio_rustls::rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            "the member's certificate is not signed by a CA this client trusts: give the cluster's CA with --cacert (ca.pem in the inventory's [tls] dir)"
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the member's certificate does not name this address: use an address it was issued for, or add it to [tls] extra_sans and run cairn certs rotate"
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the member's certificate has expired: renew it with cairn certs rotate"
        }
        E::AlertReceived(A::CertificateRequired | A::HandshakeFailure) => {
            "the member wants a client certificate: give --cert and --key (admin.pem and admin-key.pem in the inventory's [tls] dir)"
        }
        E::AlertReceived(A::BadCertificate | A::UnknownCA | A::CertificateUnknown) => {
            "the member refuses this client certificate: give one issued by the cluster's CA with --cert and --key"
        }
        _ => "check that --cacert is the cluster's CA and that --cert/--key are issued by it",
    }
}

/// The TLS error behind an I/O error, as rustls' stream reports it.
fn tls_cause(io: &std::io::Error) -> Option<tokio_rustls::rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = io.get_ref().map(|e| e as _);
    while let Some(c) = cause {
        if let Some(tls) = c.downcast_ref::<tokio_rustls::rustls::Error>() {
            return Some(tls.clone());
        }
        cause = c.source();
    }
    None
}

/// The first I/O error in `e`'s chain of causes.
fn io_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_unreachable_with_the_socket_error_as_cause() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = Error::from_etcd("http://127.0.0.1:1", etcd_client::Error::IoError(refused));
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "cannot reach http://127.0.0.1:1 (is the member running, and is the endpoint right?)"
        );
    }

    #[test]
    fn a_certificate_from_an_unknown_ca_says_to_give_the_ca() {
        use tokio_rustls::rustls::{CertificateError, Error as Tls};
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            Tls::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let e = Error::from_etcd("https://127.0.0.1:1", etcd_client::Error::IoError(io));
        assert!(matches!(e, Error::TlsHandshake { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "https://127.0.0.1:1: the TLS handshake failed; the member's certificate is not signed by a CA this client trusts: give the cluster's CA with --cacert (ca.pem in the inventory's [tls] dir)"
        );
    }

    #[test]
    fn an_answered_error_stays_the_members() {
        let status = tonic::Status::invalid_argument("etcdserver: key is not provided");
        let e = Error::from_etcd("http://127.0.0.1:1", etcd_client::Error::GRpcStatus(status));
        assert!(matches!(e, Error::Etcd { .. }), "{e:?}");
    }

    #[test]
    fn a_missing_file_says_where_the_certificates_come_from() {
        let e = Error::file(
            Path::new("/pki/ca.pem"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(
            e.to_string()
                .contains("`cairn provision` (`cairn up` on a local inventory) issues"),
            "{e}"
        );
    }
}
