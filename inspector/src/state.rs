//! What one inspection leaves for the next: key counts by prefix and database sizes, so the
//! next run can report growth. Kept in a small JSON file (`[inspection] state_file`) behind
//! a trait, written atomically (temporary file, then rename) so a crash never leaves half a
//! file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The previous run's counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// When that run started, in seconds since the Unix epoch.
    pub inspected_at: u64,
    /// Keys in the whole keyspace.
    pub total_keys: u64,
    /// Keys by prefix.
    pub prefixes: BTreeMap<String, u64>,
    /// Database size by member name.
    pub db_size: BTreeMap<String, u64>,
}

/// Where [`State`] is kept.
pub trait StateStore: Send + Sync {
    /// The previous run's state; `None` on the first run.
    fn load(&self) -> Result<Option<State>, Error>;
    /// Keeps `state` for the next run.
    fn save(&self, state: &State) -> Result<(), Error>;
}

/// A JSON file.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// The state at `path` (created on the first save).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl StateStore for FileStore {
    fn load(&self) -> Result<Option<State>, Error> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::StateRead {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|source| Error::StateCorrupt {
                path: self.path.clone(),
                source,
            })
    }

    fn save(&self, state: &State) -> Result<(), Error> {
        let write = || -> std::io::Result<()> {
            let mut tmp = self.path.clone().into_os_string();
            tmp.push(".tmp");
            let text = serde_json::to_vec_pretty(state).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|source| Error::StateWrite {
            path: self.path.clone(),
            source,
        })
    }
}

/// No state: every run is a first run (for `--endpoints` without `--state`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoStore;

impl StateStore for NoStore {
    fn load(&self) -> Result<Option<State>, Error> {
        Ok(None)
    }
    fn save(&self, _state: &State) -> Result<(), Error> {
        Ok(())
    }
}

/// State in memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryStore(pub std::sync::Mutex<Option<State>>);

impl StateStore for MemoryStore {
    fn load(&self) -> Result<Option<State>, Error> {
        Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
    fn save(&self, state: &State) -> Result<(), Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(state.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_store_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("state.json"));
        assert_eq!(store.load().expect("load"), None);
        let state = State {
            inspected_at: 7,
            total_keys: 3,
            prefixes: [("/a/".to_string(), 3)].into(),
            db_size: [("m1".to_string(), 4096)].into(),
        };
        store.save(&state).expect("save");
        assert_eq!(store.load().expect("load"), Some(state));
    }

    #[test]
    fn a_corrupt_file_names_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{").expect("write");
        let err = FileStore::new(path).load().expect_err("corrupt");
        assert!(err.to_string().contains("state.json"), "{err}");
    }
}
