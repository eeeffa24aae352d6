//! Inspections of real 3-member cairn-server clusters: a healthy one passes every check; one
//! built to fail a check fails it with the right figures.

use std::time::{Duration, SystemTime};

use cairn_inspector::{CheckId, FakeClock, MemoryStore, NoStore, Status, Unit};
use cairn_testkit::Kind;

use crate::{
    assert_all_pass, cairn_cluster, client, clock, inspect_cluster, inspect_healthy, options,
    test_limits, LEADER_TIMEOUT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_cairn_cluster_passes_every_check() {
    let mut c = cairn_cluster().start().expect("cluster");
    let report = inspect_healthy(&mut c).await;
    let consistency = report.check(CheckId::Consistency).expect("consistency");
    let keys: Vec<f64> = consistency
        .figures
        .iter()
        .filter(|f| f.name == "keys")
        .map(|f| f.value)
        .collect();
    // Counted at the revision every member has applied: equal, and at most every key.
    assert!(
        keys.len() == 3 && keys.iter().all(|&k| k == keys[0] && k <= 50.0),
        "{consistency:?}"
    );
    let counts = report.check(CheckId::KeyCountGrowth).expect("key counts");
    assert!(
        counts
            .figures
            .iter()
            .any(|f| f.subject == "/registry/pods/" && f.value == 50.0),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_value_a_key_count_jump_and_a_hot_prefix_fail_their_checks() {
    let mut c = cairn_cluster().start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut kv = client(&c).await;
    for i in 0..150 {
        kv.put(format!("/jobs/j{i}"), "v", None).await.expect("put");
    }
    let mut limits = test_limits();
    limits.inspection.hot_prefix_warn_per_second = 2.0;
    limits.inspection.hot_prefix_fail_per_second = 4.0;
    let store = MemoryStore::default();
    let opts = options(&c, limits);
    let first = inspect_cluster(&c, &opts, &clock(), &store).await;
    assert_all_pass(&first);

    // 1.2 MiB: under the members' 1.5 MiB request limit, over the 1 MiB fail limit.
    let big = vec![b'x'; 1_258_291];
    kv.put("/blobs/big", big, None).await.expect("put 1.2 MiB");
    for i in 150..400 {
        kv.put(format!("/jobs/j{i}"), "v", None).await.expect("put");
    }
    // Writes to /hot/ while the inspection watches.
    let mut writer = kv.clone();
    let hot = tokio::spawn(async move {
        let mut i = 0u64;
        loop {
            let _ = writer.put(format!("/hot/k{}", i % 10), "v", None).await;
            i += 1;
            tokio::task::yield_now().await;
        }
    });
    let second = inspect_cluster(&c, &opts, &clock(), &store).await;
    hot.abort();
    let _ = hot.await;

    let large = second.check(CheckId::LargeValues).expect("large values");
    assert_eq!(large.status, Status::Fail, "{large:?}");
    assert!(
        large.summary.contains("/blobs/big (1.2 MiB)"),
        "{}",
        large.summary
    );
    let f = large
        .figures
        .iter()
        .find(|f| f.subject == "/blobs/big")
        .expect("figure");
    assert_eq!(
        (f.name.as_str(), f.value, f.unit, f.status),
        ("value_size", 1_258_291.0, Unit::Bytes, Status::Fail)
    );

    let growth = second.check(CheckId::KeyCountGrowth).expect("growth");
    assert_eq!(growth.status, Status::Fail, "{growth:?}");
    assert!(
        growth
            .summary
            .contains("/jobs/ grew from 150 to 400 keys (+167%)"),
        "{}",
        growth.summary
    );

    let hot = second.check(CheckId::HotPrefixes).expect("hot prefixes");
    assert_eq!(hot.status, Status::Fail, "{hot:?}");
    assert_eq!(hot.figures[1].subject, "/hot/", "{hot:?}");
    assert!(hot.figures[1].value >= 4.0, "{hot:?}");

    // Checks not built to fail still pass.
    for id in [CheckId::Membership, CheckId::Consistency, CheckId::Database] {
        let r = second.check(id).expect("check");
        assert_eq!(r.status, Status::Pass, "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_is_inspected_with_mtls_and_a_near_expiry_certificate_fails() {
    let pki = cairn_testkit::Pki::new().expect("pki");
    let mut c = cairn_cluster().tls(&pki).start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut opts = options(&c, test_limits());
    let healthy = inspect_cluster(&c, &opts, &clock(), &NoStore).await;
    assert_all_pass(&healthy);
    let certs = healthy.check(CheckId::Certificates).expect("certificates");
    assert_eq!(
        certs.figures.len(),
        3,
        "one served certificate per member: {certs:?}"
    );
    let latency = healthy.check(CheckId::Latency).expect("latency");
    assert!(
        latency.figures.iter().any(|f| f.name == "wal_fsync_p99"),
        "/metrics over https with the client certificate: {latency:?}"
    );

    // Three days before the served certificate expires.
    let pem = std::fs::read(pki.server_cert_file()).expect("server cert");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    let expiry = cairn_inspector::not_after(&pem.contents).expect("not after");
    let near = FakeClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(expiry - 3 * 86_400));
    opts.local_pki = Some(pki.dir().to_path_buf());
    let report = inspect_cluster(&c, &opts, &near, &NoStore).await;
    let certs = report.check(CheckId::Certificates).expect("certificates");
    assert_eq!(certs.status, Status::Fail, "{certs:?}");
    for m in ["m1", "m2", "m3"] {
        let f = certs
            .figures
            .iter()
            .find(|f| f.subject == format!("{m}-server"))
            .expect("served certificate");
        assert_eq!((f.value, f.status), (3.0, Status::Fail), "{f:?}");
    }
    assert!(
        certs.figures.iter().any(|f| f.subject.starts_with("pki/")),
        "{certs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_member_fails_membership_and_the_others_are_still_inspected() {
    let mut c = cairn_cluster().start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    c.member_mut(2).stop().expect("stop m3");
    c.wait_leader(LEADER_TIMEOUT)
        .expect("a leader among the other two");
    let opts = options(&c, test_limits());
    // A short timeout: the stopped member is given up on quickly.
    let source =
        cairn_inspector::EtcdSource::new(crate::targets(&c), None, None, Duration::from_secs(2))
            .expect("source");
    let report = cairn_inspector::inspect(&source, &clock(), &NoStore, &opts)
        .await
        .expect("inspection");
    let m = report.check(CheckId::Membership).expect("membership");
    assert_eq!(m.status, Status::Fail, "{m:?}");
    assert!(
        m.summary.starts_with("m3 does not answer: "),
        "{}",
        m.summary
    );
    let healthy: Vec<(&str, f64)> = m
        .figures
        .iter()
        .filter(|f| f.name == "healthy")
        .map(|f| (f.subject.as_str(), f.value))
        .collect();
    assert_eq!(healthy, [("m1", 1.0), ("m2", 1.0), ("m3", 0.0)]);
    // The two members that answer still agree, which says nothing of the third: a warning
    // naming it, with the runbook.
    let consistency = report.check(CheckId::Consistency).expect("consistency");
    assert_eq!(consistency.status, Status::Warn, "{consistency:?}");
    assert!(consistency
        .runbook
        .as_deref()
        .is_some_and(|u| u.ends_with("docs/runbooks.md#cairnconsistencymismatch")));
    assert_eq!(
        consistency.summary,
        format!(
            "only 2 of 3 members compared at revision {}: m3 did not answer (see membership)",
            consistency
                .figures
                .iter()
                .find(|f| f.name == "revision")
                .expect("revision")
                .value
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caught_up_learner_passes_and_its_lag_is_reported() {
    let mut c = cairn_cluster().start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut kv = client(&c).await;
    for i in 0..20 {
        kv.put(format!("/a/{i}"), "v", None).await.expect("put");
    }
    let learner = c.add_member(true).expect("add a learner");
    let name = c.member(learner).name().to_string();
    // The learner has caught up once it serves every key.
    cairn_testkit::wait_until("the learner to hold every key", LEADER_TIMEOUT, || {
        c.member(learner)
            .etcdctl(&["get", "/a/", "--prefix", "--keys-only", "--consistency=s"])
            .is_ok_and(|o| o.stdout.lines().filter(|l| !l.is_empty()).count() == 20)
    })
    .expect("learner caught up");
    let report = inspect_cluster(&c, &options(&c, test_limits()), &clock(), &NoStore).await;
    assert_all_pass(&report);
    let m = report.check(CheckId::Membership).expect("membership");
    let lag = m
        .figures
        .iter()
        .find(|f| f.name == "learner_lag")
        .expect("the learner's lag");
    assert_eq!(lag.subject, name);
    let latency = report.check(CheckId::Latency).expect("latency");
    assert!(
        !latency
            .figures
            .iter()
            .any(|f| f.subject == name && f.name == "linearizable_read"),
        "learners refuse linearizable reads: {latency:?}"
    );
}

/// A member restored from another cluster's snapshot fails consistency, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restored_from_a_different_snapshot_fails_consistency_by_name() {
    crate::restored_from_a_different_snapshot(Kind::Cairn).await;
}
