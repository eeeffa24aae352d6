//! Linearizable reads that reach several members at the same moment: etcdctl's multi-endpoint
//! commands, and clients spread over every member, mixed with writes and a leader change.
//! Every read is answered on cairn-server; etcd 3.4 runs the same steps for reference.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_testkit::linearizability::{KvInput, KvOutput, Recorder};
use cairn_testkit::{Cluster, Kind};
use etcd_client::{Client, ConnectOptions};

use super::cluster::{cairn_cluster, LEADER_TIMEOUT};

/// How often each multi-endpoint etcdctl command is repeated.
const REPEATS: usize = 10;

/// etcdctl's output with what differs between runs and clusters (URLs, durations) masked.
fn mask(out: &str) -> Vec<String> {
    let url = regex::Regex::new(r"https?://127\.0\.0\.\d+:\d+").expect("regex");
    let took = regex::Regex::new(r"took = [0-9.]+[µnm]?s").expect("regex");
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| {
            let l = url.replace_all(l, "<url>");
            took.replace_all(&l, "took = <t>").into_owned()
        })
        .collect();
    // etcdctl prints endpoints in the order they answer.
    lines.sort();
    lines
}

/// `endpoint health`, `endpoint status` and a linearizable get over every endpoint at once,
/// `REPEATS` times: every run succeeds, with etcd's answers.
fn multi_endpoint_transcript(c: &Cluster) -> Vec<String> {
    let put = c.etcdctl(&["put", "spread", "v"]).expect("put");
    assert!(put.success(), "{put:?}");
    let mut transcript = Vec::new();
    for run in 0..REPEATS {
        let health = c.etcdctl(&["endpoint", "health"]).expect("health");
        let text = format!("{}{}", health.stdout, health.stderr);
        assert!(
            health.success(),
            "{:?} run {run}: endpoint health failed:\n{text}",
            c.kind()
        );
        let healthy = text.lines().filter(|l| l.contains(" is healthy")).count();
        assert_eq!(healthy, c.len(), "{:?} run {run}:\n{text}", c.kind());
        transcript.extend(mask(&text));
        let status = c.etcdctl(&["endpoint", "status"]).expect("status");
        assert!(status.success(), "{:?} run {run}: {status:?}", c.kind());
        assert_eq!(status.stdout.lines().count(), c.len(), "{status:?}");
        let get = c
            .etcdctl(&["get", "spread", "--consistency=l"])
            .expect("get");
        assert!(get.success(), "{:?} run {run}: {get:?}", c.kind());
        transcript.push(get.stdout);
    }
    transcript
}

/// A cairn-server and an etcd 3.4 cluster of `size` members, each with a leader.
fn both(size: usize) -> (Cluster, Cluster) {
    let mut cairn = cairn_cluster().size(size).start().expect("cairn cluster");
    let mut etcd = Cluster::builder(Kind::Etcd)
        .size(size)
        .start()
        .expect("etcd cluster");
    cairn.wait_leader(LEADER_TIMEOUT).expect("leader");
    etcd.wait_leader(LEADER_TIMEOUT).expect("leader");
    (cairn, etcd)
}

#[test]
fn etcdctl_over_every_endpoint_is_healthy_every_time_on_3_and_5_members() {
    for size in [3, 5] {
        let (cairn, etcd) = both(size);
        crate::assert_same(
            &format!("etcdctl over all {size} endpoints"),
            &multi_endpoint_transcript(&cairn),
            &multi_endpoint_transcript(&etcd),
        );
    }
}

/// What one spread-read run saw.
#[derive(Debug, Default)]
struct Spread {
    reads: usize,
    read_errors: usize,
    writes: usize,
    slowest_read: Duration,
}

const KEYS: [&str; 4] = ["/spread/a", "/spread/b", "/spread/c", "/spread/d"];
/// Connections with every endpoint (etcd-client balances each over the members), and reader
/// tasks sharing them.
const CONNECTIONS: usize = 3;
const READERS: usize = 15;
const WRITERS: usize = 3;
/// How long the load runs on each side of the leader change.
const PHASE: Duration = Duration::from_millis(2500);

/// Readers and writers over every member of `c`, recorded; the leader moves to another
/// member half-way. Returns the counts, and the recorder for the linearizability check.
async fn spread_load(c: &mut Cluster) -> (Spread, Recorder) {
    let endpoints: Vec<String> = c.members().iter().map(|m| m.client_url()).collect();
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(10));
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(
            Client::connect(endpoints.clone(), Some(opts.clone()))
                .await
                .expect("connect"),
        );
    }
    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for id in 0..READERS + WRITERS {
        let mut kv = conns[id % CONNECTIONS].kv_client();
        let (rec, stop) = (rec.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = Spread::default();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let key = KEYS[(id + n) % KEYS.len()];
                n += 1;
                if id >= READERS {
                    let value = format!("w{id}-{n}");
                    let op = rec.invoke(id, KvInput::put(key, value.as_str()));
                    match kv.put(key, value.as_str(), None).await {
                        Ok(_) => {
                            rec.complete(op, KvOutput::Put);
                            seen.writes += 1;
                        }
                        // A write refused during the leader change may or may not have been
                        // proposed: an unknown outcome, as the checker allows.
                        Err(_) => rec.fail_unknown(op),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                let op = rec.invoke(id, KvInput::get(key));
                let started = Instant::now();
                match kv.get(key, None).await {
                    Ok(resp) => {
                        let v = resp.kvs().first().map(|kv| kv.value().to_vec());
                        rec.complete(op, KvOutput::Get(v));
                        seen.reads += 1;
                    }
                    Err(e) => {
                        if seen.read_errors == 0 {
                            eprintln!("read {key} failed after {:?}: {e}", started.elapsed());
                        }
                        rec.fail_unknown(op);
                        seen.read_errors += 1;
                    }
                }
                seen.slowest_read = seen.slowest_read.max(started.elapsed());
            }
            seen
        }));
    }
    tokio::time::sleep(PHASE).await;
    let kind = c.kind();
    tokio::task::block_in_place(|| {
        let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
        let to = (leader + 1) % c.len();
        let id = c.member_id(to).expect("member id");
        let moved = c
            .member(leader)
            .etcdctl(&["move-leader", &format!("{id:x}")])
            .expect("move-leader");
        assert!(moved.success(), "{kind:?}: {moved:?}");
    });
    tokio::time::sleep(PHASE).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Spread::default();
    for t in tasks {
        let s = t.await.expect("load task");
        total.reads += s.reads;
        total.read_errors += s.read_errors;
        total.writes += s.writes;
        total.slowest_read = total.slowest_read.max(s.slowest_read);
    }
    (total, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linearizable_reads_spread_over_every_member_survive_writes_and_a_leader_change() {
    for size in [3, 5] {
        let (mut cairn, mut etcd) = tokio::task::block_in_place(|| both(size));
        let (theirs, etcd_rec) = spread_load(&mut etcd).await;
        let (ours, rec) = spread_load(&mut cairn).await;
        eprintln!("{size} members: cairn-server {ours:?}; etcd 3.4 {theirs:?}");
        // etcd 3.4 fails reads waiting across a leader change ("etcdserver: leader changed");
        // its history is checked for linearizability with those as unknown outcomes.
        let mut etcd_history = etcd_rec.history();
        etcd_history.push_fault(Duration::ZERO, None);
        if let Err(e) = etcd_history.check() {
            panic!("etcd 3.4's history is not linearizable:\n{e}");
        }
        assert_eq!(ours.read_errors, 0, "{size} members: {ours:?}");
        assert!(ours.reads > 100 && ours.writes > 10, "{ours:?}");
        // No fault window: a failed read fails the check too.
        if let Err(e) = rec.check() {
            panic!("{size} members: cairn-server's history:\n{e}");
        }
    }
}
