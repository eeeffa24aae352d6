//! etcd's JSON gateway on the client port: `POST /v3/kv/put`, `/v3/kv/range`, `/v3/auth/authenticate`, ... with the
//! request and response messages as protobuf JSON under their proto field names (int64 as
//! strings, bytes as base64), as etcd 3.4's grpc-gateway serves them, so curl lines, OpenStack's
//! etcd3gw and lua-resty-etcd work unchanged. Each route calls the gRPC service itself
//! (`api/`): one implementation of every call. One file per service maps its routes onto it,
//! through `codec.rs`. `/v3beta/` is an alias, as in etcd 3.4.

mod auth;
mod cluster;
mod codec;
mod kv;
mod lease;
mod maintenance;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::node::Node;

/// The versions etcd 3.4 serves the gateway under.
const PREFIXES: [&str; 2] = ["/v3", "/v3beta"];

/// Every route of the gateway over `node`; watchers that ask get progress every
/// `progress_every`.
pub fn router(node: Arc<Node>, progress_every: Duration) -> Router {
    let mut router = Router::new();
    for prefix in PREFIXES {
        router = router
            .merge(kv::routes(prefix, node.clone()))
            .merge(auth::routes(prefix, node.clone()))
            .merge(lease::routes(prefix, node.clone()))
            .merge(cluster::routes(prefix, node.clone()))
            .merge(maintenance::routes(prefix, node.clone()))
            .merge(watch::routes(prefix, node.clone(), progress_every))
            // grpc-gateway's answers for what it does not route.
            .route(
                &format!("{prefix}/{{*rest}}"),
                axum::routing::any(not_found),
            );
    }
    router.method_not_allowed_fallback(method_not_allowed)
}

/// grpc-gateway's plain-text answers (Go's `http.Error`).
fn plain(status: StatusCode, text: &'static str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        text,
    )
        .into_response()
}

async fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "Not Found\n")
}

async fn method_not_allowed() -> Response {
    plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n")
}
