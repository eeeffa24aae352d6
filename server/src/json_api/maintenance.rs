//! The Maintenance service's JSON routes; Snapshot as a stream of `{"result": ...}` lines,
//! each a piece of the file with its `blob` in base64, as grpc-gateway streams it.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;

use crate::api::maintenance::MaintenanceService;
use crate::node::Node;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::SnapshotRequest;

/// `/maintenance/{alarm,status,defragment,hash,transfer-leadership}` under `prefix`
/// (`/maintenance/hash` is Hash, as etcd 3.4 answers it, though HashKV claims it too).
pub fn routes(prefix: &str, node: Arc<Node>) -> Router {
    let service = MaintenanceService::new(node);
    let snapshots = service.clone();
    let snapshot = Router::new().route(
        &format!("{prefix}/maintenance/snapshot"),
        axum::routing::post(move |req: axum::extract::Request| {
            let service = snapshots.clone();
            async move { snapshot(service, req).await }
        }),
    );
    snapshot.merge(super::codec::posts!(prefix, service,
        "/maintenance/alarm" => alarm,
        "/maintenance/status" => status,
        "/maintenance/defragment" => defragment,
        "/maintenance/hash" => hash,
        "/maintenance/transfer-leadership" => move_leader,
    ))
}

/// The snapshot stream. A refusal before the first piece (auth) is grpc-gateway's error line
/// with the error's HTTP status; one later ends the stream with an error line.
async fn snapshot(service: MaintenanceService, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    let request = super::codec::grpc_request(&parts, SnapshotRequest {});
    let mut pieces = match service.snapshot(request).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => return stream_error(&status),
    };
    let first = match pieces.next().await {
        Some(Err(status)) => return stream_error(&status),
        first => first,
    };
    let lines = futures::stream::iter(first)
        .chain(pieces)
        .scan(false, |failed, piece| {
            if *failed {
                return futures::future::ready(None);
            }
            let line = match piece {
                Ok(piece) => super::codec::result_line(&piece),
                Err(status) => {
                    *failed = true;
                    super::codec::error_line(status.code(), status.message())
                }
            };
            futures::future::ready(Some(Ok::<Bytes, std::convert::Infallible>(Bytes::from(
                line,
            ))))
        });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn stream_error(status: &tonic::Status) -> Response {
    (
        super::codec::http_status(status.code()),
        [(header::CONTENT_TYPE, "application/json")],
        super::codec::error_line(status.code(), status.message()),
    )
        .into_response()
}
