//! The production backend: one sled tree, batches applied atomically, flush = fsync.

use std::path::Path;

use super::backend::{Backend, Entry, WriteBatch};
use crate::Error;

/// sled 0.34 behind the [`Backend`] trait.
#[derive(Clone, Debug)]
pub struct SledBackend {
    db: sled::Db,
}

impl SledBackend {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(256 * 1024 * 1024)
            // Durability comes from our explicit flush after each group of writes.
            .flush_every_ms(None)
            .open()?;
        Ok(Self { db })
    }

    /// A database in a temporary directory that is removed on drop.
    pub fn temporary() -> Result<Self, Error> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()?;
        Ok(Self { db })
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: Option<usize>) -> Result<Vec<Entry>, Error> {
        let mut out = Vec::new();
        for item in self.db.range(start..end) {
            if limit.is_some_and(|n| out.len() >= n) {
                break;
            }
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, Error> {
        Ok(self
            .db
            .range(start..end)
            .next_back()
            .transpose()?
            .map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), Error> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }

    fn size(&self) -> Result<u64, Error> {
        Ok(self.db.size_on_disk()?)
    }
}
