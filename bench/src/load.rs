//! The load generator behind `cairn bench`: etcd benchmark's workloads (put, range, txn-put,
//! watch, lease-keepalive) run by concurrent clients over a number of gRPC connections, for
//! a number of requests or a duration, optionally rate-limited, against any etcd-v3 endpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_client::Connector;
use etcd_client::{
    Client, GetOptions, KvClient, LeaseClient, LeaseKeepAliveStream, LeaseKeeper, Txn, TxnOp,
    WatchStream,
};
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::report::{new_histogram, ErrorCount, LatencySummary, LoadReport, PutSide};
use crate::Error;

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting and the first request may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The connections' own bound on a request, far above any the load waits for.
const CONNECTION_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a watcher may go without an event while it still expects some.
const WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// TTL of the leases the lease-keepalive workload renews, in seconds.
const LEASE_TTL: i64 = 60;
/// How many distinct error texts a report keeps.
const MAX_ERROR_KINDS: usize = 16;

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Put of random (or sequential) keys of the key space.
    Put,
    /// Range of one pre-populated key.
    Range,
    /// Txn with one Put, keys as for [`Mode::Put`].
    TxnPut,
    /// Watchers on one key while puts are issued to it; measures put-to-event delivery.
    Watch,
    /// LeaseKeepAlive round trips on leases granted up front (one per client).
    LeaseKeepalive,
}

impl Mode {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Range => "range",
            Self::TxnPut => "txn-put",
            Self::Watch => "watch",
            Self::LeaseKeepalive => "lease-keepalive",
        }
    }
}

/// Read consistency of the range workload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Linearizable (goes through the leader; etcd's `l`).
    #[default]
    Linearizable,
    /// Serializable (served by the member from its own state; etcd's `s`).
    Serializable,
}

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests (puts, for watch).
    Total(u64),
    /// After this long; requests not started by then are not issued.
    Duration(Duration),
}

/// TLS material for `https` endpoints (PEM files).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// The CA that signed the servers' certificates.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, for servers that require client certificates.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// One load run.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadSpec {
    /// The workload.
    pub mode: Mode,
    /// Client URLs (`http://IP:PORT`, `https://...`, or `IP:PORT`).
    pub endpoints: Vec<String>,
    /// gRPC connections; clients share them round-robin.
    pub conns: usize,
    /// Concurrent clients, each with one request in flight.
    pub clients: usize,
    /// When to stop.
    pub stop: Stop,
    /// Key length in bytes (keys are zero-padded decimal numbers; longer if the key space
    /// needs more digits).
    pub key_size: usize,
    /// Value length in bytes.
    pub val_size: usize,
    /// How many distinct keys put and txn-put write.
    pub key_space_size: u64,
    /// Write keys 0, 1, 2, ... (modulo the key space) instead of random ones.
    pub sequential_keys: bool,
    /// Range consistency.
    pub consistency: Consistency,
    /// Requests per second over all clients; 0 is unlimited.
    pub rate: u64,
    /// Watchers, for watch; each has its own watch stream.
    pub watchers: usize,
    /// TLS, for `https` endpoints.
    pub tls: Option<Tls>,
    /// A user and password, for a cluster with auth enabled.
    pub credentials: Option<cairn_client::Credentials>,
    /// Written before every key (empty for etcd benchmark's bare keys).
    pub key_prefix: Vec<u8>,
    /// Send everything to the endpoint of the cluster's leader only (etcd benchmark's
    /// `--target-leader`), found by asking each endpoint for its status.
    pub target_leader: bool,
}

impl LoadSpec {
    /// etcd benchmark's defaults for `mode` against `endpoints`: 1 connection, 1 client,
    /// 10,000 requests, 8-byte keys and values, a key space of 1, linearizable, unlimited
    /// rate, 1 watcher, no TLS.
    pub fn new(mode: Mode, endpoints: Vec<String>) -> Self {
        Self {
            mode,
            endpoints,
            conns: 1,
            clients: 1,
            stop: Stop::Total(10_000),
            key_size: 8,
            val_size: 8,
            key_space_size: 1,
            sequential_keys: false,
            consistency: Consistency::Linearizable,
            rate: 0,
            watchers: 1,
            tls: None,
            credentials: None,
            key_prefix: Vec::new(),
            target_leader: false,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        for (what, n) in [
            ("--conns", self.conns as u64),
            ("--clients", self.clients as u64),
            ("--key-space-size", self.key_space_size),
            ("--watchers", self.watchers as u64),
        ] {
            if n == 0 {
                return Err(Error::Zero { what });
            }
        }
        if self.endpoints.is_empty() {
            return Err(Error::Zero {
                what: "--endpoints",
            });
        }
        if matches!(self.stop, Stop::Total(0)) || self.stop == Stop::Duration(Duration::ZERO) {
            return Err(Error::Zero {
                what: "--total/--duration",
            });
        }
        Ok(())
    }

    /// The key with index `i`: the prefix, then `i` zero-padded to the key size.
    fn key(&self, i: u64) -> Vec<u8> {
        prefixed_key(&self.key_prefix, i, self.key_size)
    }
}

fn prefixed_key(prefix: &[u8], i: u64, width: usize) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(format!("{i:0width$}").as_bytes());
    key
}

/// Called with the number of requests (puts, for watch) just completed.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// A small xorshift64* generator: keys and values need spread, not unpredictability.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        // Printable, so values can be looked at with etcdctl.
        (0..n).map(|_| b'a' + (self.next() % 26) as u8).collect()
    }
}

/// Ends runs early: once halted, their clients start no new request and end when the ones
/// in flight are answered (or time out).
#[derive(Clone, Debug, Default)]
pub struct Halt(Arc<AtomicBool>);

impl Halt {
    /// Halts the runs given this handle.
    pub fn halt(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Halt::halt`] was called.
    pub fn is_halted(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Hands out request numbers until the run's end, pacing them at the rate.
struct Schedule {
    stop: Stop,
    rate: u64,
    start: Instant,
    next: AtomicU64,
    halt: Halt,
}

impl Schedule {
    fn new(stop: Stop, rate: u64, halt: Halt) -> Self {
        Self {
            stop,
            rate,
            start: Instant::now(),
            next: AtomicU64::new(0),
            halt,
        }
    }

    /// The next request's number, once it is due; `None` when the run is over.
    async fn claim(&self) -> Option<u64> {
        if self.halt.is_halted() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let due = if self.rate > 0 {
            self.start + Duration::from_secs_f64(i as f64 / self.rate as f64)
        } else {
            Instant::now()
        };
        match self.stop {
            Stop::Total(n) if i >= n => return None,
            Stop::Duration(d) if due >= self.start + d || self.start.elapsed() >= d => return None,
            _ => {}
        }
        tokio::time::sleep_until(due).await;
        (!self.halt.is_halted()).then_some(i)
    }
}

/// What one client measured.
struct Tally {
    hist: Histogram<u64>,
    errors: HashMap<String, u64>,
    /// For watch: (revision, start) of each answered put.
    put_starts: Vec<(i64, Instant)>,
    last_done: Option<Instant>,
}

impl Tally {
    fn new() -> Self {
        Self {
            hist: new_histogram(),
            errors: HashMap::new(),
            put_starts: Vec::new(),
            last_done: None,
        }
    }

    fn record(&mut self, started: Instant, result: Result<Option<i64>, String>) {
        let now = Instant::now();
        self.last_done = Some(now);
        match result {
            Ok(revision) => {
                let ns = (now - started).as_nanos().max(1) as u64;
                self.hist.record(ns).expect("histogram auto-resizes");
                if let Some(rev) = revision {
                    self.put_starts.push((rev, started));
                }
            }
            Err(e) => {
                if self.errors.len() < MAX_ERROR_KINDS || self.errors.contains_key(&e) {
                    *self.errors.entry(e).or_default() += 1;
                } else {
                    *self.errors.entry("(other errors)".into()).or_default() += 1;
                }
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.hist.add(&other.hist).expect("same histogram bounds");
        for (e, n) in other.errors {
            *self.errors.entry(e).or_default() += n;
        }
        self.put_starts.extend(other.put_starts);
        self.last_done = self.last_done.max(other.last_done);
    }

    fn error_kinds(&self) -> (u64, Vec<ErrorCount>) {
        let mut kinds: Vec<ErrorCount> = self
            .errors
            .iter()
            .map(|(e, &count)| ErrorCount {
                error: e.clone(),
                count,
            })
            .collect();
        kinds.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.error.cmp(&b.error)));
        (kinds.iter().map(|k| k.count).sum(), kinds)
    }
}

/// One client's request.
enum Op {
    Put(KvClient),
    Range(KvClient, Option<GetOptions>),
    TxnPut(KvClient),
    KeepAlive(LeaseKeeper, LeaseKeepAliveStream),
}

impl Op {
    /// Issues one request; a put's revision is returned (watch needs it).
    async fn call(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<Option<i64>, String> {
        let call = async {
            match self {
                Self::Put(kv) => kv
                    .put(key, value, None)
                    .await
                    .map(|r| r.header().map(|h| h.revision())),
                Self::Range(kv, opts) => kv.get(key, opts.clone()).await.map(|_| None),
                Self::TxnPut(kv) => kv
                    .txn(Txn::new().and_then([TxnOp::put(key, value, None)]))
                    .await
                    .map(|_| None),
                Self::KeepAlive(keeper, stream) => {
                    keeper.keep_alive().await?;
                    match stream.message().await? {
                        Some(r) if r.ttl() > 0 => Ok(None),
                        Some(_) => Err(etcd_client::Error::LeaseKeepAliveError(
                            "lease not found".into(),
                        )),
                        None => Err(etcd_client::Error::LeaseKeepAliveError(
                            "keep-alive stream ended".into(),
                        )),
                    }
                }
            }
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
            Ok(r) => r.map_err(|e| cairn_client::chain(&e)),
            Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
        }
    }
}

/// How load connections reach members: `spec`'s TLS files; requests bounded by
/// [`REQUEST_TIMEOUT`] where the workload asks for it, never by the connection.
fn connector(spec: &LoadSpec) -> Result<Connector, Error> {
    let tls = spec.tls.clone().unwrap_or_default();
    Ok(Connector::from_parts(
        tls.ca.as_deref(),
        tls.identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path())),
        spec.credentials.as_ref(),
        CONNECT_TIMEOUT,
        CONNECTION_REQUEST_TIMEOUT,
    )?)
}

/// `spec.conns` connections to `spec.endpoints`, each proven by one request.
pub(crate) async fn connect(spec: &LoadSpec) -> Result<Vec<Client>, Error> {
    let connector = connector(spec)?;
    let targets = if spec.target_leader {
        vec![connector
            .leader(&spec.endpoints)
            .await
            .map_err(|_| Error::NoLeader {
                endpoints: spec.endpoints.join(","),
            })?]
    } else {
        spec.endpoints.clone()
    };
    let endpoints = targets.join(",");
    let mut conns = Vec::with_capacity(spec.conns);
    for _ in 0..spec.conns {
        let mut c = connector.connect_to(&targets).await?;
        // Connections are made lazily: one request proves the endpoint answers.
        connector
            .timed(&endpoints, "a status request", c.status())
            .await?;
        conns.push(c);
    }
    Ok(conns)
}

/// Runs `spec` to its end on the current tokio runtime.
pub async fn run(spec: &LoadSpec, progress: Progress) -> Result<LoadReport, Error> {
    run_until_halted(spec, progress, Halt::default()).await
}

/// [`run`], ended early once `halt` is halted (the report covers the requests issued).
pub async fn run_until_halted(
    spec: &LoadSpec,
    progress: Progress,
    halt: Halt,
) -> Result<LoadReport, Error> {
    spec.validate()?;
    let conns = connect(spec).await?;
    let mut report = match spec.mode {
        Mode::Watch => run_watch(spec, &conns, progress, halt).await?,
        _ => {
            let (tally, start) = run_requests(spec, &conns, None, progress, halt).await?;
            let elapsed = tally.last_done.map_or(0.0, |t| (t - start).as_secs_f64());
            let mut r = LoadReport::new(spec.mode.name(), "requests", &tally.hist, elapsed);
            (r.errors, r.error_kinds) = tally.error_kinds();
            r
        }
    };
    report.conns = spec.conns;
    report.clients = spec.clients;
    Ok(report)
}

/// [`run`] on a runtime of its own, for synchronous callers.
pub fn run_blocking(spec: &LoadSpec, progress: Progress) -> Result<LoadReport, Error> {
    crate::block_on(run(spec, progress))?
}

/// Builds each client's request (granting leases, pre-populating the range key) and runs
/// them all until the schedule ends; `watch_key` makes every client put that key.
async fn run_requests(
    spec: &LoadSpec,
    conns: &[Client],
    watch_key: Option<&[u8]>,
    progress: Progress,
    halt: Halt,
) -> Result<(Tally, Instant), Error> {
    let value = Rng::new(u64::from(std::process::id())).bytes(spec.val_size);
    if spec.mode == Mode::Range {
        conns[0]
            .kv_client()
            .put(spec.key(0), value.clone(), None)
            .await
            .map_err(|source| Error::Setup {
                what: "pre-populating the range key",
                source,
            })?;
    }
    let mut ops = Vec::with_capacity(spec.clients);
    for c in 0..spec.clients {
        let conn = &conns[c % conns.len()];
        let op = match spec.mode {
            Mode::Put | Mode::Watch => Op::Put(conn.kv_client()),
            Mode::TxnPut => Op::TxnPut(conn.kv_client()),
            Mode::Range => Op::Range(
                conn.kv_client(),
                (spec.consistency == Consistency::Serializable)
                    .then(|| GetOptions::new().with_serializable()),
            ),
            Mode::LeaseKeepalive => {
                let setup = |source| Error::Setup {
                    what: "granting a lease to keep alive",
                    source,
                };
                let mut leases: LeaseClient = conn.lease_client();
                let id = leases.grant(LEASE_TTL, None).await.map_err(setup)?.id();
                let (keeper, stream) = leases.keep_alive(id).await.map_err(setup)?;
                Op::KeepAlive(keeper, stream)
            }
        };
        ops.push(op);
    }
    let schedule = Arc::new(Schedule::new(spec.stop, spec.rate, halt));
    let start = schedule.start;
    // Dropped (on an error) it aborts the clients still running.
    let mut tasks = tokio::task::JoinSet::new();
    for (c, mut op) in ops.into_iter().enumerate() {
        let schedule = schedule.clone();
        let progress = progress.clone();
        let spec_key = |i| spec.key(i);
        let fixed_key = watch_key.map(<[u8]>::to_vec);
        let (space, sequential) = (spec.key_space_size, spec.sequential_keys);
        let keys: Vec<Vec<u8>> = match (&fixed_key, spec.mode) {
            (Some(k), _) => vec![k.clone()],
            (None, Mode::Range) => vec![spec_key(0)],
            // Keys are built per request below; a small space is cached.
            (None, _) if space <= 1024 => (0..space).map(spec_key).collect(),
            _ => Vec::new(),
        };
        let key_size = spec.key_size;
        let key_prefix = spec.key_prefix.clone();
        let value = value.clone();
        tasks.spawn(async move {
            let mut rng = Rng::new((c as u64 + 1) ^ (u64::from(std::process::id()) << 20));
            let mut tally = Tally::new();
            while let Some(i) = schedule.claim().await {
                let key = if keys.len() == 1 {
                    keys[0].clone()
                } else {
                    let k = if sequential {
                        i % space
                    } else {
                        rng.next() % space
                    };
                    keys.get(k as usize)
                        .cloned()
                        .unwrap_or_else(|| prefixed_key(&key_prefix, k, key_size))
                };
                let started = Instant::now();
                let result = op.call(key, value.clone()).await;
                tally.record(started, result);
                progress(1);
            }
            let lease = match &op {
                Op::KeepAlive(keeper, _) => Some(keeper.id()),
                _ => None,
            };
            (tally, lease)
        });
    }
    let mut total = Tally::new();
    let mut leases = Vec::new();
    while let Some(t) = tasks.join_next().await {
        let (tally, lease) = t.map_err(Error::Task)?;
        total.merge(tally);
        leases.extend(lease);
    }
    // Best effort: the leases expire by themselves otherwise.
    let mut lease_client = conns[0].lease_client();
    for id in leases {
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, lease_client.revoke(id)).await;
    }
    Ok((total, start))
}

/// One watcher's stream, read until it has seen `last` (the last put's revision, once
/// known); returns (revision, arrival) of each event.
async fn watch_until(
    n: usize,
    mut stream: WatchStream,
    mut last: tokio::sync::watch::Receiver<Option<i64>>,
) -> Result<Vec<(i64, Instant)>, Error> {
    let mut seen = Vec::new();
    let mut highest = 0_i64;
    loop {
        let target = *last.borrow_and_update();
        if target.is_some_and(|t| highest >= t) {
            return Ok(seen);
        }
        let incomplete = |received| Error::WatchIncomplete {
            watcher: n,
            received,
            waited: WATCH_IDLE_TIMEOUT,
        };
        tokio::select! {
            msg = stream.message() => {
                let now = Instant::now();
                let resp = msg
                    .map_err(|source| Error::Setup { what: "watching", source })?
                    .ok_or_else(|| incomplete(seen.len()))?;
                for ev in resp.events() {
                    if let Some(kv) = ev.kv() {
                        highest = highest.max(kv.mod_revision());
                        seen.push((kv.mod_revision(), now));
                    }
                }
                if resp.canceled() {
                    return Err(incomplete(seen.len()));
                }
            }
            changed = last.changed(), if target.is_none() => {
                if changed.is_err() {
                    return Err(incomplete(seen.len()));
                }
            }
            _ = tokio::time::sleep(WATCH_IDLE_TIMEOUT), if target.is_some() => {
                return Err(incomplete(seen.len()));
            }
        }
    }
}

async fn run_watch(
    spec: &LoadSpec,
    conns: &[Client],
    progress: Progress,
    halt: Halt,
) -> Result<LoadReport, Error> {
    let key = spec.key(0);
    let (last_tx, last_rx) = tokio::sync::watch::channel(None);
    let mut watchers = Vec::with_capacity(spec.watchers);
    for n in 0..spec.watchers {
        let mut w = conns[n % conns.len()].watch_client();
        let setup = |source| Error::Setup {
            what: "creating a watcher",
            source,
        };
        let mut stream = w.watch(key.clone(), None).await.map_err(setup)?;
        // The created response: the watcher is registered before the first put.
        stream.message().await.map_err(setup)?;
        watchers.push(tokio::spawn(watch_until(n, stream, last_rx.clone())));
    }
    let (puts, start) = run_requests(spec, conns, Some(&key), progress, halt).await?;
    let last = puts.put_starts.iter().map(|&(rev, _)| rev).max();
    // With no put answered there is nothing to wait for.
    let _ = last_tx.send(Some(last.unwrap_or(0)));
    let starts: HashMap<i64, Instant> = puts.put_starts.iter().copied().collect();
    let mut hist = new_histogram();
    let mut last_event = start;
    for w in watchers {
        for (rev, at) in w.await.map_err(Error::Task)?? {
            if let Some(&sent) = starts.get(&rev) {
                let ns = at.saturating_duration_since(sent).as_nanos().max(1) as u64;
                hist.record(ns).expect("histogram auto-resizes");
                last_event = last_event.max(at);
            }
        }
    }
    let mut report = LoadReport::new(
        spec.mode.name(),
        "events",
        &hist,
        (last_event - start).as_secs_f64(),
    );
    (report.errors, report.error_kinds) = puts.error_kinds();
    report.puts = Some(PutSide {
        count: puts.hist.len(),
        watchers: spec.watchers,
        latency_ms: LatencySummary::of(&puts.hist),
    });
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zero_padded_to_the_key_size() {
        let spec = LoadSpec::new(Mode::Put, vec!["127.0.0.1:2379".into()]);
        assert_eq!(spec.key(42), b"00000042");
        let wide = LoadSpec {
            key_size: 2,
            ..spec
        };
        assert_eq!(wide.key(12345), b"12345");
        let prefixed = LoadSpec {
            key_prefix: b"/p/".to_vec(),
            ..wide
        };
        assert_eq!(prefixed.key(7), b"/p/07");
    }

    #[test]
    fn zero_counts_are_refused() {
        let ok = LoadSpec::new(Mode::Put, vec!["127.0.0.1:2379".into()]);
        assert!(ok.validate().is_ok());
        for bad in [
            LoadSpec {
                clients: 0,
                ..ok.clone()
            },
            LoadSpec {
                stop: Stop::Total(0),
                ..ok.clone()
            },
            LoadSpec {
                endpoints: vec![],
                ..ok.clone()
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Zero { .. })), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_schedule_ends_after_the_total() {
        let s = Schedule::new(Stop::Total(3), 0, Halt::default());
        let mut got = Vec::new();
        while let Some(i) = s.claim().await {
            got.push(i);
        }
        assert_eq!(got, [0, 1, 2]);
    }

    #[tokio::test]
    async fn a_halted_schedule_hands_out_nothing_more() {
        let halt = Halt::default();
        let s = Schedule::new(Stop::Total(10), 0, halt.clone());
        assert_eq!(s.claim().await, Some(0));
        halt.halt();
        assert!(halt.is_halted());
        assert_eq!(s.claim().await, None);
    }

    #[test]
    fn the_rng_spreads_over_the_space() {
        let mut rng = Rng::new(7);
        let mut hit = [false; 16];
        for _ in 0..1000 {
            hit[(rng.next() % 16) as usize] = true;
        }
        assert!(hit.iter().all(|&h| h));
        assert!(rng.bytes(5).iter().all(u8::is_ascii_lowercase));
    }
}
