//! Opening a member: its data dir, identity and write path, either alone (one member in
//! `--initial-cluster`) or replicated through raft with its peers.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::auth::token::Tokens;
use crate::auth::AuthSettings;
use crate::config::Config;
use crate::consensus::bootstrap::bootstrap;
use crate::consensus::raft_node;
use crate::consensus::snapshot_install::PeerSnapshotInstaller;
use crate::consensus::{
    LeaderState, PeerService, Peers, RaftConfig, RaftLogStore, RaftParts, TransportConfig,
};
use crate::identity::Identity;
use crate::lessor::{Lessor, SystemClock};
use crate::metrics::Metrics;
use crate::mvcc::store::{meta, read_u64};
use crate::mvcc::{Backend, MvccStore, SledBackend};
use crate::node::{Limits, Node, Shared};
use crate::proto::cairnpb::{internal_request::Request, MemberAttributes};
use crate::replicated::{Applier, ApplierParts, ClusterState, Replicated, Waiters};
use crate::Error;

/// How long a proposal or linearizable read waits beyond the election timeout (etcd's request
/// timeout is 5 s plus twice the election timeout).
const REQUEST_TIMEOUT_BASE: Duration = Duration::from_secs(5);
/// Pause between attempts to publish this member's attributes.
const PUBLISH_RETRY: Duration = Duration::from_millis(500);

/// A member ready to serve.
pub struct Opened {
    /// The member.
    pub node: Arc<Node>,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// What peers talk to, when replicated.
    pub peer_service: Option<PeerService>,
    /// The raft loop, when replicated: it ending means the member must stop.
    pub raft_task: Option<JoinHandle<()>>,
}

/// The member's identity when alone: fixed in the data dir at first start, derived from the
/// flags then.
fn single_identity(backend: &dyn Backend, config: &Config) -> Result<Identity, Error> {
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
    crate::consensus::bootstrap::write_identity(backend, id)?;
    Ok(id)
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_request_bytes: config.max_request_bytes as usize,
        max_txn_ops: config.max_txn_ops as usize,
        watch_event_buffer: config.experimental_watch_event_buffer,
        quota_bytes: config.quota_bytes(),
    }
}

fn auth_settings(config: &Config) -> Result<AuthSettings, Error> {
    Ok(AuthSettings {
        tokens: Tokens::from_flags(&config.auth_token, config.auth_token_ttl)?,
        bcrypt_cost: config.bcrypt_cost,
        cert_cn: config.client_cert_auth,
    })
}

fn lessor(config: &Config, member_id: u64) -> Lessor {
    Lessor::new(
        Arc::new(SystemClock),
        member_id,
        config.heartbeat_interval,
        config.election_timeout,
    )
}

/// This member's record as the Cluster API lists it.
fn own_member(config: &Config, id: u64) -> crate::proto::etcdserverpb::Member {
    crate::proto::etcdserverpb::Member {
        id,
        name: config.name.clone(),
        peer_ur_ls: config
            .initial_advertise_peer_urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .collect(),
        client_ur_ls: client_urls(config),
        is_learner: false,
    }
}

fn client_urls(config: &Config) -> Vec<String> {
    config
        .advertise_client_urls
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .collect()
}

/// Opens the data dir in `data_dir` (with its `member/` directory created) and starts the
/// member's write path.
pub async fn open(config: &Config, data_dir: &Path) -> Result<Opened, Error> {
    let member_dir = data_dir.join("member");
    let backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&member_dir.join("db"))?);
    // A data dir with a raft log is a cluster member's, whatever the flags say now (etcd: the
    // data dir wins over the --initial-* flags).
    if config.is_replicated() || member_dir.join("raft").exists() {
        return open_replicated(config, &member_dir, backend).await;
    }
    let identity = single_identity(&*backend, config)?;
    let (store, pending) = MvccStore::open(backend)?;
    log_opened(config, data_dir, identity, &store);
    let metrics = Arc::new(Metrics::new(
        identity.member_id,
        config.quota_bytes(),
        config.metrics,
    ));
    let node = Node::start(
        store,
        pending,
        identity,
        limits(config),
        lessor(config, identity.member_id),
        metrics.clone(),
        auth_settings(config)?,
    );
    node.cluster()
        .membership
        .write()
        .insert(own_member(config, identity.member_id));
    Ok(Opened {
        node,
        metrics,
        peer_service: None,
        raft_task: None,
    })
}

fn log_opened(config: &Config, data_dir: &Path, identity: Identity, store: &MvccStore) {
    tracing::info!(
        name = %config.name,
        data_dir = %data_dir.display(),
        member_id = %format!("{:x}", identity.member_id),
        cluster_id = %format!("{:x}", identity.cluster_id),
        revision = store.revision(),
        compact_revision = store.compact_revision(),
        applied_index = store.applied_index(),
        "opened data dir"
    );
}

/// The IP outgoing peer connections bind to: the host of the first advertised peer URL, when
/// it is an address.
fn peer_ip(config: &Config) -> Option<IpAddr> {
    config
        .initial_advertise_peer_urls
        .first()
        .and_then(|u| u.host_str())
        .and_then(|h| h.trim_matches(['[', ']']).parse().ok())
}

async fn open_replicated(
    config: &Config,
    member_dir: &Path,
    backend: Arc<dyn Backend>,
) -> Result<Opened, Error> {
    let raft_backend: Arc<dyn Backend> = Arc::new(SledBackend::open(&member_dir.join("raft"))?);
    let log = RaftLogStore::open(raft_backend.clone())?;
    let derived = Identity::derive(
        &config.initial_cluster,
        &config.name,
        &config.initial_cluster_token,
    );
    let mut transport = TransportConfig {
        cluster_id: derived.cluster_id,
        member_id: derived.member_id,
        local_ip: peer_ip(config),
        tls: crate::tls::peer_client_tls(config)?,
        metrics: None,
        removed: None,
    };
    let place = bootstrap(config, &*backend, &log, &*raft_backend, &transport).await?;
    let identity = place.identity;
    let me = identity.member_id;
    let metrics = Arc::new(Metrics::new(me, config.quota_bytes(), config.metrics));
    transport.cluster_id = identity.cluster_id;
    transport.member_id = me;
    transport.metrics = Some(metrics.clone());
    let cluster = ClusterState::new(place.membership.clone());
    transport.removed = Some(cluster.removed.clone());
    let (unreachable_tx, unreachable) = mpsc::unbounded_channel();
    let peers = Arc::new(Peers::new(transport, unreachable_tx));
    for m in place.membership.members() {
        if let (true, Some(url)) = (m.id != me, m.peer_ur_ls.first()) {
            peers.add(m.id, url)?;
        }
    }
    let (store, pending) = MvccStore::open(backend)?;
    log_opened(config, member_dir, identity, &store);
    let limits = limits(config);
    let shared = Shared::new(
        store,
        pending.is_some(),
        limits,
        lessor(config, me),
        metrics.clone(),
    );
    let (jobs_tx, jobs_rx) = std_mpsc::channel();
    if let Some(job) = pending {
        jobs_tx.send(job).expect("the compactor is not started yet");
    }
    let compactor = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("compactor".into())
            .spawn(move || crate::standalone::compactor(&shared, jobs_rx))
            .map_err(|source| Error::File {
                path: member_dir.to_path_buf(),
                source,
            })?
    };
    let waiters = Arc::new(Waiters::default());
    let (applied_tx, applied_rx) = watch::channel(shared.store.read().applied_index());
    let installer = PeerSnapshotInstaller {
        peers: peers.clone(),
        dir: member_dir.to_path_buf(),
        identity,
    };
    let applier = Applier::new(
        ApplierParts {
            shared: shared.clone(),
            cluster: cluster.clone(),
            raft_backend,
            peers: peers.clone(),
            member_id: me,
        },
        waiters.clone(),
        applied_tx,
        jobs_tx.clone(),
        Box::new(installer),
    );
    let heartbeat = Duration::from_millis(config.heartbeat_interval.max(1));
    let election = Duration::from_millis(config.election_timeout.max(1));
    let (inbox_tx, inbox) = mpsc::channel(4096);
    let (raft, raft_task) = raft_node::start(RaftParts {
        config: RaftConfig {
            id: me,
            heartbeat,
            election_ticks: (config.election_timeout / config.heartbeat_interval.max(1)) as usize,
            snapshot_count: config.snapshot_count,
        },
        store: log,
        peers: peers.clone(),
        inbox,
        unreachable,
        state_machine: Box::new(applier),
        metrics: Some(metrics.clone()),
    })?;
    follow_status(&shared, raft.subscribe(), election);
    let writer = Replicated::new(
        raft,
        waiters,
        applied_rx,
        REQUEST_TIMEOUT_BASE + 2 * election,
        me,
        jobs_tx,
        compactor,
    );
    let node = Node::replicated(
        shared,
        identity,
        limits,
        writer,
        cluster,
        peers,
        auth_settings(config)?,
    );
    let peer_service = PeerService::new(identity.cluster_id, me, inbox_tx)
        .with_metrics(metrics.clone())
        .with_leader_state(node.clone() as Arc<dyn LeaderState>);
    Ok(Opened {
        node,
        metrics,
        peer_service: Some(peer_service),
        raft_task: Some(raft_task),
    })
}

/// Keeps the member's term and leader metrics current, and gives every lease a fresh
/// deadline when this member becomes the leader (it alone decides expiry from then on).
fn follow_status(
    shared: &Arc<Shared>,
    mut status: watch::Receiver<crate::consensus::RaftStatus>,
    election: Duration,
) {
    let shared = shared.clone();
    tokio::spawn(async move {
        let (mut leader, mut was_leader) = (0, false);
        while status.changed().await.is_ok() {
            let s = status.borrow_and_update().clone();
            shared
                .term
                .store(s.term, std::sync::atomic::Ordering::Relaxed);
            if s.leader != leader {
                if s.leader != 0 {
                    shared.metrics.leader_changed();
                    tracing::info!(leader = %format!("{:x}", s.leader), term = s.term, "leader elected");
                } else {
                    tracing::info!(term = s.term, "no leader");
                }
                leader = s.leader;
            }
            if s.is_leader && !was_leader {
                let leases: Vec<(i64, i64)> = shared
                    .store
                    .read()
                    .leases()
                    .iter()
                    .map(|(id, l)| (id, l.ttl))
                    .collect();
                shared.lessor.promote(leases, election);
            }
            was_leader = s.is_leader;
        }
    });
}

/// Announces this member's name and client URLs through raft (etcd's publish), retrying
/// until it is applied (so a leader exists and this member's writes commit) or the member
/// stops.
pub async fn publish(node: Arc<Node>, config: &Config, mut stop: watch::Receiver<bool>) {
    let me = node.identity().member_id;
    let urls = client_urls(config);
    // Proposed at every start, as etcd does: it also proves the member can commit.
    loop {
        let attributes = MemberAttributes {
            id: me,
            name: config.name.clone(),
            client_urls: urls.clone(),
        };
        match node.propose(Request::MemberAttributes(attributes)).await {
            Ok(_) => {
                tracing::info!(name = %config.name, "published this member's attributes");
                return;
            }
            Err(e) => {
                tracing::debug!(error = %crate::error::chain(&e), "publishing attributes failed, retrying")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PUBLISH_RETRY) => {}
            _ = stop.changed() => return,
        }
    }
}
