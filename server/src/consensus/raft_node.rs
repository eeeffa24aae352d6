//! The raft node: drives raft-rs's `RawNode` over the durable log ([`RaftLogStore`]) and the
//! peer transport ([`Peers`]), and feeds committed entries, in order, to a state machine (the
//! MVCC apply function). Ordering follows raft-rs: a Ready's entries and HardState are durable
//! (one atomic batch, one flush) before its persisted messages are sent, and the commit index
//! is written before the entries it commits are applied (those are durable already: they are
//! applied before the Ready's new entries are persisted, as in raft-rs's examples, so that
//! applying and answering clients does not wait for that flush). A light Ready's commit index becomes
//! durable with the next flush rather than with one of its own (one fsync per write, not two):
//! its entries are durable already, and a restart whose state machine is ahead of the durable
//! commit index starts raft's `applied` at that index and skips what it re-delivers.

use std::sync::Arc;
use std::time::Duration;

use raft::prelude::{ConfChange, ConfChangeV2, ConfState, Entry, EntryType, Message};
use raft::{RawNode, StateRole};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::read_index::{ReadIndexRounds, ReadTiming, ReadWaiter};
use super::{Peers, RaftLogStore};
use crate::{Error, EtcdError};

/// An unanswered ReadIndex round is asked again after this long (etcd: 500 ms), and after at
/// least two ticks.
const READ_RETRY: Duration = Duration::from_millis(200);

/// Entries kept behind a log compaction, so a follower that lags a little catches up from the
/// log rather than from a full snapshot (etcd keeps 5000).
const CATCH_UP_ENTRIES: u64 = 5000;

/// What committed entries are applied to.
pub trait StateMachine: Send + 'static {
    /// Applies committed normal entries, in log order (empty `data`: a new leader's no-op).
    fn apply(&mut self, entries: &[Entry]);
    /// A committed membership change, already applied to raft; `conf` is the new configuration.
    fn apply_conf_change(&mut self, index: u64, change: &ConfChangeV2, conf: &ConfState);
    /// The last index applied, so a restarted node does not apply entries twice.
    fn applied(&self) -> u64;
    /// Makes everything applied so far durable; called before the raft log is compacted.
    fn flush(&mut self) -> Result<(), Error>;
    /// Replaces the state with the leader's image, which holds at least everything up to
    /// `index` (raft sent a snapshot because the entries this member needs are compacted).
    fn install_snapshot(&mut self, leader: u64, index: u64) -> Result<(), Error>;
    /// Called every raft tick (heartbeat interval), for work due with time rather than with
    /// entries.
    fn tick(&mut self) {}
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
    /// `--snapshot-count`: applied entries between log compactions.
    pub snapshot_count: u64,
}

/// What the node reports after each step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// On the leader: how far each member's log is known to match (member ID, index).
    pub matched: Vec<(u64, u64)>,
}

/// Told why raft refused a proposal (no leader is known). Accepted proposals never call it, so
/// a proposer hears back once (when its command is applied), not twice.
pub type Rejected = Box<dyn FnOnce(Error) + Send>;

enum Command {
    Propose(Vec<u8>, Rejected),
    ConfChange(ConfChangeV2, oneshot::Sender<Result<(), Error>>),
    ReadIndex(ReadWaiter),
    TransferLeader(u64),
    Stop,
}

/// Talks to a running node.
#[derive(Clone, Debug)]
pub struct RaftHandle {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<RaftStatus>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Propose(..) => "Propose",
            Self::ConfChange(..) => "ConfChange",
            Self::ReadIndex(..) => "ReadIndex",
            Self::TransferLeader(..) => "TransferLeader",
            Self::Stop => "Stop",
        })
    }
}

impl RaftHandle {
    /// Proposes `data`; it is applied everywhere once committed (a follower forwards it to the
    /// leader). Returns once the node has it queued; `rejected` is called, on the raft thread,
    /// if raft refuses it ([`EtcdError::NoLeader`]). A proposal can still be lost later (leader
    /// change): callers wait for its application with a timeout.
    pub async fn propose(&self, data: Vec<u8>, rejected: Rejected) -> Result<(), Error> {
        self.send(Command::Propose(data, rejected)).await
    }

    /// Proposes a membership change (only the leader accepts one).
    pub async fn propose_conf_change(&self, change: ConfChangeV2) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ConfChange(change, tx)).await?;
        rx.await.map_err(|_| Error::Etcd(EtcdError::Stopped))?
    }

    /// raft's ReadIndex: the commit index the leader confirmed it still held after hearing
    /// from a quorum. Reads served once that index is applied are linearizable. Concurrent
    /// calls share one round; a round is asked again when unanswered or when the leader
    /// changes, and fails with [`EtcdError::NoLeader`] after two election timeouts with no leader.
    pub async fn read_index(&self) -> Result<u64, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::ReadIndex(tx)).await?;
        rx.await.map_err(|_| Error::Etcd(EtcdError::Stopped))?
    }

    /// Stops the node (the member is shutting down); the state machine is dropped with it.
    pub fn stop(&self) {
        let _ = self.commands.try_send(Command::Stop);
    }

    /// Asks the leader to hand leadership to `to`.
    pub async fn transfer_leader(&self, to: u64) -> Result<(), Error> {
        self.send(Command::TransferLeader(to)).await
    }

    async fn send(&self, c: Command) -> Result<(), Error> {
        self.commands
            .send(c)
            .await
            .map_err(|_| Error::Etcd(EtcdError::Stopped))
    }

    /// The latest status.
    pub fn status(&self) -> RaftStatus {
        self.status.borrow().clone()
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
    /// Where log flushes are timed (etcd's WAL fsync histogram).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Starts the node on a thread of its own (it blocks on log flushes and applies; handing a
/// shared runtime worker off around each of them cost latency on every write). The returned
/// task, on the caller's runtime, ends when the node stops (also when it panics).
pub fn start(parts: RaftParts) -> Result<(RaftHandle, JoinHandle<()>), Error> {
    use raft::Storage as _;
    let commit = parts.store.initial_state()?.hard_state.commit;
    let cfg = raft::Config {
        id: parts.config.id,
        heartbeat_tick: 1,
        election_tick: parts.config.election_ticks.max(2),
        applied: parts.state_machine.applied().min(commit),
        check_quorum: true,
        pre_vote: true,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        ..Default::default()
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let raw = RawNode::new(&cfg, parts.store.clone(), &logger)?;
    let (commands, commands_rx) = mpsc::channel(4096);
    let (status_tx, status) = watch::channel(RaftStatus::default());
    let (ended_tx, ended) = oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io("starting the raft thread's runtime", e))?;
    std::thread::Builder::new()
        .name("raft".into())
        .spawn(move || {
            runtime.block_on(run(raw, parts, commands_rx, status_tx));
            let _ = ended_tx.send(());
        })
        .map_err(|e| Error::Io("starting the raft thread", e))?;
    let task = tokio::spawn(async move {
        // Dropped unsent when the thread panics: the same "ended" either way.
        let _ = ended.await;
    });
    Ok((RaftHandle { commands, status }, task))
}

struct Loop {
    raw: RawNode<RaftLogStore>,
    store: RaftLogStore,
    peers: Arc<Peers>,
    state_machine: Box<dyn StateMachine>,
    snapshot_count: u64,
    /// ReadIndex rounds in flight.
    reads: ReadIndexRounds,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

async fn run(
    raw: RawNode<RaftLogStore>,
    parts: RaftParts,
    mut commands: mpsc::Receiver<Command>,
    status: watch::Sender<RaftStatus>,
) {
    let RaftParts {
        config,
        store,
        peers,
        mut inbox,
        mut unreachable,
        state_machine,
        metrics,
    } = parts;
    let tick_ms = config.heartbeat.as_millis().max(1) as u64;
    let timing = ReadTiming {
        retry_ticks: (READ_RETRY.as_millis() as u64).div_ceil(tick_ms).max(2),
        leaderless_ticks: 2 * config.election_ticks.max(2) as u64,
    };
    // Distinct for every start of this member, so a context asked before a restart is never
    // taken for one asked after it.
    let incarnation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut node = Loop {
        raw,
        store,
        peers,
        state_machine,
        snapshot_count: config.snapshot_count.max(1),
        reads: ReadIndexRounds::new(config.id, incarnation, timing),
        metrics,
    };
    let mut tick = tokio::time::interval(config.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut leader_seen = (0, 0);
    // Whether this node has seen the leader commit an entry of its term (raft-rs's leader drops
    // read requests until it has).
    let mut term_committed = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                node.raw.tick();
                node.state_machine.tick();
                let leader_known = node.raw.raft.leader_id != 0;
                for ctx in node.reads.tick(leader_known) {
                    node.raw.read_index(ctx);
                }
            }
            msg = inbox.recv() => {
                let Some(msg) = msg else { return };
                // Messages from members this node does not know are dropped by raft.
                let _ = node.raw.step(msg);
                while let Ok(msg) = inbox.try_recv() {
                    let _ = node.raw.step(msg);
                }
            }
            command = commands.recv() => {
                let Some(command) = command else { return };
                let mut readers = Vec::new();
                let mut stop = node.handle(command, &mut readers);
                while let Ok(command) = commands.try_recv() {
                    stop |= node.handle(command, &mut readers);
                }
                if stop {
                    tracing::info!("raft node stopped");
                    return;
                }
                node.read_index(readers);
            }
            id = unreachable.recv() => {
                if let Some(id) = id {
                    node.raw.report_unreachable(id);
                }
            }
        }
        let raft = &node.raw.raft;
        if (raft.leader_id, raft.term) != leader_seen {
            leader_seen = (raft.leader_id, raft.term);
            term_committed = false;
            // Reads asked of a former leader will never be answered: ask the new one (in the
            // Ready below).
            for ctx in node.reads.leader_changed(raft.leader_id != 0) {
                node.raw.read_index(ctx);
            }
        }
        let raft = &node.raw.raft;
        let waiting = !term_committed && !node.reads.is_empty() && raft.leader_id != 0;
        if waiting
            && raft
                .raft_log
                .term(raft.raft_log.committed)
                .is_ok_and(|t| t == raft.term)
        {
            // The new leader takes reads from now on: ask again what it dropped before.
            term_committed = true;
            for ctx in node.reads.term_committed() {
                node.raw.read_index(ctx);
            }
        }
        if let Err(e) = node.on_ready() {
            crate::fatal::fatal(&e);
        }
        let raft = &node.raw.raft;
        let is_leader = raft.state == StateRole::Leader;
        let matched = if is_leader {
            raft.prs()
                .iter()
                .map(|(id, pr)| (*id, pr.matched))
                .collect()
        } else {
            Vec::new()
        };
        let next = RaftStatus {
            leader: raft.leader_id,
            term: raft.term,
            commit: raft.raft_log.committed,
            applied: node.state_machine.applied(),
            is_leader,
            matched,
        };
        status.send_if_modified(|s| {
            let changed = *s != next;
            *s = next;
            changed
        });
    }
}

impl Loop {
    /// Handles one command; true when the node must stop.
    fn handle(&mut self, command: Command, readers: &mut Vec<ReadWaiter>) -> bool {
        match command {
            Command::Propose(data, rejected) => {
                if let Err(e) = self.raw.propose(Vec::new(), data) {
                    rejected(match e {
                        raft::Error::ProposalDropped => Error::Etcd(EtcdError::NoLeader),
                        e => Error::Raft(e),
                    });
                }
            }
            Command::ConfChange(cc, done) => {
                // A follower forwards it to the leader, like any proposal.
                let res = self
                    .raw
                    .propose_conf_change(Vec::new(), cc)
                    .map_err(|e| match e {
                        raft::Error::ProposalDropped => Error::Etcd(EtcdError::NoLeader),
                        e => Error::Raft(e),
                    });
                let _ = done.send(res);
            }
            Command::ReadIndex(done) => readers.push(done),
            Command::TransferLeader(to) => self.raw.transfer_leader(to),
            Command::Stop => return true,
        }
        false
    }

    /// One ReadIndex round for everyone who asked since the last loop turn (without a known
    /// leader it waits for one).
    fn read_index(&mut self, readers: Vec<ReadWaiter>) {
        if let Some(ctx) = self.reads.start(readers, self.raw.raft.leader_id != 0) {
            self.raw.read_index(ctx);
        }
    }

    fn on_ready(&mut self) -> Result<(), Error> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // The leader's appends may go out while it persists its own copy (raft-rs allows it).
        self.peers.send(ready.take_messages());
        if !ready.snapshot().is_empty() {
            let meta = ready.snapshot().get_metadata().clone();
            let leader = self.raw.raft.leader_id;
            tracing::info!(index = meta.index, term = meta.term, leader = %format!("{leader:x}"), "installing a snapshot from the leader");
            self.state_machine.install_snapshot(leader, meta.index)?;
            self.store.apply_snapshot(&meta)?;
        }
        // Entries and HardState in one atomic batch, durable (the flush below) before anything
        // depends on them. A HardState that only moves the commit index needs no flush of its
        // own (see the module docs): it becomes durable with the next one.
        let before = self.store.hard_state();
        let must_flush = !ready.entries().is_empty()
            || !ready.snapshot().is_empty()
            || ready
                .hs()
                .is_some_and(|hs| hs.term != before.term || hs.vote != before.vote);
        self.store.append(ready.entries(), ready.hs())?;
        // Committed entries are durable already (raft-rs hands out only persisted ones): apply
        // them before the flush, as raft-rs's examples do, so their clients do not also wait
        // for it. Their commit index is written first: the HardState just written carries it
        // (one sled batch rather than two), else it is written now.
        let committed = ready.take_committed_entries();
        if let Some(last) = committed.last() {
            self.store.set_commit(last.index)?;
        }
        self.apply(committed)?;
        if must_flush {
            self.flush_log()?;
        }
        self.peers.send(ready.take_persisted_messages());
        for rs in ready.take_read_states() {
            self.reads.answered(&rs.request_ctx, rs.index);
        }
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            // Durable with the next flush: a restart that finds the state machine ahead of the
            // durable commit index starts raft from that index (see `start`), and the entries
            // in between, already applied, are skipped.
            self.store.set_commit(commit)?;
        }
        self.peers.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.maybe_compact()
    }

    fn flush_log(&self) -> Result<(), Error> {
        let started = std::time::Instant::now();
        self.store.flush()?;
        if let Some(m) = &self.metrics {
            m.observe_fsync(started.elapsed());
        }
        Ok(())
    }

    fn apply(&mut self, entries: Vec<Entry>) -> Result<(), Error> {
        let mut normal: Vec<Entry> = Vec::new();
        for e in entries {
            let change: ConfChangeV2 = match e.get_entry_type() {
                EntryType::EntryNormal => {
                    normal.push(e);
                    continue;
                }
                EntryType::EntryConfChange => {
                    let cc: ConfChange = protobuf::Message::parse_from_bytes(&e.data)
                        .map_err(|_| Error::CorruptRecord)?;
                    // A legacy single change (cairn writes V2 only, raft-rs may write these).
                    let mut single = raft::prelude::ConfChangeSingle::default();
                    single.set_change_type(cc.get_change_type());
                    single.node_id = cc.node_id;
                    let mut v2 = ConfChangeV2::default();
                    v2.set_changes(vec![single].into());
                    v2.set_context(cc.context.clone());
                    v2
                }
                EntryType::EntryConfChangeV2 => protobuf::Message::parse_from_bytes(&e.data)
                    .map_err(|_| Error::CorruptRecord)?,
            };
            // Everything before the change is applied first, in order.
            if !normal.is_empty() {
                self.state_machine.apply(&normal);
                normal.clear();
            }
            let cs = self.raw.apply_conf_change(&change)?;
            self.store.set_conf_state(&cs)?;
            self.state_machine.apply_conf_change(e.index, &change, &cs);
        }
        if !normal.is_empty() {
            self.state_machine.apply(&normal);
        }
        Ok(())
    }

    /// Every `--snapshot-count` applied entries, drops the log the state machine holds
    /// durably, keeping a tail for followers that lag a little.
    fn maybe_compact(&mut self) -> Result<(), Error> {
        let applied = self.state_machine.applied();
        let first = self.store.snapshot_point().index + 1;
        let keep = CATCH_UP_ENTRIES.min(self.snapshot_count);
        if applied < first + self.snapshot_count + keep {
            return Ok(());
        }
        self.state_machine.flush()?;
        let to = applied - keep;
        self.store.compact(to)?;
        tracing::info!(compacted_to = to, applied, "compacted the raft log");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use parking_lot::Mutex;
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
        fn apply(&mut self, entries: &[Entry]) {
            let mut applied = self.0.lock();
            for e in entries {
                applied.push((e.index, e.data.to_vec()));
            }
        }
        fn apply_conf_change(&mut self, index: u64, _: &ConfChangeV2, _: &ConfState) {
            self.0.lock().push((index, Vec::new()));
        }
        fn applied(&self) -> u64 {
            self.0.lock().last().map_or(0, |e| e.0)
        }
        fn flush(&mut self) -> Result<(), Error> {
            Ok(())
        }
        fn install_snapshot(&mut self, _: u64, _: u64) -> Result<(), Error> {
            unreachable!("the test log is never compacted")
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
            self.handle.stop();
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
                    removed: None,
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
                    snapshot_count: 100_000,
                },
                store,
                peers,
                inbox,
                unreachable,
                state_machine: Box::new(applied.clone()),
                metrics: None,
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

    /// Reads on every member at once, `rounds` times; each must be answered, with an index
    /// no lower than the commit index the member knew when it asked.
    async fn read_everywhere(members: &[&Member], rounds: usize) {
        for _ in 0..rounds {
            let mut asks = Vec::new();
            for m in members {
                for _ in 0..4 {
                    let h = m.handle.clone();
                    asks.push(tokio::spawn(async move {
                        let before = h.status().commit;
                        // Far longer than a round takes; a dropped round never ends.
                        let index = tokio::time::timeout(Duration::from_secs(10), h.read_index())
                            .await
                            .expect("a read index round was never answered")
                            .expect("read index");
                        assert!(index >= before, "read index {index} below commit {before}");
                    }));
                }
            }
            for a in asks {
                a.await.expect("reader");
            }
        }
    }

    /// The multi-endpoint stall (etcdctl endpoint health over every member): each member
    /// numbered its ReadIndex contexts from 1, the leader dropped a context already pending
    /// from another member, and that member's readers waited for the request timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_on_every_member_at_once_are_all_answered_through_a_leader_change() {
        let members = cluster(3).await;
        let all: Vec<&Member> = members.iter().collect();
        let first = leader(&all).await;
        read_everywhere(&all, 50).await;
        // A leader change between and during rounds.
        let next = (first % 3) + 1;
        let during = {
            let readers: Vec<RaftHandle> = members.iter().map(|m| m.handle.clone()).collect();
            tokio::spawn(async move {
                let mut served = 0;
                for _ in 0..20 {
                    for h in &readers {
                        let r = tokio::time::timeout(Duration::from_secs(10), h.read_index())
                            .await
                            .expect("a read index round was never answered");
                        // Asked while no leader was known for too long, a round may fail with
                        // NoLeader; nothing else.
                        match r {
                            Ok(_) => served += 1,
                            Err(Error::Etcd(EtcdError::NoLeader)) => {}
                            Err(e) => panic!("read index: {e}"),
                        }
                    }
                }
                served
            })
        };
        members[first as usize - 1]
            .handle
            .transfer_leader(next)
            .await
            .expect("transfer");
        assert!(during.await.expect("readers") > 0);
        let after = leader(&all).await;
        read_everywhere(&all, 20).await;
        eprintln!("leader {first} -> {after}");
        for m in &members {
            m.stop();
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
                .propose(
                    data.clone(),
                    Box::new(|e| eprintln!("proposal refused: {e}")),
                )
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
                .propose(
                    data.clone(),
                    Box::new(|e| eprintln!("proposal refused: {e}")),
                )
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
