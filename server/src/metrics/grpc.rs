//! A tower layer around the gRPC services that records what go-grpc-prometheus records for
//! etcd: `grpc_server_started_total`, `grpc_server_handled_total` (by status code),
//! `grpc_server_handling_seconds` (with `--metrics extensive`), and the client traffic in
//! `etcd_network_client_grpc_{sent,received}_bytes_total`.
//!
//! It sits under tonic's HTTP/2 server, so it sees every RPC, unary or streaming: an RPC is
//! started when its request arrives and handled when its response stream ends, with the
//! `grpc-status` of the trailers (or of the headers, for errors sent without a body). Requests
//! that are not gRPC (the HTTP endpoints on the same port) pass through untouched. Client
//! traffic is the bytes of the gRPC bodies: each message with its 5-byte gRPC frame header.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::body::Body as TonicBody;
use tower::{Layer, Service};

use super::{GrpcCodeLabels, GrpcLabels, Metrics};

/// etcd's gRPC services and methods with their kind, as go-grpc-prometheus labels them.
/// Every RPC of these is pre-registered at zero, as etcd does.
const METHODS: &[(&str, &str, &str)] = &[
    ("etcdserverpb.KV", "Range", "unary"),
    ("etcdserverpb.KV", "Put", "unary"),
    ("etcdserverpb.KV", "DeleteRange", "unary"),
    ("etcdserverpb.KV", "Txn", "unary"),
    ("etcdserverpb.KV", "Compact", "unary"),
    ("etcdserverpb.Watch", "Watch", "bidi_stream"),
    ("etcdserverpb.Lease", "LeaseGrant", "unary"),
    ("etcdserverpb.Lease", "LeaseRevoke", "unary"),
    ("etcdserverpb.Lease", "LeaseKeepAlive", "bidi_stream"),
    ("etcdserverpb.Lease", "LeaseTimeToLive", "unary"),
    ("etcdserverpb.Lease", "LeaseLeases", "unary"),
    ("etcdserverpb.Cluster", "MemberAdd", "unary"),
    ("etcdserverpb.Cluster", "MemberRemove", "unary"),
    ("etcdserverpb.Cluster", "MemberUpdate", "unary"),
    ("etcdserverpb.Cluster", "MemberList", "unary"),
    ("etcdserverpb.Cluster", "MemberPromote", "unary"),
    ("etcdserverpb.Maintenance", "Alarm", "unary"),
    ("etcdserverpb.Maintenance", "Status", "unary"),
    ("etcdserverpb.Maintenance", "Defragment", "unary"),
    ("etcdserverpb.Maintenance", "Hash", "unary"),
    ("etcdserverpb.Maintenance", "HashKV", "unary"),
    ("etcdserverpb.Maintenance", "Snapshot", "server_stream"),
    ("etcdserverpb.Maintenance", "MoveLeader", "unary"),
];

/// gRPC status codes by number, with the names go-grpc-prometheus uses as `grpc_code`.
const CODES: [&str; 17] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// The label name of a `grpc-status` value.
fn code_name(status: Option<&str>) -> &'static str {
    status
        .and_then(|s| s.trim().parse::<usize>().ok())
        .and_then(|n| CODES.get(n).copied())
        .unwrap_or("Unknown")
}

/// Series at zero for every known RPC, so rates and ratios exist before the first call.
pub(super) fn initialize(m: &Metrics) {
    for (service, method, kind) in METHODS {
        let labels = rpc_labels(service, method, kind);
        let _ = m.grpc_started.get_or_create(&labels);
        for code in CODES {
            let _ = m.grpc_handled.get_or_create(&with_code(&labels, code));
        }
        if let Some(h) = &m.grpc_handling {
            let _ = h.get_or_create(&labels);
        }
    }
}

fn rpc_labels(service: &str, method: &str, kind: &str) -> GrpcLabels {
    [
        ("grpc_method", method.to_string()),
        ("grpc_service", service.to_string()),
        ("grpc_type", kind.to_string()),
    ]
}

fn with_code(labels: &GrpcLabels, code: &str) -> GrpcCodeLabels {
    [
        ("grpc_code", code.to_string()),
        labels[0].clone(),
        labels[1].clone(),
        labels[2].clone(),
    ]
}

/// The labels of the RPC at `path` (`/package.Service/Method`), with the kind from etcd's
/// table. A path outside the table counts under `unknown`: labels never come from what a
/// client chose to send, so clients cannot grow the metric series.
fn labels_of(path: &str) -> GrpcLabels {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", ""));
    match METHODS
        .iter()
        .find(|(s, m, _)| *s == service && *m == method)
    {
        Some((s, m, kind)) => rpc_labels(s, m, kind),
        None => rpc_labels("unknown", "unknown", "unary"),
    }
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Wraps a service (tonic's routes) with the gRPC metrics of one member.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: Arc<Metrics>,
}

impl GrpcMetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] makes.
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type BoxFuture<T> = Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<TonicBody>> for GrpcMetricsService<S>
where
    S: Service<Request<TonicBody>, Response = Response<TonicBody>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<TonicBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<TonicBody>) -> Self::Future {
        if !is_grpc(req.headers()) {
            return Box::pin(self.inner.call(req));
        }
        let metrics = self.metrics.clone();
        let labels = labels_of(req.uri().path());
        metrics.grpc_started.get_or_create(&labels).inc();
        let req = req.map(|body| {
            TonicBody::new(Counted {
                inner: body,
                metrics: metrics.clone(),
                direction: Direction::Received,
                rpc: None,
            })
        });
        let rpc = Rpc {
            metrics: metrics.clone(),
            labels,
            started: Instant::now(),
            done: false,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            let mut rpc = rpc;
            if let Some(status) = resp.headers().get("grpc-status") {
                // An error without a body ("trailers only"): handled now.
                rpc.finish(status.to_str().ok());
            } else if !resp.status().is_success() {
                rpc.finish(None);
            }
            Ok(resp.map(|body| {
                TonicBody::new(Counted {
                    inner: body,
                    metrics,
                    direction: Direction::Sent,
                    rpc: Some(rpc),
                })
            }))
        })
    }
}

/// One RPC in flight, recorded as handled exactly once.
struct Rpc {
    metrics: Arc<Metrics>,
    labels: GrpcLabels,
    started: Instant,
    done: bool,
}

impl Rpc {
    fn finish(&mut self, status: Option<&str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let code = code_name(status);
        self.metrics
            .grpc_handled
            .get_or_create(&with_code(&self.labels, code))
            .inc();
        if let Some(h) = &self.metrics.grpc_handling {
            h.get_or_create(&self.labels)
                .observe(self.started.elapsed().as_secs_f64());
        }
    }
}

impl Drop for Rpc {
    fn drop(&mut self) {
        // The response stream was dropped before it ended: the client went away.
        self.finish(Some("1"));
    }
}

enum Direction {
    Received,
    Sent,
}

/// A body that counts its bytes and, for responses, ends its RPC when the trailers pass.
struct Counted {
    inner: TonicBody,
    metrics: Arc<Metrics>,
    direction: Direction,
    rpc: Option<Rpc>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    match this.direction {
                        Direction::Received => this.metrics.grpc_received_bytes.inc_by(n),
                        Direction::Sent => this.metrics.grpc_sent_bytes.inc_by(n),
                    };
                }
                if let (Some(trailers), Some(rpc)) = (frame.trailers_ref(), &mut this.rpc) {
                    rpc.finish(trailers.get("grpc-status").and_then(|v| v.to_str().ok()));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(rpc) = &mut this.rpc {
                    rpc.finish(None);
                }
            }
            Poll::Ready(None) => {
                if let Some(rpc) = &mut this.rpc {
                    // Ended without trailers: no status was sent.
                    rpc.finish(None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use super::*;
    use crate::config::MetricsLevel;

    /// A response body that yields given frames.
    struct Frames(VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    /// Answers every request with a response built by `respond`.
    #[derive(Clone)]
    struct Answer(fn() -> Response<TonicBody>);

    impl Service<Request<TonicBody>> for Answer {
        type Response = Response<TonicBody>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<TonicBody>) -> Self::Future {
            std::future::ready(Ok((self.0)()))
        }
    }

    fn streamed() -> Response<TonicBody> {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        Response::new(TonicBody::new(Frames(VecDeque::from([
            Frame::data(Bytes::from_static(b"hello")),
            Frame::data(Bytes::from_static(b"world!")),
            Frame::trailers(trailers),
        ]))))
    }

    fn trailers_only() -> Response<TonicBody> {
        let mut resp = Response::new(TonicBody::empty());
        resp.headers_mut()
            .insert("grpc-status", "5".parse().unwrap());
        resp
    }

    fn request(path: &str, grpc: bool) -> Request<TonicBody> {
        let mut req = Request::new(TonicBody::empty());
        *req.uri_mut() = path.parse().unwrap();
        let ct = if grpc {
            "application/grpc"
        } else {
            "text/plain"
        };
        req.headers_mut()
            .insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        req
    }

    fn handled(m: &Metrics, path: &str, code: &str) -> u64 {
        m.grpc_handled
            .get_or_create(&with_code(&labels_of(path), code))
            .get()
    }

    #[tokio::test]
    async fn streams_errors_cancellations_and_plain_http() {
        let m = Arc::new(Metrics::new(1, 1, MetricsLevel::Extensive));
        let layer = GrpcMetricsLayer::new(m.clone());
        let watch = "/etcdserverpb.Watch/Watch";

        let mut svc = layer.layer(Answer(streamed));
        let resp = svc.call(request(watch, true)).await.unwrap();
        assert_eq!(m.grpc_started.get_or_create(&labels_of(watch)).get(), 1);
        assert_eq!(handled(&m, watch, "OK"), 0, "still streaming");
        let body = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"helloworld!");
        assert_eq!(handled(&m, watch, "OK"), 1);
        assert_eq!(m.grpc_sent_bytes.get(), 11);
        let text = m.encode(&super::super::ScrapeState::default());
        assert!(text.contains(
            "grpc_server_handling_seconds_count{grpc_method=\"Watch\",\
             grpc_service=\"etcdserverpb.Watch\",grpc_type=\"bidi_stream\"} 1\n"
        ));

        // Dropped before its end: the client went away.
        let resp = svc.call(request(watch, true)).await.unwrap();
        drop(resp);
        assert_eq!(handled(&m, watch, "Canceled"), 1);

        let range = "/etcdserverpb.KV/Range";
        let mut svc = layer.layer(Answer(trailers_only));
        let resp = svc.call(request(range, true)).await.unwrap();
        assert_eq!(handled(&m, range, "NotFound"), 1);
        drop(resp);
        assert_eq!(handled(&m, range, "Canceled"), 0, "recorded once");

        // Plain HTTP on the same port is not an RPC.
        let _ = svc.call(request("/metrics", false)).await.unwrap();
        assert!(m.grpc_started.get(&labels_of("/metrics")).is_none());
    }

    #[test]
    fn labels_and_codes_follow_go_grpc_prometheus() {
        let l = labels_of("/etcdserverpb.Watch/Watch");
        assert_eq!(l[2].1, "bidi_stream");
        let l = labels_of("/etcdserverpb.KV/Range");
        assert_eq!(
            (l[0].1.as_str(), l[1].1.as_str()),
            ("Range", "etcdserverpb.KV")
        );
        assert_eq!(labels_of("/x.Y/Z")[2].1, "unary");
        assert_eq!(code_name(Some("0")), "OK");
        assert_eq!(code_name(Some("8")), "ResourceExhausted");
        assert_eq!(code_name(Some("99")), "Unknown");
        assert_eq!(code_name(None), "Unknown");
    }
}
