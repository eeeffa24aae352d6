//! The trait every store implements: the one way backups store objects.

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

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
