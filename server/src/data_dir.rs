//! The member's data directory on disk.

use std::path::Path;

use crate::Error;

/// Creates `path` and its parents, private to the member's user (0700), as etcd does.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })
}
