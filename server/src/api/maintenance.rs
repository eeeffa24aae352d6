//! etcd's `Maintenance` service: Status, Alarm, Defragment, Hash, HashKV, Snapshot and
//! MoveLeader, for a member running without replication.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::auth::perm;
use crate::kv::Applied;
use crate::maintenance::{hash, snapshot, API_VERSION};
use crate::node::Node;
use crate::proto::cairnpb::internal_request;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, DefragmentRequest, DefragmentResponse,
    HashKvRequest, HashKvResponse, HashRequest, HashResponse, MoveLeaderRequest,
    MoveLeaderResponse, SnapshotRequest, SnapshotResponse, StatusRequest, StatusResponse,
};
use crate::EtcdError;

/// The Maintenance service over one member.
#[derive(Clone)]
pub struct MaintenanceService {
    node: Arc<Node>,
}

impl MaintenanceService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// etcd 3.4 keeps Defragment, Hash, HashKV and Snapshot to administrators, and words the
    /// refusal in its auth store's own terms.
    fn admin<T>(&self, req: &Request<T>) -> Result<(), Status> {
        self.node.authorize(req, |t, user, _| {
            perm::admin(t, user).map_err(EtcdError::as_maintenance)
        })?;
        Ok(())
    }

    fn current_rev(&self) -> i64 {
        self.node.shared().visible_rev.load(Ordering::Acquire)
    }
}

/// An alarm as etcd's Status lists it (the text form of its `AlarmMember`).
pub fn alarm_text(a: &AlarmMember) -> String {
    let name = AlarmType::try_from(a.alarm)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| a.alarm.to_string());
    format!("memberID:{} alarm:{} ", a.member_id, name)
}

type SnapshotStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Maintenance for MaintenanceService {
    async fn alarm(&self, req: Request<AlarmRequest>) -> Result<Response<AlarmResponse>, Status> {
        let r = req.into_inner();
        match self
            .node
            .propose(internal_request::Request::Alarm(r))
            .await?
        {
            Applied::Alarm(mut resp) => {
                // etcd 3.4 answers alarms with no header at all (`{}` as JSON).
                resp.header = None;
                Ok(Response::new(resp))
            }
            other => Err(Status::internal(format!(
                "write path returned {other:?} for an alarm"
            ))),
        }
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (db_size, in_use, applied) = {
            let store = self.node.shared().store.read();
            (
                store.backend().size()?,
                store.in_use_bytes(),
                store.applied_index(),
            )
        };
        let header = self.node.header(self.current_rev());
        let me = self.node.identity().member_id;
        let (commit, raft_applied, term) = self.node.raft_progress();
        let is_learner = self
            .node
            .cluster()
            .membership
            .read()
            .get(me)
            .is_some_and(|m| m.is_learner);
        Ok(Response::new(StatusResponse {
            version: API_VERSION.to_string(),
            db_size: i64::try_from(db_size).unwrap_or(i64::MAX),
            leader: self.node.leader_id(),
            raft_index: commit.max(applied),
            raft_term: term,
            raft_applied_index: raft_applied.max(applied),
            errors: self.node.alarms().iter().map(alarm_text).collect(),
            db_size_in_use: in_use,
            is_learner,
            header: Some(header),
        }))
    }

    async fn defragment(
        &self,
        req: Request<DefragmentRequest>,
    ) -> Result<Response<DefragmentResponse>, Status> {
        self.admin(&req)?;
        self.node.defragment().await?;
        Ok(Response::new(DefragmentResponse {
            header: Some(self.node.header(self.current_rev())),
        }))
    }

    async fn hash(&self, req: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        self.admin(&req)?;
        let (hash, rev) = hash::hash_backend(self.node.shared().clone()).await?;
        Ok(Response::new(HashResponse {
            header: Some(self.node.header(rev)),
            hash,
        }))
    }

    async fn hash_kv(
        &self,
        req: Request<HashKvRequest>,
    ) -> Result<Response<HashKvResponse>, Status> {
        self.admin(&req)?;
        let rev = req.into_inner().revision;
        let h = hash::hash_kv(self.node.shared().clone(), rev).await?;
        Ok(Response::new(HashKvResponse {
            header: Some(self.node.header(h.revision)),
            hash: h.hash,
            // etcd's store starts with compaction revision -1 ("never compacted").
            compact_revision: if h.compact_revision == 0 {
                -1
            } else {
                h.compact_revision
            },
            hash_revision: h.hash_revision,
        }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        self.admin(&req)?;
        let rx = snapshot::stream(self.node.shared().clone(), snapshot::Secrets::Exclude).await;
        let out = ReceiverStream::new(rx).map(move |chunk| {
            let (blob, remaining_bytes) = chunk?;
            // etcd 3.4 sends the pieces without a header.
            Ok(SnapshotResponse {
                header: None,
                remaining_bytes,
                blob,
                version: String::new(),
            })
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn move_leader(
        &self,
        req: Request<MoveLeaderRequest>,
    ) -> Result<Response<MoveLeaderResponse>, Status> {
        self.node.move_leader(req.into_inner().target_id).await?;
        Ok(Response::new(MoveLeaderResponse {
            header: Some(self.node.header(self.current_rev())),
        }))
    }
}
