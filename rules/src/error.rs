//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// Why the files could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing an output file (or creating the output directory) failed.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Serialising YAML failed.
    #[error("cannot write YAML: {0}")]
    Yaml(#[from] serde_norway::Error),
    /// Serialising JSON failed.
    #[error("cannot write JSON: {0}")]
    Json(#[from] serde_json::Error),
}
