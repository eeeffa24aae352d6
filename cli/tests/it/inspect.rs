//! `cairn inspect` against a real cairn-server: an inventory run passes, prints the JSON
//! schema and keeps its state; a 1.2 MiB value makes it exit 2 and name the key.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::{run_command, Kind, Member};

use crate::{cairn, BIN};

/// How long one `cairn inspect` may take.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn inspect_with_an_inventory_passes_prints_json_and_keeps_its_state() {
    // Metrics on their own port, as `[cluster] metrics_port` sets them up.
    let metrics_port = cairn_testkit::free_port(Ipv4Addr::LOCALHOST).expect("free port");
    let m = Member::builder(Kind::Cairn)
        .cairn_binary(cairn_testkit::cairn_server_binary().expect("cairn-server binary"))
        .arg(format!(
            "--listen-metrics-urls=http://127.0.0.1:{metrics_port}"
        ))
        .start()
        .expect("start cairn-server");
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, port) = m
        .endpoint()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .expect("port");
    let inventory = dir.path().join("cairn.toml");
    std::fs::write(
        &inventory,
        format!(
            "[cluster]\nname = \"it\"\nbinary = \"cairn-server\"\ntoken = \"it-1\"\nclient_port = {port}\npeer_port = 1\nmetrics_port = {metrics_port}\n\n\
             [[hosts]]\nname = \"{}\"\naddress = \"{}\"\n\n\
             [alerts]\nfsync_p99_warning_seconds = 5.0\nfsync_p99_critical_seconds = 10.0\ncommit_p99_seconds = 5.0\n\n\
             [inspection]\nhot_prefix_window = \"200ms\"\nread_latency_warn_ms = 5000.0\nread_latency_fail_ms = 10000.0\n",
            m.name(),
            m.ip()
        ),
    )
    .expect("write inventory");
    let state_home = dir.path().join("state-home");
    let inspect = |format: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["inspect", "--format", format, "-i"])
            .arg(&inventory)
            .env("XDG_STATE_HOME", &state_home)
            .env_remove("STATE_DIRECTORY");
        run_command(cmd, INSPECT_TIMEOUT).expect("run cairn inspect")
    };
    let out = inspect("json");
    let report: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["cluster"], "it");
    assert_eq!(report["status"], "pass", "{out:?}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["check"].as_str().expect("name"))
        .collect();
    assert_eq!(
        checks,
        [
            "membership",
            "consistency",
            "database",
            "large_values",
            "key_count_growth",
            "hot_prefixes",
            "latency",
            "certificates"
        ]
    );
    let latency = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "latency")
        .expect("latency");
    assert!(
        latency["figures"]
            .as_array()
            .expect("figures")
            .iter()
            .any(|f| f["name"] == "wal_fsync_p99"),
        "fsync p99 read from the metrics port: {latency}"
    );
    // The state is the user's, in the state directory, not next to the inventory.
    let state = std::fs::read_to_string(state_home.join("cairn/it/inspection.json"))
        .expect("state file in $XDG_STATE_HOME/cairn/<cluster>/");
    assert!(state.contains("\"total_keys\": 0"), "{state}");
    let beside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("inventory dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        beside.len(),
        2,
        "only the inventory and the state home: {beside:?}"
    );
    // A second run: its HTML report draws the trend of both.
    let out = inspect("html");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("The last 2 inspections"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("<polyline"), "{}", out.stdout);
}

#[test]
fn a_large_value_exits_2_and_is_named_in_markdown() {
    let m = cairn();
    let put = m
        .etcdctl_stdin(&["put", "/blobs/big"], &vec![b'x'; 1_258_291])
        .expect("etcdctl put");
    assert!(put.success(), "{put:?}");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "inspect",
        "--format",
        "markdown",
        "--window",
        "200ms",
        "--endpoints",
    ])
    .arg(m.client_url());
    let out = run_command(cmd, INSPECT_TIMEOUT).expect("run cairn inspect");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stdout.contains("| large_values | fail |"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("/blobs/big (1.2 MiB)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("| /blobs/big | value_size | 1.2 MiB | 100.0 KiB | 1.0 MiB | fail |"),
        "{}",
        out.stdout
    );
}

#[test]
fn serve_exports_the_inspection_as_prometheus_metrics() {
    let m = cairn();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("cairn.log");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "inspect",
        "--serve",
        "127.0.0.1:0",
        "--every",
        "1h",
        "--window",
        "200ms",
    ])
    .args(["--endpoints", &m.client_url()]);
    let _daemon = cairn_testkit::Daemon::spawn(cmd, &log).expect("start cairn inspect --serve");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    cairn_testkit::wait_until("a finished inspection in the log", INSPECT_TIMEOUT, || {
        read_log().contains("cairn: inspection ")
    })
    .unwrap_or_else(|e| panic!("{e}: {}", read_log()));
    let text = read_log();
    let addr = text
        .split("serving inspection metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the address in the log")
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .expect("request");
    let mut metrics = String::new();
    s.read_to_string(&mut metrics).expect("metrics");
    for line in [
        "cairn_inspection_check_status{check=\"large_values\"} 0.0",
        "cairn_inspection_check_status{check=\"key_count_growth\"} 0.0",
        "cairn_inspection_runs_total 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}
