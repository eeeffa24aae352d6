//! The crate's one error type. Each says which member or file, what failed, and what to do.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::path::PathBuf;

/// Why an inspection, or part of it, could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A member could not be reached, or answered with an error.
    #[error(transparent)]
    Client(#[from] cairn_client::Error),
    /// A watch (for the hot-prefix sample) ended before its window did.
    #[error("{endpoint}: the watch ended early (did the member restart?)")]
    WatchEnded {
        /// The member's client URL.
        endpoint: String,
    },
    /// The state file could not be read.
    #[error("{}: cannot read the inspection state (fix its permissions or point [inspection] state_file elsewhere)", path.display())]
    StateRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state file is not what an earlier inspection wrote.
    #[error("{}: not an inspection state file (delete it; the next run starts growth over)", path.display())]
    StateCorrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The state file could not be written.
    #[error("{}: cannot keep the inspection state (fix its directory's permissions or point [inspection] state_file elsewhere)", path.display())]
    StateWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No member answered at all; the first member's error is the cause.
    #[error("no member answered; check the endpoints, the network and the client certificate")]
    NoMemberAnswers(#[source] Box<Error>),
    /// There was no member to ask.
    #[error("no endpoints given; list the members in the inventory or pass --endpoints")]
    NoEndpoints,
    /// A member served, or the PKI directory holds, something that is not an X.509
    /// certificate.
    #[error("not a certificate")]
    NotACertificate(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// The local PKI directory could not be listed.
    #[error("{}: cannot read the PKI directory", path.display())]
    PkiDir {
        /// `[tls] dir`.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file of the local PKI could not be read.
    #[error("{}: cannot read the certificate", path.display())]
    CertificateRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate file of the local PKI is not PEM.
    #[error("not PEM")]
    NotPem(#[source] x509_parser::nom::Err<x509_parser::error::PEMError>),
    /// The backup store could not be listed.
    #[error("the backup store cannot be listed")]
    Catalog(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The metrics server failed.
    #[error("serving the inspection metrics failed")]
    Serve {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A report could not be rendered as JSON.
    #[error("cannot render the report as JSON")]
    Json(#[from] serde_json::Error),
}
