//! The Lease service's JSON routes (etcd 3.4's, with its `/kv/lease/...` aliases), and the
//! keep-alive stream: each `{"ID": ...}` of the body renewed in turn, each answer a
//! `{"result": ...}` line.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tonic::Code;

use crate::api::lease::LeaseService;
use crate::node::Node;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::LeaseKeepAliveRequest;

/// `/lease/grant`, `/lease/revoke`, `/lease/timetolive`, `/lease/leases` (and the
/// `/kv/lease/...` forms of the last three) under `prefix`.
pub fn routes(prefix: &str, node: Arc<Node>) -> Router {
    let service = LeaseService::new(node);
    let renewing = service.clone();
    let keepalive = Router::new().route(
        &format!("{prefix}/lease/keepalive"),
        axum::routing::post(move |body: Body| {
            let service = renewing.clone();
            async move { keep_alive(service, body).await }
        }),
    );
    keepalive.merge(super::codec::posts!(prefix, service,
        "/lease/grant" => lease_grant,
        "/lease/revoke" => lease_revoke,
        "/kv/lease/revoke" => lease_revoke,
        "/lease/timetolive" => lease_time_to_live,
        "/kv/lease/timetolive" => lease_time_to_live,
        "/lease/leases" => lease_leases,
        "/kv/lease/leases" => lease_leases,
    ))
}

/// The keep-alive stream: the first request must parse before the answer starts.
async fn keep_alive(service: LeaseService, body: Body) -> Response {
    let mut requests = super::codec::Values::<LeaseKeepAliveRequest>::new(body);
    let first = match requests.next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => return super::codec::error(Code::Unknown, &e.to_string()),
        None => {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "",
            )
                .into_response()
        }
    };
    let lines = futures::stream::unfold(
        (Some(first), requests, service, false),
        |(next, mut requests, service, failed)| async move {
            if failed {
                return None;
            }
            let request = match next {
                Some(r) => r,
                None => requests.next().await?.ok()?,
            };
            let (line, failed) = match service.renew(request.id).await {
                Ok(resp) => (super::codec::result_line(&resp), false),
                Err(status) => (
                    super::codec::error_line(status.code(), status.message()),
                    true,
                ),
            };
            Some((
                Ok::<Bytes, std::convert::Infallible>(Bytes::from(line)),
                (None, requests, service, failed),
            ))
        },
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response()
}
