//! A directory as a store: objects are files under their keys; an upload writes a hidden
//! temporary file beside its key and renames it into place when it completes, so a crash
//! leaves at most a `.upload-*` file, which [`ObjectStore::pending_uploads`] lists.
//!
//! A backup holds every key, secrets included: objects are written 0600 and the directories
//! the store creates 0700, as etcd writes its snapshots (existing directories keep their mode).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWriteExt};

use super::object_store::{ObjectStore, Upload};
use crate::Error;

const UPLOAD_MARK: &str = ".upload-";
/// Objects: the owner's only.
const OBJECT_MODE: u32 = 0o600;
/// Directories the store creates.
const DIR_MODE: u32 = 0o700;

/// Objects as files below a directory.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// A store rooted at `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    async fn file_upload(&self, key: &str) -> Result<FileUpload, Error> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = self.path(key);
        parent_dir(&path).await?;
        let id = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let temp = temp_path(&path, &id);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(OBJECT_MODE)
            .open(&temp)
            .await
            .map_err(|e| Error::file(&temp, e))?;
        Ok(FileUpload { temp, path, file })
    }
}

async fn parent_dir(path: &Path) -> Result<(), Error> {
    if let Some(parent) = path.parent() {
        tokio::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(parent)
            .await
            .map_err(|e| Error::file(parent, e))?;
    }
    Ok(())
}

fn temp_path(path: &Path, id: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{UPLOAD_MARK}{id}-{name}"))
}

struct FileUpload {
    temp: PathBuf,
    path: PathBuf,
    file: tokio::fs::File,
}

impl FileUpload {
    fn temp_path(&self) -> &Path {
        &self.temp
    }

    async fn sync(&mut self) -> Result<(), Error> {
        self.file
            .sync_all()
            .await
            .map_err(|e| Error::file(&self.temp, e))
    }
}

#[async_trait]
impl Upload for FileUpload {
    async fn part(&mut self, data: Bytes) -> Result<(), Error> {
        self.file
            .write_all(&data)
            .await
            .map_err(|e| Error::file(&self.temp, e))
    }

    async fn complete(mut self: Box<Self>) -> Result<(), Error> {
        self.file
            .sync_all()
            .await
            .map_err(|e| Error::file(&self.temp, e))?;
        tokio::fs::rename(&self.temp, &self.path)
            .await
            .map_err(|e| Error::file(&self.path, e))
    }

    async fn abort(self: Box<Self>) -> Result<(), Error> {
        drop(self.file);
        match tokio::fs::remove_file(&self.temp).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::file(&self.temp, e)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for FileStore {
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, Error> {
        Ok(Box::new(self.file_upload(key).await?))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), Error> {
        let mut upload = self.start_upload(key).await?;
        upload.part(data).await?;
        upload.complete().await
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> Result<bool, Error> {
        // Written whole beside the key, then hard-linked into place: the link fails when the
        // key exists, and a reader never sees a half-written object.
        let path = self.path(key);
        let mut upload = self.file_upload(key).await?;
        upload.part(data).await?;
        let temp = upload.temp_path().to_path_buf();
        upload.sync().await?;
        let linked = tokio::fs::hard_link(&temp, &path).await;
        let _ = tokio::fs::remove_file(&temp).await;
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::file(&path, e)),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(data) => Ok(Some(data.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::file(&path, e)),
        }
    }

    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
        let path = self.path(key);
        let f = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::file(&path, e))?;
        Ok(Box::new(f))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let all = walk(&self.dir).await?;
        Ok(all
            .into_iter()
            .filter(|k| k.starts_with(prefix) && !is_upload(k))
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::file(&path, e)),
            _ => {
                // Empty backup directories go with their last object.
                if let Some(parent) = path.parent() {
                    let _ = tokio::fs::remove_dir(parent).await;
                }
                Ok(())
            }
        }
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        let all = walk(&self.dir).await?;
        Ok(all
            .into_iter()
            .filter(|k| k.starts_with(prefix) && is_upload(k))
            .map(|k| (upload_target(&k), k))
            .collect())
    }

    /// The upload's ID is its temporary file's key.
    async fn abort_upload(&self, _key: &str, upload_id: &str) -> Result<(), Error> {
        if !is_upload(upload_id) {
            return Ok(());
        }
        self.delete(upload_id).await
    }
}

/// The key an upload's temporary file (`dir/.upload-PID-N-name`) becomes (`dir/name`).
fn upload_target(upload: &str) -> String {
    let (dir, file) = upload
        .rsplit_once('/')
        .map_or(("", upload), |(d, f)| (d, f));
    let name = file
        .strip_prefix(UPLOAD_MARK)
        .and_then(|rest| rest.splitn(3, '-').nth(2))
        .unwrap_or(file);
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn is_upload(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|n| n.starts_with(UPLOAD_MARK))
}

/// Every file below `root`, as `/`-separated keys relative to it.
async fn walk(root: &Path) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::file(&dir, e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Error::file(&dir, e))?
        {
            let path = entry.path();
            let kind = entry.file_type().await.map_err(|e| Error::file(&path, e))?;
            if kind.is_dir() {
                dirs.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                keys.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    /// Backups were 0644 in 0755 directories: anyone on the host could read every key.
    #[tokio::test]
    async fn objects_are_the_owners_only_whichever_way_they_are_written() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(root.path().join("store"));
        store
            .put("main/a/manifest.json", Bytes::from_static(b"{}"))
            .await
            .expect("put");
        assert!(store
            .put_if_absent("main/lock", Bytes::from_static(b"l"))
            .await
            .expect("put_if_absent"));
        let mut upload = store
            .start_upload("main/b/snapshot.db.zst")
            .await
            .expect("upload");
        upload
            .part(Bytes::from_static(b"data"))
            .await
            .expect("part");
        upload.complete().await.expect("complete");
        for file in [
            "main/a/manifest.json",
            "main/lock",
            "main/b/snapshot.db.zst",
        ] {
            assert_eq!(mode(&root.path().join("store").join(file)), 0o600, "{file}");
        }
        for dir in ["store", "store/main", "store/main/a", "store/main/b"] {
            assert_eq!(mode(&root.path().join(dir)), 0o700, "{dir}");
        }
    }
}
