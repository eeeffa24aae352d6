//! `cairn bench MODE` against real members: a short run of every workload against
//! cairn-server and against Debian's etcd 3.4, checked through the JSON report.

use std::process::Command;

use cairn_testkit::{Kind, Member, Pki};

use crate::{cairn, etcd, BIN};

const MODES: [&str; 5] = ["put", "range", "txn-put", "watch", "lease-keepalive"];
const TOTAL: u64 = 200;

fn bench(member: &Member, args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("bench")
        .args(args)
        .args(["--endpoints", &member.client_url(), "-w", "json"])
        .output()
        .expect("run cairn");
    assert!(
        out.status.success(),
        "cairn bench {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json report")
}

/// Sane figures for a run of `expected` samples with no errors.
fn assert_sane(report: &serde_json::Value, mode: &str, expected: u64) {
    assert_eq!(report["mode"], mode, "{report:#}");
    assert_eq!(report["count"], expected, "{report:#}");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert!(report["throughput"].as_f64().unwrap() > 0.0, "{report:#}");
    let l = &report["latency_ms"];
    let f = |k: &str| l[k].as_f64().unwrap();
    assert!(
        0.0 < f("min")
            && f("min") <= f("p50")
            && f("p50") <= f("p90")
            && f("p90") <= f("p99")
            && f("p99") <= f("p999")
            && f("p999") <= f("max"),
        "{report:#}"
    );
    let buckets = report["histogram"].as_array().unwrap();
    let in_buckets: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(in_buckets, expected, "{report:#}");
}

fn every_mode_against(member: &Member) {
    for mode in MODES {
        let total = TOTAL.to_string();
        let report = bench(
            member,
            &[mode, "--total", &total, "--clients", "4", "--conns", "2"],
        );
        assert_sane(&report, mode, TOTAL);
        assert_eq!(report["clients"], 4);
    }
}

#[test]
fn every_mode_against_cairn_server() {
    every_mode_against(&cairn());
}

#[test]
fn every_mode_against_etcd() {
    let etcd = etcd();
    every_mode_against(&etcd);
}

#[test]
fn watch_counts_every_event_at_every_watcher() {
    let member = cairn();
    let report = bench(
        &member,
        &[
            "watch",
            "--watchers",
            "3",
            "--total",
            "50",
            "--clients",
            "2",
        ],
    );
    assert_sane(&report, "watch", 150);
    assert_eq!(report["unit"], "events");
    assert_eq!(report["puts"]["count"], 50);
    assert_eq!(report["puts"]["watchers"], 3);
}

#[test]
fn serializable_ranges_sequential_keys_and_a_duration() {
    let member = cairn();
    let report = bench(&member, &["range", "--consistency", "s", "--total", "100"]);
    assert_sane(&report, "range", 100);
    let report = bench(
        &member,
        &[
            "put",
            "--sequential-keys",
            "--key-space-size",
            "10",
            "--key-size",
            "16",
            "--val-size",
            "64",
            "--total",
            "20",
        ],
    );
    assert_sane(&report, "put", 20);
    let keys = member
        .etcdctl(&["get", "--prefix", "0000000000000", "--keys-only"])
        .expect("etcdctl get");
    assert_eq!(
        keys.stdout.split_whitespace().count(),
        10,
        "{}",
        keys.stdout
    );
    // A duration run ends by itself; how many requests fit in it is not asserted.
    let report = bench(&member, &["put", "--duration", "300ms", "--rate", "200"]);
    assert_eq!(report["errors"], 0, "{report:#}");
    assert!(report["count"].as_u64().unwrap() > 0, "{report:#}");
}

#[test]
fn put_over_tls_with_client_certificates() {
    let pki = Pki::new().expect("test pki");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let member = Member::builder(Kind::Cairn)
        .cairn_binary(binary)
        .tls(&pki)
        .start()
        .expect("start cairn-server with TLS");
    let (ca, cert, key) = (pki.ca_file(), pki.client_cert_file(), pki.client_key_file());
    let report = bench(
        &member,
        &[
            "put",
            "--total",
            "50",
            "--cacert",
            ca.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_sane(&report, "put", 50);
}

#[test]
fn text_report_has_a_histogram_and_percentiles() {
    let member = cairn();
    let out = Command::new(BIN)
        .args(["bench", "put", "--total", "100", "--endpoints"])
        .arg(member.client_url())
        .output()
        .expect("run cairn");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("put: 100 requests in "), "{text}");
    for part in [
        "Requests/sec:",
        "Latency histogram (ms):",
        "|∎",
        "p50 in ",
        "p99.9 in ",
    ] {
        assert!(text.contains(part), "no {part:?} in\n{text}");
    }
    // Not a terminal: no progress bar on stderr.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_endpoint_is_one_line_and_exit_2() {
    let port = cairn_testkit::free_port(std::net::Ipv4Addr::LOCALHOST).expect("free port");
    let out = Command::new(BIN)
        .args(["bench", "put", "--total", "1", "--endpoints"])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .expect("run cairn");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("cairn: cannot reach http://127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn target_leader_sends_every_write_to_the_leader_of_an_etcd_cluster() {
    let mut c = cairn_testkit::Cluster::builder(cairn_testkit::Kind::Etcd)
        .start()
        .expect("etcd cluster");
    let leader = c
        .wait_leader(std::time::Duration::from_secs(20))
        .expect("leader");
    let endpoints = c.endpoints();
    let out = Command::new(BIN)
        .args([
            "bench",
            "put",
            "--total",
            "200",
            "--target-leader",
            "-w",
            "json",
        ])
        .args(["--endpoints", &endpoints])
        .output()
        .expect("run cairn");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_sane(&report, "put", 200);
    // Only the leader's client port saw the puts (etcd counts them per member).
    let puts = |i: usize| -> f64 {
        let m = c.member(i);
        let text = cairn_testkit::run_command(
            {
                let mut cmd = Command::new("curl");
                cmd.args(["-s", &format!("{}/metrics", m.client_url())]);
                cmd
            },
            std::time::Duration::from_secs(10),
        )
        .expect("curl")
        .stdout;
        text.lines()
            .find(|l| {
                l.starts_with("grpc_server_handled_total")
                    && l.contains("grpc_method=\"Put\"")
                    && l.contains("grpc_code=\"OK\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    for i in 0..c.len() {
        let n = puts(i);
        if i == leader {
            assert!(n >= 200.0, "leader handled {n} puts");
        } else {
            assert_eq!(n, 0.0, "member {i} (not the leader) handled puts");
        }
    }
}

#[test]
fn endpoints_come_from_the_inventory() {
    let member = cairn();
    let port = member
        .endpoint()
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = dir.path().join("cairn.toml");
    std::fs::write(
        &inventory,
        format!(
            "[cluster]\nname = \"bench\"\nbinary = \"cairn-server\"\ntoken = \"t\"\n\
             client_port = {port}\n\n[[hosts]]\nname = \"m1\"\naddress = \"127.0.0.1\"\n"
        ),
    )
    .expect("write inventory");
    let out = Command::new(BIN)
        .args(["bench", "put", "--total", "100", "-w", "json", "-i"])
        .arg(&inventory)
        .output()
        .expect("run cairn");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_sane(&report, "put", 100);
    let got = member
        .etcdctl(&["get", "", "--prefix", "--keys-only"])
        .expect("get");
    assert!(!got.stdout.trim().is_empty(), "no key written: {got:?}");
}
