//! The bench crate's one error type.

use std::path::PathBuf;

/// What can go wrong while checking or loading a target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the check needs could not be used.
    #[error("{}: {source} (the directory must exist and be writable)", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A check was asked to do nothing.
    #[error("nothing to measure: the size must be at least one block of {block_size} bytes")]
    NothingToMeasure {
        /// The block size asked for.
        block_size: usize,
    },
}
