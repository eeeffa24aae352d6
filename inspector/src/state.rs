//! What one inspection leaves for the next: key counts by prefix and database sizes, so the
//! next run can report growth, and a bounded history of every run's headline figures for the
//! HTML report's trends. Kept in a small JSON file (the inventory's state file, in the user's
//! state directory) behind a trait, written atomically (temporary file, then rename) so a
//! crash never leaves half a file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Status};

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
    /// The last runs' figures, oldest first (at most `[inspection] history`).
    #[serde(default)]
    pub history: Vec<Sample>,
}

/// Prefixes a [`Sample`] keeps: the largest, so a keyspace of many prefixes stays small.
pub const SAMPLE_PREFIXES: usize = 10;

/// One run's headline figures, for trends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the run started, in seconds since the Unix epoch.
    pub inspected_at: u64,
    /// Its overall status.
    pub status: Status,
    /// Keys in the whole keyspace.
    pub total_keys: u64,
    /// Keys of the largest prefixes.
    pub prefixes: BTreeMap<String, u64>,
    /// Database size by member.
    pub db_size: BTreeMap<String, u64>,
    /// Share of the database in use by member (1 - fragmentation).
    pub in_use_ratio: BTreeMap<String, f64>,
    /// The largest value's size.
    pub largest_value: u64,
}

impl Sample {
    /// The largest [`SAMPLE_PREFIXES`] of `prefixes`.
    pub fn top_prefixes(prefixes: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let mut ranked: Vec<(&String, &u64)> = prefixes.iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(SAMPLE_PREFIXES)
            .map(|(p, n)| (p.clone(), *n))
            .collect()
    }
}

impl State {
    /// `history` with `sample` added and the oldest dropped beyond `keep` (at least one).
    pub fn with_sample(mut self, mut history: Vec<Sample>, sample: Sample, keep: usize) -> Self {
        history.push(sample);
        let excess = history.len().saturating_sub(keep.max(1));
        history.drain(..excess);
        self.history = history;
        self
    }
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
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
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
            history: vec![Sample {
                inspected_at: 7,
                status: Status::Warn,
                ..Sample::default()
            }],
        };
        store.save(&state).expect("save");
        assert_eq!(store.load().expect("load"), Some(state));
        // A state directory that does not exist yet is made.
        let nested = FileStore::new(dir.path().join("cairn/main/inspection.json"));
        nested
            .save(&State::default())
            .expect("save into a new directory");
        assert_eq!(nested.load().expect("load"), Some(State::default()));
        // A state file of an earlier version, without history, still loads.
        let old = dir.path().join("old.json");
        std::fs::write(
            &old,
            r#"{"inspected_at":1,"total_keys":2,"prefixes":{},"db_size":{}}"#,
        )
        .expect("write");
        assert!(FileStore::new(old)
            .load()
            .expect("old")
            .expect("some")
            .history
            .is_empty());
    }

    #[test]
    fn the_history_keeps_the_newest_runs() {
        let sample = |at| Sample {
            inspected_at: at,
            ..Sample::default()
        };
        let history: Vec<Sample> = (1..=5).map(sample).collect();
        let state = State::default().with_sample(history, sample(6), 3);
        let kept: Vec<u64> = state.history.iter().map(|s| s.inspected_at).collect();
        assert_eq!(kept, [4, 5, 6]);
        let many: BTreeMap<String, u64> = (0..30).map(|i| (format!("/p{i:02}/"), i)).collect();
        let top = Sample::top_prefixes(&many);
        assert_eq!(top.len(), SAMPLE_PREFIXES);
        assert!(top.contains_key("/p29/") && !top.contains_key("/p00/"));
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
