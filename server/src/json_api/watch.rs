//! `/v3/watch` as grpc-gateway streams it: the request body is a sequence of JSON
//! `WatchRequest`s (one is enough for curl), the response a chunked sequence of
//! `{"result": WatchResponse}` lines for as long as the client stays. The first request must
//! parse before the response starts (a bad one is etcd's code-2 error); a later one that does
//! not parse ends the requests, not the watchers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use tonic::Code;

use crate::api::watch::WatchService;
use crate::node::Node;
use crate::proto::etcdserverpb::WatchRequest;

/// `/watch` under `prefix`; idle watchers that ask get progress every `progress_every`.
pub fn routes(prefix: &str, node: Arc<Node>, progress_every: Duration) -> Router {
    let service = WatchService::new(node, progress_every);
    Router::new().route(
        &format!("{prefix}/watch"),
        post(move |req: axum::extract::Request| {
            let service = service.clone();
            async move { watch(&service, req).await }
        }),
    )
}

async fn watch(service: &WatchService, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let creds = service.credentials(&super::codec::grpc_request(&parts, ()));
    let mut values = super::codec::Values::<WatchRequest>::new(body);
    let first = match values.next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => return super::codec::error(Code::Unknown, &e.to_string()),
        // No request at all: a stream with no watchers, as etcd keeps one open.
        None => WatchRequest::default(),
    };
    // The rest as they come; one that does not parse ends the requests (a half-close: the
    // watchers go on).
    let rest = futures::stream::unfold(values, |mut values| async move {
        let request = values.next().await?.ok()?;
        Some((Ok::<_, ()>(request), values))
    });
    let requests = Box::pin(futures::stream::once(async move { Ok(first) }).chain(rest));
    let responses = service.open(requests, creds);
    let lines = responses.map(|r| {
        Ok::<Bytes, std::convert::Infallible>(Bytes::from(match r {
            Ok(resp) => super::codec::result_line(&resp),
            Err(status) => super::codec::error_line(status.code(), status.message()),
        }))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response()
}
