//! Leases: etcdctl 3.4's lease commands answer like etcd's; expiry deletes attached keys in one
//! revision; leases survive restarts.

use std::time::Duration;

use cairn_testkit::{wait_until, Member};
use etcd_client::{EventType, LeaseGrantOptions, PutOptions, WatchOptions};

use super::{assert_same, cairn, client, etcd};

fn masked(s: &str) -> String {
    let ids = regex::Regex::new(r"\b[0-9a-f]{16}\b").expect("regex");
    let remaining = regex::Regex::new(r"remaining\(\d+s\)").expect("regex");
    let lease = regex::Regex::new(r#""lease":\d+"#).expect("regex");
    // etcd lists a lease's keys in Go map order (random); cairn's are sorted.
    let keys = regex::Regex::new(r"attached keys\(\[([^\]]*)\]\)").expect("regex");
    let s = keys.replace_all(s, |c: &regex::Captures| {
        let mut k: Vec<&str> = c[1].split(' ').collect();
        k.sort_unstable();
        format!("attached keys([{}])", k.join(" "))
    });
    let s = ids.replace_all(&s, "LEASE");
    let s = remaining.replace_all(&s, "remaining(N)");
    lease.replace_all(&s, "\"lease\":L").into_owned()
}

fn step(m: &Member, args: &[&str]) -> String {
    let out = m.etcdctl(args).expect("etcdctl");
    let err: Vec<&str> = out.error_lines();
    let json =
        regex::Regex::new(r#""(cluster_id|member_id|raft_term|revision)":\d+"#).expect("regex");
    let stdout = masked(&json.replace_all(&out.stdout, "\"$1\":X"));
    let args: Vec<String> = args.iter().map(|a| masked(a)).collect();
    format!("{args:?} -> {} {stdout:?} {err:?}", out.code)
}

fn transcript(m: &Member) -> Vec<String> {
    let mut t = Vec::new();
    let grant = m.etcdctl(&["lease", "grant", "100"]).expect("grant");
    t.push(masked(&grant.stdout));
    let id = grant
        .stdout
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    for args in [
        vec!["put", "--lease", &id, "lk", "v"],
        vec!["put", "--lease", &id, "lk2", "v"],
        vec!["get", "lk", "-w", "json"],
        vec!["lease", "timetolive", &id],
        vec!["lease", "timetolive", &id, "--keys"],
        vec!["lease", "list"],
        vec!["lease", "keep-alive", "--once", &id],
        vec!["put", "lk2", "no-lease-now"],
        vec!["lease", "timetolive", &id, "--keys"],
        vec!["lease", "revoke", &id],
        vec!["get", "lk"],
        vec!["get", "lk2"],
        vec!["lease", "timetolive", &id],
        vec!["lease", "revoke", &id],
        vec!["lease", "keep-alive", "--once", &id],
        vec!["put", "--lease=1234", "x", "y"],
        vec!["lease", "grant", "9000000001"],
        vec!["lease", "grant", "1"],
    ] {
        t.push(step(m, &args));
    }
    // Expiry: a lease of the minimum TTL runs out and its key goes with it.
    // Long enough that a loaded machine still attaches the key before it runs out.
    let grant = m.etcdctl(&["lease", "grant", "5"]).expect("grant");
    let id = grant
        .stdout
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_string();
    t.push(step(m, &["put", "--lease", &id, "short", "lived"]));
    wait_until("the lease to expire", Duration::from_secs(30), || {
        m.etcdctl(&["get", "short", "--print-value-only"])
            .is_ok_and(|o| o.success() && o.stdout.is_empty())
    })
    .expect("expiry");
    t.push(step(m, &["lease", "timetolive", &id]));
    t
}

#[test]
fn etcdctl_lease_matches_etcd() {
    let cairn = cairn();
    let etcd = etcd();
    assert_same("etcdctl lease", &transcript(&cairn), &transcript(&etcd));
}

#[tokio::test]
async fn client_ids_duplicates_and_expiry_in_one_revision() {
    async fn run(m: &Member) -> Vec<String> {
        let mut c = client(m).await;
        let mut t = Vec::new();
        let g = c
            .lease_grant(30, Some(LeaseGrantOptions::new().with_id(777)))
            .await;
        t.push(format!("grant 777: {:?}", g.map(|r| (r.id(), r.ttl()))));
        let g = c
            .lease_grant(30, Some(LeaseGrantOptions::new().with_id(777)))
            .await;
        t.push(format!(
            "grant 777 again: {:?}",
            g.map(|r| r.id()).map_err(|e| e.to_string())
        ));
        let short = c.lease_grant(5, None).await.expect("grant").id();
        let start = c
            .put("e/a", "1", Some(PutOptions::new().with_lease(short)))
            .await
            .expect("put")
            .header()
            .expect("h")
            .revision();
        c.put("e/b", "1", Some(PutOptions::new().with_lease(short)))
            .await
            .expect("put");
        c.put("e/c", "1", Some(PutOptions::new().with_lease(short)))
            .await
            .expect("put");
        let mut s = c
            .watch(
                "e/",
                Some(WatchOptions::new().with_prefix().with_start_revision(start)),
            )
            .await
            .expect("watch");
        let mut deletes = Vec::new();
        while deletes.len() < 3 {
            let r = tokio::time::timeout(Duration::from_secs(30), s.message())
                .await
                .expect("expiry in time")
                .expect("ok")
                .expect("open");
            for e in r.events() {
                if e.event_type() == EventType::Delete {
                    deletes.push(e.kv().expect("kv").mod_revision());
                }
            }
        }
        deletes.dedup();
        t.push(format!(
            "expiry deleted 3 keys in {} revision(s)",
            deletes.len()
        ));
        let ttl = c.lease_time_to_live(777, None).await.expect("ttl");
        t.push(format!("777 granted {}", ttl.granted_ttl()));
        t
    }
    let cairn = cairn();
    let etcd = etcd();
    let (on_cairn, on_etcd) = (run(&cairn).await, run(&etcd).await);
    assert_same("lease options", &on_cairn, &on_etcd);
}

#[tokio::test]
async fn leases_survive_restart() {
    let mut m = cairn();
    let id = {
        let mut c = client(&m).await;
        let id = c.lease_grant(60, None).await.expect("grant").id();
        c.put("kept", "v", Some(PutOptions::new().with_lease(id)))
            .await
            .expect("put");
        id
    };
    m.restart().expect("restart");
    let mut c = client(&m).await;
    let ttl = c
        .lease_time_to_live(
            id,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .expect("ttl");
    assert_eq!(ttl.granted_ttl(), 60);
    assert!(
        ttl.ttl() > 50,
        "a restarted member gives leases their TTL again: {}",
        ttl.ttl()
    );
    assert_eq!(ttl.keys().to_vec(), vec![b"kept".to_vec()]);
    c.lease_revoke(id).await.expect("revoke");
    assert_eq!(c.get("kept", None).await.expect("get").kvs().len(), 0);
}
