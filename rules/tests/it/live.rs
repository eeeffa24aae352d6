//! The generated configuration and rules in a real Prometheus scraping a real three-member
//! etcd 3.4 cluster on loopback: with two members stopped, etcdInsufficientMembers fires.
//! Every dashboard query is accepted by that Prometheus too. `for`s are scaled down and the
//! scrape interval is one second so this takes seconds.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_inventory::Inventory;
use cairn_rules::{generate, Options, DASHBOARD_FILE, PROMETHEUS_FILE};
use cairn_testkit::{free_port, wait_until, Daemon};

/// The members' addresses (loopback only, away from the other tests' addresses).
const IPS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(127, 0, 0, 171),
    Ipv4Addr::new(127, 0, 0, 172),
    Ipv4Addr::new(127, 0, 0, 173),
];

/// A port free on every member address (the inventory has one client and one peer port).
fn common_free_port(avoid: &[u16]) -> u16 {
    loop {
        let port = free_port(IPS[0]).expect("free port");
        if !avoid.contains(&port) && IPS.iter().all(|ip| TcpListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, or `None` when nothing answers yet.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// `s` for a URL query string.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every `expr` in the dashboard's panels.
fn dashboard_queries(file: &Path) -> Vec<String> {
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).expect("dashboard")).expect("json");
    let queries: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter_map(|p| p["targets"].as_array())
        .flatten()
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect();
    assert!(queries.len() > 20, "{queries:?}");
    queries
}

fn etcd(inv: &Inventory, i: usize, dir: &Path) -> Daemon {
    let host = &inv.hosts[i];
    let client = inv.client_url(host);
    let peer = inv.peer_url(host);
    let mut cmd = Command::new("etcd");
    cmd.arg("--name")
        .arg(&host.name)
        .arg("--data-dir")
        .arg(dir.join(&host.name))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &inv.initial_cluster()])
        .args(["--initial-cluster-token", &inv.cluster.token])
        .args(["--initial-cluster-state", "new"]);
    Daemon::spawn(cmd, &dir.join(format!("{}.log", host.name))).expect("start etcd")
}

#[test]
fn prometheus_fires_insufficient_members_when_two_of_three_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client_port = common_free_port(&[]);
    let peer_port = common_free_port(&[client_port]);
    let hosts: String = IPS
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("[[hosts]]\nname = \"m{i}\"\naddress = \"{ip}\"\n"))
        .collect();
    let text = format!(
        "[cluster]\nname = \"live\"\nserver = \"etcd\"\nbinary = \"/usr/bin/etcd\"\ntoken = \"live-1\"\n\
         client_port = {client_port}\npeer_port = {peer_port}\n\n{hosts}\n\
         [alerts]\nscrape_interval_seconds = 1\n"
    );
    let inv = Inventory::parse(&dir.path().join("cairn.toml"), text).expect("inventory");
    let out = dir.path().join("rules");
    generate(&inv, &Options { for_scale: 0.01 }, &out).expect("generate");

    let mut members: Vec<Option<Daemon>> =
        (0..3).map(|i| Some(etcd(&inv, i, dir.path()))).collect();
    let prom_port = free_port(Ipv4Addr::LOCALHOST).expect("free port");
    let mut prom = Command::new("prometheus");
    prom.arg(format!(
        "--config.file={}",
        out.join(PROMETHEUS_FILE).display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.path().join("tsdb").display()
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"));
    let _prometheus =
        Daemon::spawn(prom, &dir.path().join("prometheus.log")).expect("start prometheus");

    let query =
        |q: &str| get(prom_port, &format!("/api/v1/query?query={}", encode(q))).unwrap_or_default();
    wait_until(
        "Prometheus to see 3 members up",
        Duration::from_secs(60),
        || query("sum(up{job=\"etcd\"})").contains("\"3\"]"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", query("up")));
    // Scraped with the cluster label, every member reporting a leader.
    let leaders = "etcd_server_has_leader{job=\"etcd\",cluster=\"live\"} == 1";
    wait_until(
        "every member to have a leader",
        Duration::from_secs(60),
        || query(leaders).matches("\"metric\"").count() == 3,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", query(leaders)));
    for q in dashboard_queries(&out.join(DASHBOARD_FILE)) {
        let answer = query(&q);
        assert!(answer.contains("\"status\":\"success\""), "{q}: {answer}");
    }
    let firing = |name: &str| {
        get(prom_port, "/api/v1/alerts").is_some_and(|body| {
            body.split("\"labels\":").any(|a| {
                a.contains(&format!("\"alertname\":\"{name}\""))
                    && a.contains("\"state\":\"firing\"")
            })
        })
    };
    assert!(
        !firing("etcdInsufficientMembers"),
        "fires with every member up"
    );

    members[1].take();
    members[2].take();
    wait_until(
        "etcdInsufficientMembers to fire",
        Duration::from_secs(60),
        || firing("etcdInsufficientMembers"),
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n{}",
            get(prom_port, "/api/v1/alerts").unwrap_or_default()
        )
    });
}
