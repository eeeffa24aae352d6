//! etcd's `Lease` service: grant, revoke, keep-alive stream, time-to-live, list.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::perm::{self, Access};
use crate::kv::Applied;
use crate::node::Node;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse,
    LeaseLeasesRequest, LeaseLeasesResponse, LeaseRevokeRequest, LeaseRevokeResponse, LeaseStatus,
    LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};

/// The Lease service over one member.
#[derive(Clone)]
pub struct LeaseService {
    node: Arc<Node>,
}

impl LeaseService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

fn unexpected(applied: &Applied) -> Status {
    Status::internal(format!(
        "write path returned {applied:?} for a lease request"
    ))
}

/// Renews lease `id` (on the leader): its granted TTL, or 0 when it does not exist (etcd's
/// answer).
async fn keep_alive(node: &Node, id: i64) -> Result<LeaseKeepAliveResponse, Status> {
    let ttl = node.renew_lease(id).await?;
    Ok(LeaseKeepAliveResponse {
        header: Some(node.header(node.visible_revision())),
        id,
        ttl: ttl.unwrap_or(0),
    })
}

impl LeaseService {
    /// One keep-alive of lease `id`, as the stream answers it (the JSON gateway's stream).
    pub async fn renew(&self, id: i64) -> Result<LeaseKeepAliveResponse, Status> {
        keep_alive(&self.node, id).await
    }
}

#[tonic::async_trait]
impl Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<LeaseGrantRequest>,
    ) -> Result<Response<LeaseGrantResponse>, Status> {
        // etcd 3.4 grants leases to anyone; cairn asks for an authenticated user at least.
        let caller = self
            .node
            .authorize(&req, |t, user, _| perm::authenticated(t, user))?;
        let r = req.into_inner();
        match self.node.grant_lease(r.ttl, r.id, caller).await? {
            Applied::LeaseGrant(mut resp) => {
                resp.header = Some(self.node.header(resp.header.map_or(0, |h| h.revision)));
                Ok(Response::new(resp))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn lease_revoke(
        &self,
        req: Request<LeaseRevokeRequest>,
    ) -> Result<Response<LeaseRevokeResponse>, Status> {
        let id = req.get_ref().id;
        let caller = self
            .node
            .authorize(&req, |t, user, leases| perm::lease(t, user, id, leases))?;
        match self.node.revoke_lease(id, caller).await? {
            Applied::LeaseRevoke(mut resp) => {
                resp.header = Some(self.node.header(resp.header.map_or(0, |h| h.revision)));
                Ok(Response::new(resp))
            }
            other => Err(unexpected(&other)),
        }
    }

    type LeaseKeepAliveStream = ReceiverStream<Result<LeaseKeepAliveResponse, Status>>;

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<LeaseKeepAliveRequest>>,
    ) -> Result<Response<Self::LeaseKeepAliveStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let node = self.node.clone();
        tokio::spawn(async move {
            while let Some(Ok(r)) = inbound.next().await {
                let resp = keep_alive(&node, r.id).await;
                let failed = resp.is_err();
                if tx.send(resp).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveResponse>, Status> {
        // Listing a lease's keys reads their names (etcd 3.4.26 closed that hole too).
        let (id, keys) = (req.get_ref().id, req.get_ref().keys);
        self.node.authorize(&req, |t, user, leases| {
            perm::authenticated(t, user)?;
            if keys {
                for key in leases.get(id).iter().flat_map(|l| &l.keys) {
                    perm::range(t, user, key, &[], Access::Read)?;
                }
            }
            Ok(())
        })?;
        let r = req.into_inner();
        let node = &self.node;
        let found = node.read(|snap| snap.store.leases().get(r.id).cloned());
        let remaining = match found {
            Some(_) => node.lease_remaining(r.id).await?,
            None => None,
        };
        let header = Some(node.header(node.visible_revision()));
        let resp = match found {
            Some(lease) => LeaseTimeToLiveResponse {
                header,
                id: r.id,
                ttl: remaining.unwrap_or(0),
                granted_ttl: lease.ttl,
                keys: if r.keys {
                    lease.keys.into_iter().collect()
                } else {
                    Vec::new()
                },
            },
            None => LeaseTimeToLiveResponse {
                header,
                id: r.id,
                ttl: -1,
                ..Default::default()
            },
        };
        Ok(Response::new(resp))
    }

    async fn lease_leases(
        &self,
        req: Request<LeaseLeasesRequest>,
    ) -> Result<Response<LeaseLeasesResponse>, Status> {
        self.node
            .authorize(&req, |t, user, _| perm::authenticated(t, user))?;
        let node = &self.node;
        let ids = node.read(|snap| snap.store.leases().ids());
        Ok(Response::new(LeaseLeasesResponse {
            header: Some(node.header(node.visible_revision())),
            leases: ids.into_iter().map(|id| LeaseStatus { id }).collect(),
        }))
    }
}
