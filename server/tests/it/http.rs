//! etcd's HTTP endpoints on the client port (plain and TLS) and on `--listen-metrics-urls`:
//! `/health` must equal etcd 3.4's, `/metrics` must have etcd's names, types and labels (taken
//! from a real etcd's scrape), its counters must count what etcd counts, and a real Prometheus
//! must be able to scrape and query it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::{free_port, run_command, wait_until, Daemon, Kind, Member, MemberBuilder, Pki};

use super::cairn_builder;

const CURL_TIMEOUT: Duration = Duration::from_secs(20);
/// Prometheus may be slow to start on a loaded machine; these are upper bounds, not delays.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(120);

/// Names the brief requires; each must be in cairn's scrape unless marked as peer-only.
const REQUIRED: &[&str] = &[
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending",
    "etcd_server_proposals_failed_total",
    "etcd_server_quota_backend_bytes",
    "etcd_server_id",
    "etcd_server_version",
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_disk_backend_defrag_duration_seconds",
    "etcd_disk_backend_snapshot_duration_seconds",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "etcd_mvcc_put_total",
    "etcd_mvcc_range_total",
    "etcd_mvcc_delete_total",
    "etcd_mvcc_txn_total",
    "etcd_debugging_mvcc_keys_total",
    "etcd_network_client_grpc_sent_bytes_total",
    "etcd_network_client_grpc_received_bytes_total",
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "grpc_server_handling_seconds",
    "process_cpu_seconds_total",
    "process_max_fds",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
];

/// Per-peer metrics: a member without peers has no series of them, in etcd as in cairn.
const PEER_ONLY: &[&str] = &[
    "etcd_network_peer_round_trip_time_seconds",
    "etcd_network_peer_sent_bytes_total",
    "etcd_network_peer_received_bytes_total",
    "etcd_network_peer_sent_failures_total",
];

/// One HTTP answer as curl saw it.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

/// TLS material for curl: CA, client certificate and key.
fn tls_args(pki: &Pki) -> Vec<String> {
    [
        ("--cacert", pki.ca_file()),
        ("--cert", pki.client_cert_file()),
        ("--key", pki.client_key_file()),
    ]
    .into_iter()
    .flat_map(|(flag, path)| [flag.to_string(), path.to_string_lossy().into_owned()])
    .collect()
}

fn curl(url: &str, extra: &[String]) -> Reply {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "15"])
        .args(extra)
        .arg(url);
    let out = run_command(cmd, CURL_TIMEOUT).expect("run curl");
    assert!(out.success(), "curl {url} failed: {out:?}");
    let (head, body) = out
        .stdout
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header/body split in {:?}", out.stdout));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let content_type = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    Reply {
        status,
        content_type,
        body: body.to_string(),
    }
}

/// A metric family as a scrape declares it: type and label names (without `le`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Family {
    kind: String,
    labels: BTreeSet<String>,
    samples: usize,
}

/// The label names of a sample line's `{...}`, quote- and escape-aware.
fn label_names(labels: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let (mut name, mut in_value, mut escaped) = (String::new(), false, false);
    for c in labels.chars() {
        if in_value {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_value = false,
                _ => {}
            }
        } else {
            match c {
                '=' => {
                    names.insert(std::mem::take(&mut name).trim().to_string());
                }
                '"' => in_value = true,
                ',' => {}
                c => name.push(c),
            }
        }
    }
    names.remove("le");
    names
}

/// Families by name, from Prometheus text.
fn families(text: &str) -> BTreeMap<String, Family> {
    let mut fams: BTreeMap<String, Family> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            fams.entry(name.to_string()).or_default().kind = kind.to_string();
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("sample name");
        let name = &line[..name_end];
        let labels = if line[name_end..].starts_with('{') {
            let end = line.rfind('}').expect("closing brace");
            label_names(&line[name_end + 1..end])
        } else {
            BTreeSet::new()
        };
        let family = [name, name.trim_end_matches("_bucket")]
            .into_iter()
            .chain(name.strip_suffix("_sum"))
            .chain(name.strip_suffix("_count"))
            .find(|n| fams.contains_key(*n))
            .unwrap_or_else(|| panic!("sample {line:?} outside any declared family"))
            .to_string();
        let f = fams.get_mut(&family).expect("found above");
        f.labels.extend(labels);
        f.samples += 1;
    }
    fams
}

/// The value of the sample `series` (name plus labels exactly as written).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The same client traffic against either server.
fn traffic(m: &Member) {
    for args in [
        &["put", "a", "1"][..],
        &["put", "b", "2"],
        &["get", "a"],
        &["get", "", "--prefix"],
        &["del", "b"],
        &["get", "a", "--rev", "1000"],
    ] {
        m.etcdctl(args).expect("etcdctl");
    }
    let txn = b"value(\"a\") = \"1\"\n\nput t1 x\nput t2 y\n\nput f z\n\n";
    let out = m.etcdctl_stdin(&["txn"], txn).expect("etcdctl txn");
    assert!(out.success(), "{out:?}");
}

fn with_metrics_url(b: MemberBuilder, scheme: &str) -> (MemberBuilder, String) {
    let port = free_port(Ipv4Addr::LOCALHOST).expect("free port");
    let url = format!("{scheme}://127.0.0.1:{port}");
    (
        b.arg("--listen-metrics-urls")
            .arg(url.clone())
            .arg("--metrics")
            .arg("extensive"),
        url,
    )
}

/// Checks /health, /livez, /readyz and /metrics of cairn at `base` (and /health of etcd at
/// `etcd_base`), returning cairn's and etcd's scrapes.
fn check_endpoints(base: &str, etcd_base: &str, extra: &[String]) -> (String, String) {
    let health = curl(&format!("{base}/health"), extra);
    assert_eq!(
        health,
        curl(&format!("{etcd_base}/health"), extra),
        "/health of cairn at {base} (left) differs from etcd 3.4's (right)"
    );
    assert_eq!(health.body, r#"{"health":"true"}"#);
    // The release cairn follows, as etcd 3.4 reports its own.
    assert_eq!(
        curl(&format!("{base}/version"), extra),
        curl(&format!("{etcd_base}/version"), extra),
        "/version of cairn at {base} (left) differs from etcd 3.4's (right)"
    );
    for probe in ["livez", "readyz"] {
        let r = curl(&format!("{base}/{probe}"), extra);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "ok"),
            "/{probe} at {base}"
        );
    }
    let metrics = curl(&format!("{base}/metrics"), extra);
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let etcd_metrics = curl(&format!("{etcd_base}/metrics"), extra);
    assert_eq!(etcd_metrics.status, 200);
    (metrics.body, etcd_metrics.body)
}

/// Cairn's families must include every required one with etcd's type and label names.
fn check_schema(cairn: &str, etcd: &str) {
    let (ours, theirs) = (families(cairn), families(etcd));
    let mut problems = Vec::new();
    for name in REQUIRED {
        match (ours.get(*name), theirs.get(*name)) {
            (None, _) => problems.push(format!("{name}: missing from cairn")),
            (Some(o), Some(t)) if (&o.kind, &o.labels) != (&t.kind, &t.labels) => {
                problems.push(format!(
                    "{name}: cairn {} {:?}, etcd {} {:?}",
                    o.kind, o.labels, t.kind, t.labels
                ))
            }
            (Some(o), _) if o.samples == 0 => problems.push(format!("{name}: no samples")),
            _ => {}
        }
    }
    for name in PEER_ONLY {
        assert!(
            !ours.contains_key(*name) && !theirs.contains_key(*name),
            "{name}"
        );
    }
    // Every family both export agrees too (etcd's TYPE and labels are the reference).
    for (name, o) in &ours {
        if let Some(t) = theirs.get(name) {
            if (&o.kind, &o.labels) != (&t.kind, &t.labels) {
                problems.push(format!("{name}: cairn {o:?}, etcd {t:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "metrics differ:\n{}",
        problems.join("\n")
    );
}

#[test]
fn plain_http_endpoints_and_metrics_like_etcd() {
    let (cb, cairn_metrics_url) = with_metrics_url(cairn_builder(), "http");
    let (eb, etcd_metrics_url) = with_metrics_url(Member::builder(Kind::Etcd), "http");
    let cairn = cb.start().expect("start cairn-server");
    let etcd = eb.start().expect("start etcd");
    traffic(&cairn);
    traffic(&etcd);

    // HTTP/1.1 and HTTP/2 (prior knowledge, as gRPC uses) on the client port.
    let http1 = vec!["--http1.1".to_string()];
    let (c, e) = check_endpoints(&cairn.client_url(), &etcd.client_url(), &http1);
    check_schema(&c, &e);
    let (c2, _) = check_endpoints(&cairn_metrics_url, &etcd_metrics_url, &[]);
    check_schema(&c2, &e);
    let h2 = curl(
        &format!("{}/health", cairn.client_url()),
        &["--http2-prior-knowledge".to_string()],
    );
    assert_eq!(h2.status, 200);

    // The same traffic counts the same in both.
    for series in [
        "etcd_mvcc_put_total",
        "etcd_mvcc_range_total",
        "etcd_mvcc_delete_total",
        "etcd_mvcc_txn_total",
        "etcd_debugging_mvcc_keys_total",
        "grpc_server_started_total{grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}",
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}",
        "grpc_server_handled_total{grpc_code=\"OutOfRange\",grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}",
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Txn\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"}",
        "etcd_server_has_leader",
        "etcd_server_is_leader",
        "etcd_server_leader_changes_seen_total",
        "etcd_server_proposals_pending",
        "etcd_server_proposals_failed_total",
    ] {
        assert_eq!(
            value(&c, series),
            value(&e, series),
            "{series}: cairn (left) and etcd (right) counted differently"
        );
    }
    // Every write went through a measured fsync and commit; traffic both ways was counted.
    for series in [
        "etcd_disk_wal_fsync_duration_seconds_count",
        "etcd_disk_backend_commit_duration_seconds_count",
        "etcd_server_proposals_applied_total",
        "etcd_network_client_grpc_sent_bytes_total",
        "etcd_network_client_grpc_received_bytes_total",
        "etcd_mvcc_db_total_size_in_bytes",
        "etcd_mvcc_db_total_size_in_use_in_bytes",
        "process_resident_memory_bytes",
    ] {
        let v = value(&c, series).unwrap_or_default();
        assert!(v > 0.0, "{series} is {v}");
    }
    let id = format!("etcd_server_id{{server_id=\"{}\"}}", member_id(&cairn));
    assert_eq!(value(&c, &id), Some(1.0), "{id}");

    // Anything else is a 404, as in etcd; gRPC still works on the same port.
    let missing = curl(&format!("{}/no-such-path", cairn.client_url()), &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "404 page not found\n");
    let get = cairn.etcdctl(&["get", "a", "--print-value-only"]).unwrap();
    assert_eq!(get.stdout, "1\n");
}

/// The member ID in hex, from a response header.
fn member_id(m: &Member) -> String {
    let out = m.etcdctl(&["get", "a", "-w", "json"]).expect("etcdctl get");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    format!(
        "{:x}",
        v["header"]["member_id"].as_u64().expect("member_id")
    )
}

#[test]
fn tls_endpoints_on_client_and_metrics_urls() {
    let pki = Pki::new().expect("pki");
    let (cb, cairn_metrics_url) = with_metrics_url(cairn_builder().tls(&pki), "https");
    let (eb, etcd_metrics_url) = with_metrics_url(Member::builder(Kind::Etcd).tls(&pki), "https");
    let cairn = cb.start().expect("cairn over TLS");
    let etcd = eb.start().expect("etcd over TLS");
    assert!(cairn.client_url().starts_with("https://"));
    let tls = tls_args(&pki);
    let (c, e) = check_endpoints(&cairn.client_url(), &etcd.client_url(), &tls);
    check_schema(&c, &e);
    let (c, e) = check_endpoints(&cairn_metrics_url, &etcd_metrics_url, &tls);
    check_schema(&c, &e);
    // Clients that offer only HTTP/1.1 in ALPN (Prometheus with HTTP/2 off) get in too.
    let mut http1 = tls.clone();
    http1.push("--http1.1".to_string());
    let (c, e) = check_endpoints(&cairn.client_url(), &etcd.client_url(), &http1);
    check_schema(&c, &e);
    // Without a client certificate the handshake fails, as in etcd with --client-cert-auth.
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert"])
        .arg(pki.ca_file())
        .arg(format!("{}/health", cairn.client_url()));
    let refused = run_command(cmd, CURL_TIMEOUT).expect("curl");
    assert!(!refused.success(), "{refused:?}");
    // gRPC over the same TLS port still works.
    let put = cairn.etcdctl(&["put", "k", "v"]).expect("etcdctl");
    assert_eq!(put.stdout, "OK\n", "{put:?}");
}

/// Runs `promtool query instant` and returns its output lines.
fn promtool_query(server: &str, query: &str) -> Vec<String> {
    let mut cmd = Command::new("promtool");
    cmd.args(["query", "instant", server, query]);
    let out = run_command(cmd, CURL_TIMEOUT).expect("run promtool");
    assert!(out.success(), "promtool query {query:?}: {out:?}");
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn prometheus_scrapes_and_queries_cairn() {
    let cairn = super::cairn();
    for i in 0..3 {
        let out = cairn
            .etcdctl(&["put", &format!("key{i}"), "value"])
            .expect("etcdctl put");
        assert!(out.success(), "{out:?}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: cairn\n    static_configs:\n      \
             - targets: ['{}']\n",
            cairn.endpoint()
        ),
    )
    .expect("write config");
    let mut check = Command::new("promtool");
    check.args(["check", "config"]).arg(&config);
    let checked = run_command(check, CURL_TIMEOUT).expect("promtool check config");
    assert!(checked.success(), "{checked:?}");

    let port = free_port(Ipv4Addr::LOCALHOST).expect("free port");
    let server = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"));
    let log = dir.path().join("prometheus.log");
    let mut prometheus = Daemon::spawn(cmd, &log).expect("start prometheus");
    let log_tail = || std::fs::read_to_string(&log).unwrap_or_default();

    let targets = format!("{server}/api/v1/targets");
    let up = wait_until(
        "Prometheus to scrape cairn-server",
        PROMETHEUS_TIMEOUT,
        || {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "--max-time", "5", &targets]);
            run_command(cmd, CURL_TIMEOUT)
                .map(|o| o.stdout.contains(r#""health":"up""#))
                .unwrap_or(false)
        },
    );
    assert!(
        up.is_ok() && prometheus.is_running(),
        "{up:?}\n{}",
        log_tail()
    );

    let has_leader = promtool_query(&server, "etcd_server_has_leader");
    assert!(
        has_leader.iter().any(|l| l.contains("=> 1 @")),
        "{has_leader:?}"
    );
    let puts = promtool_query(&server, "etcd_mvcc_put_total");
    assert!(puts.iter().any(|l| l.contains("=> 3 @")), "{puts:?}");
    let buckets = promtool_query(
        &server,
        r#"etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}"#,
    );
    assert!(buckets.iter().any(|l| l.contains("=> 3 @")), "{buckets:?}");
    let handled = promtool_query(
        &server,
        r#"grpc_server_handled_total{grpc_method="Put",grpc_code="OK"}"#,
    );
    assert!(handled.iter().any(|l| l.contains("=> 3 @")), "{handled:?}");
    // A rate needs two scrapes.
    let rate = "rate(etcd_disk_wal_fsync_duration_seconds_count[1m])";
    let mut last = Vec::new();
    let rated = wait_until("a rate over two scrapes", PROMETHEUS_TIMEOUT, || {
        last = promtool_query(&server, rate);
        last.iter().any(|l| l.contains("=>"))
    });
    assert!(rated.is_ok(), "{rate}: {last:?}\n{}", log_tail());
}
