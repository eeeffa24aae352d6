//! Replicated clusters under faults: the leader killed under load, partitions made with
//! iptables, two of five members lost, whole-cluster restarts, a member whose data dir was
//! wiped. Acknowledged writes must survive everything, and members must converge.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_testkit::{wait_until, Cluster, Partition};
use etcd_client::{Client, ConnectOptions, GetOptions};

use super::cluster::{cairn_cluster, LEADER_TIMEOUT};

/// Fast elections, so failover tests take seconds (etcd's flags, 50 ms / 500 ms).
fn fast(b: cairn_testkit::ClusterBuilder) -> cairn_testkit::ClusterBuilder {
    b.arg("--heartbeat-interval=50")
        .arg("--election-timeout=500")
}

/// How long members may take to converge after a fault heals.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(60);

async fn connect(urls: Vec<String>) -> Client {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    Client::connect(urls, Some(opts)).await.expect("connect")
}

/// Writers putting unique keys under `prefix` until stopped or `limit` keys are
/// acknowledged; each failed put is retried (same key and value) until it succeeds. The
/// acknowledged keys are recorded.
struct Load {
    acked: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<usize>>,
}

impl Load {
    fn start(urls: Vec<String>, prefix: &str, writers: usize, limit: usize) -> Self {
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..writers)
            .map(|w| {
                let (acked, stop, urls) = (acked.clone(), stop.clone(), urls.clone());
                let prefix = prefix.to_string();
                tokio::spawn(async move {
                    let mut client = connect(urls).await;
                    let mut errors = 0;
                    let deadline = Instant::now() + Duration::from_secs(120);
                    for n in 0.. {
                        let key = format!("{prefix}/{w}/{n:06}");
                        loop {
                            if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                                return errors;
                            }
                            match client.put(key.as_str(), "v", None).await {
                                Ok(_) => break,
                                Err(_) => {
                                    errors += 1;
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            }
                        }
                        let mut acked = acked.lock().expect("lock");
                        acked.insert(key);
                        if acked.len() >= limit {
                            return errors;
                        }
                    }
                    errors
                })
            })
            .collect();
        Self { acked, stop, tasks }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("lock").len()
    }

    async fn wait_acked(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.acked() < n {
            assert!(
                Instant::now() < deadline,
                "only {} writes acknowledged",
                self.acked()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers; returns the acknowledged keys and the failed attempts.
    async fn finish(self) -> (BTreeSet<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = 0;
        for t in self.tasks {
            errors += t.await.expect("writer");
        }
        let acked = self.acked.lock().expect("lock").clone();
        (acked, errors)
    }
}

/// Every key and value under `prefix` on member `url`, read locally (serializable), with
/// the member's revision.
async fn local_view(url: &str, prefix: &str) -> Option<(i64, Vec<(String, String, i64)>)> {
    let mut c = Client::connect([url], None).await.ok()?;
    let resp = c
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await
        .ok()?;
    let rev = resp.header()?.revision();
    let kvs = resp
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().unwrap_or("").to_string(),
                kv.value_str().unwrap_or("").to_string(),
                kv.mod_revision(),
            )
        })
        .collect();
    Some((rev, kvs))
}

/// Waits until every member of `urls` holds the same revision and the same keys under
/// `prefix` (values and mod revisions included), including every key in `acked`; then checks
/// that their HashKV at that revision agrees.
async fn converge(urls: &[String], prefix: &str, acked: &BTreeSet<String>) {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let mut views = Vec::new();
        for u in urls {
            views.push(local_view(u, prefix).await);
        }
        let all_same = views.iter().all(|v| v.is_some() && *v == views[0]);
        if all_same {
            let (rev, kvs) = views[0].clone().expect("checked");
            let keys: BTreeSet<&String> = kvs.iter().map(|(k, _, _)| k).collect();
            let missing: Vec<&String> = acked.iter().filter(|k| !keys.contains(k)).collect();
            assert!(
                missing.is_empty(),
                "{} acknowledged writes missing, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            let mut hashes = Vec::new();
            for u in urls {
                let mut c = Client::connect([u.as_str()], None).await.expect("connect");
                let h = c.hash_kv(rev).await.expect("hashkv");
                hashes.push(h.hash());
            }
            assert!(
                hashes.iter().all(|h| *h == hashes[0]),
                "HashKV at revision {rev} differs: {hashes:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "members did not converge: {:?}",
            views
                .iter()
                .map(|v| v.as_ref().map(|(r, kvs)| (*r, kvs.len())))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn urls(c: &Cluster) -> Vec<String> {
    c.members().iter().map(|m| m.client_url()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_leader_under_load_loses_no_acknowledged_write() {
    let mut c = fast(cairn_cluster()).start().expect("cluster");
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let load = Load::start(urls(&c), "/load", 8, 600);
    load.wait_acked(150).await;
    c.member_mut(leader).kill9().expect("kill leader");
    let killed_at = Instant::now();
    let next = tokio::task::block_in_place(|| c.wait_leader(LEADER_TIMEOUT)).expect("new leader");
    let failover = killed_at.elapsed();
    assert_ne!(next, leader);
    load.wait_acked(450).await;
    let (acked, errors) = load.finish().await;
    eprintln!(
        "failover: new leader after {failover:?}; {} writes acknowledged, {errors} attempts failed and were retried",
        acked.len()
    );
    c.member_mut(leader)
        .restart()
        .expect("restart the old leader");
    converge(&urls(&c), "/load", &acked).await;
}

/// Puts `key` through member `url` only, with a short timeout.
async fn put_via(url: &str, key: &str) -> Result<(), etcd_client::Error> {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(3));
    let mut c = Client::connect([url], Some(opts)).await?;
    c.put(key, "v", None).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_minority_cannot_commit_and_catches_up_after_healing() {
    let mut c = fast(cairn_cluster()).start().expect("cluster");
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let ips: Vec<_> = c.members().iter().map(|m| m.ip()).collect();
    let net = Partition::new().expect("iptables chain");

    // The leader alone on one side.
    let old_id = c.member_id(leader).expect("id");
    net.isolate(ips[leader], &ips).expect("cut the leader off");
    let old = c.member(leader).client_url();
    let refused = put_via(&old, "/p/minority").await;
    assert!(refused.is_err(), "the isolated leader committed a write");
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    tokio::task::block_in_place(|| {
        wait_until("the majority to elect a new leader", LEADER_TIMEOUT, || {
            let a = c.status_ids(others[0]).map(|s| s.1);
            let b = c.status_ids(others[1]).map(|s| s.1);
            a.is_some() && a == b && a != Some(0) && a != Some(old_id)
        })
    })
    .expect("new leader on the majority side");
    let mut acked = BTreeSet::new();
    for i in 0..20 {
        let key = format!("/p/majority/{i:02}");
        put_via(&c.member(others[i % 2]).client_url(), &key)
            .await
            .expect("the majority commits");
        acked.insert(key);
    }
    net.heal().expect("heal");
    converge(&urls(&c), "/p", &acked).await;
    let (_, kvs) = local_view(&old, "/p/minority").await.expect("view");
    assert!(kvs.is_empty(), "the minority's write appeared: {kvs:?}");

    // A follower alone on one side: the others go on.
    let leader = tokio::task::block_in_place(|| c.wait_leader(LEADER_TIMEOUT)).expect("leader");
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    net.isolate(ips[follower], &ips)
        .expect("cut a follower off");
    for i in 0..20 {
        let key = format!("/p/without-follower/{i:02}");
        put_via(&c.member(leader).client_url(), &key)
            .await
            .expect("leader and one follower commit");
        acked.insert(key);
    }
    net.heal().expect("heal");
    converge(&urls(&c), "/p", &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_members_survive_two_failures() {
    let mut c = fast(cairn_cluster().size(5)).start().expect("cluster");
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
    // The leader and one follower go down.
    let follower = (0..5).find(|&i| i != leader).expect("follower");
    c.member_mut(leader).kill9().expect("kill");
    c.member_mut(follower).kill9().expect("kill");
    tokio::task::block_in_place(|| c.wait_leader(LEADER_TIMEOUT)).expect("leader of three");
    let running: Vec<String> = (0..5)
        .filter(|&i| i != leader && i != follower)
        .map(|i| c.member(i).client_url())
        .collect();
    let load = Load::start(running, "/five", 4, 200);
    load.wait_acked(200).await;
    let (acked, _) = load.finish().await;
    c.member_mut(leader).restart().expect("restart");
    c.member_mut(follower).restart().expect("restart");
    converge(&urls(&c), "/five", &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_cluster_restarts_from_disk() {
    let mut c = fast(cairn_cluster()).start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let load = Load::start(urls(&c), "/restart", 4, 200);
    load.wait_acked(200).await;
    let (acked, _) = load.finish().await;
    let before = local_view(&c.member(0).client_url(), "/restart")
        .await
        .expect("view")
        .0;
    for i in 0..3 {
        c.member_mut(i).stop().expect("stop");
    }
    tokio::task::block_in_place(|| {
        for i in 0..3 {
            c.member_mut(i).spawn().expect("spawn");
        }
        for i in 0..3 {
            c.member_mut(i).wait_ready().expect("ready again");
        }
    });
    converge(&urls(&c), "/restart", &acked).await;
    put_via(&c.member(1).client_url(), "/restart/after")
        .await
        .expect("writes after the restart");
    let after = local_view(&c.member(1).client_url(), "/restart")
        .await
        .expect("view")
        .0;
    assert!(after > before, "revision went from {before} to {after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_with_a_wiped_data_dir_must_be_removed_and_added_again() {
    let mut c = fast(cairn_cluster()).start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut acked = BTreeSet::new();
    for i in 0..10 {
        let key = format!("/wipe/{i}");
        put_via(&c.member(0).client_url(), &key).await.expect("put");
        acked.insert(key);
    }
    let victim = 2;
    let victim_id = c.member_id(victim).expect("id");
    c.member_mut(victim).stop().expect("stop");
    std::fs::remove_dir_all(c.member(victim).data_dir()).expect("wipe");
    let err = tokio::task::block_in_place(|| c.member_mut(victim).restart())
        .expect_err("a wiped member must not rejoin silently");
    assert!(
        err.to_string().contains("already been bootstrapped"),
        "unexpected error: {err}"
    );
    // The way back: remove it, add it again as a new member.
    tokio::task::block_in_place(|| c.wait_leader(LEADER_TIMEOUT)).expect("leader of two");
    let removed = c.remove_member(victim_id).expect("member remove");
    assert!(removed.success(), "{removed:?}");
    let new = tokio::task::block_in_place(|| c.add_member(false)).expect("add it again");
    let urls: Vec<String> = (0..c.len())
        .filter(|&i| i != victim)
        .map(|i| c.member(i).client_url())
        .collect();
    converge(&urls, "/wipe", &acked).await;
    let list = c.member(new).etcdctl(&["member", "list"]).expect("list");
    assert_eq!(list.stdout.lines().count(), 3, "{list:?}");
}
