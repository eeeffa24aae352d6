//! Replicated clusters of real cairn-server processes, compared with etcd 3.4 clusters where
//! both can run the same steps.

use std::time::Duration;

use cairn_testkit::{wait_until, Cluster, Kind, Pki};

/// How long a cluster may take to agree on a leader.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(20);

/// A builder for a cluster of this build's cairn-server.
pub fn cairn_cluster() -> cairn_testkit::ClusterBuilder {
    Cluster::builder(Kind::Cairn).cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
}

/// etcdctl's table and list output with what legitimately differs between two clusters
/// (IDs, URLs, versions, sizes, raft indexes) replaced by placeholders.
fn mask(out: &str) -> Vec<String> {
    let id = regex::Regex::new(r"\b[0-9a-f]{14,16}\b").expect("regex");
    let url = regex::Regex::new(r"https?://127\.0\.0\.\d+:\d+").expect("regex");
    let endpoint = regex::Regex::new(r"127\.0\.0\.\d+:\d+").expect("regex");
    let version = regex::Regex::new(r"\b3\.4\.\d+\b").expect("regex");
    let size = regex::Regex::new(r"\b\d+(\.\d+)? (kB|MB|B)\b").expect("regex");
    let border = regex::Regex::new(r"-+").expect("regex");
    out.lines()
        .map(|l| {
            // Table borders are as wide as the values: compare their shape.
            if l.starts_with('+') {
                return border.replace_all(l, "-").into_owned();
            }
            let l = id.replace_all(l, "<id>");
            let l = url.replace_all(&l, "<url>");
            let l = endpoint.replace_all(&l, "<endpoint>");
            let l = version.replace_all(&l, "<version>");
            let l = size.replace_all(&l, "<size>");
            // RAFT TERM, RAFT INDEX and RAFT APPLIED INDEX columns.
            let cells: Vec<String> = l
                .split('|')
                .map(|c| {
                    // Cell widths follow the values; compare the values.
                    let c = c.trim();
                    if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()) {
                        "<n>".to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            cells.join("|")
        })
        .collect()
}

/// Member list and endpoint status of a cluster, masked; also checks that every member
/// reports the same leader and term.
fn describe(c: &mut Cluster) -> Vec<String> {
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("a leader");
    let mut lines = Vec::new();
    let list = c.etcdctl(&["member", "list"]).expect("member list");
    assert!(list.success(), "{list:?}");
    let mut members: Vec<String> = mask(&list.stdout);
    members.sort();
    lines.extend(members);
    let status = c
        .etcdctl(&["endpoint", "status", "-w", "table"])
        .expect("endpoint status");
    assert!(status.success(), "{status:?}");
    // Which row leads depends on the election: compare the rows as a set.
    let mut rows = mask(&status.stdout);
    rows.sort();
    lines.extend(rows);
    // Exactly one row says it leads, and it is the leader every member names.
    let leaders = status
        .stdout
        .lines()
        .filter(|l| l.split('|').nth(5).is_some_and(|c| c.trim() == "true"))
        .count();
    assert_eq!(leaders, 1, "one leader in {}", status.stdout);
    let leader_id = c.member_id(leader).expect("leader id");
    for i in 0..c.len() {
        assert_eq!(c.status_ids(i).map(|s| s.1), Some(leader_id));
    }
    lines
}

#[test]
fn three_members_form_and_report_like_etcd() {
    let mut cairn = cairn_cluster().start().expect("cairn cluster");
    let mut etcd = Cluster::builder(Kind::Etcd).start().expect("etcd cluster");
    let put = cairn.etcdctl(&["put", "k", "v"]).expect("put");
    assert_eq!(put.stdout, "OK\n", "{put:?}");
    let put = etcd.etcdctl(&["put", "k", "v"]).expect("put");
    assert_eq!(put.stdout, "OK\n", "{put:?}");
    // Every member answers with the same data (linearizable and serializable reads).
    for i in 0..3 {
        for consistency in ["l", "s"] {
            let get = cairn
                .member(i)
                .etcdctl(&[
                    "get",
                    "k",
                    "--print-value-only",
                    "--consistency",
                    consistency,
                ])
                .expect("get");
            assert_eq!(get.stdout, "v\n", "member {i}: {get:?}");
        }
    }
    crate::assert_same(
        "3-member cluster",
        &describe(&mut cairn),
        &describe(&mut etcd),
    );
}

#[test]
fn three_members_with_tls_for_clients_and_peers() {
    let pki = Pki::new().expect("pki");
    let mut cairn = cairn_cluster().tls(&pki).start().expect("cairn cluster");
    cairn.wait_leader(LEADER_TIMEOUT).expect("leader");
    for i in 0..3 {
        let key = format!("k{i}");
        let put = cairn.member(i).etcdctl(&["put", &key, "v"]).expect("put");
        assert_eq!(put.stdout, "OK\n", "{put:?}");
    }
    let get = cairn
        .member(0)
        .etcdctl(&["get", "k", "--prefix", "--keys-only"])
        .expect("get");
    assert_eq!(get.stdout, "k0\n\nk1\n\nk2\n\n", "{get:?}");
    let peer_urls: Vec<String> = cairn.members().iter().map(|m| m.peer_url()).collect();
    assert!(
        peer_urls.iter().all(|u| u.starts_with("https://")),
        "{peer_urls:?}"
    );
}

/// Lease `id` from etcdctl's `lease grant` output ("lease 694d... granted with TTL(4s)").
fn lease_id(grant: &str) -> String {
    grant
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no lease ID in {grant:?}"))
        .to_string()
}

#[test]
fn leases_kept_alive_through_a_follower_survive_a_leader_change_and_expire_after() {
    let mut c = cairn_cluster()
        .arg("--heartbeat-interval=50")
        .arg("--election-timeout=500")
        .start()
        .expect("cluster");
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let third = (0..3)
        .find(|&i| i != leader && i != follower)
        .expect("third");
    let grant = c
        .member(follower)
        .etcdctl(&["lease", "grant", "3"])
        .expect("grant");
    assert!(grant.success(), "{grant:?}");
    let id = lease_id(&grant.stdout);
    let put = c
        .member(follower)
        .etcdctl(&["put", "owned", "v", "--lease", &id])
        .expect("put");
    assert_eq!(put.stdout, "OK\n", "{put:?}");
    // Keep-alives go to the follower, which forwards them to the leader.
    let mut keepalive = c
        .member(follower)
        .etcdctl_background(&["lease", "keep-alive", &id])
        .expect("keep-alive");
    keepalive
        .wait_for(Duration::from_secs(10), |l| l.len() >= 2)
        .expect("keep-alive answers");
    let exists = |c: &Cluster, i: usize| {
        c.member(i)
            .etcdctl(&["get", "owned", "--print-value-only"])
            .is_ok_and(|o| o.stdout == "v\n")
    };
    // Twice the TTL with keep-alives: the key stays.
    let until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < until {
        assert!(exists(&c, third), "the key of a kept-alive lease vanished");
    }
    // The leader goes; the new one starts every lease afresh and keeps honouring keep-alives.
    c.member_mut(leader).kill9().expect("kill");
    c.wait_leader(LEADER_TIMEOUT).expect("new leader");
    let until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < until {
        assert!(
            exists(&c, third),
            "the key vanished after the leader changed"
        );
    }
    let ttl = c
        .member(third)
        .etcdctl(&["lease", "timetolive", &id])
        .expect("ttl");
    assert!(ttl.stdout.contains("remaining"), "{ttl:?}");
    // No more keep-alives: the lease expires and takes the key with it, on every member.
    drop(keepalive);
    wait_until("the lease to expire", Duration::from_secs(20), || {
        c.member(third)
            .etcdctl(&["get", "owned", "--print-value-only"])
            .is_ok_and(|o| o.success() && o.stdout.is_empty())
    })
    .expect("expired");
    c.member_mut(leader).restart().expect("restart");
    wait_until(
        "the old leader to see the expiry",
        Duration::from_secs(20),
        || {
            c.member(leader)
                .etcdctl(&["get", "owned", "--consistency=s", "--print-value-only"])
                .is_ok_and(|o| o.success() && o.stdout.is_empty())
        },
    )
    .expect("expired everywhere");
}

#[test]
fn a_watch_on_one_member_sees_writes_made_through_another() {
    let mut c = cairn_cluster().start().expect("cluster");
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let follower = (0..3).find(|&i| i != leader).expect("a follower");
    let mut watch = c
        .member(follower)
        .etcdctl_background(&["watch", "w", "--prefix"])
        .expect("watch");
    // The watch is registered once a first write shows up; write until it does.
    wait_until("the watch to see a write", Duration::from_secs(20), || {
        let _ = c.member(leader).etcdctl(&["put", "w0", "first"]);
        watch
            .wait_for(Duration::from_millis(200), |l| l.iter().any(|x| x == "w0"))
            .is_ok()
    })
    .expect("watch started");
    for i in 1..=5 {
        let key = format!("w{i}");
        let put = c.member(leader).etcdctl(&["put", &key, "v"]).expect("put");
        assert!(put.success(), "{put:?}");
    }
    let lines = watch
        .wait_for(Duration::from_secs(10), |l| l.iter().any(|x| x == "w5"))
        .expect("events");
    let keys: Vec<&String> = lines.iter().filter(|l| l.starts_with("w")).collect();
    let order: Vec<&String> = keys.iter().copied().filter(|k| *k != "w0").collect();
    assert_eq!(order, ["w1", "w2", "w3", "w4", "w5"], "{lines:?}");
}

#[test]
fn a_member_of_another_cluster_or_with_another_token_is_refused() {
    let mut a = cairn_cluster().start().expect("cluster");
    a.wait_leader(LEADER_TIMEOUT).expect("leader");

    // A new member whose flags describe a different cluster (another token) that names one
    // of A's members as a peer: A answers with its own cluster ID, and the stranger refuses.
    let ip = std::net::Ipv4Addr::new(127, 0, 0, 250);
    let (client, peer) = (
        cairn_testkit::free_port(ip).expect("port"),
        cairn_testkit::free_port(ip).expect("port"),
    );
    let initial = format!("m1={},x=http://{ip}:{peer}", a.member(0).peer_url());
    let err = crate::cairn_builder()
        .name("x")
        .ip(ip)
        .ports(client, peer)
        .initial_cluster(initial)
        .token("another-cluster")
        .start()
        .expect_err("must not join another cluster");
    assert!(err.to_string().contains("belongs to cluster"), "{err}");

    // A member restarted on its data dir with another token.
    let data = a.member(1).data_dir().to_path_buf();
    a.member_mut(1).stop().expect("stop");
    let ip = a.member(1).ip();
    let (client, peer) = (
        cairn_testkit::free_port(ip).expect("port"),
        cairn_testkit::free_port(ip).expect("port"),
    );
    let err = crate::cairn_builder()
        .name("m2")
        .ip(ip)
        .ports(client, peer)
        .data_dir(data)
        .initial_cluster(format!("m2=http://{ip}:{peer}"))
        .token("another-token")
        .start()
        .expect_err("must refuse a different token");
    assert!(err.to_string().contains("--initial-cluster-token"), "{err}");
    // With its own flags it comes back.
    a.member_mut(1)
        .restart()
        .expect("restart with the original flags");
}

/// `cairn-server snapshot restore` into every member of a 3-member cluster (etcd's disaster
/// recovery): the members form a new cluster on the restored keyspace, every one at the
/// snapshot's revision with the source's HashKV, and take writes.
#[test]
fn a_snapshot_restored_into_every_member_forms_a_cluster_with_the_same_keyspace() {
    let mut c = cairn_cluster().start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    for i in 0..40 {
        let put = c.etcdctl(&["put", &format!("/k/{i:02}"), &format!("v{i}")]);
        assert!(put.expect("put").success());
    }
    let del = c.etcdctl(&["del", "/k/1", "--prefix"]).expect("del");
    assert!(del.success(), "{del:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("snap.db");
    let saved = c
        .member(0)
        .etcdctl(&["snapshot", "save", snap.to_str().expect("utf-8")])
        .expect("save");
    assert!(saved.success(), "{saved:?}");
    let hashkv = |m: &cairn_testkit::Member| -> (i64, u64) {
        let out = m
            .etcdctl(&["endpoint", "hashkv", "-w", "json"])
            .expect("hashkv");
        assert!(out.success(), "{out:?}");
        let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        let h = &v[0]["HashKV"];
        (
            h["header"]["revision"].as_i64().expect("revision"),
            h["hash"].as_u64().expect("hash"),
        )
    };
    let before = hashkv(c.member(0));

    c.restore_snapshots(&[&snap, &snap, &snap])
        .expect("restore into every member");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    for m in c.members() {
        assert_eq!(hashkv(m), before, "{}", m.name());
    }
    let list = c.etcdctl(&["member", "list"]).expect("member list");
    assert_eq!(list.stdout.lines().count(), 3, "{list:?}");
    let put = c.etcdctl(&["put", "/after", "restore"]).expect("put");
    assert!(put.success(), "{put:?}");
    for m in c.members() {
        wait_until(
            "the write after the restore to reach every member",
            LEADER_TIMEOUT,
            || {
                m.etcdctl(&["get", "/after", "--consistency=s", "--print-value-only"])
                    .is_ok_and(|o| o.stdout.trim() == "restore")
            },
        )
        .expect("replicated");
    }
    let keys = c
        .etcdctl(&["get", "/k/", "--prefix", "--keys-only"])
        .expect("get");
    assert_eq!(keys.stdout.split_whitespace().count(), 30, "{keys:?}");
}
