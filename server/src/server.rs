//! Starting and stopping a member: open the data dir, start the node, serve every client URL.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::api::kv::KvService;
use crate::api::lease::LeaseService;
use crate::api::maintenance::MaintenanceService;
use crate::api::watch::WatchService;
use crate::config::Config;
use crate::identity::Identity;
use crate::lessor::{Lessor, SystemClock};
use crate::maintenance::auto_compaction::AutoCompactor;
use crate::metrics::grpc::GrpcMetricsLayer;
use crate::metrics::Metrics;
use crate::mvcc::store::{meta, read_u64};
use crate::mvcc::{Backend, MvccStore, SledBackend, WriteBatch};
use crate::node::{Limits, Node};
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::{http, tls, Error};

/// etcd lets gRPC messages exceed `--max-request-bytes` by this much, so the request-too-large
/// error (not a transport error) is what clients see for oversized requests.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// How long a stopping member waits for open client streams before closing them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) fn create_private_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })
}

/// The member's identity: fixed in the data dir at first start, derived from the flags then.
fn load_identity(backend: &dyn Backend, config: &Config) -> Result<Identity, Error> {
    let stored = (
        read_u64(backend, meta::CLUSTER_ID)?,
        read_u64(backend, meta::MEMBER_ID)?,
    );
    if let (Some(cluster_id), Some(member_id)) = stored {
        return Ok(Identity {
            cluster_id,
            member_id,
        });
    }
    let id = Identity::derive(
        &config.initial_cluster,
        &config.name,
        &config.initial_cluster_token,
    );
    let mut b = WriteBatch::new();
    b.put(
        meta::CLUSTER_ID.to_vec(),
        id.cluster_id.to_be_bytes().to_vec(),
    );
    b.put(
        meta::MEMBER_ID.to_vec(),
        id.member_id.to_be_bytes().to_vec(),
    );
    backend.write(b)?;
    backend.flush()?;
    Ok(id)
}

async fn bind(url: &url::Url) -> Result<TcpListener, Error> {
    let host = url
        .host_str()
        .unwrap_or("localhost")
        .trim_matches(['[', ']']);
    let port = url.port().unwrap_or(2379);
    let err = |source| Error::Listen {
        url: url.to_string(),
        source,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(err)?
        .collect();
    // etcd binds "localhost" to its IPv4 loopback; prefer IPv4 when a name resolves to both.
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| {
            err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "host did not resolve",
            ))
        })?;
    TcpListener::bind(addr).await.map_err(err)
}

fn local_addr(listener: &TcpListener, url: &url::Url) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Listen {
        url: url.to_string(),
        source,
    })
}

/// Resolves once the member is told to stop.
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The client TLS setup for https listener `url` (etcd uses the client certificate for
/// https metrics URLs too).
fn tls_for(tls: &Option<TlsAcceptor>, url: &url::Url) -> Result<TlsAcceptor, Error> {
    tls.clone()
        .ok_or_else(|| crate::config::ConfigError::TlsWithoutCert(url.to_string()).into())
}

/// etcd's gRPC services over `node`, with etcd's message size limits.
fn grpc_routes(node: &Arc<Node>, config: &Config, limits: Limits) -> Routes {
    let max_in = limits.max_request_bytes + GRPC_OVERHEAD_BYTES;
    let kv = KvServer::new(KvService::new(node.clone()))
        .max_decoding_message_size(max_in)
        .max_encoding_message_size(usize::MAX);
    let watch = WatchServer::new(WatchService::new(
        node.clone(),
        config.experimental_watch_progress_notify_interval,
    ))
    .max_decoding_message_size(max_in)
    .max_encoding_message_size(usize::MAX);
    let lease = LeaseServer::new(LeaseService::new(node.clone())).max_decoding_message_size(max_in);
    let maintenance = MaintenanceServer::new(MaintenanceService::new(node.clone()))
        .max_decoding_message_size(max_in)
        .max_encoding_message_size(usize::MAX);
    Routes::new(kv)
        .add_service(watch)
        .add_service(lease)
        .add_service(maintenance)
}

/// Runs a member until `shutdown` resolves, then stops cleanly (every acknowledged write is
/// already durable; this only closes listeners and joins the write loop).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    config.validate()?;
    let data_dir = config.data_dir();
    create_private_dir(&data_dir.join("member"))?;
    let backend: Arc<dyn Backend> =
        Arc::new(SledBackend::open(&data_dir.join("member").join("db"))?);
    let identity = load_identity(&*backend, &config)?;
    let (store, pending) = MvccStore::open(backend)?;
    tracing::info!(
        name = %config.name,
        data_dir = %data_dir.display(),
        member_id = %format!("{:x}", identity.member_id),
        cluster_id = %format!("{:x}", identity.cluster_id),
        revision = store.revision(),
        compact_revision = store.compact_revision(),
        "opened data dir"
    );
    let limits = Limits {
        max_request_bytes: config.max_request_bytes as usize,
        max_txn_ops: config.max_txn_ops as usize,
        watch_event_buffer: config.experimental_watch_event_buffer,
        quota_bytes: config.quota_bytes(),
    };
    let metrics = Arc::new(Metrics::new(
        identity.member_id,
        config.quota_bytes(),
        config.metrics,
    ));
    let lessor = Lessor::new(
        Arc::new(SystemClock),
        identity.member_id,
        config.heartbeat_interval,
        config.election_timeout,
    );
    let node = Node::start(store, pending, identity, limits, lessor, metrics.clone());
    let _auto_compactor = AutoCompactor::from_flags(
        node.clone(),
        config.auto_compaction_mode,
        &config.auto_compaction_retention,
    )?;
    let tls = tls::client_tls(&config)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    // Client URLs serve gRPC and HTTP; metrics URLs only the HTTP endpoints. Both accept
    // HTTP/1.1 next to HTTP/2: curl, Prometheus and probes use them.
    let listeners = config
        .listen_client_urls
        .iter()
        .map(|url| (url, http::Listener::Client))
        .chain(
            config
                .listen_metrics_urls
                .iter()
                .map(|url| (url, http::Listener::Metrics)),
        );
    for (url, kind) in listeners {
        let listener = bind(url).await?;
        let addr = local_addr(&listener, url)?;
        let grpc =
            matches!(kind, http::Listener::Client).then(|| grpc_routes(&node, &config, limits));
        let routes = http::routes(node.clone(), metrics.clone(), kind, grpc);
        tracing::info!(url = %url, addr = %addr, ?kind, "serving");
        let router = Server::builder()
            .accept_http1(true)
            .layer(GrpcMetricsLayer::new(metrics.clone()))
            .add_routes(routes);
        let stop = stopped(stop_rx.clone());
        if url.scheme() == "https" {
            let incoming = tls::incoming(listener, tls_for(&tls, url)?);
            servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
        } else {
            let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
            servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
        }
    }
    // This member decides lease expiry (it is its own leader); check twice a second like etcd.
    let expiry = {
        let node = node.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = tick.tick() => node.expire_leases().await,
                    _ = stop.changed() => break,
                }
            }
        })
    };
    tracing::info!("ready to serve client requests");
    let failed = tokio::select! {
        () = shutdown => {
            tracing::info!("shutting down");
            None
        }
        Some(res) = servers.join_next() => match res {
            Ok(Ok(())) => Some(Error::ListenerStopped),
            Ok(Err(e)) => Some(Error::Transport(e)),
                        Err(e) => Some(Error::ListenerPanicked(e)),
        },
    };
    let _ = stop_tx.send(true);
    // Open watch and keep-alive streams keep connections busy: give them a moment, then cut.
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while servers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!("closing the connections still open");
        servers.abort_all();
        while servers.join_next().await.is_some() {}
    }
    let _ = expiry.await;
    let node_for_stop = node.clone();
    tokio::task::spawn_blocking(move || node_for_stop.shutdown())
        .await
        .ok();
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
