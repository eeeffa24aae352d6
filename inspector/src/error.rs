//! The crate's one error type. Each says which member or file, what failed, and what to do.

use std::path::PathBuf;
use std::time::Duration;

/// Why an inspection, or part of it, could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A member's API answered with an error or could not be reached.
    #[error("{endpoint}: {source} (check that the member runs and that the endpoint and client certificate are right)")]
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
    /// A member's client URL is not `http(s)://host:port`.
    #[error("{0}: not a client URL; write it as http://host:port or https://host:port")]
    BadEndpoint(String),
    /// A TLS file (CA, client certificate or key) could not be read or is not PEM.
    #[error("{}: cannot use it for TLS: {source} (run `cairn provision` to issue the inspector's certificate, or give --cacert/--cert/--key)", path.display())]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS client could not be set up from the given files.
    #[error("cannot set up TLS with the given CA and client certificate: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    /// Connecting to a member over TCP or TLS to read its certificate or metrics failed.
    #[error("{endpoint}: {source}")]
    Connect {
        /// The member's client URL.
        endpoint: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file could not be read.
    #[error("{}: cannot read the inspection state: {source} (fix its permissions or point [inspection] state_file elsewhere)", path.display())]
    StateRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not what an earlier inspection wrote.
    #[error("{}: not an inspection state file: {source} (delete it; the next run starts growth over)", path.display())]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The state file could not be written.
    #[error("{}: cannot keep the inspection state: {source} (fix its directory's permissions or point [inspection] state_file elsewhere)", path.display())]
    StateWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No member answered at all.
    #[error(
        "no member answered ({0}); check the endpoints, the network and the client certificate"
    )]
    NoMemberAnswers(String),
    /// The metrics server failed.
    #[error("serving the inspection metrics failed: {source}")]
    Serve {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be rendered as JSON.
    #[error("cannot render the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}
