//! Inspections of real 3-member etcd 3.4 clusters: the same checks pass on the reference
//! server.

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

/// A member restored from another cluster's snapshot fails consistency, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restored_from_a_different_snapshot_fails_consistency_by_name() {
    crate::restored_from_a_different_snapshot(Kind::Etcd).await;
}
