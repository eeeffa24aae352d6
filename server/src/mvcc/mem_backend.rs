//! A backend in memory, for the unit tests of the logic above storage.

use std::collections::BTreeMap;
use std::ops::Bound;

use parking_lot::RwLock;

use super::backend::{Backend, Entry, WriteBatch};
use crate::Error;

/// A backend in memory, for tests of the logic above storage.
#[derive(Debug, Default)]
pub struct MemBackend {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemBackend {
    /// An empty in-memory backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Backend for MemBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.map.read().get(key).cloned())
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: Option<usize>) -> Result<Vec<Entry>, Error> {
        let map = self.map.read();
        let it = map
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .map(|(k, v)| (k.clone(), v.clone()));
        Ok(match limit {
            Some(n) => it.take(n).collect(),
            None => it.collect(),
        })
    }

    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, Error> {
        let map = self.map.read();
        Ok(map
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .next_back()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn write(&self, batch: WriteBatch) -> Result<(), Error> {
        let mut map = self.map.write();
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }

    fn defragment(&self) -> Result<(), Error> {
        // A BTreeMap holds no freed space: nothing to reclaim.
        Ok(())
    }

    fn size(&self) -> Result<u64, Error> {
        Ok(self
            .map
            .read()
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum())
    }
}
