//! The write path of a member of a replicated cluster: commands go through raft
//! ([`crate::consensus::raft_node`]) and every member applies the committed ones, in log
//! order, through the same [`crate::kv::apply`] as a single member. The raft log is the
//! durable record: an entry is flushed there before it is applied, so the MVCC store is written
//! without a flush of its own and replayed from the log after a crash (as etcd replays its
//! WAL). A proposer waits for its own command to be applied on this member.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use prost::Message as _;
use raft::prelude::{ConfChangeType, ConfChangeV2, ConfState, Entry};
use tokio::sync::{oneshot, watch};

use crate::auth::Caller;
use crate::consensus::membership::Membership;
use crate::consensus::{Peers, RaftHandle, StateMachine};
use crate::fatal::fatal;
use crate::kv::{apply, Applied};
use crate::mvcc::{Backend, CompactionJob, MvccStore};
use crate::proto::cairnpb::{internal_request::Request, InternalRequest};
use crate::shared::Shared;
use crate::{Error, EtcdError};

type Waiter = oneshot::Sender<Result<Applied, Error>>;

/// Proposers waiting for their command, by proposal ID.
#[derive(Default)]
pub struct Waiters(Mutex<HashMap<u64, Waiter>>);

impl Waiters {
    fn take(&self, id: u64) -> Option<Waiter> {
        self.0.lock().remove(&id)
    }
}

/// Removes a proposer's waiter when it stops waiting (answered, timed out, or gone).
struct WaiterGuard<'a> {
    waiters: &'a Waiters,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.waiters.0.lock().remove(&self.id);
    }
}

/// Membership shared by the applier (which changes it) and the services (which read it).
pub struct ClusterState {
    /// The members as committed.
    pub membership: RwLock<Membership>,
    /// Bumped on every membership change, so callers can wait for theirs.
    pub version: watch::Sender<u64>,
    /// Set once this member has been removed from the cluster: it must stop.
    pub removed: Arc<watch::Sender<bool>>,
}

impl ClusterState {
    /// Starts from `membership`.
    pub fn new(membership: Membership) -> Arc<Self> {
        Arc::new(Self {
            membership: RwLock::new(membership),
            version: watch::Sender::new(0),
            removed: Arc::new(watch::Sender::new(false)),
        })
    }
}

/// Handle to the replicated write path.
pub struct Replicated {
    raft: RaftHandle,
    waiters: Arc<Waiters>,
    next_id: AtomicU64,
    applied: watch::Receiver<u64>,
    timeout: Duration,
    compactor: Mutex<Option<std::thread::JoinHandle<()>>>,
    jobs: Mutex<Option<std_mpsc::Sender<CompactionJob>>>,
}

/// What the applier needs besides the store.
pub struct ApplierParts {
    /// The store and everything readers see.
    pub shared: Arc<Shared>,
    /// Membership, changed by committed entries.
    pub cluster: Arc<ClusterState>,
    /// Where the membership is kept (the raft log's backend).
    pub raft_backend: Arc<dyn Backend>,
    /// The transport, told about members as they come and go.
    pub peers: Arc<Peers>,
    /// This member.
    pub member_id: u64,
}

impl Replicated {
    /// The write path over a started raft node. `applied` follows the applier's progress;
    /// proposals and reads give up after `timeout`.
    pub fn new(
        raft: RaftHandle,
        waiters: Arc<Waiters>,
        applied: watch::Receiver<u64>,
        timeout: Duration,
        member_id: u64,
        jobs: std_mpsc::Sender<CompactionJob>,
        compactor: std::thread::JoinHandle<()>,
    ) -> Self {
        // etcd's request IDs: the member's low 16 bits, then a time-based counter, so IDs stay
        // unique across members and restarts.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let first = ((member_id & 0xffff) << 48) | ((now_ms << 8) & ((1 << 48) - 1));
        Self {
            raft,
            waiters,
            next_id: AtomicU64::new(first),
            applied,
            timeout,
            compactor: Mutex::new(Some(compactor)),
            jobs: Mutex::new(Some(jobs)),
        }
    }

    /// How long proposals and reads wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The raft node.
    pub fn raft(&self) -> &RaftHandle {
        &self.raft
    }

    /// Proposes `request` and waits until this member has applied it.
    pub async fn propose(&self, request: Request, caller: Caller) -> Result<Applied, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiters.0.lock().insert(id, tx);
        let _guard = WaiterGuard {
            waiters: &self.waiters,
            id,
        };
        let data = InternalRequest {
            id,
            request: Some(request),
            auth_user: caller.user.unwrap_or_default(),
            auth_revision: caller.revision,
        }
        .encode_to_vec();
        let waiters = self.waiters.clone();
        let rejected = Box::new(move |e| {
            if let Some(w) = waiters.take(id) {
                let _ = w.send(Err(e));
            }
        });
        self.raft.propose(data, rejected).await?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::Etcd(EtcdError::Stopped)),
            Err(_) => Err(Error::Etcd(EtcdError::Timeout)),
        }
    }

    /// Waits until this member has applied everything committed when the call was made, as
    /// confirmed by the leader through a quorum (ReadIndex): reads after it are linearizable.
    pub async fn read_barrier(&self) -> Result<(), Error> {
        let index = match tokio::time::timeout(self.timeout, self.raft.read_index()).await {
            Ok(index) => index?,
            Err(_) => return Err(Error::Etcd(EtcdError::Timeout)),
        };
        self.wait_applied(index).await
    }

    /// Waits until this member has applied `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), Error> {
        let mut applied = self.applied.clone();
        let reached = tokio::time::timeout(self.timeout, async {
            applied.wait_for(|a| *a >= index).await.is_ok()
        })
        .await;
        match reached {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Etcd(EtcdError::Stopped)),
            Err(_) => Err(Error::Etcd(EtcdError::Timeout)),
        }
    }

    /// Stops the raft node, then the compactor once it is done.
    pub fn shutdown(&self) {
        self.raft.stop();
        self.jobs.lock().take();
        if let Some(t) = self.compactor.lock().take() {
            let _ = t.join();
        }
    }
}

/// Applies committed entries to the MVCC store (raft's state machine).
pub struct Applier {
    parts: ApplierParts,
    waiters: Arc<Waiters>,
    applied: watch::Sender<u64>,
    jobs: std_mpsc::Sender<CompactionJob>,
    /// Fetches the leader's image when raft sends a snapshot.
    installer: Box<dyn SnapshotInstaller>,
    /// When applied writes last went to the backend.
    persisted_at: Instant,
}

/// The raft log is the durable record, so applied writes reach the MVCC backend in groups, as
/// etcd commits its backend every 100 ms or 10,000 writes: one sled batch per raft Ready cost
/// each member two log-buffer writes and the thread hand-offs around them. Readers see what is
/// pending through the store's overlay; readers of the backend itself persist it first
/// ([`Shared::read_persisted`]).
const PERSIST_INTERVAL: Duration = Duration::from_millis(100);
/// See [`PERSIST_INTERVAL`].
const PERSIST_BATCH: usize = 10_000;

pub use crate::consensus::snapshot_install::SnapshotInstaller;

impl Applier {
    /// An applier reporting its progress on `applied` and answering `waiters`.
    pub fn new(
        parts: ApplierParts,
        waiters: Arc<Waiters>,
        applied: watch::Sender<u64>,
        jobs: std_mpsc::Sender<CompactionJob>,
        installer: Box<dyn SnapshotInstaller>,
    ) -> Self {
        Self {
            parts,
            waiters,
            applied,
            jobs,
            installer,
            persisted_at: Instant::now(),
        }
    }

    fn save_membership(&self) {
        let m = self.parts.cluster.membership.read();
        if let Err(e) = m.save(&*self.parts.raft_backend) {
            fatal(&e);
        }
        drop(m);
        self.parts.cluster.version.send_modify(|v| *v += 1);
    }

    /// Publishes what the store applied: events, the visible revision, alarms; writes it to
    /// the backend when `persist` is set or a group is due; starts the compactions, once
    /// durable.
    fn publish(&mut self, store: &mut MvccStore, new_jobs: &mut Vec<CompactionJob>, persist: bool) {
        let shared = &self.parts.shared;
        let due = persist
            || !new_jobs.is_empty()
            || store.pending_len() >= PERSIST_BATCH
            || self.persisted_at.elapsed() >= PERSIST_INTERVAL;
        if due {
            if let Err(e) = store.persist() {
                fatal(&e);
            }
            self.persisted_at = Instant::now();
        }
        if !new_jobs.is_empty() {
            // A compaction's deletions must never be durable before the compaction is.
            if let Err(e) = store.backend().flush() {
                fatal(&e);
            }
        }
        shared.publish(store.revision(), store.take_events());
        shared.sync_alarms(store.alarms());
        for job in new_jobs.drain(..) {
            let _ = self.jobs.send(job);
        }
    }
}

impl StateMachine for Applier {
    fn apply(&mut self, entries: &[Entry]) {
        let shared = self.parts.shared.clone();
        let mut answers: Vec<(Waiter, Result<Applied, Error>)> = Vec::new();
        let mut new_jobs = Vec::new();
        let mut membership_changed = false;
        let applied_count = entries.len() as u64;
        {
            let mut store = shared.store.write();
            for e in entries {
                if e.index <= store.applied_index() {
                    continue;
                }
                if e.data.is_empty() {
                    // A new leader's empty entry.
                    store.mark_applied(e.index);
                    continue;
                }
                let cmd = match InternalRequest::decode(e.data.as_ref()) {
                    Ok(cmd) => cmd,
                    Err(err) => fatal(&Error::Decode(err)),
                };
                match &cmd.request {
                    Some(Request::Compaction(_)) if store.has_pending() => {
                        // A compaction must never pass what readers see.
                        self.publish(&mut store, &mut new_jobs, true);
                    }
                    Some(Request::MemberAttributes(a)) => {
                        self.parts.cluster.membership.write().apply_attributes(a);
                        membership_changed = true;
                    }
                    Some(Request::MemberUpdate(u)) => {
                        self.parts.cluster.membership.write().apply_update(u);
                        if u.id != self.parts.member_id {
                            if let Some(url) = u.peer_ur_ls.first() {
                                if let Err(err) = self.parts.peers.add(u.id, url) {
                                    tracing::warn!(error = %err, "cannot reach the updated member");
                                }
                            }
                        }
                        membership_changed = true;
                    }
                    _ => {}
                }
                let revoked = match &cmd.request {
                    Some(Request::LeaseRevoke(r)) => Some(r.id),
                    _ => None,
                };
                let result = apply(&mut store, e.index, &cmd).map(|(applied, job)| {
                    new_jobs.extend(job);
                    applied
                });
                if let Err(err @ (Error::Storage(_) | Error::Decode(_) | Error::CorruptRecord)) =
                    &result
                {
                    fatal(err);
                }
                match (&result, revoked) {
                    (Ok(Applied::LeaseGrant(g)), _) => shared.lessor.start(g.id, g.ttl),
                    (Ok(_), Some(id)) => shared.lessor.stop(id),
                    _ => {}
                }
                if let Some(w) = self.waiters.take(cmd.id) {
                    answers.push((w, result));
                }
            }
            self.publish(&mut store, &mut new_jobs, false);
        }
        if membership_changed {
            self.save_membership();
        }
        shared.metrics.proposals_applied(applied_count);
        let applied = shared.store.read().applied_index();
        self.applied.send_replace(applied);
        for (w, result) in answers {
            let _ = w.send(result);
        }
    }

    fn apply_conf_change(&mut self, index: u64, change: &ConfChangeV2, _conf: &ConfState) {
        let me = self.parts.member_id;
        self.parts
            .cluster
            .membership
            .write()
            .apply_conf_change(change);
        for c in change.get_changes() {
            match c.get_change_type() {
                ConfChangeType::RemoveNode if c.node_id == me => {
                    tracing::warn!("this member was removed from the cluster");
                    self.parts.cluster.removed.send_replace(true);
                }
                ConfChangeType::RemoveNode => self.parts.peers.remove(c.node_id),
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode if c.node_id != me => {
                    let url = self
                        .parts
                        .cluster
                        .membership
                        .read()
                        .get(c.node_id)
                        .and_then(|m| m.peer_ur_ls.first().cloned());
                    if let Some(url) = url {
                        if let Err(e) = self.parts.peers.add(c.node_id, &url) {
                            tracing::warn!(error = %crate::error::chain(&e), member = %format!("{:x}", c.node_id), "cannot reach the new member");
                        }
                    }
                }
                _ => {}
            }
        }
        self.save_membership();
        let applied = {
            let mut store = self.parts.shared.store.write();
            if index > store.applied_index() {
                store.mark_applied(index);
                if let Err(e) = store.persist() {
                    fatal(&e);
                }
            }
            store.applied_index()
        };
        self.applied.send_replace(applied);
    }

    fn applied(&self) -> u64 {
        self.parts.shared.store.read().applied_index()
    }

    fn flush(&mut self) -> Result<(), Error> {
        let backend = self.parts.shared.read_persisted().backend().clone();
        self.persisted_at = Instant::now();
        backend.flush()
    }

    fn tick(&mut self) {
        // Writes applied just before the member went idle reach the backend too.
        if self.persisted_at.elapsed() < PERSIST_INTERVAL {
            return;
        }
        let shared = self.parts.shared.clone();
        let mut store = shared.store.write();
        if store.has_pending() {
            if let Err(e) = store.persist() {
                fatal(&e);
            }
        }
        self.persisted_at = Instant::now();
    }

    fn install_snapshot(&mut self, leader: u64, index: u64) -> Result<(), Error> {
        let shared = self.parts.shared.clone();
        let job = self.installer.install(&shared, leader, index)?;
        let applied = shared.store.read().applied_index();
        if applied < index {
            tracing::error!(
                applied,
                index,
                "the leader's image is older than the snapshot raft sent"
            );
            return Err(Error::CorruptRecord);
        }
        if let Some(job) = job {
            let _ = self.jobs.send(job);
        }
        self.applied.send_replace(applied);
        Ok(())
    }
}
