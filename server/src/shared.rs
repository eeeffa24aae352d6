//! State shared by the read path and the write paths: the MVCC store, the revision readers
//! may see, alarms, the watch event log, the lessor and the metrics. Below the write paths and
//! the consensus layer, above `kv` and `mvcc`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::watch;

use crate::fatal::fatal;
use crate::lessor::Lessor;
use crate::metrics::Metrics;
use crate::mvcc::MvccStore;
use crate::watch::log::EventLog;

/// Limits that requests are checked against.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// Events the watch ring holds.
    pub watch_event_buffer: usize,
    /// `--quota-backend-bytes` (resolved to etcd's default when unset).
    pub quota_bytes: i64,
}

/// State shared by the read path and the write loop.
pub struct Shared {
    /// The store; the write loop holds the write lock only while applying.
    pub store: RwLock<MvccStore>,
    /// The newest revision that is durable, and so the newest readers may see.
    pub visible_rev: AtomicI64,
    /// The current raft term (1 while the member runs without replication).
    pub term: AtomicU64,
    /// The newest compaction revision whose deletions are finished.
    pub compacted: watch::Sender<i64>,
    /// Active alarms as (member ID, etcd `AlarmType` number); set and cleared only by applied
    /// Alarm commands, so every member agrees.
    pub alarms: RwLock<std::collections::BTreeSet<(u64, i32)>>,
    /// Recent applied events for watchers.
    pub events: EventLog,
    /// Announces each newly visible revision to watchers.
    pub revisions: watch::Sender<i64>,
    /// Lease deadlines, started and stopped as grants and revokes are applied.
    pub lessor: Lessor,
    /// Held shared by snapshots and HashKV while they read revisions from the backend, and
    /// exclusively by the compactor for each batch it deletes: what they read stays put.
    pub compaction_gate: Arc<tokio::sync::RwLock<()>>,
    /// The member's metrics, recorded by the write loop and the services.
    pub metrics: Arc<Metrics>,
}

impl Shared {
    /// The store with every applied write in its backend, for readers of the backend itself
    /// (hashes, snapshots): the replicated write path batches its backend writes.
    pub fn read_persisted(&self) -> RwLockReadGuard<'_, MvccStore> {
        let mut store = self.store.write();
        if let Err(e) = store.persist() {
            fatal(&e);
        }
        RwLockWriteGuard::downgrade(store)
    }

    /// Makes revision `rev` visible: its `events` to watchers, then the revision to readers.
    /// Called by the write paths once what they applied may be read.
    pub fn publish(&self, rev: i64, events: Vec<crate::proto::mvccpb::Event>) {
        self.events.push(events);
        self.visible_rev.store(rev, Ordering::Release);
        self.revisions.send_replace(rev);
    }

    /// Publishes the store's alarm set (changed only by applied Alarm commands) to readers of
    /// [`Shared::alarms`].
    pub fn sync_alarms(&self, alarms: &std::collections::BTreeSet<(u64, i32)>) {
        if *self.alarms.read() != *alarms {
            *self.alarms.write() = alarms.clone();
        }
    }

    /// The state of a member opening `store`; leases found on disk get a full TTL from now,
    /// as etcd does after a restart.
    pub fn new(
        store: MvccStore,
        pending: bool,
        limits: Limits,
        lessor: Lessor,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let compacted_rev = if pending { 0 } else { store.compact_revision() };
        for (id, lease) in store.leases().iter() {
            lessor.start(id, lease.ttl);
        }
        let current = store.revision();
        let alarms = RwLock::new(store.alarms().clone());
        Arc::new(Self {
            visible_rev: AtomicI64::new(store.revision()),
            store: RwLock::new(store),
            term: AtomicU64::new(1),
            compacted: watch::Sender::new(compacted_rev),
            events: EventLog::new(current, limits.watch_event_buffer),
            revisions: watch::Sender::new(current),
            alarms,
            compaction_gate: Arc::default(),
            metrics,
            lessor,
        })
    }
}
