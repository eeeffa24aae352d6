//! The MVCC store: every revision of every key in the backend, the key index in memory, and the
//! revision counters. Writes go through [`WriteTxn`]; a group of them reaches the backend as one
//! atomic batch ([`MvccStore::persist`]). Reads take a revision and see exactly the store as of
//! that revision.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prost::Message;

use super::backend::{Backend, WriteBatch};
use super::index::{Index, KeyRange};
use super::revision::{Revision, REVISION_LEN};
use crate::proto::mvccpb::KeyValue;
use crate::Error;

const KV_PREFIX: u8 = b'k';
const KV_END: u8 = b'l';
const KIND_PUT: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// Backend keys for the store's own bookkeeping.
pub(crate) mod meta {
    /// Index of the last command applied (raft index once replication drives the store).
    pub const APPLIED_INDEX: &[u8] = b"m/applied_index";
    /// Revision of the last compaction requested.
    pub const COMPACT_SCHEDULED: &[u8] = b"m/compact_scheduled";
    /// Revision of the last compaction physically finished.
    pub const COMPACT_FINISHED: &[u8] = b"m/compact_finished";
    /// Layout version of the data dir.
    pub const SCHEMA: &[u8] = b"m/schema";
    /// Cluster identity, fixed when the data dir is created.
    pub const CLUSTER_ID: &[u8] = b"m/cluster_id";
    /// This member's identity, fixed when the data dir is created.
    pub const MEMBER_ID: &[u8] = b"m/member_id";
}

/// The data-dir layout this build writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

fn kv_key(rev: Revision) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + REVISION_LEN);
    k.push(KV_PREFIX);
    k.extend_from_slice(&rev.to_bytes());
    k
}

fn encode_record(kind: u8, kv: &KeyValue) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + kv.encoded_len());
    buf.push(kind);
    kv.encode(&mut buf).expect("vec has capacity");
    buf
}

fn decode_record(raw: &[u8]) -> Result<(u8, KeyValue), Error> {
    let (&kind, body) = raw.split_first().ok_or(Error::CorruptRecord)?;
    Ok((kind, KeyValue::decode(body)?))
}

pub(crate) fn read_u64(backend: &dyn Backend, key: &[u8]) -> Result<Option<u64>, Error> {
    match backend.get(key)? {
        None => Ok(None),
        Some(v) => Ok(Some(u64::from_be_bytes(
            v.as_slice().try_into().map_err(|_| Error::CorruptRecord)?,
        ))),
    }
}

/// How a read addresses the history.
#[derive(Clone, Copy, Debug, Default)]
pub struct RangeOptions {
    /// At most this many keys (0: no limit).
    pub limit: usize,
    /// Read at this revision (<= 0: the newest).
    pub rev: i64,
    /// Count the keys, return none.
    pub count_only: bool,
}

/// What a read found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeResult {
    /// The key-values, in key order.
    pub kvs: Vec<KeyValue>,
    /// Number of keys in the range at the read revision, regardless of `limit`.
    pub count: usize,
    /// The store's current revision when read.
    pub rev: i64,
}

/// Deletion of the revisions a compaction made unreachable, run off the write path.
#[derive(Debug)]
pub struct CompactionJob {
    /// The compaction revision.
    pub rev: i64,
    keep: HashSet<Revision>,
    stored_bytes: Arc<AtomicU64>,
}

/// Revisions deleted per backend batch while compacting, so writers are never held up long.
const COMPACTION_BATCH: usize = 10_000;

impl CompactionJob {
    /// Physically deletes every revision `<= rev` that no read can reach any more, in batches,
    /// then records the compaction as finished.
    pub fn run(self, backend: &dyn Backend) -> Result<(), Error> {
        let end = kv_key(Revision::new(self.rev + 1, 0));
        let mut start = vec![KV_PREFIX];
        loop {
            let chunk = backend.scan(&start, &end, Some(COMPACTION_BATCH))?;
            let Some((last, _)) = chunk.last() else { break };
            start = last.clone();
            start.push(0);
            let mut batch = WriteBatch::new();
            let mut freed = 0;
            for (k, v) in &chunk {
                let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
                if !self.keep.contains(&rev) {
                    batch.delete(k.clone());
                    freed += (k.len() + v.len()) as u64;
                }
            }
            if !batch.is_empty() {
                backend.write(batch)?;
                self.stored_bytes.fetch_sub(freed, Ordering::Relaxed);
            }
        }
        let mut batch = WriteBatch::new();
        batch.put(
            meta::COMPACT_FINISHED.to_vec(),
            (self.rev as u64).to_be_bytes().to_vec(),
        );
        backend.write(batch)?;
        backend.flush()
    }
}

/// The multi-version key-value store.
///
/// Applied writes gather in one pending batch until [`MvccStore::persist`]: a whole group of
/// commands reaches the backend as one atomic batch, which costs sled a fraction of a batch per
/// command. Reads through the store see pending writes via an overlay.
pub struct MvccStore {
    backend: Arc<dyn Backend>,
    index: Index,
    rev: i64,
    compact_rev: i64,
    applied_index: u64,
    pending: WriteBatch,
    overlay: HashMap<Revision, KeyValue>,
    persisted_index: u64,
    /// Bytes of the revision records in the backend (keys and values).
    stored_bytes: Arc<AtomicU64>,
    /// Bytes of the revision records in `pending`.
    pending_bytes: u64,
}

impl std::fmt::Debug for MvccStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MvccStore")
            .field("rev", &self.rev)
            .field("compact_rev", &self.compact_rev)
            .field("applied_index", &self.applied_index)
            .field("keys", &self.index.len())
            .finish()
    }
}

impl MvccStore {
    /// Opens the store on `backend`, rebuilding the key index from the stored revisions. Returns
    /// the compaction job that was interrupted by a crash, if any, to be run again.
    pub fn open(backend: Arc<dyn Backend>) -> Result<(Self, Option<CompactionJob>), Error> {
        match read_u64(&*backend, meta::SCHEMA)? {
            None => {
                let mut b = WriteBatch::new();
                b.put(meta::SCHEMA.to_vec(), SCHEMA_VERSION.to_be_bytes().to_vec());
                backend.write(b)?;
                backend.flush()?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(found) => {
                return Err(Error::SchemaVersion {
                    found,
                    want: SCHEMA_VERSION,
                })
            }
        }
        let mut index = Index::new();
        let mut last_rev = 1;
        let mut stored_bytes = 0;
        let mut start = vec![KV_PREFIX];
        let end = vec![KV_END];
        loop {
            let chunk = backend.scan(&start, &end, Some(COMPACTION_BATCH))?;
            let Some((last, _)) = chunk.last() else { break };
            start = last.clone();
            start.push(0);
            for (k, v) in &chunk {
                let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
                let (kind, kv) = decode_record(v)?;
                if kind == KIND_TOMBSTONE {
                    index.tombstone(&kv.key, rev);
                } else {
                    index.restore(&kv.key, rev, kv.create_revision, kv.version);
                }
                last_rev = last_rev.max(rev.main);
                stored_bytes += (k.len() + v.len()) as u64;
            }
        }
        let compact_rev = read_u64(&*backend, meta::COMPACT_SCHEDULED)?.unwrap_or(0) as i64;
        let finished = read_u64(&*backend, meta::COMPACT_FINISHED)?.unwrap_or(0) as i64;
        let applied_index = read_u64(&*backend, meta::APPLIED_INDEX)?.unwrap_or(0);
        let stored_bytes = Arc::new(AtomicU64::new(stored_bytes));
        let mut job = None;
        if compact_rev > 0 {
            let keep = index.compact(compact_rev);
            if finished < compact_rev {
                job = Some(CompactionJob {
                    rev: compact_rev,
                    keep,
                    stored_bytes: stored_bytes.clone(),
                });
            }
        }
        let store = Self {
            backend,
            index,
            rev: last_rev.max(compact_rev),
            compact_rev,
            applied_index,
            pending: WriteBatch::new(),
            overlay: HashMap::new(),
            persisted_index: applied_index,
            stored_bytes,
            pending_bytes: 0,
        };
        Ok((store, job))
    }

    /// The newest revision applied.
    pub fn revision(&self) -> i64 {
        self.rev
    }

    /// The revision of the last compaction (0: never compacted).
    pub fn compact_revision(&self) -> i64 {
        self.compact_rev
    }

    /// The index of the last command applied.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// The storage underneath.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Number of keys the index tracks.
    pub fn key_count(&self) -> usize {
        self.index.len()
    }

    /// Number of keys that exist at the newest revision.
    pub fn live_keys(&self) -> usize {
        self.index.live()
    }

    /// Bytes of data the backend holds for the store (every stored revision's key and value,
    /// without the storage engine's free space and overhead): what is logically in use.
    pub fn bytes_in_use(&self) -> u64 {
        self.stored_bytes.load(Ordering::Relaxed)
    }

    fn fetch(&self, rev: Revision) -> Result<KeyValue, Error> {
        if let Some(kv) = self.overlay.get(&rev) {
            return Ok(kv.clone());
        }
        let raw = self
            .backend
            .get(&kv_key(rev))?
            .ok_or(Error::CorruptRecord)?;
        Ok(decode_record(&raw)?.1)
    }

    /// Reads `range` as of `opts.rev`, where `current` is the newest revision the caller may see.
    pub fn range(
        &self,
        range: &KeyRange,
        opts: &RangeOptions,
        current: i64,
    ) -> Result<RangeResult, Error> {
        self.range_with(range, opts, current, |rev| self.fetch(rev))
    }

    fn range_with(
        &self,
        range: &KeyRange,
        opts: &RangeOptions,
        current: i64,
        fetch: impl Fn(Revision) -> Result<KeyValue, Error>,
    ) -> Result<RangeResult, Error> {
        let rev = if opts.rev <= 0 { current } else { opts.rev };
        if rev > current {
            return Err(Error::FutureRevision);
        }
        if rev < self.compact_rev {
            return Err(Error::Compacted);
        }
        if opts.count_only {
            let count = self.index.count(range, rev);
            return Ok(RangeResult {
                kvs: Vec::new(),
                count,
                rev: current,
            });
        }
        let found = self.index.range(range, rev);
        let count = found.len();
        let take = if opts.limit == 0 {
            count
        } else {
            opts.limit.min(count)
        };
        let kvs = found[..take]
            .iter()
            .map(|(_, at)| fetch(at.modified))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RangeResult {
            kvs,
            count,
            rev: current,
        })
    }

    /// Starts a write; its changes reach the backend, atomically, on [`WriteTxn::commit`].
    pub fn write(&mut self) -> WriteTxn<'_> {
        let begin = self.rev;
        WriteTxn {
            store: self,
            begin,
            changes: Vec::new(),
        }
    }

    /// Compacts the history at `rev` as the command at `applied_index`: reads below `rev` fail
    /// from now on. The returned job deletes the unreachable revisions from the backend.
    pub fn compact(&mut self, rev: i64, applied_index: u64) -> Result<CompactionJob, Error> {
        if rev <= self.compact_rev {
            return Err(Error::Compacted);
        }
        if rev > self.rev {
            return Err(Error::FutureRevision);
        }
        self.pending.put(
            meta::COMPACT_SCHEDULED.to_vec(),
            (rev as u64).to_be_bytes().to_vec(),
        );
        self.mark_applied(applied_index);
        self.compact_rev = rev;
        let keep = self.index.compact(rev);
        Ok(CompactionJob {
            rev,
            keep,
            stored_bytes: self.stored_bytes.clone(),
        })
    }

    /// Records that command `applied_index` was applied without touching the keyspace.
    pub fn mark_applied(&mut self, applied_index: u64) {
        self.applied_index = applied_index;
    }

    /// Whether applied commands wait for [`MvccStore::persist`].
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty() || self.applied_index != self.persisted_index
    }

    /// Writes everything applied since the last call, with the applied index, to the backend as
    /// one atomic batch (durable at the backend's next flush).
    pub fn persist(&mut self) -> Result<(), Error> {
        if !self.has_pending() {
            return Ok(());
        }
        let mut batch = std::mem::take(&mut self.pending);
        batch.put(
            meta::APPLIED_INDEX.to_vec(),
            self.applied_index.to_be_bytes().to_vec(),
        );
        self.backend.write(batch)?;
        self.stored_bytes
            .fetch_add(std::mem::take(&mut self.pending_bytes), Ordering::Relaxed);
        self.overlay.clear();
        self.persisted_index = self.applied_index;
        Ok(())
    }
}

/// One write: every change gets the same main revision (`begin + 1`) and its own sub revision.
/// Reads through the txn see its own earlier changes, as in etcd.
pub struct WriteTxn<'a> {
    store: &'a mut MvccStore,
    begin: i64,
    changes: Vec<KeyValue>,
}

impl WriteTxn<'_> {
    /// The revision a read inside this txn sees: the new one once anything changed.
    pub fn read_revision(&self) -> i64 {
        if self.changes.is_empty() {
            self.begin
        } else {
            self.begin + 1
        }
    }

    /// Compaction point of the store.
    pub fn compact_revision(&self) -> i64 {
        self.store.compact_rev
    }

    /// Reads `range` including this txn's own changes.
    pub fn range(&self, range: &KeyRange, opts: &RangeOptions) -> Result<RangeResult, Error> {
        let pending = self.begin + 1;
        self.store
            .range_with(range, opts, self.read_revision(), |rev| {
                if rev.main == pending {
                    Ok(self.changes[rev.sub as usize].clone())
                } else {
                    self.store.fetch(rev)
                }
            })
    }

    /// Puts `key`; returns the revision of the write.
    pub fn put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) -> i64 {
        let main = self.begin + 1;
        let rev = Revision::new(main, self.changes.len() as i64);
        let (created, version) = match self.store.index.get(key, main) {
            Some(at) => (at.created.main, at.version + 1),
            None => (main, 1),
        };
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: created,
            mod_revision: main,
            version,
            value,
            lease,
        };
        let (k, v) = (kv_key(rev), encode_record(KIND_PUT, &kv));
        self.store.pending_bytes += (k.len() + v.len()) as u64;
        self.store.pending.put(k, v);
        self.store.index.put(key, rev);
        self.changes.push(kv);
        main
    }

    /// Deletes every live key in `range`; returns how many, and the revision the txn now reads at.
    pub fn delete_range(&mut self, range: &KeyRange) -> (i64, i64) {
        let main = self.begin + 1;
        let keys: Vec<Vec<u8>> = self
            .store
            .index
            .range(range, self.read_revision())
            .into_iter()
            .map(|(k, _)| k.to_vec())
            .collect();
        for key in &keys {
            let rev = Revision::new(main, self.changes.len() as i64);
            let kv = KeyValue {
                key: key.clone(),
                mod_revision: main,
                ..Default::default()
            };
            let (k, v) = (kv_key(rev), encode_record(KIND_TOMBSTONE, &kv));
            self.store.pending_bytes += (k.len() + v.len()) as u64;
            self.store.pending.put(k, v);
            self.store.index.tombstone(key, rev);
            self.changes.push(kv);
        }
        (keys.len() as i64, self.read_revision())
    }

    /// Whether anything changed.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Ends the txn as command `applied_index`: its changes and the applied index join the
    /// store's pending batch; returns the store revision after the txn.
    pub fn commit(self, applied_index: u64) -> i64 {
        let rev = self.read_revision();
        let main = self.begin + 1;
        for (sub, kv) in self.changes.into_iter().enumerate() {
            self.store
                .overlay
                .insert(Revision::new(main, sub as i64), kv);
        }
        self.store.mark_applied(applied_index);
        self.store.rev = rev;
        rev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::MemBackend;

    #[test]
    fn bytes_in_use_follow_writes_compactions_and_reopening() {
        let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let (mut store, _) = MvccStore::open(backend.clone()).unwrap();
        assert_eq!(store.bytes_in_use(), 0);
        for (i, v) in [b"one".to_vec(), b"two".to_vec()].into_iter().enumerate() {
            let mut txn = store.write();
            txn.put(b"k", v, 0);
            txn.commit(i as u64 + 1);
        }
        // Applied but not yet persisted: not in the backend yet.
        assert_eq!(store.bytes_in_use(), 0);
        store.persist().unwrap();
        let written = store.bytes_in_use();
        assert!(written > 0);
        let (reopened, _) = MvccStore::open(backend.clone()).unwrap();
        assert_eq!(reopened.bytes_in_use(), written);
        assert_eq!(reopened.live_keys(), 1);

        let rev = store.revision();
        let job = store.compact(rev, 3).unwrap();
        store.persist().unwrap();
        job.run(&*backend).unwrap();
        let after = store.bytes_in_use();
        assert!(after < written && after > 0, "{after} of {written}");
        let (reopened, _) = MvccStore::open(backend).unwrap();
        assert_eq!(reopened.bytes_in_use(), after);
    }
}
