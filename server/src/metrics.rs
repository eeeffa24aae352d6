//! The member's Prometheus metrics, with etcd 3.4's names, types, label names and buckets, so
//! etcd dashboards and alert rules work against cairn-server unchanged.
//!
//! One [`Metrics`] value per member, shared (`Arc`) by the write loop, the gRPC services, the
//! gRPC metrics layer ([`grpc`]) and the HTTP endpoints ([`crate::http`]). Counters and
//! histograms are updated where the events happen; sizes and process figures are read when
//! `/metrics` is scraped ([`Metrics::encode`]).
//!
//! Code outside this module records events through the methods of [`Metrics`] (reach it with
//! `Node::metrics()`): defragmentation and snapshot code call [`Metrics::observe_defrag`] and
//! [`Metrics::observe_snapshot`] with the time each one took, and replication will call
//! [`Metrics::peer_sent`], [`Metrics::peer_received`], [`Metrics::peer_send_failed`] and
//! [`Metrics::observe_peer_round_trip`] and [`Metrics::leader_changed`].

pub mod grpc;
mod process;
mod text;

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::config::MetricsLevel;
use crate::proto::etcdserverpb::{
    request_op, response_op, DeleteRangeRequest, PutRequest, TxnRequest, TxnResponse,
};

pub use crate::config::ETCD_VERSION;

/// Labels of the per-peer network metrics: the peer's member ID in hex (`To` or `From`).
type PeerLabel = [(&'static str, String); 1];
/// `grpc_method`, `grpc_service`, `grpc_type` (etcd's order: alphabetical).
pub(crate) type GrpcLabels = [(&'static str, String); 3];
/// `grpc_code`, `grpc_method`, `grpc_service`, `grpc_type`.
pub(crate) type GrpcCodeLabels = [(&'static str, String); 4];
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// What `/metrics` reads from the member at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeState {
    /// Whether the member knows a leader.
    pub has_leader: bool,
    /// Whether the member is the leader.
    pub is_leader: bool,
    /// Bytes the backend occupies on disk (`None` when the size could not be read: the
    /// gauge then keeps its last value).
    pub db_size: Option<u64>,
    /// Bytes of stored data the backend holds (without its free space and overhead).
    pub db_size_in_use: u64,
    /// Keys that exist at the newest revision.
    pub keys: u64,
}

/// How many operations of each kind one MVCC transaction made, counted as etcd 3.4 counts
/// them (every request runs as one or two MVCC transactions; see [`Metrics::mvcc_ops`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MvccOps {
    /// Range reads.
    pub ranges: u64,
    /// Puts.
    pub puts: u64,
    /// Delete ranges.
    pub deletes: u64,
}

impl MvccOps {
    /// A Put, which also reads the key when it must return or keep the previous value.
    pub fn put(req: &PutRequest) -> Self {
        Self {
            ranges: u64::from(req.prev_kv || req.ignore_value || req.ignore_lease),
            puts: 1,
            deletes: 0,
        }
    }

    /// A DeleteRange, which also reads the keys when it must return them.
    pub fn delete(req: &DeleteRangeRequest) -> Self {
        Self {
            ranges: u64::from(req.prev_kv),
            puts: 0,
            deletes: 1,
        }
    }

    /// A Range.
    pub fn range() -> Self {
        Self {
            ranges: 1,
            ..Self::default()
        }
    }

    fn add(&mut self, other: Self) {
        self.ranges += other.ranges;
        self.puts += other.puts;
        self.deletes += other.deletes;
    }

    fn total(self) -> u64 {
        self.ranges + self.puts + self.deletes
    }
}

/// The operations a txn request can make, without its keys and values: what is needed to
/// count its MVCC operations once the answer says which branches ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnShape {
    compares: u64,
    success: Vec<OpShape>,
    failure: Vec<OpShape>,
    read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum OpShape {
    Leaf(MvccOps),
    Txn(TxnShape),
}

impl TxnShape {
    /// The shape of `req`; `read_only` says whether it runs as a read (no write ops anywhere).
    pub fn of(req: &TxnRequest, read_only: bool) -> Self {
        let ops = |ops: &[crate::proto::etcdserverpb::RequestOp]| {
            ops.iter()
                .map(|op| match &op.request {
                    Some(request_op::Request::RequestRange(_)) => OpShape::Leaf(MvccOps::range()),
                    Some(request_op::Request::RequestPut(p)) => OpShape::Leaf(MvccOps::put(p)),
                    Some(request_op::Request::RequestDeleteRange(d)) => {
                        OpShape::Leaf(MvccOps::delete(d))
                    }
                    Some(request_op::Request::RequestTxn(t)) => {
                        OpShape::Txn(Self::of(t, read_only))
                    }
                    None => OpShape::Leaf(MvccOps::default()),
                })
                .collect()
        };
        Self {
            compares: req.compare.len() as u64,
            success: ops(&req.success),
            failure: ops(&req.failure),
            read_only,
        }
    }

    /// The operations of the branch that ran (with nested compares, which run in the same
    /// MVCC transaction as the branch), given the answer `resp`.
    fn branch_ops(&self, resp: &TxnResponse) -> MvccOps {
        let mut ops = MvccOps::default();
        let branch = if resp.succeeded {
            &self.success
        } else {
            &self.failure
        };
        for (op, answer) in branch.iter().zip(&resp.responses) {
            match op {
                OpShape::Leaf(leaf) => ops.add(*leaf),
                OpShape::Txn(inner) => {
                    if let Some(response_op::Response::ResponseTxn(r)) = &answer.response {
                        ops.ranges += inner.compares;
                        ops.add(inner.branch_ops(r));
                    }
                }
            }
        }
        ops
    }

    /// The MVCC transactions the txn ran, given its answer: etcd 3.4 evaluates the compares
    /// in a read transaction and, for a txn that writes, runs the branch in a second one.
    pub fn mvcc_txns(&self, resp: &TxnResponse) -> Vec<MvccOps> {
        let compares = MvccOps {
            ranges: self.compares,
            ..MvccOps::default()
        };
        let branch = self.branch_ops(resp);
        if self.read_only {
            let mut all = compares;
            all.add(branch);
            vec![all]
        } else {
            vec![compares, branch]
        }
    }
}

/// Every metric cairn-server exports, registered under etcd's names.
pub struct Metrics {
    registry: Registry,
    has_leader: Gauge,
    is_leader: Gauge,
    leader_changes: Counter,
    proposals_committed: Gauge,
    proposals_applied: Gauge,
    proposals_pending: Gauge,
    proposals_failed: Counter,
    wal_fsync: Histogram,
    backend_commit: Histogram,
    defrag: Histogram,
    snapshot: Histogram,
    db_total_size: Gauge,
    db_in_use: Gauge,
    keys_total: Gauge,
    put_total: Counter,
    range_total: Counter,
    delete_total: Counter,
    txn_total: Counter,
    peer_round_trip: HistogramFamily<PeerLabel>,
    peer_sent_bytes: Family<PeerLabel, Counter>,
    peer_received_bytes: Family<PeerLabel, Counter>,
    peer_sent_failures: Family<PeerLabel, Counter>,
    pub(crate) grpc_sent_bytes: Counter,
    pub(crate) grpc_received_bytes: Counter,
    pub(crate) grpc_started: Family<GrpcLabels, Counter>,
    pub(crate) grpc_handled: Family<GrpcCodeLabels, Counter>,
    pub(crate) grpc_handling: Option<HistogramFamily<GrpcLabels>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn peer_rtt_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 14))
}

fn grpc_handling_histogram() -> Histogram {
    // client_golang's default buckets, which go-grpc-prometheus (and so etcd) uses.
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Metrics {
    /// Registers every metric for member `member_id` with backend quota `quota_bytes`;
    /// `level` is `--metrics` (`extensive` adds `grpc_server_handling_seconds`, like etcd).
    pub fn new(member_id: u64, quota_bytes: i64, level: MetricsLevel) -> Self {
        let mut r = Registry::default();
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            r.register(name, help, g.clone());
            g
        };
        // prometheus-client appends `_total` to counter names itself.
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            let base = name
                .strip_suffix("_total")
                .expect("counter names end in _total");
            r.register(base, help, c.clone());
            c
        };
        let histogram = |r: &mut Registry, name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::new(buckets);
            r.register(name, help, h.clone());
            h
        };

        let has_leader = gauge(
            &mut r,
            "etcd_server_has_leader",
            "Whether or not a leader exists. 1 is existence, 0 is not.",
        );
        let is_leader = gauge(
            &mut r,
            "etcd_server_is_leader",
            "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        );
        let leader_changes = counter(
            &mut r,
            "etcd_server_leader_changes_seen_total",
            "The number of leader changes seen.",
        );
        // etcd exports these two totals as gauges; so does cairn.
        let proposals_committed = gauge(
            &mut r,
            "etcd_server_proposals_committed_total",
            "The total number of consensus proposals committed.",
        );
        let proposals_applied = gauge(
            &mut r,
            "etcd_server_proposals_applied_total",
            "The total number of consensus proposals applied.",
        );
        let proposals_pending = gauge(
            &mut r,
            "etcd_server_proposals_pending",
            "The current number of pending proposals to commit.",
        );
        let proposals_failed = counter(
            &mut r,
            "etcd_server_proposals_failed_total",
            "The total number of failed proposals seen.",
        );
        let quota = gauge(
            &mut r,
            "etcd_server_quota_backend_bytes",
            "Current backend storage quota size in bytes.",
        );
        quota.set(quota_bytes);
        let server_id = Family::<[(&'static str, String); 1], Gauge>::default();
        r.register(
            "etcd_server_id",
            "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
            server_id.clone(),
        );
        server_id
            .get_or_create(&[("server_id", format!("{member_id:x}"))])
            .set(1);
        let server_version = Family::<[(&'static str, String); 1], Gauge>::default();
        r.register(
            "etcd_server_version",
            "Which version is running. 1 for 'server_version' label with current version.",
            server_version.clone(),
        );
        server_version
            .get_or_create(&[("server_version", ETCD_VERSION.to_string())])
            .set(1);
        // cairn's own: which cairn-server runs (etcd_server_version names the etcd release it
        // follows); tools tell cairn-server from etcd by it.
        let cairn_info = Family::<[(&'static str, String); 1], Gauge>::default();
        r.register(
            "cairn_server_info",
            "Which cairn-server is running. 1 for the 'version' label with its version.",
            cairn_info.clone(),
        );
        cairn_info
            .get_or_create(&[("version", env!("CARGO_PKG_VERSION").to_string())])
            .set(1);

        let wal_fsync = histogram(
            &mut r,
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by WAL.",
            exponential_buckets(0.001, 2.0, 14).collect(),
        );
        let backend_commit = histogram(
            &mut r,
            "etcd_disk_backend_commit_duration_seconds",
            "The latency distributions of commit called by backend.",
            exponential_buckets(0.001, 2.0, 14).collect(),
        );
        let defrag = histogram(
            &mut r,
            "etcd_disk_backend_defrag_duration_seconds",
            "The latency distribution of backend defragmentation.",
            exponential_buckets(0.1, 2.0, 13).collect(),
        );
        let snapshot = histogram(
            &mut r,
            "etcd_disk_backend_snapshot_duration_seconds",
            "The latency distribution of backend snapshots.",
            exponential_buckets(0.01, 2.0, 17).collect(),
        );

        let db_total_size = gauge(
            &mut r,
            "etcd_mvcc_db_total_size_in_bytes",
            "Total size of the underlying database physically allocated in bytes.",
        );
        let db_in_use = gauge(
            &mut r,
            "etcd_mvcc_db_total_size_in_use_in_bytes",
            "Total size of the underlying database logically in use in bytes.",
        );
        let put_total = counter(
            &mut r,
            "etcd_mvcc_put_total",
            "Total number of puts seen by this member.",
        );
        let range_total = counter(
            &mut r,
            "etcd_mvcc_range_total",
            "Total number of ranges seen by this member.",
        );
        let delete_total = counter(
            &mut r,
            "etcd_mvcc_delete_total",
            "Total number of deletes seen by this member.",
        );
        let txn_total = counter(
            &mut r,
            "etcd_mvcc_txn_total",
            "Total number of txns seen by this member.",
        );
        let keys_total = gauge(
            &mut r,
            "etcd_debugging_mvcc_keys_total",
            "Total number of keys.",
        );

        let peer_round_trip: HistogramFamily<PeerLabel> =
            Family::new_with_constructor(peer_rtt_histogram);
        r.register(
            "etcd_network_peer_round_trip_time_seconds",
            "Round-Trip-Time histogram between peers",
            peer_round_trip.clone(),
        );
        let peer_family = |r: &mut Registry, name: &str, help: &str| {
            let f = Family::<PeerLabel, Counter>::default();
            r.register(
                name.strip_suffix("_total").expect("counter"),
                help,
                f.clone(),
            );
            f
        };
        let peer_sent_bytes = peer_family(
            &mut r,
            "etcd_network_peer_sent_bytes_total",
            "The total number of bytes sent to peers.",
        );
        let peer_received_bytes = peer_family(
            &mut r,
            "etcd_network_peer_received_bytes_total",
            "The total number of bytes received from peers.",
        );
        let peer_sent_failures = peer_family(
            &mut r,
            "etcd_network_peer_sent_failures_total",
            "The total number of send failures from peers.",
        );
        let grpc_sent_bytes = counter(
            &mut r,
            "etcd_network_client_grpc_sent_bytes_total",
            "The total number of bytes sent to grpc clients.",
        );
        let grpc_received_bytes = counter(
            &mut r,
            "etcd_network_client_grpc_received_bytes_total",
            "The total number of bytes received from grpc clients.",
        );

        let grpc_started = Family::<GrpcLabels, Counter>::default();
        r.register(
            "grpc_server_started",
            "Total number of RPCs started on the server.",
            grpc_started.clone(),
        );
        let grpc_handled = Family::<GrpcCodeLabels, Counter>::default();
        r.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure.",
            grpc_handled.clone(),
        );
        let grpc_handling = (level == MetricsLevel::Extensive).then(|| {
            let f: HistogramFamily<GrpcLabels> =
                Family::new_with_constructor(grpc_handling_histogram);
            r.register(
                "grpc_server_handling_seconds",
                "Histogram of response latency (seconds) of gRPC that had been \
                 application-level handled by the server.",
                f.clone(),
            );
            f
        });
        process::register(&mut r);

        let metrics = Self {
            registry: r,
            has_leader,
            is_leader,
            leader_changes,
            proposals_committed,
            proposals_applied,
            proposals_pending,
            proposals_failed,
            wal_fsync,
            backend_commit,
            defrag,
            snapshot,
            db_total_size,
            db_in_use,
            keys_total,
            put_total,
            range_total,
            delete_total,
            txn_total,
            peer_round_trip,
            peer_sent_bytes,
            peer_received_bytes,
            peer_sent_failures,
            grpc_sent_bytes,
            grpc_received_bytes,
            grpc_started,
            grpc_handled,
            grpc_handling,
        };
        grpc::initialize(&metrics);
        metrics
    }

    /// This member saw a new leader (a single member elects itself once, at start).
    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// A proposal entered the write path and waits to be applied.
    pub fn proposal_pending(&self) {
        self.proposals_pending.inc();
    }

    /// A pending proposal left the write path: applied (`applied`), or given up (the caller
    /// went away or the member stopped), which counts as a failed proposal, like etcd's.
    pub fn proposal_done(&self, applied: bool) {
        self.proposals_pending.dec();
        if !applied {
            self.proposals_failed.inc();
        }
    }

    /// The write loop committed and applied `n` proposals.
    pub fn proposals_applied(&self, n: u64) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.proposals_committed.inc_by(n);
        self.proposals_applied.inc_by(n);
    }

    /// One fsync of the write path took `d` (cairn's WAL and backend are one: the sled flush
    /// of each write group).
    pub fn observe_fsync(&self, d: Duration) {
        self.wal_fsync.observe(seconds(d));
    }

    /// One backend commit (writing a group's batch and flushing it) took `d`.
    pub fn observe_backend_commit(&self, d: Duration) {
        self.backend_commit.observe(seconds(d));
    }

    /// One defragmentation took `d` (`etcd_disk_backend_defrag_duration_seconds`; called by
    /// `Node::defragment`).
    pub fn observe_defrag(&self, d: Duration) {
        self.defrag.observe(seconds(d));
    }

    /// Writing one backend snapshot took `d` (`etcd_disk_backend_snapshot_duration_seconds`;
    /// called by the snapshot stream once everything is sent).
    pub fn observe_snapshot(&self, d: Duration) {
        self.snapshot.observe(seconds(d));
    }

    /// A message of `bytes` was sent to peer `to` (replication records its traffic here).
    pub fn peer_sent(&self, to: u64, bytes: u64) {
        self.peer_sent_bytes
            .get_or_create(&[("To", format!("{to:x}"))])
            .inc_by(bytes);
    }

    /// A message of `bytes` was received from peer `from`.
    pub fn peer_received(&self, from: u64, bytes: u64) {
        self.peer_received_bytes
            .get_or_create(&[("From", format!("{from:x}"))])
            .inc_by(bytes);
    }

    /// A round trip to peer `to` took `d` (the transport samples each connection setup).
    pub fn observe_peer_round_trip(&self, to: u64, d: Duration) {
        self.peer_round_trip
            .get_or_create(&[("To", format!("{to:x}"))])
            .observe(seconds(d));
    }

    /// Sending to peer `to` failed.
    pub fn peer_send_failed(&self, to: u64) {
        self.peer_sent_failures
            .get_or_create(&[("To", format!("{to:x}"))])
            .inc();
    }

    /// One MVCC transaction made `ops`. Like etcd, a transaction of more than one operation
    /// also counts in `etcd_mvcc_txn_total`, whichever request it served.
    pub fn mvcc_ops(&self, ops: MvccOps) {
        self.range_total.inc_by(ops.ranges);
        self.put_total.inc_by(ops.puts);
        self.delete_total.inc_by(ops.deletes);
        if ops.total() > 1 {
            self.txn_total.inc();
        }
    }

    /// The metrics in Prometheus' text format (version 0.0.4, what etcd serves), with the
    /// member state read now.
    pub fn encode(&self, state: &ScrapeState) -> String {
        self.has_leader.set(i64::from(state.has_leader));
        self.is_leader.set(i64::from(state.is_leader));
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        if let Some(size) = state.db_size {
            self.db_total_size.set(clamp(size));
        }
        self.db_in_use.set(clamp(state.db_size_in_use));
        self.keys_total.set(clamp(state.keys));
        let mut open_metrics = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry);
        text::to_prometheus_text(&open_metrics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::etcdserverpb::{Compare, RangeRequest, RequestOp, ResponseOp};

    fn put() -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest::default())),
        }
    }

    fn range() -> RequestOp {
        RequestOp {
            request: Some(request_op::Request::RequestRange(RangeRequest::default())),
        }
    }

    #[test]
    fn txn_ops_count_compares_and_the_branch_that_ran() {
        let inner = TxnRequest {
            compare: vec![],
            success: vec![put()],
            failure: vec![range(), range()],
        };
        let req = TxnRequest {
            compare: vec![Compare::default()],
            success: vec![
                put(),
                RequestOp {
                    request: Some(request_op::Request::RequestTxn(inner)),
                },
            ],
            failure: vec![range()],
        };
        let resp = TxnResponse {
            succeeded: true,
            responses: vec![
                ResponseOp::default(),
                ResponseOp {
                    response: Some(response_op::Response::ResponseTxn(TxnResponse {
                        succeeded: false,
                        responses: vec![ResponseOp::default(); 2],
                        ..TxnResponse::default()
                    })),
                },
            ],
            ..TxnResponse::default()
        };
        let txns = TxnShape::of(&req, false).mvcc_txns(&resp);
        assert_eq!(
            txns,
            vec![
                MvccOps {
                    ranges: 1,
                    ..MvccOps::default()
                },
                MvccOps {
                    ranges: 2,
                    puts: 1,
                    deletes: 0
                }
            ]
        );
        let failed = TxnResponse {
            succeeded: false,
            responses: vec![ResponseOp::default()],
            ..TxnResponse::default()
        };
        assert_eq!(
            TxnShape::of(&req, true).mvcc_txns(&failed),
            vec![MvccOps {
                ranges: 2,
                ..MvccOps::default()
            }]
        );
    }

    #[test]
    fn encoding_has_etcd_names_types_and_values() {
        let m = Metrics::new(0xbdae9bbc11dd390d, 2 << 30, MetricsLevel::Extensive);
        m.leader_changed();
        m.proposals_applied(3);
        m.observe_fsync(Duration::from_micros(1500));
        m.mvcc_ops(MvccOps {
            ranges: 1,
            puts: 1,
            deletes: 0,
        });
        let text = m.encode(&ScrapeState {
            has_leader: true,
            is_leader: true,
            db_size: Some(20480),
            db_size_in_use: 16384,
            keys: 2,
        });
        for line in [
            "# TYPE etcd_server_leader_changes_seen_total counter",
            "etcd_server_leader_changes_seen_total 1",
            "# TYPE etcd_server_proposals_committed_total gauge",
            "etcd_server_proposals_committed_total 3",
            "etcd_server_has_leader 1",
            "etcd_server_id{server_id=\"bdae9bbc11dd390d\"} 1",
            "etcd_server_version{server_version=\"3.4.23\"} 1",
            "etcd_server_quota_backend_bytes 2147483648",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 0",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 1",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 1",
            "etcd_disk_wal_fsync_duration_seconds_count 1",
            "etcd_mvcc_db_total_size_in_bytes 20480",
            "etcd_mvcc_txn_total 1",
            "etcd_debugging_mvcc_keys_total 2",
            "# TYPE grpc_server_handling_seconds histogram",
            "grpc_server_started_total{grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // No series, no family: like etcd without peers.
        assert!(!text.contains("etcd_network_peer_sent_bytes_total"));
        m.peer_sent(0xab, 10);
        m.peer_received(0xab, 20);
        m.peer_send_failed(0xab);
        m.observe_peer_round_trip(0xab, Duration::from_millis(1));
        let text = m.encode(&ScrapeState::default());
        for line in [
            "# TYPE etcd_network_peer_sent_bytes_total counter",
            "etcd_network_peer_sent_bytes_total{To=\"ab\"} 10",
            "etcd_network_peer_received_bytes_total{From=\"ab\"} 20",
            "etcd_network_peer_sent_failures_total{To=\"ab\"} 1",
            "etcd_network_peer_round_trip_time_seconds_count{To=\"ab\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?}");
        }
        assert!(!text.contains("# EOF"));
        let basic = Metrics::new(1, 1, MetricsLevel::Basic).encode(&ScrapeState::default());
        assert!(!basic.contains("grpc_server_handling_seconds"));
    }
}
