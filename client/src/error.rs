//! The crate's one error type.
//!
//! The rule for every message in this file: it says what failed, where (member, URL or file)
//! and what to do; the cause is the `#[source]`, never also interpolated into the message, so
//! a printed chain names each cause once.

use std::path::PathBuf;
use std::time::Duration;

/// Why a member could not be reached or its answer used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TLS file (CA, client certificate or key) could not be read or is not PEM.
    #[error("{}: cannot use it for TLS (run `cairn provision` to issue the client certificates, or give --cacert/--cert/--key)", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS client could not be set up from files that were read.
    #[error("cannot set up TLS with the given CA and client certificate")]
    Tls(#[source] tokio_rustls::rustls::Error),
    /// An endpoint is not `http(s)://host:port`.
    #[error("{0}: not a client URL; write it as http://host:port or https://host:port")]
    BadEndpoint(String),
    /// A member's API answered with an error or could not be reached.
    #[error("{endpoint}: the request failed (check that the member runs and that the endpoint and client certificate are right)")]
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
    /// A file error with its path.
    pub(crate) fn tls_file(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::TlsFile {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        }
    }
}
