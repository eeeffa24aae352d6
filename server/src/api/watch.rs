//! etcd's `Watch` service: one bidirectional stream carrying many watchers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::perm::{self, Access};
use crate::auth::Credentials;
use crate::mvcc::KeyRange;
use crate::node::Node;
use crate::proto::etcdserverpb::watch_create_request::FilterType;
use crate::proto::etcdserverpb::watch_request::RequestUnion;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use crate::watch::watcher::{self, Sink};
use crate::watch::{Filters, WatchSpec};

/// Responses buffered per stream before watchers wait for the client.
const STREAM_BUFFER: usize = 256;

/// The Watch service over one member.
#[derive(Clone)]
pub struct WatchService {
    node: Arc<Node>,
    progress_every: Duration,
}

impl WatchService {
    /// Serves `node`; idle watchers that asked for it get progress every `progress_every`.
    pub fn new(node: Arc<Node>, progress_every: Duration) -> Self {
        Self {
            node,
            progress_every,
        }
    }
}

/// The watchers of one stream.
struct Stream {
    node: Arc<Node>,
    out: Sink,
    watchers: HashMap<i64, JoinHandle<()>>,
    next_id: i64,
    progress_every: Duration,
    /// The stream's credentials, checked at every create as etcd does.
    creds: Credentials,
}

impl Stream {
    fn created(&self, id: i64, rev: i64, cancel_reason: Option<&str>) -> WatchResponse {
        WatchResponse {
            header: Some(self.node.header(rev)),
            watch_id: id,
            created: true,
            canceled: cancel_reason.is_some(),
            cancel_reason: cancel_reason.unwrap_or_default().to_string(),
            ..Default::default()
        }
    }

    async fn create(&mut self, c: WatchCreateRequest) -> bool {
        self.watchers.retain(|_, h| !h.is_finished());
        let current = self.node.visible_revision();
        let key = if c.key.is_empty() { vec![0] } else { c.key };
        let permitted = self.node.authorize_as(&self.creds, |t, user, _| {
            perm::range(t, user, &key, &c.range_end, Access::Read)
        });
        if permitted.is_err() {
            // etcd 3.4's words: the whole gRPC error's text.
            let reason = "rpc error: code = PermissionDenied desc = etcdserver: permission denied";
            let resp = self.created(-1, current, Some(reason));
            return self.out.send(Ok(resp)).await.is_ok();
        }
        let range = KeyRange::new(&key, &c.range_end);
        if let KeyRange::Between(s, e) = &range {
            if s >= e {
                let resp = self.created(-1, current, Some("mvcc: watcher range is empty"));
                return self.out.send(Ok(resp)).await.is_ok();
            }
        }
        let id = if c.watch_id != 0 {
            if self.watchers.contains_key(&c.watch_id) {
                let resp = self.created(
                    -1,
                    current,
                    Some("mvcc: duplicate watch ID provided on the WatchStream"),
                );
                return self.out.send(Ok(resp)).await.is_ok();
            }
            c.watch_id
        } else {
            while self.watchers.contains_key(&self.next_id) {
                self.next_id += 1;
            }
            self.next_id += 1;
            self.next_id - 1
        };
        let filters = Filters {
            no_put: c.filters.contains(&(FilterType::Noput as i32)),
            no_delete: c.filters.contains(&(FilterType::Nodelete as i32)),
        };
        let start = if c.start_revision > 0 {
            c.start_revision
        } else {
            current + 1
        };
        if self
            .out
            .send(Ok(self.created(id, current, None)))
            .await
            .is_err()
        {
            return false;
        }
        let compacted = self.node.read(|snap| snap.store.compact_revision());
        if c.start_revision > 0 && c.start_revision < compacted {
            let resp = WatchResponse {
                header: Some(self.node.header(0)),
                watch_id: id,
                compact_revision: compacted,
                canceled: true,
                ..Default::default()
            };
            return self.out.send(Ok(resp)).await.is_ok();
        }
        let spec = WatchSpec {
            id,
            range,
            start,
            filters,
            prev_kv: c.prev_kv,
            progress_notify: c.progress_notify,
            fragment: c.fragment,
        };
        let task = tokio::spawn(watcher::run(
            self.node.clone(),
            spec,
            self.out.clone(),
            self.progress_every,
        ));
        self.watchers.insert(id, task);
        true
    }

    async fn cancel(&mut self, id: i64) -> bool {
        let Some(task) = self.watchers.remove(&id) else {
            return true;
        };
        task.abort();
        let resp = WatchResponse {
            header: Some(self.node.header(self.node.visible_revision())),
            watch_id: id,
            canceled: true,
            ..Default::default()
        };
        self.out.send(Ok(resp)).await.is_ok()
    }

    async fn progress(&self) -> bool {
        // Not tied to a watcher: etcd answers with watch ID -1.
        let resp = WatchResponse {
            header: Some(self.node.header(self.node.visible_revision())),
            watch_id: -1,
            ..Default::default()
        };
        self.out.send(Ok(resp)).await.is_ok()
    }

    /// Serves the requests of `inbound`. When the client closes its side (the stream ends
    /// without an error), the watchers keep sending until it goes away, as etcd's do: a
    /// half-closed gRPC stream, or a JSON gateway request whose body is complete.
    async fn serve<S, E>(mut self, mut inbound: S)
    where
        S: futures::Stream<Item = Result<WatchRequest, E>> + Unpin + Send,
        E: Send,
    {
        let mut half_closed = true;
        while let Some(msg) = inbound.next().await {
            let Ok(msg) = msg else {
                half_closed = false;
                break;
            };
            let ok = match msg.request_union {
                Some(RequestUnion::CreateRequest(c)) => self.create(c).await,
                Some(RequestUnion::CancelRequest(c)) => self.cancel(c.watch_id).await,
                Some(RequestUnion::ProgressRequest(_)) => self.progress().await,
                None => true,
            };
            if !ok {
                half_closed = false;
                break;
            }
        }
        if half_closed {
            self.out.closed().await;
        }
        for (_, task) in self.watchers.drain() {
            task.abort();
        }
    }
}

impl WatchService {
    /// The credentials `req` carries (a JSON gateway request's, turned into gRPC's).
    pub fn credentials<T>(&self, req: &Request<T>) -> Credentials {
        self.node.credentials(req)
    }

    /// A watch stream fed by `inbound` (the JSON gateway's requests); its responses, until
    /// the returned stream is dropped.
    pub fn open<S, E>(
        &self,
        inbound: S,
        creds: Credentials,
    ) -> ReceiverStream<Result<WatchResponse, Status>>
    where
        S: futures::Stream<Item = Result<WatchRequest, E>> + Unpin + Send + 'static,
        E: Send + 'static,
    {
        let (out, rx) = mpsc::channel(STREAM_BUFFER);
        let stream = Stream {
            node: self.node.clone(),
            out,
            watchers: HashMap::new(),
            next_id: 0,
            progress_every: self.progress_every,
            creds,
        };
        tokio::spawn(stream.serve(inbound));
        ReceiverStream::new(rx)
    }
}

#[tonic::async_trait]
impl Watch for WatchService {
    type WatchStream = ReceiverStream<Result<WatchResponse, Status>>;

    async fn watch(
        &self,
        req: Request<Streaming<WatchRequest>>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let creds = self.node.credentials(&req);
        Ok(Response::new(self.open(req.into_inner(), creds)))
    }
}
