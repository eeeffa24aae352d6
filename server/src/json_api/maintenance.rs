//! The Maintenance service's JSON routes. Snapshot is a stream and is not served here yet.

use std::sync::Arc;

use axum::Router;

use crate::api::maintenance::MaintenanceService;
use crate::node::Node;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;

/// `/maintenance/{alarm,status,defragment,hash,transfer-leadership}` under `prefix`
/// (`/maintenance/hash` is Hash, as etcd 3.4 answers it, though HashKV claims it too).
pub fn routes(prefix: &str, node: Arc<Node>) -> Router {
    let service = MaintenanceService::new(node);
    super::codec::posts!(prefix, service,
        "/maintenance/alarm" => alarm,
        "/maintenance/status" => status,
        "/maintenance/defragment" => defragment,
        "/maintenance/hash" => hash,
        "/maintenance/transfer-leadership" => move_leader,
    )
}
