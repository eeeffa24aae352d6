//! The crate's one error type.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::io;
use std::path::PathBuf;

/// Why the TLS directory could not be brought to what the inventory needs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file on the operator's machine could not be read.
    #[error("{}: cannot read it", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file or directory on the operator's machine could not be written.
    #[error("{}: cannot write it", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Generating or signing a certificate failed.
    #[error("cannot issue the {name} certificate")]
    Issue {
        /// `ca`, a member name or a client name.
        name: String,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// The operator's CA files (`[tls] ca_cert`, `ca_key`) are not a PEM certificate and key.
    #[error("{} / {}: not a usable CA certificate and key; give PEM files in [tls] ca_cert and ca_key", cert.display(), key.display())]
    OperatorCa {
        /// `ca_cert`.
        cert: PathBuf,
        /// `ca_key`.
        key: PathBuf,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// `[tls] ca_key` is not the key of `ca_cert`.
    #[error("{} is not the key of {}; give the CA's own key in [tls] ca_key", key.display(), cert.display())]
    OperatorCaKeyMismatch {
        /// `ca_cert`.
        cert: PathBuf,
        /// `ca_key`.
        key: PathBuf,
    },
    /// The CA rotation marker in `[tls] dir` names no phase.
    #[error("{}: {found:?} is not a CA rotation phase (trust-both, new-leaves, drop-old); restore the file or, if no rotation was started, remove it", path.display())]
    RotationMarker {
        /// The marker file.
        path: PathBuf,
        /// What it holds.
        found: String,
    },
}
