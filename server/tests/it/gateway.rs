//! `cairn-server gateway start` as etcd 3.4's gateway is used: etcdctl through it answers as
//! it does against the member directly and through `etcd gateway start` (Debian's etcd) in
//! front of the same member; in front of a 3-member cluster, a member that goes away is
//! skipped and, once back, takes connections again after `--retry-delay`.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::{free_port, wait_until, Cluster, Daemon, Kind, Member};

/// A gateway process in front of `endpoints`, listening on a free loopback port.
struct Gateway {
    addr: String,
    _process: Daemon,
}

impl Gateway {
    fn start(program: &str, endpoints: &str, retry_delay: &str, log: &std::path::Path) -> Self {
        let port = free_port(Ipv4Addr::LOCALHOST).expect("free port");
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(program);
        cmd.args(["gateway", "start"])
            .arg(format!("--endpoints={endpoints}"))
            .arg(format!("--listen-addr={addr}"))
            .arg(format!("--retry-delay={retry_delay}"));
        let process = Daemon::spawn(cmd, log).expect("start the gateway");
        wait_until(
            &format!("{program} gateway to listen on {addr}"),
            Duration::from_secs(20),
            || std::net::TcpStream::connect(&addr).is_ok(),
        )
        .expect("gateway listening");
        Self {
            addr,
            _process: process,
        }
    }
}

/// What etcdctl printed, and how it exited; timings masked.
fn answer(m: &Member, endpoint: &str, args: &[&str]) -> String {
    let out = m.etcdctl_at(endpoint, args).expect("etcdctl");
    let took = regex::Regex::new(r"took = \S+").expect("regex");
    let text = format!("exit {}\n{}{}", out.code, out.stdout, out.stderr);
    took.replace_all(&text, "took = <masked>").into_owned()
}

#[test]
fn through_the_gateway_etcdctl_answers_as_directly_and_as_through_etcds_gateway() {
    let m = crate::cairn();
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = Gateway::start(
        env!("CARGO_BIN_EXE_cairn-server"),
        &m.endpoint(),
        "1s",
        &dir.path().join("cairn-gateway.log"),
    );
    let theirs = Gateway::start(
        "etcd",
        &m.endpoint(),
        "1s",
        &dir.path().join("etcd-gateway.log"),
    );
    let direct = m.endpoint();
    // Large enough to span many TCP segments, under the kernel's 128 KiB limit of one argument.
    let big = "x".repeat(120_000);
    // Writes go through each gateway in turn (their answers compared); reads, between
    // writes, through all three paths.
    let steps: Vec<(bool, Vec<&str>)> = vec![
        (true, vec!["put", "/k", "v1"]),
        (false, vec!["get", "/k", "-w", "json"]),
        (true, vec!["put", "/big", &big]),
        (false, vec!["get", "/big", "--print-value-only"]),
        (false, vec!["get", "/", "--prefix", "--keys-only"]),
        (true, vec!["del", "/missing"]),
        (false, vec!["get", "/k", "--rev=1"]),
        (false, vec!["endpoint", "health", "--command-timeout=5s"]),
    ];
    for (i, (write, args)) in steps.iter().enumerate() {
        if *write {
            let a = answer(&m, &ours.addr, args);
            let b = answer(&m, &theirs.addr, args);
            assert_eq!(a, b, "step {i}: {}", args[0]);
            continue;
        }
        let d = answer(&m, &direct, args);
        let a = answer(&m, &ours.addr, args).replace(&ours.addr, &direct);
        let b = answer(&m, &theirs.addr, args).replace(&theirs.addr, &direct);
        assert_eq!(
            a,
            d,
            "step {i}: cairn's gateway vs directly: {}",
            args.join(" ")
        );
        assert_eq!(
            b,
            d,
            "step {i}: etcd's gateway vs directly: {}",
            args.join(" ")
        );
    }
}

#[test]
fn a_member_that_goes_away_is_skipped_and_taken_back_after_the_retry_delay() {
    let mut c = Cluster::builder(Kind::Cairn)
        .cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
        .start()
        .expect("cluster");
    c.wait_leader(Duration::from_secs(30)).expect("leader");
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoints: Vec<String> = c.members().iter().map(Member::endpoint).collect();
    let gw = Gateway::start(
        env!("CARGO_BIN_EXE_cairn-server"),
        &endpoints.join(","),
        "1s",
        &dir.path().join("gateway.log"),
    );
    let m2 = c.member_id(1).expect("m2's id");
    let answering = |c: &Cluster| -> Vec<u64> {
        (0..6)
            .filter_map(|_| {
                let out = c
                    .member(0)
                    .etcdctl_at(&gw.addr, &["endpoint", "status", "-w", "json"])
                    .ok()?;
                let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
                v[0]["Status"]["header"]["member_id"].as_u64()
            })
            .collect()
    };
    // Every member takes connections in turn.
    assert!(answering(&c).contains(&m2));

    c.member_mut(1).stop().expect("stop m2");
    for i in 0..6 {
        let out = c
            .member(0)
            .etcdctl_at(&gw.addr, &["endpoint", "health", "--command-timeout=5s"])
            .expect("etcdctl");
        assert!(out.success(), "connection {i} with m2 down: {out:?}");
    }
    assert!(!answering(&c).contains(&m2), "m2 is down");

    c.member_mut(1).restart().expect("restart m2");
    wait_until(
        "m2 to take connections again",
        Duration::from_secs(30),
        || answering(&c).contains(&m2),
    )
    .expect("m2 back behind the gateway");
    let log = std::fs::read_to_string(dir.path().join("gateway.log")).expect("log");
    assert!(log.contains("deactivated endpoint"), "{log}");
    assert!(log.contains("activated endpoint"), "{log}");
}
