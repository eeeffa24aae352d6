//! The MVCC store: every revision of every key in the backend, the key index in memory, and the
//! revision counters. Writes go through [`WriteTxn`]; a group of them reaches the backend as one
//! atomic batch ([`MvccStore::persist`]). Reads take a revision and see exactly the store as of
//! that revision.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use prost::Message;

use super::auth::AuthTable;
use super::backend::{scan_chunks, Backend, WriteBatch};
use super::index::{Index, KeyRange};
use super::lease::{lease_key, LeaseTable, LEASE_END, LEASE_PREFIX};
use super::revision::{Revision, REVISION_LEN};
use crate::proto::mvccpb::{event::EventType, Event, KeyValue};
use crate::{Error, EtcdError};

/// First byte of every revision record's backend key.
pub(crate) const KV_PREFIX: u8 = b'k';
/// First byte past the revision records.
pub(crate) const KV_END: u8 = b'l';
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
    /// Prefix of the active alarms: `m/alarm/` + member ID (8 bytes BE) + type (4 bytes BE).
    pub const ALARM_PREFIX: &[u8] = b"m/alarm/";
    /// First key past the alarms.
    pub const ALARM_END: &[u8] = b"m/alarm0";
}

fn alarm_key(member_id: u64, alarm: i32) -> Vec<u8> {
    let mut k = meta::ALARM_PREFIX.to_vec();
    k.extend_from_slice(&member_id.to_be_bytes());
    k.extend_from_slice(&alarm.to_be_bytes());
    k
}

fn decode_alarm_key(k: &[u8]) -> Option<(u64, i32)> {
    let rest = k.strip_prefix(meta::ALARM_PREFIX)?;
    if rest.len() != 12 {
        return None;
    }
    Some((
        u64::from_be_bytes(rest[..8].try_into().ok()?),
        i32::from_be_bytes(rest[8..].try_into().ok()?),
    ))
}

/// The data-dir layout this build writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// The backend key of the record at `rev`.
pub(crate) fn kv_key(rev: Revision) -> Vec<u8> {
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

/// A stored record from an encoded `KeyValue` as etcd stores it (a put, or a tombstone).
pub(crate) fn raw_record(tombstone: bool, encoded: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1 + encoded.len());
    buf.push(if tombstone { KIND_TOMBSTONE } else { KIND_PUT });
    buf.extend_from_slice(encoded);
    buf
}

/// Splits a stored record into its kind (put or tombstone) and key-value.
pub(crate) fn decode_record(raw: &[u8]) -> Result<(u8, KeyValue), Error> {
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
    in_use: Arc<AtomicI64>,
}

/// Revisions deleted per backend batch while compacting, so writers are never held up long.
const COMPACTION_BATCH: usize = 10_000;

impl CompactionJob {
    /// Physically deletes every revision `<= rev` that no read can reach any more, in batches,
    /// then records the compaction as finished.
    pub fn run(self, backend: &dyn Backend) -> Result<(), Error> {
        self.run_gated(backend, || ())
    }

    /// Like [`CompactionJob::run`], holding what `gate` returns while each batch is read and
    /// deleted: snapshots and HashKV hold the other side of that gate to see revisions that
    /// stay put while they stream.
    pub fn run_gated<G>(self, backend: &dyn Backend, gate: impl Fn() -> G) -> Result<(), Error> {
        let end = kv_key(Revision::new(self.rev + 1, 0));
        scan_chunks::<()>(backend, &[KV_PREFIX], &end, COMPACTION_BATCH, |chunk| {
            let _held = gate();
            let mut batch = WriteBatch::new();
            let mut freed = 0;
            for (k, v) in chunk {
                let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
                if !self.keep.contains(&rev) {
                    freed += (k.len() + v.len()) as i64;
                    batch.delete(k.clone());
                }
            }
            if !batch.is_empty() {
                backend.write(batch)?;
                self.in_use.fetch_sub(freed, Ordering::Relaxed);
            }
            Ok(ControlFlow::Continue(()))
        })?;
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
/// It also keeps the bytes its revision records occupy in the backend ("in use": keys plus
/// stored records, as etcd's `dbSizeInUse` counts live pages): summed when opening, increased
/// when a write group is persisted, decreased as compaction jobs delete revisions. A defragment
/// leaves it unchanged (same contents), so it is exact without ever rescanning.
///
/// Active alarms are store state too (applied commands change them, `m/alarm/` persists them),
/// so every member agrees on them and they survive restarts.
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
    leases: LeaseTable,
    events: Vec<Event>,
    in_use: Arc<AtomicI64>,
    pending_in_use: i64,
    alarms: BTreeSet<(u64, i32)>,
    auth: AuthTable,
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
        let mut in_use = 0i64;
        scan_chunks::<()>(
            &*backend,
            &[KV_PREFIX],
            &[KV_END],
            COMPACTION_BATCH,
            |chunk| {
                for (k, v) in chunk {
                    let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
                    in_use += (k.len() + v.len()) as i64;
                    let (kind, kv) = decode_record(v)?;
                    if kind == KIND_TOMBSTONE {
                        index.tombstone(&kv.key, rev);
                    } else {
                        index.restore(&kv.key, rev, kv.create_revision, kv.version);
                    }
                    last_rev = last_rev.max(rev.main);
                }
                Ok(ControlFlow::Continue(()))
            },
        )?;
        let compact_rev = read_u64(&*backend, meta::COMPACT_SCHEDULED)?.unwrap_or(0) as i64;
        let finished = read_u64(&*backend, meta::COMPACT_FINISHED)?.unwrap_or(0) as i64;
        let applied_index = read_u64(&*backend, meta::APPLIED_INDEX)?.unwrap_or(0);
        let alarms = backend
            .scan(meta::ALARM_PREFIX, meta::ALARM_END, None)?
            .iter()
            .map(|(k, _)| decode_alarm_key(k).ok_or(Error::CorruptRecord))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let auth = AuthTable::load(&*backend)?;
        let in_use = Arc::new(AtomicI64::new(in_use));
        let mut job = None;
        if compact_rev > 0 {
            let keep = index.compact(compact_rev);
            if finished < compact_rev {
                job = Some(CompactionJob {
                    rev: compact_rev,
                    keep,
                    in_use: in_use.clone(),
                });
            }
        }
        let mut leases = LeaseTable::default();
        for (k, v) in backend.scan(LEASE_PREFIX, LEASE_END, None)? {
            let id = i64::from_be_bytes(
                k[LEASE_PREFIX.len()..]
                    .try_into()
                    .map_err(|_| Error::CorruptRecord)?,
            );
            let ttl =
                i64::from_be_bytes(v.as_slice().try_into().map_err(|_| Error::CorruptRecord)?);
            leases.grant(id, ttl);
        }
        let mut store = Self {
            backend,
            index,
            rev: last_rev.max(compact_rev),
            compact_rev,
            applied_index,
            pending: WriteBatch::new(),
            overlay: HashMap::new(),
            persisted_index: applied_index,
            leases,
            events: Vec::new(),
            in_use,
            pending_in_use: 0,
            alarms,
            auth,
        };
        store.attach_leases()?;
        Ok((store, job))
    }

    /// Rebuilds key → lease attachments from the live keys' stored lease fields.
    fn attach_leases(&mut self) -> Result<(), Error> {
        if self.leases.ids().is_empty() {
            return Ok(());
        }
        let all = KeyRange::From(vec![0]);
        let live: Vec<_> = self
            .index
            .range(&all, self.rev)
            .into_iter()
            .map(|(_, at)| at.modified)
            .collect();
        for rev in live {
            let kv = self.fetch(rev)?;
            if kv.lease != 0 {
                self.leases.attach(&kv.key, kv.lease);
            }
        }
        Ok(())
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

    /// Bytes the revision records occupy in the backend (see the type's docs).
    pub fn in_use_bytes(&self) -> i64 {
        self.in_use.load(Ordering::Relaxed) + self.pending_in_use
    }

    /// The revisions `<= rev` a compaction at `rev` keeps (every other revision `<= rev` is
    /// unreachable once compacted there).
    pub fn keep(&self, rev: i64) -> HashSet<Revision> {
        self.index.keep(rev)
    }

    /// Active alarms as (member ID, etcd `AlarmType` number).
    pub fn alarms(&self) -> &BTreeSet<(u64, i32)> {
        &self.alarms
    }

    /// Activates (`on`) or deactivates an alarm as part of the pending batch; returns whether
    /// the set changed.
    pub fn set_alarm(&mut self, member_id: u64, alarm: i32, on: bool) -> bool {
        let changed = if on {
            self.alarms.insert((member_id, alarm))
        } else {
            self.alarms.remove(&(member_id, alarm))
        };
        if changed {
            let key = alarm_key(member_id, alarm);
            if on {
                self.pending.put(key, Vec::new());
            } else {
                self.pending.delete(key);
            }
        }
        changed
    }

    /// Users, roles and whether auth is on.
    pub fn auth(&self) -> &AuthTable {
        &self.auth
    }

    /// The auth state, to change as part of the command being applied (written with its
    /// batch).
    pub fn auth_mut(&mut self) -> &mut AuthTable {
        &mut self.auth
    }

    /// Number of keys the index tracks.
    pub fn key_count(&self) -> usize {
        self.index.len()
    }

    /// Number of keys that exist at the newest revision.
    pub fn live_keys(&self) -> usize {
        self.index.live()
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
            return Err(Error::Etcd(EtcdError::FutureRevision));
        }
        if rev < self.compact_rev {
            return Err(Error::Etcd(EtcdError::Compacted));
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
            return Err(Error::Etcd(EtcdError::Compacted));
        }
        if rev > self.rev {
            return Err(Error::Etcd(EtcdError::FutureRevision));
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
            in_use: self.in_use.clone(),
        })
    }

    /// Records that command `applied_index` was applied without touching the keyspace.
    pub fn mark_applied(&mut self, applied_index: u64) {
        self.applied_index = applied_index;
    }

    /// The leases and their keys.
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// Grants lease `id` as command `applied_index` (the caller checked it is new).
    pub fn grant_lease(&mut self, id: i64, ttl: i64, applied_index: u64) {
        self.leases.grant(id, ttl);
        self.pending.put(lease_key(id), ttl.to_be_bytes().to_vec());
        self.mark_applied(applied_index);
    }

    /// Removes lease `id`; returns its keys, which the caller deletes in the same command.
    pub fn revoke_lease(&mut self, id: i64) -> Result<std::collections::BTreeSet<Vec<u8>>, Error> {
        let keys = self
            .leases
            .revoke(id)
            .ok_or(Error::Etcd(EtcdError::LeaseNotFound))?;
        self.pending.delete(lease_key(id));
        Ok(keys)
    }

    /// The changes applied since the last call, in revision order, for watchers.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Stored events with revisions in `[from, to]`, at most `limit` of them, in revision order.
    /// The caller must check that `from` is not below the compaction point.
    pub fn events_between(&self, from: i64, to: i64, limit: usize) -> Result<Vec<Event>, Error> {
        if from > to {
            return Ok(Vec::new());
        }
        let start = kv_key(Revision::new(from, 0));
        let end = kv_key(Revision::new(to + 1, 0));
        let mut records = Vec::new();
        for (k, raw) in self.backend.scan(&start, &end, Some(limit))? {
            let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
            let (kind, kv) = decode_record(&raw)?;
            records.push((rev, kind == KIND_TOMBSTONE, kv));
        }
        // Revisions applied but not yet in the backend (see `persist`) are the newest ones.
        let mut pending: Vec<_> = self
            .overlay
            .iter()
            .filter(|(rev, _)| (from..=to).contains(&rev.main))
            // A tombstone has no create revision (the shape of etcd's delete events).
            .map(|(rev, kv)| (*rev, kv.create_revision == 0, kv.clone()))
            .collect();
        if !pending.is_empty() {
            records.append(&mut pending);
            records.sort_by_key(|(rev, _, _)| *rev);
            records.dedup_by_key(|(rev, _, _)| *rev);
            records.truncate(limit);
        }
        Ok(records
            .into_iter()
            .map(|(_, tombstone, kv)| Event {
                r#type: if tombstone {
                    EventType::Delete
                } else {
                    EventType::Put
                } as i32,
                kv: Some(kv),
                prev_kv: None,
            })
            .collect())
    }

    /// Operations waiting for [`MvccStore::persist`].
    pub fn pending_len(&self) -> usize {
        self.pending.len()
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
        for (k, v) in self.auth.take_changes() {
            match v {
                Some(v) => batch.put(k, v),
                None => batch.delete(k),
            }
        }
        batch.put(
            meta::APPLIED_INDEX.to_vec(),
            self.applied_index.to_be_bytes().to_vec(),
        );
        self.backend.write(batch)?;
        self.in_use
            .fetch_add(std::mem::take(&mut self.pending_in_use), Ordering::Relaxed);
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

    /// The store's leases.
    pub fn leases(&self) -> &LeaseTable {
        &self.store.leases
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
        let record = encode_record(KIND_PUT, &kv);
        self.store.pending_in_use += (1 + REVISION_LEN + record.len()) as i64;
        self.store.pending.put(kv_key(rev), record);
        self.store.index.put(key, rev);
        self.store.leases.attach(key, lease);
        self.store.events.push(Event {
            r#type: EventType::Put as i32,
            kv: Some(kv.clone()),
            prev_kv: None,
        });
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
            let record = encode_record(KIND_TOMBSTONE, &kv);
            self.store.pending_in_use += (1 + REVISION_LEN + record.len()) as i64;
            self.store.pending.put(kv_key(rev), record);
            self.store.index.tombstone(key, rev);
            self.store.leases.detach(key);
            self.store.events.push(Event {
                r#type: EventType::Delete as i32,
                kv: Some(kv.clone()),
                prev_kv: None,
            });
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

    /// What the in-use figure must equal: the bytes of every revision record in the backend.
    fn stored_bytes(backend: &dyn Backend) -> i64 {
        backend
            .scan(&[KV_PREFIX], &[KV_END], None)
            .unwrap()
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as i64)
            .sum()
    }

    #[test]
    fn in_use_bytes_follow_writes_compactions_and_reopen() {
        let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let (mut store, _) = MvccStore::open(backend.clone()).unwrap();
        let mut index = 0;
        for i in 0..50u8 {
            index += 1;
            let mut w = store.write();
            w.put(&[b'k', i % 7], vec![i; 100 + i as usize], 0);
            w.commit(index);
            if i % 10 == 9 {
                index += 1;
                let mut w = store.write();
                w.delete_range(&KeyRange::Single(vec![b'k', 3]));
                w.commit(index);
            }
        }
        store.persist().unwrap();
        assert_eq!(store.in_use_bytes(), stored_bytes(&*backend));
        index += 1;
        let job = store.compact(store.revision() - 5, index).unwrap();
        store.persist().unwrap();
        let before = store.in_use_bytes();
        job.run(&*backend).unwrap();
        assert!(store.in_use_bytes() < before);
        assert_eq!(store.in_use_bytes(), stored_bytes(&*backend));
        let (reopened, _) = MvccStore::open(backend.clone()).unwrap();
        assert_eq!(reopened.in_use_bytes(), store.in_use_bytes());
    }

    #[test]
    fn stored_history_includes_writes_not_yet_persisted() {
        let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let (mut store, _) = MvccStore::open(backend.clone()).unwrap();
        let summary = |events: Vec<Event>| -> Vec<(i32, Vec<u8>, i64)> {
            events
                .into_iter()
                .map(|e| {
                    let kv = e.kv.unwrap();
                    (e.r#type, kv.key, kv.mod_revision)
                })
                .collect()
        };
        let mut index = 0;
        let mut step = |store: &mut MvccStore, i: u8| {
            index += 1;
            let mut w = store.write();
            w.put(b"a", vec![i], 0);
            w.put(b"b", vec![i], 0);
            if i % 2 == 1 {
                w.delete_range(&KeyRange::Single(b"a".to_vec()));
            }
            w.commit(index);
        };
        for i in 0..3 {
            step(&mut store, i);
        }
        store.persist().unwrap();
        for i in 3..6 {
            step(&mut store, i);
        }
        // Revisions 2..=4 are in the backend, 5..=7 only in the pending batch; the history
        // must read the same before and after they are persisted, limits included.
        let before: Vec<_> = (1..=12)
            .map(|l| summary(store.events_between(2, 7, l).unwrap()))
            .collect();
        let all = summary(store.events_between(2, 7, usize::MAX).unwrap());
        assert_eq!(all.len(), 15);
        assert_eq!(
            all.last(),
            Some(&(EventType::Delete as i32, b"a".to_vec(), 7))
        );
        assert_eq!(
            all.iter()
                .filter(|e| e.0 == EventType::Delete as i32)
                .count(),
            3
        );
        store.persist().unwrap();
        let after: Vec<_> = (1..=12)
            .map(|l| summary(store.events_between(2, 7, l).unwrap()))
            .collect();
        assert_eq!(before, after);
        assert_eq!(
            summary(store.events_between(2, 7, usize::MAX).unwrap()),
            all
        );
    }

    #[test]
    fn alarms_are_persisted_with_the_batch_and_restored() {
        let backend: Arc<dyn Backend> = Arc::new(MemBackend::new());
        let (mut store, _) = MvccStore::open(backend.clone()).unwrap();
        assert!(store.set_alarm(7, 1, true));
        assert!(!store.set_alarm(7, 1, true), "already active");
        assert!(store.set_alarm(9, 2, true));
        store.mark_applied(1);
        store.persist().unwrap();
        assert!(store.set_alarm(9, 2, false));
        store.mark_applied(2);
        store.persist().unwrap();
        let (reopened, _) = MvccStore::open(backend).unwrap();
        assert_eq!(
            reopened.alarms().iter().copied().collect::<Vec<_>>(),
            vec![(7, 1)]
        );
    }
}
