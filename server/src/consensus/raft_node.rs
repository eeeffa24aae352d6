//! The raft node: drives raft-rs's `RawNode` over the durable log ([`RaftLogStore`]) and the
//! peer transport ([`Peers`]), and feeds committed entries, in order, to a state machine (the
//! MVCC apply function, once replication is wired in). Ordering follows raft-rs: a Ready's
//! entries and HardState are durable (one atomic batch, one flush) before its persisted messages
//! are sent, and the commit index is durable before the entries it commits are applied.

use std::sync::Arc;
use std::time::Duration;

use raft::prelude::{ConfChange, ConfChangeV2, Entry, EntryType, Message};
use raft::{RawNode, StateRole};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Peers, RaftLogStore};
use crate::Error;

/// What committed entries are applied to.
pub trait StateMachine: Send + 'static {
    /// Applies committed entry `index` of `term` (empty `data`: a new leader's no-op entry).
    fn apply(&mut self, index: u64, term: u64, data: &[u8]);
    /// The last index applied, so a restarted node does not apply entries twice.
    fn applied(&self) -> u64;
}

/// Timing and identity of a raft node.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This member's ID.
    pub id: u64,
    /// `--heartbeat-interval`: one raft tick.
    pub heartbeat: Duration,
    /// `--election-timeout` in ticks.
    pub election_ticks: usize,
}

/// What the node reports after each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// The leader this node knows (0: none).
    pub leader: u64,
    /// The current term.
    pub term: u64,
    /// The commit index.
    pub commit: u64,
    /// The last index applied to the state machine.
    pub applied: u64,
    /// Whether this node leads.
    pub is_leader: bool,
}

/// Talks to a running node.
#[derive(Clone, Debug)]
pub struct RaftHandle {
    proposals: mpsc::Sender<Vec<u8>>,
    status: watch::Receiver<RaftStatus>,
}

impl RaftHandle {
    /// Proposes `data`; it is applied everywhere once committed (a proposal made to a node that
    /// is not the leader is dropped by raft, and the caller retries against the leader).
    pub async fn propose(&self, data: Vec<u8>) -> Result<(), Error> {
        self.proposals.send(data).await.map_err(|_| Error::Stopped)
    }

    /// The latest status.
    pub fn status(&self) -> RaftStatus {
        *self.status.borrow()
    }

    /// Status updates.
    pub fn subscribe(&self) -> watch::Receiver<RaftStatus> {
        self.status.clone()
    }
}

/// Everything a node runs on.
pub struct RaftParts {
    /// Identity and timing.
    pub config: RaftConfig,
    /// The durable log (already bootstrapped with the initial configuration).
    pub store: RaftLogStore,
    /// The transport to the other members.
    pub peers: Arc<Peers>,
    /// Messages from peers (the [`super::PeerService`]'s inbox).
    pub inbox: mpsc::Receiver<Message>,
    /// Peers the transport failed to reach.
    pub unreachable: mpsc::UnboundedReceiver<u64>,
    /// Where committed entries go.
    pub state_machine: Box<dyn StateMachine>,
}

/// Starts the node on the current tokio runtime (multi-threaded: it flushes with
/// `block_in_place`).
pub fn start(parts: RaftParts) -> Result<(RaftHandle, JoinHandle<()>), Error> {
    let cfg = raft::Config {
        id: parts.config.id,
        heartbeat_tick: 1,
        election_tick: parts.config.election_ticks.max(2),
        applied: parts.state_machine.applied(),
        check_quorum: true,
        pre_vote: true,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        ..Default::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&cfg, parts.store.clone(), &logger)?;
    let (proposals, proposals_rx) = mpsc::channel(4096);
    let (status_tx, status) = watch::channel(RaftStatus::default());
    let task = tokio::spawn(run(raw, parts, proposals_rx, status_tx));
    Ok((RaftHandle { proposals, status }, task))
}

struct Loop {
    raw: RawNode<RaftLogStore>,
    store: RaftLogStore,
    peers: Arc<Peers>,
    state_machine: Box<dyn StateMachine>,
}

async fn run(
    raw: RawNode<RaftLogStore>,
    parts: RaftParts,
    mut proposals: mpsc::Receiver<Vec<u8>>,
    status: watch::Sender<RaftStatus>,
) {
    let RaftParts {
        config,
        store,
        peers,
        mut inbox,
        mut unreachable,
        state_machine,
    } = parts;
    let mut node = Loop {
        raw,
        store,
        peers,
        state_machine,
    };
    let mut tick = tokio::time::interval(config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                node.raw.tick();
            }
            msg = inbox.recv() => {
                let Some(msg) = msg else { return };
                // Messages from members this node does not know are dropped by raft.
                let _ = node.raw.step(msg);
                while let Ok(msg) = inbox.try_recv() {
                    let _ = node.raw.step(msg);
                }
            }
            data = proposals.recv() => {
                let Some(data) = data else { return };
                let _ = node.raw.propose(Vec::new(), data);
                while let Ok(data) = proposals.try_recv() {
                    let _ = node.raw.propose(Vec::new(), data);
                }
            }
            id = unreachable.recv() => {
                if let Some(id) = id {
                    node.raw.report_unreachable(id);
                }
            }
        }
        if let Err(e) = tokio::task::block_in_place(|| node.on_ready()) {
            tracing::error!(error = %e, "raft storage failed, stopping the node");
            return;
        }
        let raft = &node.raw.raft;
        status.send_replace(RaftStatus {
            leader: raft.leader_id,
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: node.state_machine.applied(),
            is_leader: raft.state == StateRole::Leader,
        });
    }
}

impl Loop {
    fn on_ready(&mut self) -> Result<(), Error> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // The leader's appends may go out while it persists its own copy (raft-rs allows it).
        self.peers.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            self.store.apply_snapshot(ready.snapshot().get_metadata())?;
        }
        // Entries and HardState in one atomic batch, durable before anything depends on them.
        self.store.append(ready.entries(), ready.hs())?;
        self.store.flush()?;
        self.peers.send(ready.take_persisted_messages());
        self.apply(ready.take_committed_entries())?;
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.store.set_commit(commit)?;
            self.store.flush()?;
        }
        self.peers.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        for e in entries {
            match e.get_entry_type() {
                EntryType::EntryNormal => self.state_machine.apply(e.index, e.term, &e.data),
                EntryType::EntryConfChange => {
                    let cc: ConfChange = protobuf::Message::parse_from_bytes(&e.data)
                        .map_err(|_| Error::CorruptRecord)?;
                    let cs = self.raw.apply_conf_change(&cc)?;
                    self.store.set_conf_state(&cs)?;
                }
                EntryType::EntryConfChangeV2 => {
                    let cc: ConfChangeV2 = protobuf::Message::parse_from_bytes(&e.data)
                        .map_err(|_| Error::CorruptRecord)?;
                    let cs = self.raw.apply_conf_change(&cc)?;
                    self.store.set_conf_state(&cs)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use parking_lot::Mutex;
    use raft::prelude::ConfState;
    use tokio::net::TcpListener;
    use tonic::transport::server::TcpIncoming;
    use tonic::transport::Server;

    use super::*;
    use crate::consensus::{PeerService, TransportConfig};
    use crate::mvcc::MemBackend;
    use crate::proto::cairnpb::peer_server::PeerServer;

    /// An applied entry: index and data.
    type Applied = (u64, Vec<u8>);

    /// Records what it applies.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Applied>>>);

    impl StateMachine for Recorder {
        fn apply(&mut self, index: u64, _term: u64, data: &[u8]) {
            self.0.lock().push((index, data.to_vec()));
        }
        fn applied(&self) -> u64 {
            self.0.lock().last().map_or(0, |e| e.0)
        }
    }

    impl Recorder {
        fn data(&self) -> Vec<Vec<u8>> {
            self.0
                .lock()
                .iter()
                .filter(|(_, d)| !d.is_empty())
                .map(|(_, d)| d.clone())
                .collect()
        }
    }

    struct Member {
        handle: RaftHandle,
        node: JoinHandle<()>,
        server: JoinHandle<Result<(), tonic::transport::Error>>,
        applied: Recorder,
    }

    impl Member {
        fn stop(&self) {
            self.node.abort();
            self.server.abort();
        }
    }

    async fn cluster(n: u64) -> Vec<Member> {
        let ip = |id: u64| Ipv4Addr::new(127, 0, 0, 40 + id as u8);
        let mut listeners = Vec::new();
        for id in 1..=n {
            let l = TcpListener::bind((ip(id), 0)).await.expect("bind");
            listeners.push(l);
        }
        let urls: Vec<String> = listeners
            .iter()
            .map(|l| format!("http://{}", l.local_addr().expect("addr")))
            .collect();
        let mut members = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            let (inbox_tx, inbox) = mpsc::channel(4096);
            let server = tokio::spawn(
                Server::builder()
                    .add_service(PeerServer::new(PeerService::new(9, id, inbox_tx)))
                    .serve_with_incoming(TcpIncoming::from(listener)),
            );
            let (unreachable_tx, unreachable) = mpsc::unbounded_channel();
            let peers = Arc::new(Peers::new(
                TransportConfig {
                    cluster_id: 9,
                    member_id: id,
                    local_ip: Some(IpAddr::V4(ip(id))),
                    tls: None,
                    metrics: None,
                },
                unreachable_tx,
            ));
            for (j, url) in urls.iter().enumerate() {
                if j != i {
                    peers.add(j as u64 + 1, url).expect("peer");
                }
            }
            let store = RaftLogStore::open(Arc::new(MemBackend::new())).expect("log");
            store
                .set_conf_state(&ConfState {
                    voters: (1..=n).collect(),
                    ..Default::default()
                })
                .expect("bootstrap");
            let applied = Recorder::default();
            let (handle, node) = start(RaftParts {
                config: RaftConfig {
                    id,
                    heartbeat: Duration::from_millis(20),
                    election_ticks: 10,
                },
                store,
                peers,
                inbox,
                unreachable,
                state_machine: Box::new(applied.clone()),
            })
            .expect("start");
            members.push(Member {
                handle,
                node,
                server,
                applied,
            });
        }
        members
    }

    async fn leader(members: &[&Member]) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let statuses: Vec<RaftStatus> = members.iter().map(|m| m.handle.status()).collect();
            let l = statuses[0].leader;
            if l != 0
                && statuses.iter().all(|s| s.leader == l)
                && statuses.iter().filter(|s| s.is_leader).count() == 1
            {
                return l;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader: {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn all_applied(members: &[&Member], want: &[Vec<u8>]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while members.iter().any(|m| m.applied.data() != want) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "members did not apply the same entries"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_members_agree_and_survive_the_leaders_loss() {
        let members = cluster(3).await;
        let all: Vec<&Member> = members.iter().collect();
        let first = leader(&all).await;
        let mut want = Vec::new();
        for i in 0..50u32 {
            let data = format!("entry-{i}").into_bytes();
            members[first as usize - 1]
                .handle
                .propose(data.clone())
                .await
                .expect("propose");
            want.push(data);
        }
        all_applied(&all, &want).await;

        members[first as usize - 1].stop();
        let rest: Vec<&Member> = members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 + 1 != first)
            .map(|(_, m)| m)
            .collect();
        let second = leader(&rest).await;
        assert_ne!(second, first);
        for i in 50..70u32 {
            let data = format!("entry-{i}").into_bytes();
            members[second as usize - 1]
                .handle
                .propose(data.clone())
                .await
                .expect("propose");
            want.push(data);
        }
        all_applied(&rest, &want).await;
        for m in &members {
            m.stop();
        }
    }
}
