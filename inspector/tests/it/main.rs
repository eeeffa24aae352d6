//! Integration tests of the inspector: golden renderings of a fixed report, and inspections
//! of real 3-member clusters (the real `cairn-server` binary and Debian's etcd 3.4).

mod browser;
mod cairn;
mod etcd;
mod golden;
mod serve;

use std::time::Duration;

use cairn_inspector::{
    inspect, CheckId, Clock, EtcdSource, Expected, Limits, NoStore, Options, Report, StateStore,
    Status, SystemClock, Target, TlsFiles,
};
use cairn_testkit::{Cluster, Kind};

/// How long a cluster may take to agree on a leader.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one request may take before the inspector gives up on a member.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A 3-member cluster of this build's cairn-server.
pub fn cairn_cluster() -> cairn_testkit::ClusterBuilder {
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    Cluster::builder(Kind::Cairn).cairn_binary(binary)
}

/// The default limits, but a short hot-prefix window, and read latency limits a loaded
/// test machine meets (these tests check the wiring, not the machine's speed).
pub fn test_limits() -> Limits {
    let mut limits = Limits {
        hot_prefix_window: Duration::from_millis(500),
        ..Limits::default()
    };
    limits.inspection.read_latency_warn_ms = 5_000.0;
    limits.inspection.read_latency_fail_ms = 10_000.0;
    limits.alerts.fsync_p99_warning_seconds = 5.0;
    limits.alerts.fsync_p99_critical_seconds = 10.0;
    limits.alerts.commit_p99_seconds = 5.0;
    limits
}

/// Every member of `c` as a target, by its name.
pub fn targets(c: &Cluster) -> Vec<Target> {
    c.members()
        .iter()
        .map(|m| Target {
            name: m.name().to_string(),
            endpoint: m.client_url(),
            metrics: None,
        })
        .collect()
}

/// Options expecting exactly `c`'s members.
pub fn options(c: &Cluster, limits: Limits) -> Options {
    Options {
        cluster: "test".into(),
        expected: c
            .members()
            .iter()
            .map(|m| Expected {
                name: Some(m.name().to_string()),
                client_url: m.client_url(),
            })
            .collect(),
        limits,
        local_pki: None,
        backups: None,
    }
}

/// The TLS files of `c`'s test PKI, when it has one.
pub fn tls_files(c: &Cluster) -> Option<TlsFiles> {
    c.pki().map(|p| TlsFiles {
        ca: p.ca_file(),
        cert: p.client_cert_file(),
        key: p.client_key_file(),
    })
}

/// Inspects `c` once.
pub async fn inspect_cluster(
    c: &Cluster,
    options: &Options,
    clock: &dyn Clock,
    store: &dyn StateStore,
) -> Report {
    let source = EtcdSource::new(targets(c), tls_files(c).as_ref(), None, REQUEST_TIMEOUT)
        .expect("etcd source");
    inspect(&source, clock, store, options)
        .await
        .expect("inspection")
}

/// Panics with the whole report unless every check passed.
pub fn assert_all_pass(report: &Report) {
    let text = cairn_inspector::render::table::render(
        report,
        cairn_inspector::render::table::Style {
            color: false,
            verbose: true,
        },
    );
    // Every check but backups: these clusters have no backup store.
    let made: Vec<CheckId> = report.checks.iter().map(|c| c.check).collect();
    let expected: Vec<CheckId> = CheckId::ALL
        .into_iter()
        .filter(|c| *c != CheckId::Backups)
        .collect();
    assert_eq!(made, expected, "{text}");
    for c in &report.checks {
        assert_eq!(c.status, Status::Pass, "{} did not pass:\n{text}", c.check);
    }
}

/// Waits for a leader, writes 50 keys under `/registry/pods/` and inspects `c`, which must
/// pass every check: the healthy case, on either server.
pub async fn inspect_healthy(c: &mut Cluster) -> Report {
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut kv = client(c).await;
    for i in 0..50 {
        kv.put(format!("/registry/pods/p{i}"), "v", None)
            .await
            .expect("put");
    }
    let report = inspect_cluster(c, &options(c, test_limits()), &clock(), &NoStore).await;
    assert_all_pass(&report);
    report
}

/// A client of the whole cluster.
pub async fn client(c: &Cluster) -> etcd_client::Client {
    let endpoints: Vec<String> = c.members().iter().map(|m| m.client_url()).collect();
    etcd_client::Client::connect(endpoints, None)
        .await
        .expect("connect")
}

/// The system clock, for tests that do not move time.
pub fn clock() -> SystemClock {
    SystemClock
}

/// A member whose data differs: the cluster's snapshot is restored into m1 and m2 and
/// another cluster's into m3, all with the same names, peers and token (so they form one
/// cluster again), as an operator restoring the wrong file into one member would.
/// `kind`'s own restore command does the restoring: `etcdctl snapshot restore` for etcd,
/// `cairn-server snapshot restore` (the same flags) for cairn-server.
pub async fn restored_from_a_different_snapshot(kind: Kind) {
    let builder = match kind {
        Kind::Cairn => cairn_cluster(),
        Kind::Etcd => Cluster::builder(Kind::Etcd),
    };
    let mut c = builder.start().expect("cluster");
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
    let mut other = cairn_testkit::Member::builder(kind);
    if kind == Kind::Cairn {
        other = other.cairn_binary(cairn_testkit::cairn_server_binary().expect("cairn-server"));
    }
    let other = other.start().expect("another single member");
    // More keys than ours: m3 is at a later revision, and holds 5 foreign keys at ours.
    let theirs = save(&other, "/foreign/", 7, "theirs.db");
    drop(other);

    c.restore_snapshots(&[&ours, &ours, &theirs])
        .expect("restore the snapshots");
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
    // The keys that differ, by name and revision: at the common revision (ours, after 5
    // puts), m3 holds the first 5 foreign keys and none of ours.
    let revision = consistency
        .figures
        .iter()
        .find(|f| f.subject == "cluster" && f.name == "revision")
        .expect("revision")
        .value;
    assert!(
        consistency.summary.contains(&format!(
            "m3 differs from m1 in 10 key(s) at revision {revision}: /foreign/0 (only on m3, revision 2), "
        )),
        "{}",
        consistency.summary
    );
    assert!(
        consistency
            .summary
            .contains("/shared/4 (only on m1, revision 6)"),
        "{}",
        consistency.summary
    );
}
