//! A store in memory, for unit tests of everything above the store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncRead;

use super::object_store::{ObjectStore, Upload};
use crate::Error;

#[derive(Debug, Default)]
struct Inner {
    objects: BTreeMap<String, Bytes>,
    uploads: BTreeMap<(String, String), BytesMut>,
    next_upload: u64,
}

/// Objects in a map; clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore(Arc<Mutex<Inner>>);

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces an object's bytes (tests corrupt backups with it).
    pub fn overwrite(&self, key: &str, data: Bytes) {
        self.inner().objects.insert(key.to_string(), data);
    }
}

struct MemoryUpload {
    store: MemoryStore,
    key: String,
    id: String,
}

#[async_trait]
impl Upload for MemoryUpload {
    async fn part(&mut self, data: Bytes) -> Result<(), Error> {
        let mut inner = self.store.inner();
        if let Some(buf) = inner.uploads.get_mut(&(self.key.clone(), self.id.clone())) {
            buf.extend_from_slice(&data);
        }
        Ok(())
    }

    async fn complete(self: Box<Self>) -> Result<(), Error> {
        let mut inner = self.store.inner();
        let data = inner
            .uploads
            .remove(&(self.key.clone(), self.id.clone()))
            .unwrap_or_default();
        inner.objects.insert(self.key.clone(), data.freeze());
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), Error> {
        self.store
            .inner()
            .uploads
            .remove(&(self.key.clone(), self.id.clone()));
        Ok(())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn start_upload(&self, key: &str) -> Result<Box<dyn Upload>, Error> {
        let mut inner = self.inner();
        inner.next_upload += 1;
        let id = inner.next_upload.to_string();
        inner
            .uploads
            .insert((key.to_string(), id.clone()), BytesMut::new());
        Ok(Box::new(MemoryUpload {
            store: self.clone(),
            key: key.to_string(),
            id,
        }))
    }

    async fn put(&self, key: &str, data: Bytes) -> Result<(), Error> {
        self.inner().objects.insert(key.to_string(), data);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, data: Bytes) -> Result<bool, Error> {
        let mut inner = self.inner();
        if inner.objects.contains_key(key) {
            return Ok(false);
        }
        inner.objects.insert(key.to_string(), data);
        Ok(true)
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, Error> {
        Ok(self.inner().objects.get(key).cloned())
    }

    async fn open(&self, key: &str) -> Result<Box<dyn AsyncRead + Send + Unpin>, Error> {
        let data = self
            .inner()
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        Ok(Box::new(std::io::Cursor::new(data)))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .inner()
            .objects
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.inner().objects.remove(key);
        Ok(())
    }

    async fn pending_uploads(&self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(self
            .inner()
            .uploads
            .keys()
            .filter(|(k, _)| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        self.inner()
            .uploads
            .remove(&(key.to_string(), upload_id.to_string()));
        Ok(())
    }
}
