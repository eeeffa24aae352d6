//! etcd's estimate of what a write adds to the database, checked against
//! `--quota-backend-bytes` before it is proposed ([`crate::node::Node::check_quota`]).

use crate::proto::etcdserverpb::{request_op, PutRequest, TxnRequest};

/// etcd's estimate of a key's metadata cost.
pub const KV_OVERHEAD: i64 = 256;
/// etcd's estimate of a lease's cost.
pub const LEASE_OVERHEAD: i64 = 64;

/// A put costs its key and value plus the metadata estimate.
pub fn put_cost(r: &PutRequest) -> i64 {
    KV_OVERHEAD + r.key.len() as i64 + r.value.len() as i64
}

/// A txn costs the puts of its costlier branch (deletes and reads cost nothing).
pub fn txn_cost(r: &TxnRequest) -> i64 {
    let branch = |ops: &[crate::proto::etcdserverpb::RequestOp]| -> i64 {
        ops.iter()
            .map(|op| match &op.request {
                Some(request_op::Request::RequestPut(p)) => put_cost(p),
                _ => 0,
            })
            .sum()
    };
    branch(&r.success).max(branch(&r.failure))
}
