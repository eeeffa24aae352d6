//! Linearizability under faults: concurrent clients, each bound to one member, put, get and
//! compare-and-set a few keys while members are killed, restarted and partitioned away. The
//! recorded history (with unknown outcomes for requests that failed during a fault) must be
//! explainable by one sequential order consistent with real time; a violation prints the
//! offending history, and a read that failed while the cluster was healthy fails the test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_testkit::linearizability::{KvInput, KvOutput, Recorder};
use cairn_testkit::Partition;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, Txn, TxnOp};

use super::cluster::{cairn_cluster, LEADER_TIMEOUT};

const KEYS: [&str; 8] = [
    "/lin/a", "/lin/b", "/lin/c", "/lin/d", "/lin/e", "/lin/f", "/lin/g", "/lin/h",
];
/// Pause between a client's operations: keeps each key's history small enough to check
/// exhaustively (unknown outcomes make the search exponential in the worst case).
const THINK_TIME: Duration = Duration::from_millis(40);
/// Clients per member.
const CLIENTS_PER_MEMBER: usize = 2;
/// Fault rounds (kill the leader, then cut a member off), each bounded in time.
const ROUNDS: usize = 3;

/// A small deterministic generator, so a failing run can be replayed by its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Runs one client until `stop`; returns (operations, compare-and-sets that won).
async fn client_loop(
    id: usize,
    url: String,
    rec: Recorder,
    stop: Arc<AtomicBool>,
) -> (usize, usize) {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(1))
        .with_timeout(Duration::from_secs(2));
    let mut rng = Lcg(id as u64 + 1);
    let mut ops = 0;
    let mut cas_won = 0;
    let mut client: Option<Client> = None;
    // The value this client last read for each key: what its compare-and-sets expect.
    let mut last_seen: std::collections::HashMap<&str, Vec<u8>> = Default::default();
    while !stop.load(Ordering::Relaxed) {
        let c = match &mut client {
            Some(c) => c,
            None => match Client::connect([url.as_str()], Some(opts.clone())).await {
                Ok(c) => client.insert(c),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        tokio::time::sleep(THINK_TIME).await;
        let key = KEYS[rng.next(KEYS.len() as u64) as usize];
        let value = format!("c{id}-{ops}");
        ops += 1;
        match rng.next(3) {
            0 => {
                let op = rec.invoke(id, KvInput::put(key, value.as_str()));
                match c.put(key, value.as_str(), None).await {
                    Ok(_) => rec.complete(op, KvOutput::Put),
                    Err(_) => rec.fail_unknown(op),
                }
            }
            1 => {
                let op = rec.invoke(id, KvInput::get(key));
                match c.get(key, None).await {
                    Ok(resp) => {
                        let v = resp.kvs().first().map(|kv| kv.value().to_vec());
                        if let Some(v) = &v {
                            last_seen.insert(key, v.clone());
                        }
                        rec.complete(op, KvOutput::Get(v));
                    }
                    Err(_) => rec.fail_unknown(op),
                }
            }
            _ => {
                let Some(expect) = last_seen.get(key).cloned() else {
                    continue;
                };
                let op = rec.invoke(id, KvInput::cas(key, expect.clone(), value.as_str()));
                let txn = Txn::new()
                    .when([Compare::value(key, CompareOp::Equal, expect)])
                    .and_then([TxnOp::put(key, value.as_str(), None)]);
                match c.txn(txn).await {
                    Ok(resp) => {
                        cas_won += usize::from(resp.succeeded());
                        rec.complete(op, KvOutput::Cas(resp.succeeded()));
                    }
                    Err(_) => rec.fail_unknown(op),
                }
            }
        }
    }
    (ops, cas_won)
}

/// Waits until the members agree on a leader and every one answers a linearizable read: the
/// end of a fault window (reads failing after it are failures).
pub(crate) fn wait_healthy(c: &mut cairn_testkit::Cluster) {
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    for i in 0..c.len() {
        cairn_testkit::wait_until(
            "every member to serve linearizable reads",
            LEADER_TIMEOUT,
            || {
                c.member(i)
                    .etcdctl(&["get", "/lin/healthy", "--consistency=l"])
                    .is_ok_and(|o| o.success())
            },
        )
        .expect("healthy");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn histories_under_kills_and_partitions_are_linearizable() {
    let mut c = cairn_cluster()
        .arg("--heartbeat-interval=50")
        .arg("--election-timeout=500")
        .start()
        .expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let rec = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for (m, member) in c.members().iter().enumerate() {
        for k in 0..CLIENTS_PER_MEMBER {
            let id = m * CLIENTS_PER_MEMBER + k;
            clients.push(tokio::spawn(client_loop(
                id,
                member.client_url(),
                rec.clone(),
                stop.clone(),
            )));
        }
    }
    let ips: Vec<_> = c.members().iter().map(|m| m.ip()).collect();
    let net = Partition::new().expect("iptables chain");
    let started = Instant::now();
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = tokio::task::block_in_place(|| c.wait_leader(LEADER_TIMEOUT)).expect("leader");
        rec.fault_begins();
        c.member_mut(leader).kill9().expect("kill");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tokio::task::block_in_place(|| c.member_mut(leader).restart()).expect("restart");
        tokio::task::block_in_place(|| wait_healthy(&mut c));
        rec.fault_ends();
        let cut = round % ips.len();
        rec.fault_begins();
        net.isolate(ips[cut], &ips).expect("isolate");
        tokio::time::sleep(Duration::from_millis(2000)).await;
        net.heal().expect("heal");
        tokio::task::block_in_place(|| wait_healthy(&mut c));
        rec.fault_ends();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ops, mut cas_won) = (0, 0);
    for t in clients {
        let (o, w) = t.await.expect("client");
        ops += o;
        cas_won += w;
    }
    let history = rec.history();
    eprintln!(
        "linearizability: {ops} operations ({cas_won} successful compare-and-sets) from {} clients over {:?}, {} recorded",
        c.len() * CLIENTS_PER_MEMBER,
        started.elapsed(),
        history.len()
    );
    assert!(history.len() > 100, "too few operations to mean anything");
    assert!(
        cas_won > 0,
        "no compare-and-set ever won: the history tests little"
    );
    if let Err(e) = rec.check() {
        panic!("the history is not linearizable:\n{e}");
    }
}
