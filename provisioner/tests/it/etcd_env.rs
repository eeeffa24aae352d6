//! Debian's etcd 3.4 started from nothing but a rendered env file (TLS, metrics URL, quota,
//! compaction, snapshot count, raft timings): it must recognise every variable, serve
//! etcdctl over TLS with the generated admin certificate and refuse a client without one.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_inventory::Inventory;
use cairn_pki::Client;
use cairn_pki::Pki;
use cairn_provisioner::{render, SystemClock};
use cairn_testkit::{free_port, wait_until, Daemon};

use cairn_testkit::hosts::mount_point;

const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 14);

/// `KEY=value` lines of an env file without quoting (what the test inventory renders).
fn variables(env: &str) -> Vec<(String, String)> {
    env.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY=value");
            assert!(!v.starts_with('"'), "quoted value in {l}");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn etcd_3_4_runs_from_the_rendered_env_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ports = std::collections::BTreeSet::new();
    while ports.len() < 3 {
        ports.insert(free_port(ADDRESS).expect("free port"));
    }
    let ports: Vec<u16> = ports.into_iter().collect();
    let (client, peer, metrics) = (ports[0], ports[1], ports[2]);
    let text = format!(
        "[cluster]\nname = \"e\"\nserver = \"etcd\"\nbinary = \"/usr/bin/etcd\"\ntoken = \"e-1\"\n\
         client_port = {client}\npeer_port = {peer}\nmetrics_port = {metrics}\n\
         data_dir = \"{}\"\nquota_backend_bytes = 104857600\nsnapshot_count = 1000\n\
         heartbeat_interval_ms = 50\nelection_timeout_ms = 500\n\
         [cluster.auto_compaction]\nmode = \"periodic\"\nretention = \"1h\"\n\
         [tls]\n[[hosts]]\nname = \"e1\"\naddress = \"{ADDRESS}\"\n",
        dir.path().join("data").display()
    );
    let inv = Inventory::parse(&dir.path().join("cairn.toml"), text).expect("inventory");
    let pki = Pki::ensure(&inv, inv.tls.as_ref().expect("tls"), &SystemClock).expect("pki");
    // The member's /etc/cairn, laid out as the provisioner lays it out on a host.
    let etc = dir.path().join("etc-cairn");
    std::fs::create_dir_all(etc.join("pki")).expect("etc dir");
    std::fs::copy(pki.ca_cert(), etc.join("pki/ca.pem")).expect("ca");
    std::fs::copy(pki.member_cert("e1"), etc.join("pki/member.pem")).expect("cert");
    std::fs::copy(pki.member_key("e1"), etc.join("pki/member-key.pem")).expect("key");
    let env = render::env_file(&inv, &inv.hosts[0], &render::Bootstrap::new_cluster(&inv));
    let vars = variables(&env);
    assert!(vars.len() >= 20, "{env}");
    mount_point(Path::new("/etc/cairn")).expect("mount point");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/cairn && exec /usr/bin/etcd"#)
        .arg("sh")
        .arg(&etc)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(vars.iter().map(|(k, v)| (k, v)));
    let log = dir.path().join("etcd.log");
    let _etcd = Daemon::spawn(cmd, &log).expect("start etcd");
    let endpoint = format!("https://{ADDRESS}:{client}");
    let etcdctl = |with_cert: bool, args: &[&str]| {
        let mut c = Command::new("etcdctl");
        c.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg(format!("--cacert={}", pki.ca_cert().display()))
            .arg("--dial-timeout=2s")
            .arg("--command-timeout=3s");
        if with_cert {
            c.arg(format!(
                "--cert={}",
                pki.client_cert(Client::Admin).display()
            ))
            .arg(format!("--key={}", pki.client_key(Client::Admin).display()));
        }
        c.args(args);
        cairn_testkit::run_command(c, Duration::from_secs(10)).expect("etcdctl")
    };
    wait_until("etcd to serve over TLS", Duration::from_secs(30), || {
        etcdctl(true, &["put", "k", "v"]).success()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", std::fs::read_to_string(&log).unwrap_or_default()));
    let logged = std::fs::read_to_string(&log).expect("log");
    for (name, value) in &vars {
        assert!(
            logged.contains(&format!(
                "recognized and used environment variable {name}={value}"
            )),
            "etcd did not use {name}:\n{logged}"
        );
    }
    assert!(
        !logged.contains("unrecognized environment variable"),
        "{logged}"
    );
    let out = etcdctl(true, &["get", "k", "--print-value-only"]);
    assert_eq!(out.stdout, "v\n");
    assert!(
        !etcdctl(false, &["get", "k"]).success(),
        "a client without a certificate is refused"
    );
}
