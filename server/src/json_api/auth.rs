//! The Auth service's JSON routes (etcd's `rpc.proto` annotations). The token
//! `/auth/authenticate` returns goes in later requests' `Authorization` header.

use std::sync::Arc;

use axum::Router;

use crate::api::auth::AuthService;
use crate::node::Node;
use crate::proto::etcdserverpb::auth_server::Auth;

/// `/auth/...` under `prefix`.
pub fn routes(prefix: &str, node: Arc<Node>) -> Router {
    let service = AuthService::new(node);
    super::codec::posts!(prefix, service,
        "/auth/enable" => auth_enable,
        "/auth/disable" => auth_disable,
        "/auth/status" => auth_status,
        "/auth/authenticate" => authenticate,
        "/auth/user/add" => user_add,
        "/auth/user/get" => user_get,
        "/auth/user/list" => user_list,
        "/auth/user/delete" => user_delete,
        "/auth/user/changepw" => user_change_password,
        "/auth/user/grant" => user_grant_role,
        "/auth/user/revoke" => user_revoke_role,
        "/auth/role/add" => role_add,
        "/auth/role/get" => role_get,
        "/auth/role/list" => role_list,
        "/auth/role/delete" => role_delete,
        "/auth/role/grant" => role_grant_permission,
        "/auth/role/revoke" => role_revoke_permission,
    )
}
