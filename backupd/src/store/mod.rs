//! Where backups live, behind one small trait: S3 (and S3-compatible stores), a local
//! directory, and memory for unit tests. Large objects go up in parts so that nothing holds a
//! whole snapshot in memory; small ones (manifests, the lock) in one request.

mod file;
mod memory;
mod s3;

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

pub use file::FileStore;
pub use memory::MemoryStore;
pub use s3::{S3Options, S3Store};

use crate::Error;

/// A bucket-like store of objects under `/`-separated keys.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Starts a multipart upload of `key`; nothing is visible under `key` until it completes.
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, Error>;
    /// Writes a small object at once.
    async fn put(&self, key: &str, data: Bytes) -> Result<(), Error>;
    /// Writes a small object unless `key` exists; whether it was written.
    async fn put_if_absent(&self, key: &str, data: Bytes) -> Result<bool, Error>;
    /// Reads a small object whole; `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, Error>;
    /// Streams an object.
    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error>;
    /// Every key starting with `prefix`, in no particular order.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error>;
    /// Removes an object (no error when it is gone already).
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// Multipart uploads under `prefix` that were neither completed nor aborted, as
    /// `(key, upload id)`: what a crash leaves behind.
    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, Error>;
    /// Aborts an upload [`ObjectStore::pending_uploads`] listed.
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), Error>;
}

/// One multipart upload in progress.
#[async_trait]
pub trait Upload: Send {
    /// Appends a part (every part but the last must be at least 5 MiB on S3).
    async fn part(&mut self, data: Bytes) -> Result<(), Error>;
    /// Makes the object visible.
    async fn complete(self: Box<Self>) -> Result<(), Error>;
    /// Drops the parts sent so far.
    async fn abort(self: Box<Self>) -> Result<(), Error>;
}

/// Where a `[backup] store` URL points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `s3://bucket/prefix`.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix, without leading or trailing `/` (may be empty).
        prefix: String,
    },
    /// `file:///path`.
    File {
        /// The directory.
        dir: std::path::PathBuf,
    },
}

impl StoreUrl {
    /// Parses `s3://bucket/prefix` or `file:///path`.
    pub fn parse(url: &str) -> Result<Self, Error> {
        match url.split_once("://") {
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::StoreUrl(url.to_string()));
                }
                Ok(Self::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.trim_matches('/').to_string(),
                })
            }
            Some(("file", path)) if !path.is_empty() => Ok(Self::File {
                dir: Path::new(path).to_path_buf(),
            }),
            _ => Err(Error::StoreUrl(url.to_string())),
        }
    }
}

/// Opens the store a URL names; S3 settings come from `s3` and the AWS environment.
pub async fn open(url: &str, s3: &S3Options) -> Result<(Box<dyn ObjectStore>, String), Error> {
    match StoreUrl::parse(url)? {
        StoreUrl::S3 { bucket, prefix } => {
            Ok((Box::new(S3Store::connect(bucket, s3).await), prefix))
        }
        StoreUrl::File { dir } => Ok((Box::new(FileStore::new(dir)), String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreUrl::parse("s3://b/x/y/").expect("s3"),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "x/y".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://b").expect("s3"),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///var/b").expect("file"),
            StoreUrl::File {
                dir: "/var/b".into()
            }
        );
        for bad in ["s3:///x", "ftp://x", "/var/b", "file://"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
