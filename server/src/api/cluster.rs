//! etcd's `Cluster` service: list, add, remove, update and promote members. Changes go
//! through raft as membership changes (additions and removals) or commands (peer URL updates),
//! and a call returns once this member has applied its change.

use std::sync::Arc;

use prost::Message as _;
use raft::prelude::{ConfChangeType, ConfChangeV2};
use tonic::{Request, Response, Status};

use crate::consensus::membership::{conf_change, Membership};
use crate::identity;
use crate::node::{ConfChanges, Node};
use crate::proto::cairnpb::internal_request;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::{
    Member, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberListResponse,
    MemberPromoteRequest, MemberPromoteResponse, MemberRemoveRequest, MemberRemoveResponse,
    MemberUpdateRequest, MemberUpdateResponse,
};
use crate::{Error, EtcdError};

/// How long a proposed membership change may take to show before it is proposed again.
const CONF_CHANGE_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// A learner may be promoted once its log holds this share of the leader's (etcd's rule).
const LEARNER_READY_PERCENT: u64 = 90;

/// The Cluster service over one member.
#[derive(Clone)]
pub struct ClusterService {
    node: Arc<Node>,
}

impl ClusterService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn members(&self) -> Vec<Member> {
        self.node.cluster().membership.read().members()
    }

    /// etcd's cluster service header: cluster, member and term, no revision.
    fn header(&self) -> Option<crate::proto::etcdserverpb::ResponseHeader> {
        Some(self.node.header(0))
    }

    /// Membership changes need raft: a single member has no peers to add or remove.
    fn raft(&self) -> Result<ConfChanges<'_>, Status> {
        self.node.conf_changes().ok_or_else(|| {
            Status::failed_precondition(
                "cairn-server: this member runs alone (one member in --initial-cluster); \
                 membership changes need a cluster started with its members in --initial-cluster",
            )
        })
    }

    /// Proposes `change` and waits until `done` holds for the applied membership.
    async fn change(
        &self,
        raft: &ConfChanges<'_>,
        change: ConfChangeV2,
        done: impl Fn(&Membership) -> bool,
    ) -> Result<(), Status> {
        let cluster = self.node.cluster();
        let mut version = cluster.version.subscribe();
        // raft drops a membership change while another is pending (a new leader counts its
        // whole log as pending until applied) without telling the proposer: propose again
        // until it shows. Repeating a change is harmless (an addition of a member that exists,
        // or a removal of one that is gone, changes nothing).
        let applied = tokio::time::timeout(raft.timeout(), async {
            loop {
                match raft.propose(change.clone()).await {
                    // Between leaders: the retry below tries again.
                    Ok(()) | Err(Error::Etcd(EtcdError::NoLeader)) => {}
                    Err(e) => return Err(e),
                }
                let retry = tokio::time::sleep(CONF_CHANGE_RETRY);
                tokio::pin!(retry);
                loop {
                    if done(&cluster.membership.read()) {
                        return Ok(());
                    }
                    tokio::select! {
                        changed = version.changed() => if changed.is_err() {
                            return Err(Error::Etcd(EtcdError::Stopped));
                        },
                        () = &mut retry => break,
                    }
                }
            }
        })
        .await;
        match applied {
            Ok(res) => Ok(res?),
            Err(_) => Err(Error::Etcd(EtcdError::Timeout).into()),
        }
    }
}

/// Peer URLs as given, checked to be URLs and without trailing slashes.
fn peer_urls(urls: &[String]) -> Result<Vec<String>, Status> {
    if urls.is_empty() {
        return Err(Status::invalid_argument("etcdserver: no peer URLs given"));
    }
    urls.iter()
        .map(|u| {
            url::Url::parse(u)
                .map(|_| u.trim_end_matches('/').to_string())
                .map_err(|e| Status::invalid_argument(format!("invalid peer URL {u:?}: {e}")))
        })
        .collect()
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn member_add(
        &self,
        req: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        let r = req.into_inner();
        let raft = self.raft()?;
        let mut urls = peer_urls(&r.peer_ur_ls)?;
        urls.sort();
        if self
            .node
            .cluster()
            .membership
            .read()
            .with_peer_url(&urls)
            .is_some()
        {
            return Err(Error::Etcd(EtcdError::PeerUrlExists).into());
        }
        // etcd derives a new member's ID from its URLs and the time, so re-adding the same URLs
        // gives a new ID.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let id = identity::member_id(&urls, &now.to_string());
        let member = Member {
            id,
            name: String::new(),
            peer_ur_ls: urls,
            client_ur_ls: Vec::new(),
            is_learner: r.is_learner,
        };
        let kind = if r.is_learner {
            ConfChangeType::AddLearnerNode
        } else {
            ConfChangeType::AddNode
        };
        self.change(&raft, conf_change(kind, id, member.encode_to_vec()), |m| {
            m.get(id).is_some()
        })
        .await?;
        tracing::info!(member = %format!("{id:x}"), urls = ?member.peer_ur_ls, learner = r.is_learner, "added a member");
        Ok(Response::new(MemberAddResponse {
            header: self.header(),
            member: Some(member),
            members: self.members(),
        }))
    }

    async fn member_remove(
        &self,
        req: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        let id = req.into_inner().id;
        let raft = self.raft()?;
        if self.node.cluster().membership.read().get(id).is_none() {
            return Err(Error::Etcd(EtcdError::MemberNotFound).into());
        }
        self.change(
            &raft,
            conf_change(ConfChangeType::RemoveNode, id, Vec::new()),
            |m| m.get(id).is_none(),
        )
        .await?;
        tracing::info!(member = %format!("{id:x}"), "removed a member");
        Ok(Response::new(MemberRemoveResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_update(
        &self,
        req: Request<MemberUpdateRequest>,
    ) -> Result<Response<MemberUpdateResponse>, Status> {
        let mut r = req.into_inner();
        self.raft()?;
        if self.node.cluster().membership.read().get(r.id).is_none() {
            return Err(Error::Etcd(EtcdError::MemberNotFound).into());
        }
        r.peer_ur_ls = peer_urls(&r.peer_ur_ls)?;
        r.peer_ur_ls.sort();
        self.node
            .propose(internal_request::Request::MemberUpdate(r))
            .await?;
        Ok(Response::new(MemberUpdateResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_list(
        &self,
        req: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        if req.into_inner().linearizable {
            self.node.read_barrier().await?;
        }
        Ok(Response::new(MemberListResponse {
            header: self.header(),
            members: self.members(),
        }))
    }

    async fn member_promote(
        &self,
        req: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        let id = req.into_inner().id;
        let raft = self.raft()?;
        match self.node.cluster().membership.read().get(id) {
            None => return Err(Error::Etcd(EtcdError::MemberNotFound).into()),
            Some(m) if !m.is_learner => return Err(Error::Etcd(EtcdError::NotLearner).into()),
            Some(_) => {}
        }
        let status = raft.status();
        if !status.is_leader {
            // Only the leader knows how far the learner is.
            return Err(Error::Etcd(EtcdError::NotLeader).into());
        }
        let matched = status
            .matched
            .iter()
            .find(|(m, _)| *m == id)
            .map_or(0, |(_, i)| *i);
        if matched * 100 < status.commit * LEARNER_READY_PERCENT {
            return Err(Error::Etcd(EtcdError::LearnerNotReady).into());
        }
        self.change(
            &raft,
            conf_change(ConfChangeType::AddNode, id, Vec::new()),
            |m| m.get(id).is_some_and(|x| !x.is_learner),
        )
        .await?;
        Ok(Response::new(MemberPromoteResponse {
            header: self.header(),
            members: self.members(),
        }))
    }
}
