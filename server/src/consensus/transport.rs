//! Raft messages between members over gRPC (the `cairnpb.Peer` service on
//! `--listen-peer-urls`). Each peer has a queue and a task that keeps one long-lived client
//! stream open and sends whatever has queued up as one batch (batching and pipelining appends).
//! Outgoing connections bind to this member's own peer IP, so that a partition between two
//! members can be made by address. TLS (mTLS with `--peer-*` flags) comes from the channel's
//! TLS settings. A peer of another cluster is refused by cluster ID.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use protobuf::Message as _;
use raft::prelude::Message;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{ClientTlsConfig, Endpoint, Uri};
use tonic::{Request, Response, Status, Streaming};

use crate::metrics::Metrics;
use crate::proto::cairnpb::peer_client::PeerClient;
use crate::proto::cairnpb::peer_server::Peer;
use crate::proto::cairnpb::{
    LeaseTtlRequest, LeaseTtlResponse, MembersRequest, MembersResponse, RaftBatch, SnapshotChunk,
    SnapshotRequest, StreamAck,
};
use crate::{Error, EtcdError};

/// Messages queued per peer before new ones are dropped (raft resends what is lost).
const PEER_QUEUE: usize = 4096;
/// Most messages sent in one batch.
const MAX_BATCH: usize = 256;
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a member serves to its peers beyond raft messages: the leader's lease deadlines and
/// its state machine image.
pub trait LeaderState: Send + Sync + 'static {
    /// Renews lease `id` (`renew`) or only reads it: its granted TTL and seconds left, `None`
    /// when there is no such lease. Fails when this member is not the leader.
    fn lease_ttl(&self, id: i64, renew: bool) -> Result<Option<(i64, i64)>, Error>;
    /// Streams the state machine image in chunks (cairn's snapshot format).
    fn snapshot(
        &self,
    ) -> futures::future::BoxFuture<'static, mpsc::Receiver<crate::maintenance::snapshot::Chunk>>;
    /// The membership as this member knows it.
    fn membership(&self) -> crate::proto::cairnpb::Membership;
    /// Whether member `id` was removed from the cluster.
    fn is_removed(&self, id: u64) -> bool;
}

/// The receiving side: decodes batches from peers of this cluster into the raft node's inbox.
#[derive(Clone)]
pub struct PeerService {
    cluster_id: u64,
    member_id: u64,
    inbox: mpsc::Sender<Message>,
    metrics: Option<Arc<Metrics>>,
    leader: Option<Arc<dyn LeaderState>>,
}

impl std::fmt::Debug for PeerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerService")
            .field("cluster_id", &self.cluster_id)
            .field("member_id", &self.member_id)
            .finish()
    }
}

impl PeerService {
    fn check_cluster(&self, cluster_id: u64, from: u64) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "member {from:x} belongs to cluster {cluster_id:x}, this member to cluster {:x}: check --initial-cluster-token and --initial-cluster",
                self.cluster_id
            )));
        }
        Ok(())
    }

    fn leader_state(&self) -> Result<&Arc<dyn LeaderState>, Status> {
        self.leader
            .as_ref()
            .ok_or_else(|| Status::unavailable("etcdserver: server stopped"))
    }
}

impl PeerService {
    /// Delivers messages for `member_id` of `cluster_id` into `inbox`.
    pub fn new(cluster_id: u64, member_id: u64, inbox: mpsc::Sender<Message>) -> Self {
        Self {
            cluster_id,
            member_id,
            inbox,
            metrics: None,
            leader: None,
        }
    }

    /// Answers lease and snapshot requests from `leader`.
    pub fn with_leader_state(mut self, leader: Arc<dyn LeaderState>) -> Self {
        self.leader = Some(leader);
        self
    }

    /// Counts the bytes received from each peer in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    type SnapshotStream = ReceiverStream<Result<SnapshotChunk, Status>>;

    async fn lease_ttl(
        &self,
        req: Request<LeaseTtlRequest>,
    ) -> Result<Response<LeaseTtlResponse>, Status> {
        let req = req.into_inner();
        self.check_cluster(req.cluster_id, 0)?;
        let found = self.leader_state()?.lease_ttl(req.id, req.renew)?;
        Ok(Response::new(match found {
            Some((ttl, remaining)) => LeaseTtlResponse {
                found: true,
                ttl,
                remaining,
            },
            None => LeaseTtlResponse::default(),
        }))
    }

    async fn members(
        &self,
        _req: Request<MembersRequest>,
    ) -> Result<Response<MembersResponse>, Status> {
        Ok(Response::new(MembersResponse {
            cluster_id: self.cluster_id,
            member_id: self.member_id,
            membership: Some(self.leader_state()?.membership()),
        }))
    }

    async fn snapshot(
        &self,
        req: Request<SnapshotRequest>,
    ) -> Result<Response<Self::SnapshotStream>, Status> {
        let req = req.into_inner();
        self.check_cluster(req.cluster_id, req.from)?;
        let mut chunks = self.leader_state()?.snapshot().await;
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            while let Some(chunk) = chunks.recv().await {
                let item = chunk.map(|(data, _)| SnapshotChunk { data });
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn stream(
        &self,
        req: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<StreamAck>, Status> {
        let mut batches = req.into_inner();
        while let Some(batch) = batches.message().await? {
            self.check_cluster(batch.cluster_id, batch.from)?;
            if self
                .leader
                .as_ref()
                .is_some_and(|l| l.is_removed(batch.from))
            {
                return Err(Status::permission_denied(REMOVED));
            }
            if batch.to != self.member_id {
                return Err(Status::failed_precondition(format!(
                    "message for member {:x} reached member {:x}: check the peer URLs",
                    batch.to, self.member_id
                )));
            }
            if let Some(m) = &self.metrics {
                m.peer_received(
                    batch.from,
                    batch.messages.iter().map(|r| r.len() as u64).sum(),
                );
            }
            for raw in &batch.messages {
                let msg = Message::parse_from_bytes(raw).map_err(|e| {
                    Status::invalid_argument(format!("undecodable raft message: {e}"))
                })?;
                if self.inbox.send(msg).await.is_err() {
                    return Err(Status::unavailable("etcdserver: server stopped"));
                }
            }
        }
        Ok(Response::new(StreamAck {}))
    }
}

/// How to reach a peer at `url`.
fn endpoint(config: &TransportConfig, url: &str) -> Result<Endpoint, Error> {
    let mut endpoint = Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5));
    if let Some(tls) = &config.tls {
        endpoint = endpoint.tls_config(tls.clone())?;
    }
    Ok(endpoint)
}

async fn connect_endpoint(
    config: &TransportConfig,
    endpoint: Endpoint,
) -> Result<PeerClient<tonic::transport::Channel>, Error> {
    let local = config.local_ip;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |uri: Uri| connect_from(local, uri)))
        .await?;
    Ok(PeerClient::new(channel))
}

/// A client for the peer service at `url` (not necessarily a known member: used while
/// bootstrapping, to ask the cluster about itself).
pub async fn connect(
    config: &TransportConfig,
    url: &str,
) -> Result<PeerClient<tonic::transport::Channel>, Error> {
    connect_endpoint(config, endpoint(config, url)?).await
}

/// Connects to `uri` from `local` (when set), so the peer sees this member's own address.
async fn connect_from(local: Option<IpAddr>, uri: Uri) -> std::io::Result<TokioIo<TcpStream>> {
    let host = uri
        .host()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(2380);
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await?
        .find(|a| local.is_none_or(|l| l.is_ipv4() == a.is_ipv4()))
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} did not resolve"),
            )
        })?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(TokioIo::new(stream))
}

/// Who this member is and how it reaches peers.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This member's cluster.
    pub cluster_id: u64,
    /// This member.
    pub member_id: u64,
    /// The address outgoing peer connections bind to (this member's peer IP).
    pub local_ip: Option<IpAddr>,
    /// TLS towards peers (`--peer-cert-file`, `--peer-key-file`, `--peer-trusted-ca-file`).
    pub tls: Option<ClientTlsConfig>,
    /// Where bytes sent and failed sends per peer are counted (etcd's `etcd_network_peer_*`).
    pub metrics: Option<Arc<Metrics>>,
    /// Set when a peer says this member was removed from the cluster (it may have missed
    /// the committed removal itself: the others stop replicating to it).
    pub removed: Option<Arc<tokio::sync::watch::Sender<bool>>>,
}

/// What a member answers to raft messages from a member removed from the cluster.
const REMOVED: &str = "the member has been permanently removed from the cluster";

struct PeerHandle {
    queue: mpsc::Sender<Message>,
    task: JoinHandle<()>,
    endpoint: Endpoint,
}

/// The sending side: one queue and one sender task per peer.
pub struct Peers {
    config: TransportConfig,
    peers: Mutex<HashMap<u64, PeerHandle>>,
    unreachable: mpsc::UnboundedSender<u64>,
    /// The runtime the sender tasks run on (peers are added from the raft thread too).
    runtime: tokio::runtime::Handle,
    /// Connections for requests beside raft messages (lease keep-alives, snapshots), made on
    /// first use and shared (HTTP/2 multiplexes them; the channel reconnects by itself).
    clients: Mutex<HashMap<u64, PeerClient<tonic::transport::Channel>>>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("member_id", &self.config.member_id)
            .field("peers", &self.peers.lock().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Peers {
    /// A transport whose failed deliveries are reported on `unreachable` (raft's
    /// `report_unreachable` slows replication to that peer until it answers again).
    /// Must be called on the runtime the senders should run on.
    pub fn new(config: TransportConfig, unreachable: mpsc::UnboundedSender<u64>) -> Self {
        Self {
            config,
            peers: Mutex::new(HashMap::new()),
            unreachable,
            runtime: tokio::runtime::Handle::current(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The runtime peer requests run on.
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// Starts sending to member `id` at `url` (replacing a previous URL).
    pub fn add(&self, id: u64, url: &str) -> Result<(), Error> {
        let endpoint = endpoint(&self.config, url)?;
        let (queue, rx) = mpsc::channel(PEER_QUEUE);
        let task = self.runtime.spawn(send_loop(
            self.config.clone(),
            id,
            endpoint.clone(),
            rx,
            self.unreachable.clone(),
        ));
        let handle = PeerHandle {
            queue,
            task,
            endpoint,
        };
        self.clients.lock().remove(&id);
        if let Some(old) = self.peers.lock().insert(id, handle) {
            old.task.abort();
        }
        Ok(())
    }

    /// A client for member `id`'s peer service (for requests beside raft messages), connected
    /// from this member's own address.
    pub async fn client(&self, id: u64) -> Result<PeerClient<tonic::transport::Channel>, Error> {
        if let Some(c) = self.clients.lock().get(&id) {
            return Ok(c.clone());
        }
        let endpoint = self
            .peers
            .lock()
            .get(&id)
            .map(|p| p.endpoint.clone())
            .ok_or(Error::Etcd(EtcdError::MemberNotFound))?;
        let client = connect_endpoint(&self.config, endpoint).await?;
        self.clients.lock().insert(id, client.clone());
        Ok(client)
    }

    /// This member's cluster ID, which every request to a peer carries.
    pub fn cluster_id(&self) -> u64 {
        self.config.cluster_id
    }

    /// This member's ID.
    pub fn member_id(&self) -> u64 {
        self.config.member_id
    }

    /// Stops sending to member `id`.
    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
        if let Some(old) = self.peers.lock().remove(&id) {
            old.task.abort();
        }
    }

    /// Queues `msgs` to their destinations. A message for an unknown peer, or one whose queue is
    /// full, is dropped and the peer reported unreachable: raft sends it again.
    pub fn send(&self, msgs: Vec<Message>) {
        let peers = self.peers.lock();
        for msg in msgs {
            let to = msg.to;
            let queued = peers
                .get(&to)
                .is_some_and(|p| p.queue.try_send(msg).is_ok());
            if !queued {
                let _ = self.unreachable.send(to);
            }
        }
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        for (_, p) in self.peers.lock().drain() {
            p.task.abort();
        }
    }
}

/// Keeps a stream to one peer open and feeds it batches of whatever is queued.
async fn send_loop(
    config: TransportConfig,
    to: u64,
    endpoint: Endpoint,
    mut queue: mpsc::Receiver<Message>,
    unreachable: mpsc::UnboundedSender<u64>,
) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let local = config.local_ip;
        let started = std::time::Instant::now();
        let channel = match endpoint
            .connect_with_connector(tower::service_fn(move |uri: Uri| connect_from(local, uri)))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(peer = %format!("{to:x}"), error = %crate::error::chain(&e), "cannot reach peer");
                // What queued meanwhile is lost to this peer; raft resends after the report.
                while queue.try_recv().is_ok() {}
                let _ = unreachable.send(to);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        // Connecting takes at least one round trip (TCP, then HTTP/2 and TLS): a sample of it.
        if let Some(m) = &config.metrics {
            m.observe_peer_round_trip(to, started.elapsed());
        }
        let (batches, rx) = mpsc::channel::<RaftBatch>(64);
        let mut client = PeerClient::new(channel);
        let mut call = tokio::spawn(async move { client.stream(ReceiverStream::new(rx)).await });
        loop {
            let first = tokio::select! {
                m = queue.recv() => match m {
                    Some(m) => m,
                    None => return,
                },
                ended = &mut call => {
                    if let Ok(Err(status)) = ended {
                        tracing::warn!(peer = %format!("{to:x}"), error = %status.message(), "peer refused raft messages");
                        if status.code() == tonic::Code::PermissionDenied && status.message() == REMOVED {
                            if let Some(removed) = &config.removed {
                                removed.send_replace(true);
                            }
                        }
                    }
                    break;
                }
            };
            let mut messages = vec![first.write_to_bytes().expect("raft messages encode")];
            while messages.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(m) => messages.push(m.write_to_bytes().expect("raft messages encode")),
                    Err(_) => break,
                }
            }
            let bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
            let batch = RaftBatch {
                cluster_id: config.cluster_id,
                from: config.member_id,
                to,
                messages,
            };
            if batches.send(batch).await.is_err() {
                if let Some(m) = &config.metrics {
                    m.peer_send_failed(to);
                }
                break;
            }
            if let Some(m) = &config.metrics {
                m.peer_sent(to, bytes);
            }
        }
        call.abort();
        let _ = unreachable.send(to);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use tokio::net::TcpListener;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::Server;

    use super::*;
    use crate::proto::cairnpb::peer_server::PeerServer;

    async fn listen(ip: Ipv4Addr) -> (TcpListener, String) {
        let l = TcpListener::bind((ip, 0)).await.expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        (l, url)
    }

    fn message(to: u64, index: u64) -> Message {
        Message {
            to,
            from: 1,
            index,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn outgoing_connections_come_from_the_members_own_address() {
        let (listener, url) = listen(Ipv4Addr::new(127, 0, 0, 12)).await;
        let uri: Uri = url.parse().expect("uri");
        let _conn = connect_from(Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11))), uri)
            .await
            .expect("connect");
        let (_, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_arrive_in_order_and_other_clusters_are_refused() {
        let (listener, url) = listen(Ipv4Addr::new(127, 0, 0, 12)).await;
        let (inbox, mut received) = mpsc::channel(10_000);
        let level = crate::config::MetricsLevel::Basic;
        let sender_metrics = Arc::new(Metrics::new(1, 1 << 30, level));
        let receiver_metrics = Arc::new(Metrics::new(2, 1 << 30, level));
        let server = tokio::spawn(
            Server::builder()
                .add_service(PeerServer::new(
                    PeerService::new(7, 2, inbox).with_metrics(receiver_metrics.clone()),
                ))
                .serve_with_incoming(TcpIncoming::from(listener)),
        );
        let config = |cluster_id, metrics| TransportConfig {
            cluster_id,
            member_id: 1,
            local_ip: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11))),
            tls: None,
            metrics,
            removed: None,
        };
        let (unreachable, mut reports) = mpsc::unbounded_channel();
        let peers = Peers::new(config(7, Some(sender_metrics.clone())), unreachable);
        peers.add(2, &url).expect("add peer");
        for chunk in (0..2000u64).collect::<Vec<_>>().chunks(100) {
            peers.send(chunk.iter().map(|&i| message(2, i)).collect());
        }
        for want in 0..2000u64 {
            let got = tokio::time::timeout(Duration::from_secs(20), received.recv())
                .await
                .expect("delivered in time")
                .expect("inbox open");
            assert_eq!(got.index, want);
        }
        // Both sides counted the traffic under etcd's names.
        let scrape = |m: &Metrics| m.encode(&crate::metrics::ScrapeState::default());
        assert!(scrape(&sender_metrics).contains("etcd_network_peer_sent_bytes_total{To=\"2\"}"));
        assert!(scrape(&receiver_metrics)
            .contains("etcd_network_peer_received_bytes_total{From=\"1\"}"));
        assert!(scrape(&sender_metrics)
            .contains("etcd_network_peer_round_trip_time_seconds_count{To=\"2\"} 1"));
        // A member of another cluster gets nothing through and is told so.
        let (unreachable, mut stranger_reports) = mpsc::unbounded_channel();
        let stranger = Peers::new(config(99, None), unreachable);
        stranger.add(2, &url).expect("add peer");
        stranger.send(vec![message(2, 5000)]);
        let reported = tokio::time::timeout(Duration::from_secs(20), stranger_reports.recv())
            .await
            .expect("refusal reported in time");
        assert_eq!(reported, Some(2));
        assert!(
            received.try_recv().is_err(),
            "a message of another cluster was delivered"
        );
        // Unknown peers are reported at once.
        peers.send(vec![message(3, 1)]);
        let mut saw_3 = false;
        while let Ok(Some(id)) = tokio::time::timeout(Duration::from_secs(5), reports.recv()).await
        {
            if id == 3 {
                saw_3 = true;
                break;
            }
        }
        assert!(saw_3);
        server.abort();
    }
}
