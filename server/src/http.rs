//! etcd's HTTP endpoints: `/health` (etcd 3.4's JSON and status codes), `/livez` and `/readyz`
//! (etcd 3.5's probes), `/metrics` (Prometheus text), and on client URLs `/version` and the JSON
//! gateway (`/v3/...`, [`crate::json_api`]).
//!
//! They are served on every client URL, on the same port as gRPC (tonic accepts HTTP/1.1 next
//! to HTTP/2 and routes by path), and on each `--listen-metrics-urls` URL, so load balancers,
//! Kubernetes probes and Prometheus reach cairn-server exactly where they reach etcd.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tonic::service::Routes;

use crate::metrics::Metrics;
use crate::node::Node;

/// etcd's `AlarmType` numbers.
const ALARM_NOSPACE: i32 = 1;
const ALARM_CORRUPT: i32 = 2;

/// Go's `http.Error` and etcd's handlers answer with this content type.
const TEXT: &str = "text/plain; charset=utf-8";
/// client_golang's content type for the text format.
const METRICS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone)]
struct Endpoints {
    node: Arc<Node>,
    metrics: Arc<Metrics>,
}

/// Where the endpoints are served; etcd answers differently on the two kinds of listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// A client URL: etcd adds CORS headers there, and the port also carries gRPC.
    Client,
    /// A `--listen-metrics-urls` URL: HTTP only, no CORS headers.
    Metrics,
}

/// Everything one listener serves: the HTTP endpoints of `node`, and on client listeners
/// also `grpc`, tonic's routes of the gRPC services (tonic routes by path, so both share the
/// port). Unknown paths get gRPC's Unimplemented or a 404, by the client's content type.
pub fn routes(
    node: Arc<Node>,
    metrics: Arc<Metrics>,
    listener: Listener,
    grpc: Option<Routes>,
    watch_progress_every: std::time::Duration,
) -> Routes {
    let endpoints = Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Endpoints {
            node: node.clone(),
            metrics,
        });
    let endpoints = match listener {
        // `/version` and the JSON gateway are served where gRPC is, as etcd serves them.
        Listener::Client => endpoints
            .route("/version", get(version))
            .merge(crate::json_api::router(node, watch_progress_every))
            .layer(axum::middleware::map_response(cors)),
        Listener::Metrics => endpoints,
    };
    let router = match grpc {
        // tonic's own fallback is replaced below; merging keeps its service routes.
        Some(grpc) => grpc.into_axum_router().merge(endpoints),
        None => endpoints,
    };
    Routes::from(router.fallback(not_found))
}

/// etcd's `/version`: the server's release and the cluster's version.
async fn version() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            r#"{{"etcdserver":"{}","etcdcluster":"{}"}}"#,
            crate::config::ETCD_VERSION,
            crate::config::CLUSTER_VERSION
        ),
    )
        .into_response()
}

/// etcd's client handler allows every origin.
async fn cors(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    h.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    resp
}

/// Go's `http.Error`: the text plus a newline, as plain text that must not be sniffed.
fn go_error(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, TEXT),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{text}\n"),
    )
        .into_response()
}

/// Unknown paths: a gRPC client gets gRPC's Unimplemented, anyone else Go's 404 page.
async fn not_found(headers: HeaderMap) -> Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        return tonic::Status::unimplemented("")
            .into_http::<axum::body::Body>()
            .into_response();
    }
    go_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Why the member is unhealthy by etcd 3.4's rules: any active alarm, or no leader.
fn unhealthy_reason(node: &Node) -> Option<String> {
    let alarms = node.alarms();
    if let Some(a) = alarms.first() {
        let name = match a.alarm {
            ALARM_NOSPACE => "NOSPACE",
            ALARM_CORRUPT => "CORRUPT",
            _ => "NONE",
        };
        return Some(format!("alarm {name} raised by member {:x}", a.member_id));
    }
    if !node.has_leader() {
        return Some("no leader".to_string());
    }
    None
}

/// etcd 3.4: `{"health":"true"}` with 200, or `{"health":"false"}` through `http.Error` with
/// 503 (etcd 3.4 logs the reason rather than putting it in the body; so does cairn).
async fn health(State(e): State<Endpoints>) -> Response {
    match unhealthy_reason(&e.node) {
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TEXT)],
            r#"{"health":"true"}"#,
        )
            .into_response(),
        Some(reason) => {
            tracing::warn!(%reason, "/health error (status code 503)");
            go_error(StatusCode::SERVICE_UNAVAILABLE, r#"{"health":"false"}"#)
        }
    }
}

/// The process is up and answering: nothing short of a restart would help otherwise.
async fn livez() -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], "ok").into_response()
}

/// Ready to serve requests: no data corruption alarm, and a leader to order writes.
async fn readyz(State(e): State<Endpoints>) -> Response {
    let corrupt = e.node.alarms().iter().any(|a| a.alarm == ALARM_CORRUPT);
    let failed = if corrupt {
        Some("[-]data_corruption failed: alarm activated")
    } else if !e.node.has_leader() {
        Some("[-]linearizable_read failed: etcdserver: no leader")
    } else {
        None
    };
    match failed {
        None => (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], "ok").into_response(),
        Some(check) => {
            tracing::warn!(check, "/readyz failed");
            go_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{check}\nreadyz check failed"),
            )
        }
    }
}

async fn metrics_text(State(e): State<Endpoints>) -> Response {
    let node = e.node.clone();
    let metrics = e.metrics.clone();
    // Sizes and key counts read the store; keep that off the async workers.
    let text = tokio::task::spawn_blocking(move || metrics.encode(&node.scrape_state())).await;
    match text {
        Ok(text) => (StatusCode::OK, [(header::CONTENT_TYPE, METRICS_TEXT)], text).into_response(),
        Err(e) => go_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("collecting metrics failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::{MemBackend, MvccStore};

    fn endpoints() -> Endpoints {
        let (store, _) = MvccStore::open(Arc::new(MemBackend::new())).expect("store");
        let node = Node::start_for_test(store, 1024);
        Endpoints {
            metrics: node.metrics().clone(),
            node,
        }
    }

    async fn text(resp: Response) -> (StatusCode, String) {
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn alarms_make_health_and_readiness_fail_like_etcd() {
        let e = endpoints();
        assert_eq!(
            text(health(State(e.clone())).await).await,
            (StatusCode::OK, r#"{"health":"true"}"#.to_string())
        );
        e.node.shared().alarms.write().insert((7, ALARM_NOSPACE));
        let resp = health(State(e.clone())).await;
        assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            text(resp).await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "{\"health\":\"false\"}\n".to_string()
            )
        );
        assert_eq!(
            unhealthy_reason(&e.node).as_deref(),
            Some("alarm NOSPACE raised by member 7")
        );
        // NOSPACE still serves reads: ready. CORRUPT does not.
        assert_eq!(text(readyz(State(e.clone())).await).await.0, StatusCode::OK);
        e.node.shared().alarms.write().insert((7, ALARM_CORRUPT));
        let (status, body) = text(readyz(State(e.clone())).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.starts_with("[-]data_corruption failed"), "{body}");
        assert_eq!(text(livez().await).await.0, StatusCode::OK);

        let (status, body) = text(metrics_text(State(e.clone())).await).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("\netcd_server_quota_backend_bytes 1024\n"),
            "{body}"
        );
        e.node.shutdown();
    }
}
