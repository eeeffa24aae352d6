//! The KV service's JSON routes (etcd 3.4's `rpc.proto` annotations).

use std::sync::Arc;

use axum::Router;

use crate::api::kv::KvService;
use crate::node::Node;
use crate::proto::etcdserverpb::kv_server::Kv;

/// `/kv/range`, `/kv/put`, `/kv/deleterange`, `/kv/txn`, `/kv/compaction` under `prefix`.
pub fn routes(prefix: &str, node: Arc<Node>) -> Router {
    let service = KvService::new(node);
    super::codec::posts!(prefix, service,
        "/kv/range" => range,
        "/kv/put" => put,
        "/kv/deleterange" => delete_range,
        "/kv/txn" => txn,
        "/kv/compaction" => compact,
    )
}
