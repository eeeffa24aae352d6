//! This member: the MVCC store, the revision readers may see, its identity, and the write path
//! that orders and applies commands. The gRPC services only talk to a [`Node`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::identity::Identity;
use crate::kv::{Applied, Snapshot};
use crate::metrics::{Metrics, ScrapeState};
use crate::mvcc::MvccStore;
use crate::proto::cairnpb::internal_request::Request;
use crate::proto::etcdserverpb::ResponseHeader;
use crate::standalone::Standalone;
use crate::Error;

/// Limits that requests are checked against.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
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
    /// The member's metrics, recorded by the write loop and the services.
    pub metrics: Arc<Metrics>,
}

/// One cairn-server member.
pub struct Node {
    shared: Arc<Shared>,
    identity: Identity,
    limits: Limits,
    writer: Standalone,
}

impl Node {
    /// Starts the write path on `store`, first finishing any compaction a crash interrupted;
    /// events are recorded in `metrics`.
    pub fn start(
        store: MvccStore,
        pending: Option<crate::mvcc::CompactionJob>,
        identity: Identity,
        limits: Limits,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let compacted_rev = if pending.is_some() {
            0
        } else {
            store.compact_revision()
        };
        let shared = Arc::new(Shared {
            visible_rev: AtomicI64::new(store.revision()),
            store: RwLock::new(store),
            term: AtomicU64::new(1),
            compacted: watch::Sender::new(compacted_rev),
            alarms: RwLock::default(),
            metrics,
        });
        // Without replication the member elects itself once, as a single etcd member does.
        shared.metrics.leader_changed();
        let writer = Standalone::start(shared.clone(), pending);
        Arc::new(Self {
            shared,
            identity,
            limits,
            writer,
        })
    }

    /// The limits requests must respect.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs `f` on the committed state as of the newest durable revision.
    pub fn read<T>(&self, f: impl FnOnce(Snapshot<'_>) -> T) -> T {
        let store = self.shared.store.read();
        let rev = self.shared.visible_rev.load(Ordering::Acquire);
        f(Snapshot { store: &store, rev })
    }

    /// Orders, applies and makes durable one command; resolves once it is durable.
    pub async fn propose(&self, request: Request) -> Result<Applied, Error> {
        self.writer.propose(request).await
    }

    /// Waits until the compaction at `rev` has physically freed its revisions.
    pub async fn wait_compacted(&self, rev: i64) -> Result<(), Error> {
        let mut rx = self.shared.compacted.subscribe();
        rx.wait_for(|done| *done >= rev)
            .await
            .map_err(|_| Error::Stopped)?;
        Ok(())
    }

    /// Fills the member-level fields of a response header (the revision is the applier's).
    pub fn header(&self, revision: i64) -> ResponseHeader {
        ResponseHeader {
            cluster_id: self.identity.cluster_id,
            member_id: self.identity.member_id,
            revision,
            raft_term: self.shared.term.load(Ordering::Relaxed),
        }
    }

    /// Active alarms, as the Alarm API and `/health` report them.
    pub fn alarms(&self) -> Vec<crate::proto::etcdserverpb::AlarmMember> {
        self.shared
            .alarms
            .read()
            .iter()
            .map(|&(member_id, alarm)| crate::proto::etcdserverpb::AlarmMember { member_id, alarm })
            .collect()
    }

    /// Whether this member knows a leader (always, while it runs without replication).
    pub fn has_leader(&self) -> bool {
        true
    }

    /// The member's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// What `/metrics` reports about the member right now.
    pub fn scrape_state(&self) -> ScrapeState {
        let (live_keys, in_use, backend) = {
            let store = self.shared.store.read();
            (
                store.live_keys() as u64,
                store.bytes_in_use(),
                store.backend().clone(),
            )
        };
        let db_size = backend
            .size()
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read the backend size"))
            .ok();
        ScrapeState {
            has_leader: self.has_leader(),
            // Without replication a member with a leader is the leader.
            is_leader: self.has_leader(),
            db_size,
            db_size_in_use: in_use,
            keys: live_keys,
        }
    }

    /// State shared with the write loop.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This member's identity.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// Stops accepting writes and waits until everything applied is durable.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}
