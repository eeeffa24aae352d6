//! The crate's one error type.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::io;
use std::path::PathBuf;

/// Why the files could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing an output file (or creating the output directory) failed.
    #[error("{}: cannot write it", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Serialising YAML failed.
    #[error("cannot write YAML")]
    Yaml(#[from] serde_norway::Error),
    /// Serialising JSON failed.
    #[error("cannot write JSON")]
    Json(#[from] serde_json::Error),
}
