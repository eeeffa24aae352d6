//! etcd's `KV` service: Range, Put, DeleteRange, Txn, Compact.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use crate::auth::perm::{self, Access};
use crate::auth::Caller;
use crate::kv::{range, txn, validate, Applied};
use crate::metrics::{MvccOps, TxnShape};
use crate::node::Node;
use crate::proto::cairnpb::{internal_request, InternalRequest};
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use crate::{Error, EtcdError};

/// The KV service over one member.
#[derive(Clone)]
pub struct KvService {
    node: Arc<Node>,
}

impl KvService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn header(&self, h: Option<ResponseHeader>) -> Option<ResponseHeader> {
        Some(self.node.header(h.map_or(0, |h| h.revision)))
    }

    /// Checks the size limit and proposes `request` through the write path.
    async fn propose(
        &self,
        request: internal_request::Request,
        caller: Caller,
    ) -> Result<Applied, Status> {
        let size = InternalRequest {
            id: u64::MAX,
            request: Some(request),
            ..Default::default()
        };
        if size.encoded_len() > self.node.limits().max_request_bytes {
            return Err(Error::Etcd(EtcdError::RequestTooLarge).into());
        }
        let request = size.request.expect("set above");
        Ok(self.node.propose_as(request, caller).await?)
    }
}

fn unexpected(applied: &Applied) -> Status {
    Status::internal(format!(
        "write path returned {applied:?} for another request kind"
    ))
}

#[tonic::async_trait]
impl Kv for KvService {
    async fn range(&self, req: Request<RangeRequest>) -> Result<Response<RangeResponse>, Status> {
        self.node.authorize(&req, |t, user, _| {
            let r = req.get_ref();
            perm::range(t, user, &r.key, &r.range_end, Access::Read)
        })?;
        let r = req.into_inner();
        validate::check_range(&r)?;
        if !r.serializable {
            self.node.read_barrier().await?;
        }
        let resp = self.node.read(|view| range::range(&view, &r));
        // etcd counts a range that reached the store even when it failed there.
        self.node.metrics().mvcc_ops(MvccOps::range());
        let mut resp = resp?;
        resp.header = self.header(resp.header);
        Ok(Response::new(resp))
    }

    async fn put(&self, req: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        let caller = self.node.authorize(&req, |t, user, leases| {
            perm::put(t, user, req.get_ref(), leases)
        })?;
        let r = req.into_inner();
        // etcd checks the quota before the request itself.
        self.node
            .check_quota(crate::kv::quota::put_cost(&r))
            .await?;
        validate::check_put(&r)?;
        let ops = MvccOps::put(&r);
        match self
            .propose(internal_request::Request::Put(r), caller)
            .await?
        {
            Applied::Put(mut resp) => {
                self.node.metrics().mvcc_ops(ops);
                resp.header = self.header(resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_range(
        &self,
        req: Request<DeleteRangeRequest>,
    ) -> Result<Response<DeleteRangeResponse>, Status> {
        let caller = self
            .node
            .authorize(&req, |t, user, _| perm::delete(t, user, req.get_ref()))?;
        let r = req.into_inner();
        validate::check_delete(&r)?;
        let ops = MvccOps::delete(&r);
        match self
            .propose(internal_request::Request::DeleteRange(r), caller)
            .await?
        {
            Applied::DeleteRange(mut resp) => {
                self.node.metrics().mvcc_ops(ops);
                resp.header = self.header(resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn txn(&self, req: Request<TxnRequest>) -> Result<Response<TxnResponse>, Status> {
        let caller = self.node.authorize(&req, |t, user, leases| {
            perm::txn(t, user, req.get_ref(), leases)
        })?;
        let r = req.into_inner();
        // Like etcd 3.4, every txn is checked, even one that writes nothing: with the database
        // at its quota, only Range and DeleteRange get through.
        self.node
            .check_quota(crate::kv::quota::txn_cost(&r))
            .await?;
        validate::check_txn(&r, self.node.limits().max_txn_ops)?;
        let read_only = validate::is_read_only(&r);
        let shape = TxnShape::of(&r, read_only);
        let mut resp = if read_only {
            // A read-only txn is linearizable, as in etcd.
            self.node.read_barrier().await?;
            self.node.read(|view| txn::read_only(&view, &r))?
        } else {
            match self
                .propose(internal_request::Request::Txn(r), caller)
                .await?
            {
                Applied::Txn(resp) => resp,
                other => return Err(unexpected(&other)),
            }
        };
        for ops in shape.mvcc_txns(&resp) {
            self.node.metrics().mvcc_ops(ops);
        }
        resp.header = self.header(resp.header);
        Ok(Response::new(resp))
    }

    async fn compact(
        &self,
        req: Request<CompactionRequest>,
    ) -> Result<Response<CompactionResponse>, Status> {
        // etcd 3.4 lets anyone compact; cairn asks for an authenticated user at least.
        let caller = self
            .node
            .authorize(&req, |t, user, _| perm::authenticated(t, user))?;
        let r = req.into_inner();
        let (rev, physical) = (r.revision, r.physical);
        match self
            .propose(internal_request::Request::Compaction(r), caller)
            .await?
        {
            Applied::Compaction(mut resp) => {
                if physical {
                    self.node.wait_compacted(rev).await?;
                }
                resp.header = self.header(resp.header);
                Ok(Response::new(resp))
            }
            other => Err(unexpected(&other)),
        }
    }
}
