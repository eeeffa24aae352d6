//! Starting and stopping a member: open the data dir, start the node, serve every client URL.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

use crate::api::auth::AuthService;
use crate::api::cluster::ClusterService;
use crate::api::kv::KvService;
use crate::api::lease::LeaseService;
use crate::api::maintenance::MaintenanceService;
use crate::api::watch::WatchService;
use crate::config::Config;
use crate::maintenance::auto_compaction::AutoCompactor;
use crate::metrics::grpc::GrpcMetricsLayer;
use crate::node::{Limits, Node};
use crate::proto::cairnpb::peer_server::PeerServer;
use crate::proto::etcdserverpb::auth_server::AuthServer;
use crate::proto::etcdserverpb::cluster_server::ClusterServer;
use crate::proto::etcdserverpb::kv_server::KvServer;
use crate::proto::etcdserverpb::lease_server::LeaseServer;
use crate::proto::etcdserverpb::maintenance_server::MaintenanceServer;
use crate::proto::etcdserverpb::watch_server::WatchServer;
use crate::{http, tls, Error};

/// etcd lets gRPC messages exceed `--max-request-bytes` by this much, so the request-too-large
/// error (not a transport error) is what clients see for oversized requests.
const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Largest batch of raft messages a peer may send (appends are capped at 1 MiB per message by
/// raft, and a batch holds up to 256 of them).
const MAX_PEER_MESSAGE: usize = 512 * 1024 * 1024;

/// How long a stopping member waits for open client streams before closing them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

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
    let cluster = ClusterServer::new(ClusterService::new(node.clone()));
    let auth = AuthServer::new(AuthService::new(node.clone())).max_decoding_message_size(max_in);
    Routes::new(kv)
        .add_service(auth)
        .add_service(cluster)
        .add_service(watch)
        .add_service(lease)
        .add_service(maintenance)
}

/// Runs a member until `shutdown` resolves, then stops cleanly (every acknowledged write is
/// already durable; this only closes listeners and joins the write loop).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    config.validate()?;
    let data_dir = config.data_dir();
    crate::data_dir::create_private_dir(&data_dir.join("member"))?;
    let opened = crate::start::open(&config, &data_dir).await?;
    let (node, metrics) = (opened.node, opened.metrics);
    let limits = node.limits();
    let _auto_compactor = AutoCompactor::from_flags(
        node.clone(),
        config.auto_compaction_mode,
        &config.auto_compaction_retention,
    )?;
    let tls = tls::client_tls(&config)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    if let Some(peer_service) = opened.peer_service {
        let peer_tls = tls::peer_tls(&config)?;
        for url in &config.listen_peer_urls {
            let listener = bind(url).await?;
            let addr = local_addr(&listener, url)?;
            tracing::info!(url = %url, addr = %addr, "serving peers");
            let router = Server::builder().add_service(
                PeerServer::new(peer_service.clone())
                    .max_decoding_message_size(MAX_PEER_MESSAGE)
                    .max_encoding_message_size(MAX_PEER_MESSAGE),
            );
            let stop = stopped(stop_rx.clone());
            if url.scheme() == "https" {
                let acceptor = peer_tls.clone().ok_or_else(|| {
                    crate::config::ConfigError::PeerTlsWithoutCert(url.to_string())
                })?;
                let incoming = tls::incoming(listener, acceptor);
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            } else {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            }
        }
    }
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
        let routes = http::routes(
            node.clone(),
            metrics.clone(),
            kind,
            grpc,
            config.experimental_watch_progress_notify_interval,
        );
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
    // The leader decides lease expiry; check twice a second like etcd.
    let expiry = {
        let node = node.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tokio::select! {
                    _ = tick.tick() => if node.is_leader() {
                        node.expire_leases().await;
                    },
                    _ = stop.changed() => break,
                }
            }
        })
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut removed = node.cluster().removed.subscribe();
    let mut raft_ended = std::pin::pin!(async {
        match opened.raft_task {
            Some(task) => {
                let res = task.await;
                tracing::error!(?res, "the raft loop ended");
            }
            None => std::future::pending().await,
        }
    });
    if node.raft().is_some() {
        // Like etcd, a member is ready once the cluster has its attributes: a leader exists
        // and this member's writes commit.
        let early = tokio::select! {
            () = crate::start::publish(node.clone(), &config, stop_rx.clone()) => None,
            () = &mut shutdown => {
                tracing::info!("stopped before joining the cluster");
                Some(Ok(()))
            }
            _ = removed.wait_for(|r| *r) => Some(Err(Error::Removed)),
            () = &mut raft_ended => Some(Err(Error::RaftStopped)),
        };
        if let Some(result) = early {
            let _ = stop_tx.send(true);
            node.shutdown();
            return result;
        }
    }
    tracing::info!("ready to serve client requests");
    let failed = tokio::select! {
        () = &mut shutdown => {
            tracing::info!("shutting down");
            None
        }
        () = &mut raft_ended => Some(Error::RaftStopped),
        _ = removed.wait_for(|r| *r) => Some(Error::Removed),
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
