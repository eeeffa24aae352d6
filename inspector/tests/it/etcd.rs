//! Inspections of real 3-member etcd 3.4 clusters: the same checks pass on the reference
//! server.

use std::time::Duration;

use cairn_inspector::{CheckId, NoStore, Status};
use cairn_testkit::{Cluster, Kind};

use crate::{
    client, clock, inspect_cluster, inspect_healthy, options, test_limits, LEADER_TIMEOUT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_etcd_cluster_passes_every_check() {
    let mut c = Cluster::builder(Kind::Etcd).start().expect("etcd cluster");
    let report = inspect_healthy(&mut c).await;
    let consistency = report.check(CheckId::Consistency).expect("consistency");
    assert_eq!(
        consistency
            .figures
            .iter()
            .filter(|f| f.name == "hash")
            .count(),
        3,
        "{consistency:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_value_fails_on_etcd_too() {
    let mut c = Cluster::builder(Kind::Etcd).start().expect("etcd cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut kv = client(&c).await;
    kv.put("/blobs/big", vec![b'x'; 1_258_291], None)
        .await
        .expect("put 1.2 MiB");
    let report = inspect_cluster(&c, &options(&c, test_limits()), &clock(), &NoStore).await;
    let large = report.check(CheckId::LargeValues).expect("large values");
    assert_eq!(large.status, Status::Fail, "{large:?}");
    assert!(
        large.summary.contains("/blobs/big (1.2 MiB)"),
        "{}",
        large.summary
    );
}

/// A member whose data differs: the cluster's snapshot is restored into m1 and m2 and
/// another cluster's into m3, all with the same names, peers and token (so they form one
/// cluster again), as an operator restoring the wrong file into one member would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restored_from_a_different_snapshot_fails_consistency_by_name() {
    let mut c = Cluster::builder(Kind::Etcd).start().expect("etcd cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let dir = tempfile::tempdir().expect("tempdir");
    let save = |m: &cairn_testkit::Member, prefix: &str, n: usize, file: &str| {
        for i in 0..n {
            let put = m
                .etcdctl(&["put", &format!("{prefix}{i}"), "x"])
                .expect("put");
            assert!(put.success(), "{put:?}");
        }
        let path = dir.path().join(file);
        let out = m
            .etcdctl(&["snapshot", "save", &path.to_string_lossy()])
            .expect("snapshot save");
        assert!(out.success(), "{out:?}");
        path
    };
    let ours = save(c.member(0), "/shared/", 5, "ours.db");
    let other = cairn_testkit::Member::builder(Kind::Etcd)
        .start()
        .expect("another etcd");
    // More keys than ours: m3 is at a later revision, and holds 5 foreign keys at ours.
    let theirs = save(&other, "/foreign/", 7, "theirs.db");
    drop(other);

    let initial_cluster = c
        .members()
        .iter()
        .map(|m| format!("{}={}", m.name(), m.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    for i in 0..3 {
        c.member_mut(i).stop().expect("stop");
    }
    for i in 0..3 {
        let m = c.member(i);
        let data_dir = m.data_dir().to_path_buf();
        std::fs::remove_dir_all(&data_dir).expect("remove the data dir");
        let mut restore = std::process::Command::new("etcdctl");
        restore
            .env("ETCDCTL_API", "3")
            .args(["snapshot", "restore"])
            .arg(if i == 2 { &theirs } else { &ours })
            .args(["--name", m.name(), "--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-token", "testkit-cluster"])
            .args(["--initial-advertise-peer-urls", &m.peer_url()])
            .arg("--data-dir")
            .arg(&data_dir);
        let out = cairn_testkit::run_command(restore, Duration::from_secs(60)).expect("restore");
        assert!(out.success(), "{out:?}");
    }
    for i in 0..3 {
        c.member_mut(i).spawn().expect("spawn");
    }
    for i in 0..3 {
        c.member_mut(i).wait_ready().expect("ready");
    }
    c.wait_leader(LEADER_TIMEOUT).expect("leader");

    let report = inspect_cluster(&c, &options(&c, test_limits()), &clock(), &NoStore).await;
    let consistency = report.check(CheckId::Consistency).expect("consistency");
    assert_eq!(consistency.status, Status::Fail, "{consistency:?}");
    assert!(
        consistency
            .summary
            .starts_with("members disagree at revision "),
        "{}",
        consistency.summary
    );
    assert!(
        consistency.summary.contains(" vs m3 hash "),
        "{}",
        consistency.summary
    );
    let m3_hash = consistency
        .figures
        .iter()
        .find(|f| f.subject == "m3" && f.name == "hash")
        .expect("m3's hash");
    assert_eq!(m3_hash.status, Status::Fail, "{consistency:?}");
}
