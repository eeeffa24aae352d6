//! The Cluster service's JSON routes.

use std::sync::Arc;

use axum::Router;

use crate::api::cluster::ClusterService;
use crate::node::Node;
use crate::proto::etcdserverpb::cluster_server::Cluster;

/// `/cluster/member/{add,remove,update,list,promote}` under `prefix`.
pub fn routes(prefix: &str, node: Arc<Node>) -> Router {
    let service = ClusterService::new(node);
    super::codec::posts!(prefix, service,
        "/cluster/member/add" => member_add,
        "/cluster/member/remove" => member_remove,
        "/cluster/member/update" => member_update,
        "/cluster/member/list" => member_list,
        "/cluster/member/promote" => member_promote,
    )
}
