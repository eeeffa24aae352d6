//! The raft log on the member's backend (sled): entries, HardState, ConfState and the snapshot
//! point, changed only in atomic batches, so a crash leaves either all of a Ready's writes or
//! none. Implements raft-rs's [`Storage`], which the raft node reads through.
//!
//! Layout: `r/l/` + big-endian index → Entry; `r/hs` → HardState; `r/cs` → ConfState;
//! `r/sm` → the snapshot point (SnapshotMetadata: index and term of the last entry folded into
//! the state machine image, and the configuration at that point).

use std::sync::Arc;

use parking_lot::RwLock;
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use crate::mvcc::{Backend, WriteBatch};
use crate::Error;

const LOG_PREFIX: &[u8] = b"r/l/";
const LOG_END: &[u8] = b"r/l0";
const HARD_STATE: &[u8] = b"r/hs";
const CONF_STATE: &[u8] = b"r/cs";
const SNAPSHOT_POINT: &[u8] = b"r/sm";

fn log_key(index: u64) -> Vec<u8> {
    let mut k = LOG_PREFIX.to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn encode(m: &impl protobuf::Message) -> Vec<u8> {
    m.write_to_bytes().expect("raft messages always encode")
}

fn decode<M: protobuf::Message>(raw: &[u8]) -> Result<M, Error> {
    M::parse_from_bytes(raw).map_err(|_| Error::CorruptRecord)
}

#[derive(Debug, Default)]
struct State {
    hard: HardState,
    conf: ConfState,
    snap: SnapshotMetadata,
    last: u64,
}

/// The raft log of this member.
#[derive(Clone)]
pub struct RaftLogStore {
    backend: Arc<dyn Backend>,
    state: Arc<RwLock<State>>,
}

impl std::fmt::Debug for RaftLogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.read();
        f.debug_struct("RaftLogStore")
            .field("first", &(s.snap.index + 1))
            .field("last", &s.last)
            .field("commit", &s.hard.commit)
            .finish()
    }
}

fn store_err(e: Error) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

impl RaftLogStore {
    /// Opens the log kept in `backend` (empty for a new member).
    pub fn open(backend: Arc<dyn Backend>) -> Result<Self, Error> {
        let hard = match backend.get(HARD_STATE)? {
            Some(raw) => decode(&raw)?,
            None => HardState::default(),
        };
        let conf = match backend.get(CONF_STATE)? {
            Some(raw) => decode(&raw)?,
            None => ConfState::default(),
        };
        let snap: SnapshotMetadata = match backend.get(SNAPSHOT_POINT)? {
            Some(raw) => decode(&raw)?,
            None => SnapshotMetadata::default(),
        };
        let last = match backend.last_in(LOG_PREFIX, LOG_END)? {
            Some((_, raw)) => decode::<Entry>(&raw)?.index,
            None => snap.index,
        };
        let state = State {
            hard,
            conf,
            snap,
            last,
        };
        Ok(Self {
            backend,
            state: Arc::new(RwLock::new(state)),
        })
    }

    /// Whether the log has ever been written (a member with state ignores bootstrap flags).
    #[cfg(test)]
    pub fn is_initialized(&self) -> bool {
        let s = self.state.read();
        !s.conf.voters.is_empty() || s.last > 0 || s.hard.term > 0
    }

    /// Appends `entries` (replacing any conflicting suffix) and records `hard` when given, in
    /// one atomic batch; durable after the backend's next flush.
    pub fn append(&self, entries: &[Entry], hard: Option<&HardState>) -> Result<(), Error> {
        let mut s = self.state.write();
        let mut batch = WriteBatch::new();
        if let Some(first) = entries.first() {
            let first_index = first.index;
            assert!(
                first_index > s.snap.index,
                "appending raft entry {first_index} at or below the snapshot point {}",
                s.snap.index
            );
            assert!(
                first_index <= s.last + 1,
                "raft log gap: last {}, appending {first_index}",
                s.last
            );
            let new_last = entries.last().expect("non-empty").index;
            for i in (new_last + 1)..=s.last {
                batch.delete(log_key(i));
            }
            for e in entries {
                batch.put(log_key(e.index), encode(e));
            }
            s.last = new_last;
        }
        if let Some(hard) = hard {
            batch.put(HARD_STATE.to_vec(), encode(hard));
            s.hard = hard.clone();
        }
        if !batch.is_empty() {
            self.backend.write(batch)?;
        }
        Ok(())
    }

    /// The HardState as last written.
    pub fn hard_state(&self) -> HardState {
        self.state.read().hard.clone()
    }

    /// Records the commit index (raft-rs reports it separately from the HardState).
    pub fn set_commit(&self, commit: u64) -> Result<(), Error> {
        let mut s = self.state.write();
        if commit <= s.hard.commit {
            return Ok(());
        }
        let mut hard = s.hard.clone();
        hard.commit = commit;
        let mut batch = WriteBatch::new();
        batch.put(HARD_STATE.to_vec(), encode(&hard));
        self.backend.write(batch)?;
        s.hard = hard;
        Ok(())
    }

    /// Records a new configuration (after a conf change is applied).
    pub fn set_conf_state(&self, conf: &ConfState) -> Result<(), Error> {
        let mut s = self.state.write();
        let mut batch = WriteBatch::new();
        batch.put(CONF_STATE.to_vec(), encode(conf));
        self.backend.write(batch)?;
        s.conf = conf.clone();
        Ok(())
    }

    /// Drops entries below `index` once the state machine holds them: the entry at `index - 1`
    /// becomes the snapshot point (its term is kept, as raft needs it to match the next entry).
    pub fn compact(&self, index: u64) -> Result<(), Error> {
        let mut s = self.state.write();
        if index <= s.snap.index + 1 {
            return Ok(());
        }
        assert!(
            index <= s.last + 1,
            "compacting raft log past its end: {index} > {} + 1",
            s.last
        );
        let point = index - 1;
        let term = self
            .term_locked(&s, point)
            .map_err(|_| Error::CorruptRecord)?;
        let mut snap = SnapshotMetadata {
            index: point,
            term,
            ..Default::default()
        };
        snap.set_conf_state(s.conf.clone());
        let mut batch = WriteBatch::new();
        for i in (s.snap.index + 1)..=point {
            batch.delete(log_key(i));
        }
        batch.put(SNAPSHOT_POINT.to_vec(), encode(&snap));
        self.backend.write(batch)?;
        s.snap = snap;
        Ok(())
    }

    /// Replaces the log by a snapshot received from the leader: everything up to its index is
    /// in the state machine image; the log restarts after it.
    pub fn apply_snapshot(&self, meta: &SnapshotMetadata) -> Result<(), Error> {
        let mut s = self.state.write();
        let mut batch = WriteBatch::new();
        for i in (s.snap.index + 1)..=s.last {
            batch.delete(log_key(i));
        }
        let mut hard = s.hard.clone();
        hard.term = hard.term.max(meta.term);
        hard.commit = meta.index;
        batch.put(HARD_STATE.to_vec(), encode(&hard));
        batch.put(CONF_STATE.to_vec(), encode(meta.get_conf_state()));
        batch.put(SNAPSHOT_POINT.to_vec(), encode(meta));
        self.backend.write(batch)?;
        s.hard = hard;
        s.conf = meta.get_conf_state().clone();
        s.snap = meta.clone();
        s.last = meta.index;
        Ok(())
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<(), Error> {
        self.backend.flush()
    }

    /// The current snapshot point.
    pub fn snapshot_point(&self) -> SnapshotMetadata {
        self.state.read().snap.clone()
    }

    fn term_locked(&self, s: &State, idx: u64) -> raft::Result<u64> {
        if idx == s.snap.index {
            return Ok(s.snap.term);
        }
        if idx < s.snap.index + 1 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > s.last {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let raw = self
            .backend
            .get(&log_key(idx))
            .map_err(store_err)?
            .ok_or_else(|| store_err(Error::CorruptRecord))?;
        Ok(decode::<Entry>(&raw).map_err(store_err)?.term)
    }
}

impl Storage for RaftLogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let s = self.state.read();
        Ok(RaftState::new(s.hard.clone(), s.conf.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let s = self.state.read();
        if low < s.snap.index + 1 {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        assert!(
            high <= s.last + 1,
            "raft asked for entries up to {high}, last is {}",
            s.last
        );
        let mut out = Vec::with_capacity((high - low) as usize);
        for (_, raw) in self
            .backend
            .scan(&log_key(low), &log_key(high), None)
            .map_err(store_err)?
        {
            out.push(decode::<Entry>(&raw).map_err(store_err)?);
        }
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let s = self.state.read();
        self.term_locked(&s, idx)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.state.read().snap.index + 1)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.state.read().last)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The state machine image itself is streamed by the peer transport in chunks, and the
        // receiver fetches the leader's current image, which holds everything committed by
        // now. So the point the message names is the commit index, with the current
        // configuration (the receiver must find itself in it): the log after that point is
        // still here, so the receiver continues from the log.
        let s = self.state.read();
        let index = s
            .hard
            .commit
            .max(s.snap.index)
            .min(s.last.max(s.snap.index));
        if index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let mut meta = SnapshotMetadata {
            index,
            term: self.term_locked(&s, index)?,
            ..Default::default()
        };
        meta.set_conf_state(s.conf.clone());
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::{MemBackend, SledBackend};
    use proptest::prelude::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            data: format!("cmd-{index}-{term}").into_bytes().into(),
            ..Default::default()
        }
    }

    /// The log as plain data: entries after the snapshot point.
    #[derive(Debug, Default, Clone)]
    struct Model {
        snap_index: u64,
        snap_term: u64,
        entries: Vec<(u64, u64)>,
        commit: u64,
        term: u64,
    }

    impl Model {
        fn last(&self) -> u64 {
            self.entries.last().map_or(self.snap_index, |e| e.0)
        }
        fn term_of(&self, i: u64) -> Option<u64> {
            if i == self.snap_index {
                return Some(self.snap_term);
            }
            self.entries.iter().find(|e| e.0 == i).map(|e| e.1)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Append `n` entries starting `back` before the end, all with the current term + bump.
        Append {
            back: u64,
            n: u64,
            bump: u64,
        },
        Commit(u64),
        Compact(u64),
        Snapshot(u64, u64),
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u64..4, 1u64..6, 0u64..2).prop_map(|(back, n, bump)| Op::Append { back, n, bump }),
            2 => (0u64..30).prop_map(Op::Commit),
            2 => (0u64..30).prop_map(Op::Compact),
            1 => (1u64..10, 0u64..3).prop_map(|(ahead, bump)| Op::Snapshot(ahead, bump)),
            2 => Just(Op::Reopen),
        ]
    }

    fn check(log: &RaftLogStore, m: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(log.first_index().unwrap(), m.snap_index + 1);
        prop_assert_eq!(log.last_index().unwrap(), m.last());
        for i in m.snap_index..=m.last() {
            prop_assert_eq!(log.term(i).ok(), m.term_of(i), "term of {}", i);
        }
        if m.snap_index > 0 {
            prop_assert!(log.term(m.snap_index - 1).is_err());
        }
        let got: Vec<(u64, u64)> = log
            .entries(
                m.snap_index + 1,
                m.last() + 1,
                None,
                GetEntriesContext::empty(false),
            )
            .unwrap()
            .iter()
            .map(|e| (e.index, e.term))
            .collect();
        prop_assert_eq!(got, m.entries.clone());
        let st = log.initial_state().unwrap();
        prop_assert_eq!(st.hard_state.commit, m.commit);
        prop_assert_eq!(st.hard_state.term, m.term);
        Ok(())
    }

    fn run(backend: Arc<dyn Backend>, ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut log = RaftLogStore::open(backend.clone()).unwrap();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Append { back, n, bump } => {
                    let start = (m.last() + 1).saturating_sub(back).max(m.snap_index + 1);
                    m.term += bump;
                    let new: Vec<Entry> = (start..start + n)
                        .map(|i| entry(i, m.term.max(1)))
                        .collect();
                    m.entries.retain(|e| e.0 < start);
                    m.entries.extend(new.iter().map(|e| (e.index, e.term)));
                    m.commit = m.commit.min(m.last());
                    let hs = HardState {
                        term: m.term,
                        commit: m.commit,
                        ..Default::default()
                    };
                    log.append(&new, Some(&hs)).unwrap();
                }
                Op::Commit(c) => {
                    m.commit = c.min(m.last()).max(m.commit);
                    log.set_commit(m.commit).unwrap();
                }
                Op::Compact(i) => {
                    let i = i.min(m.last() + 1);
                    if i > m.snap_index + 1 {
                        m.snap_term = m.term_of(i - 1).unwrap();
                        m.snap_index = i - 1;
                        m.entries.retain(|e| e.0 >= i);
                    }
                    log.compact(i).unwrap();
                }
                Op::Snapshot(ahead, bump) => {
                    let mut meta = SnapshotMetadata {
                        index: m.last() + ahead,
                        term: m.term + bump,
                        ..Default::default()
                    };
                    meta.set_conf_state(ConfState {
                        voters: vec![1, 2, 3],
                        ..Default::default()
                    });
                    log.apply_snapshot(&meta).unwrap();
                    m.snap_index = meta.index;
                    m.snap_term = meta.term;
                    m.entries.clear();
                    m.term = m.term.max(meta.term);
                    m.commit = meta.index;
                }
                Op::Reopen => {
                    log.flush().unwrap();
                    drop(log);
                    log = RaftLogStore::open(backend.clone()).unwrap();
                }
            }
            check(&log, &m)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn log_matches_model_in_memory(ops in proptest::collection::vec(op(), 1..60)) {
            run(Arc::new(MemBackend::new()), ops)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn log_matches_model_on_sled(ops in proptest::collection::vec(op(), 1..60)) {
            run(Arc::new(SledBackend::temporary().unwrap()), ops)?;
        }
    }

    #[test]
    fn snapshot_reports_the_point_or_asks_to_wait() {
        let log = RaftLogStore::open(Arc::new(MemBackend::new())).unwrap();
        log.append(&[entry(1, 1), entry(2, 1), entry(3, 2)], None)
            .unwrap();
        assert!(matches!(
            log.snapshot(2, 9),
            Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable
            ))
        ));
        log.compact(3).unwrap();
        let snap = log.snapshot(2, 9).unwrap();
        assert_eq!(
            (snap.get_metadata().index, snap.get_metadata().term),
            (2, 1)
        );
        assert!(log.is_initialized());
    }
}
