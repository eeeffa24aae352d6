//! This member: the MVCC store, the revision readers may see, its identity, and the write path
//! that orders and applies commands. The gRPC services only talk to a [`Node`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use raft::prelude::ConfChangeV2;
use tokio::sync::watch;

use crate::auth::{self, AuthSettings, Caller};
use crate::consensus::membership::Membership;
use crate::consensus::{Peers, RaftStatus};
use crate::identity::Identity;
use crate::kv::{Applied, Snapshot};
use crate::lessor::Lessor;
use crate::metrics::{Metrics, ScrapeState};
use crate::mvcc::auth::AuthTable;
use crate::mvcc::lease::LeaseTable;
use crate::mvcc::MvccStore;
use crate::proto::cairnpb::internal_request::Request;
use crate::proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, ResponseHeader};
use crate::replicated::{ClusterState, Replicated};
pub use crate::shared::{Limits, Shared};
use crate::standalone::Standalone;
use crate::watch::log::EventLog;
use crate::{Error, EtcdError};

/// How commands are ordered: by this member alone, or through raft.
enum WritePath {
    Standalone(Standalone),
    Replicated(Replicated),
}

/// One cairn-server member.
pub struct Node {
    shared: Arc<Shared>,
    identity: Identity,
    limits: Limits,
    writer: WritePath,
    cluster: Arc<ClusterState>,
    peers: Option<Arc<Peers>>,
    auth: AuthSettings,
}

impl Node {
    /// Starts the single-member write path on `store`, first finishing any compaction a crash
    /// interrupted; events are recorded in `metrics`.
    pub fn start(
        store: MvccStore,
        pending: Option<crate::mvcc::CompactionJob>,
        identity: Identity,
        limits: Limits,
        lessor: Lessor,
        metrics: Arc<Metrics>,
        auth: AuthSettings,
    ) -> Arc<Self> {
        let shared = Shared::new(store, pending.is_some(), limits, lessor, metrics);
        // Without replication the member elects itself once, as a single etcd member does.
        shared.metrics.leader_changed();
        let writer = Standalone::start(shared.clone(), pending);
        let mut membership = Membership::default();
        membership.insert(crate::proto::etcdserverpb::Member {
            id: identity.member_id,
            ..Default::default()
        });
        Arc::new(Self {
            shared,
            identity,
            limits,
            writer: WritePath::Standalone(writer),
            cluster: ClusterState::new(membership),
            peers: None,
            auth,
        })
    }

    /// A member of a replicated cluster, over a started raft write path.
    pub fn replicated(
        shared: Arc<Shared>,
        identity: Identity,
        limits: Limits,
        writer: Replicated,
        cluster: Arc<ClusterState>,
        peers: Arc<Peers>,
        auth: AuthSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared,
            identity,
            limits,
            writer: WritePath::Replicated(writer),
            cluster,
            peers: Some(peers),
            auth,
        })
    }

    /// The raft write path, when the member is replicated.
    pub fn raft(&self) -> Option<&Replicated> {
        match &self.writer {
            WritePath::Replicated(r) => Some(r),
            WritePath::Standalone(_) => None,
        }
    }

    /// What membership changes need; `None` on a member that runs alone.
    pub fn conf_changes(&self) -> Option<ConfChanges<'_>> {
        self.raft().map(ConfChanges)
    }

    /// The membership.
    pub fn cluster(&self) -> &Arc<ClusterState> {
        &self.cluster
    }

    /// Who sent `req` (its token, else its client certificate's CN), after `check` passed
    /// against the auth state as of now; the caller to propose its command as.
    pub fn authorize<T>(
        &self,
        req: &tonic::Request<T>,
        check: impl FnOnce(&AuthTable, Option<&str>, &LeaseTable) -> Result<(), EtcdError>,
    ) -> Result<Caller, Error> {
        self.authorize_as(&self.credentials(req), check)
    }

    /// [`Node::authorize`] with credentials taken earlier (a watch stream's, at its start).
    pub fn authorize_as(
        &self,
        creds: &auth::Credentials,
        check: impl FnOnce(&AuthTable, Option<&str>, &LeaseTable) -> Result<(), EtcdError>,
    ) -> Result<Caller, Error> {
        let store = self.shared.store.read();
        let table = store.auth();
        let caller = auth::resolve(table, &self.auth.tokens, creds)?;
        check(table, caller.user(), store.leases())?;
        Ok(caller)
    }

    /// The credentials `req` carries: etcd's `token` metadata (or the JSON gateway's
    /// `Authorization` header), and the client certificate's CN when `--client-cert-auth`.
    pub fn credentials<T>(&self, req: &tonic::Request<T>) -> auth::Credentials {
        let meta = req.metadata();
        let token = ["token", "authorization"]
            .iter()
            .find_map(|k| meta.get(*k))
            .and_then(|v| v.to_str().ok())
            .map(|t| t.strip_prefix("Bearer ").unwrap_or(t).to_string());
        let common_name = if self.auth.cert_cn && token.is_none() {
            req.peer_certs()
                .and_then(|certs| certs.first().and_then(|c| auth::common_name(c)))
        } else {
            None
        };
        auth::Credentials { token, common_name }
    }

    /// How this member authenticates.
    pub fn auth_settings(&self) -> &AuthSettings {
        &self.auth
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

    /// Orders, applies and makes durable one command; resolves once it is durable (and, when
    /// replicated, committed by a quorum and applied on this member).
    pub async fn propose(&self, request: Request) -> Result<Applied, Error> {
        self.propose_as(request, Caller::default()).await
    }

    /// [`Node::propose`] for `caller`, whose permissions were checked at its auth revision
    /// (the apply checks again if auth changed since).
    pub async fn propose_as(&self, request: Request, caller: Caller) -> Result<Applied, Error> {
        match &self.writer {
            WritePath::Standalone(w) => w.propose(request, caller).await,
            WritePath::Replicated(w) => w.propose(request, caller).await,
        }
    }

    /// Waits until a read on this member sees every write acknowledged before the call, by
    /// any member (raft's ReadIndex); immediate on a single member.
    pub async fn read_barrier(&self) -> Result<(), Error> {
        match &self.writer {
            WritePath::Standalone(_) => Ok(()),
            WritePath::Replicated(w) => w.read_barrier().await,
        }
    }

    /// Lease keep-alive: renews lease `id` on the leader, which alone decides expiry (a
    /// follower forwards it). The granted TTL, or `None` when the lease is gone.
    pub async fn renew_lease(&self, id: i64) -> Result<Option<i64>, Error> {
        match self.leader_lease(id, true).await? {
            Some(found) => Ok(found.map(|(ttl, _)| ttl)),
            None => Ok(self.local_lease_ttl(id, true).map(|(ttl, _)| ttl)),
        }
    }

    /// Seconds left on lease `id` as the leader counts them.
    pub async fn lease_remaining(&self, id: i64) -> Result<Option<i64>, Error> {
        match self.leader_lease(id, false).await? {
            Some(found) => Ok(found.map(|(_, remaining)| remaining)),
            None => Ok(self.local_lease_ttl(id, false).map(|(_, r)| r)),
        }
    }

    /// Asks the leader about lease `id` when another member leads; `None` when this member
    /// decides itself.
    async fn leader_lease(
        &self,
        id: i64,
        renew: bool,
    ) -> Result<Option<Option<(i64, i64)>>, Error> {
        let (Some(raft), Some(peers)) = (self.raft(), &self.peers) else {
            return Ok(None);
        };
        let status = raft.raft().status();
        if status.is_leader {
            return Ok(None);
        }
        if status.leader == 0 {
            return Err(Error::Etcd(EtcdError::NoLeader));
        }
        let mut client = peers.client(status.leader).await?;
        let resp = client
            .lease_ttl(crate::proto::cairnpb::LeaseTtlRequest {
                cluster_id: self.identity.cluster_id,
                id,
                renew,
            })
            .await?
            .into_inner();
        Ok(Some(resp.found.then_some((resp.ttl, resp.remaining))))
    }

    /// This member's own deadline for lease `id`: (granted TTL, seconds left), renewed first
    /// when `renew`.
    pub fn local_lease_ttl(&self, id: i64, renew: bool) -> Option<(i64, i64)> {
        let ttl = self.read(|snap| snap.store.leases().get(id).map(|l| l.ttl))?;
        if renew && !self.shared.lessor.renew(id, ttl) {
            return None;
        }
        Some((ttl, self.shared.lessor.remaining(id)?))
    }

    /// The newest revision clients may see.
    pub fn visible_revision(&self) -> i64 {
        self.shared.visible_rev.load(Ordering::Acquire)
    }

    /// Notifications of newly visible revisions (for watchers).
    pub fn subscribe_revisions(&self) -> watch::Receiver<i64> {
        self.shared.revisions.subscribe()
    }

    /// Recent events held in memory.
    pub fn events(&self) -> &EventLog {
        &self.shared.events
    }

    /// Grants a lease: TTL and ID are settled here, existence is decided when applied.
    pub async fn grant_lease(&self, ttl: i64, id: i64, caller: Caller) -> Result<Applied, Error> {
        self.check_quota(crate::kv::quota::LEASE_OVERHEAD).await?;
        let (id, ttl) = {
            let store = self.shared.store.read();
            self.shared
                .lessor
                .prepare_grant(ttl, id, |x| store.leases().contains(x))?
        };
        // The deadline starts when the grant is applied (even if this caller goes away).
        self.propose_as(Request::LeaseGrant(LeaseGrantRequest { ttl, id }), caller)
            .await
    }

    /// Revokes a lease, deleting its keys in one revision.
    pub async fn revoke_lease(&self, id: i64, caller: Caller) -> Result<Applied, Error> {
        // The deadline stops when the revoke is applied.
        self.propose_as(Request::LeaseRevoke(LeaseRevokeRequest { id }), caller)
            .await
    }

    /// Revokes every lease past its deadline; run periodically by the member that decides
    /// expiry.
    pub async fn expire_leases(&self) {
        for id in self.shared.lessor.take_expired() {
            match self.revoke_lease(id, Caller::default()).await {
                Ok(_) => tracing::debug!(lease = id, "lease expired and was revoked"),
                Err(Error::Etcd(EtcdError::LeaseNotFound)) => self.shared.lessor.stop(id),
                Err(e) => {
                    tracing::warn!(lease = id, error = %crate::error::chain(&e), "revoking an expired lease failed, retrying");
                    self.shared.lessor.retry(id);
                }
            }
        }
    }

    /// Waits until the compaction at `rev` has physically freed its revisions.
    pub async fn wait_compacted(&self, rev: i64) -> Result<(), Error> {
        let mut rx = self.shared.compacted.subscribe();
        rx.wait_for(|done| *done >= rev)
            .await
            .map_err(|_| Error::Etcd(EtcdError::Stopped))?;
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

    /// etcd's quota check, made before proposing a command that costs `cost` bytes: when the
    /// bytes in use plus the cost reach `--quota-backend-bytes`, it raises NOSPACE through the
    /// write path (so every member records it) and refuses the request.
    ///
    /// The bytes in use ([`MvccStore::in_use_bytes`]) stand in for etcd's file size: sled's
    /// file size includes log segments it reclaims lazily, which would make the quota trip
    /// (or not) by accident of its garbage collection.
    pub async fn check_quota(&self, cost: i64) -> Result<(), Error> {
        let in_use = self.shared.store.read().in_use_bytes();
        if in_use + cost < self.limits.quota_bytes {
            return Ok(());
        }
        tracing::warn!(
            in_use,
            cost,
            quota = self.limits.quota_bytes,
            "backend quota exceeded, raising the NOSPACE alarm"
        );
        let activate = crate::proto::etcdserverpb::AlarmRequest {
            action: crate::proto::etcdserverpb::alarm_request::AlarmAction::Activate as i32,
            member_id: self.identity.member_id,
            alarm: crate::proto::etcdserverpb::AlarmType::Nospace as i32,
        };
        self.propose(Request::Alarm(activate)).await?;
        Err(Error::Etcd(EtcdError::NoSpace))
    }

    /// Returns the space compaction freed to the file system: waits for the compactions
    /// applied so far to finish deleting, then rewrites the backend with writers and readers
    /// held off (etcd's defragment blocks the member the same way).
    pub async fn defragment(&self) -> Result<(), Error> {
        let compact_rev = self.shared.store.read().compact_revision();
        self.wait_compacted(compact_rev).await?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let store = shared.store.write();
            let started = std::time::Instant::now();
            let before = store.backend().size()?;
            store.backend().defragment()?;
            shared.metrics.observe_defrag(started.elapsed());
            tracing::info!(
                before,
                after = store.backend().size()?,
                took = ?started.elapsed(),
                "defragmented the backend"
            );
            Ok(())
        })
        .await
        .map_err(|_| Error::Etcd(EtcdError::Stopped))?
    }

    /// Whether this member knows a leader (always, while it runs without replication).
    pub fn has_leader(&self) -> bool {
        self.leader_id() != 0
    }

    /// The leader's member ID (0: none known).
    pub fn leader_id(&self) -> u64 {
        match &self.writer {
            WritePath::Standalone(_) => self.identity.member_id,
            WritePath::Replicated(w) => w.raft().status().leader,
        }
    }

    /// Whether this member is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader_id() == self.identity.member_id
    }

    /// Hands leadership to member `target` and waits until it leads (etcd's MoveLeader: only
    /// the leader can, and only to a voting member).
    pub async fn move_leader(&self, target: u64) -> Result<(), Error> {
        let me = self.identity.member_id;
        let Some(raft) = self.raft() else {
            // The only member is the leader already.
            return if target == me {
                Ok(())
            } else {
                Err(Error::Etcd(EtcdError::BadLeaderTransferee))
            };
        };
        if !self.is_leader() {
            return Err(Error::Etcd(EtcdError::NotLeader));
        }
        let voter = self
            .cluster
            .membership
            .read()
            .get(target)
            .is_some_and(|m| !m.is_learner);
        if !voter {
            return Err(Error::Etcd(EtcdError::BadLeaderTransferee));
        }
        if target == me {
            return Ok(());
        }
        let mut status = raft.raft().subscribe();
        raft.raft().transfer_leader(target).await?;
        let moved = tokio::time::timeout(raft.timeout(), async {
            status.wait_for(|s| s.leader == target).await.is_ok()
        })
        .await;
        match moved {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Etcd(EtcdError::Stopped)),
            Err(_) => Err(Error::Etcd(EtcdError::Timeout)),
        }
    }

    /// Raft's view: (commit index, applied index, term).
    pub fn raft_progress(&self) -> (u64, u64, u64) {
        match &self.writer {
            WritePath::Standalone(_) => {
                let applied = self.shared.store.read().applied_index();
                (applied, applied, 1)
            }
            WritePath::Replicated(w) => {
                let s = w.raft().status();
                (s.commit, s.applied, s.term)
            }
        }
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
                store.in_use_bytes().max(0) as u64,
                store.backend().clone(),
            )
        };
        let db_size = backend
            .size()
            .inspect_err(|e| tracing::warn!(error = %crate::error::chain(&e), "cannot read the backend size"))
            .ok();
        ScrapeState {
            has_leader: self.has_leader(),
            is_leader: self.is_leader(),
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

    /// A member on `store` with etcd's default limits, for unit tests of code above the node.
    #[cfg(test)]
    pub(crate) fn start_for_test(store: MvccStore, quota_bytes: i64) -> Arc<Self> {
        let identity = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        let limits = Limits {
            max_request_bytes: 1 << 20,
            max_txn_ops: 128,
            watch_event_buffer: 1024,
            quota_bytes,
        };
        let lessor = Lessor::new(Arc::new(crate::lessor::SystemClock), 2, 100, 1000);
        let metrics = Arc::new(Metrics::new(
            2,
            quota_bytes,
            crate::config::MetricsLevel::Basic,
        ));
        let auth = AuthSettings {
            tokens: auth::token::Tokens::from_flags("simple", 300).expect("simple tokens"),
            bcrypt_cost: 4,
            cert_cn: false,
        };
        Self::start(store, None, identity, limits, lessor, metrics, auth)
    }

    /// Stops accepting writes and waits until everything applied is durable.
    pub fn shutdown(&self) {
        match &self.writer {
            WritePath::Standalone(w) => w.shutdown(),
            WritePath::Replicated(w) => {
                w.shutdown();
                let backend = self.shared.read_persisted().backend().clone();
                if let Err(e) = backend.flush() {
                    tracing::warn!(error = %crate::error::chain(&e), "flushing the store at shutdown failed (the raft log replays it)");
                }
            }
        }
    }
}

impl crate::consensus::LeaderState for Node {
    fn lease_ttl(&self, id: i64, renew: bool) -> Result<Option<(i64, i64)>, Error> {
        if !self.is_leader() {
            return Err(Error::Etcd(EtcdError::NotLeader));
        }
        Ok(self.local_lease_ttl(id, renew))
    }

    fn snapshot(
        &self,
    ) -> futures::future::BoxFuture<
        'static,
        tokio::sync::mpsc::Receiver<crate::maintenance::snapshot::Chunk>,
    > {
        Box::pin(crate::maintenance::snapshot::stream(
            self.shared.clone(),
            crate::maintenance::snapshot::Secrets::Include,
        ))
    }

    fn membership(&self) -> crate::proto::cairnpb::Membership {
        self.cluster.membership.read().to_record()
    }

    fn is_removed(&self, id: u64) -> bool {
        self.cluster.membership.read().is_removed(id)
    }
}

/// Membership changes through raft, as the Cluster service makes them.
pub struct ConfChanges<'a>(&'a Replicated);

impl ConfChanges<'_> {
    /// Proposes `change`; raft drops it without a word while another change is pending.
    pub async fn propose(&self, change: ConfChangeV2) -> Result<(), Error> {
        self.0.raft().propose_conf_change(change).await
    }

    /// How long a change may take.
    pub fn timeout(&self) -> std::time::Duration {
        self.0.timeout()
    }

    /// Raft's view: the leader, the commit index and, on the leader, the followers' progress.
    pub fn status(&self) -> RaftStatus {
        self.0.raft().status()
    }
}
