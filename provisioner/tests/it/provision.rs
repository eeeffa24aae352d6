//! `cairn provision` against real sshd hosts: a fresh TLS cluster, an idempotent re-run,
//! `--plan`, a rolling flag change with a quorum throughout, refused host keys and an
//! unreachable host.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_inventory::Inventory;
use cairn_pki::Client;
use cairn_pki::Pki;
use cairn_provisioner::converge::{Limits, Quiet};
use cairn_provisioner::plan::ServiceAction;
use cairn_provisioner::probe::{EtcdProbe, Probe};
use cairn_provisioner::upgrade::NoHook;
use cairn_provisioner::{Error, Options, Report, Session, SystemClock};

use cairn_testkit::hosts::{Hosts, TestHost};

/// The inventory at `path` with `from` replaced by `to` (same ports).
pub(crate) fn edit_inventory(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("inventory");
    assert!(text.contains(from), "{from} not in the inventory");
    std::fs::write(path, text.replace(from, to)).expect("write inventory");
}

pub(crate) fn options(accept_new: bool, plan_only: bool) -> Options {
    Options {
        accept_new_host_keys: accept_new,
        plan_only,
        limits: Limits {
            health_timeout: Duration::from_secs(60),
            poll: Duration::from_millis(50),
            ..Limits::default()
        },
        ..Options::default()
    }
}

pub(crate) async fn provision(inventory: &Path, options: &Options) -> Result<Report, Error> {
    let inv = Inventory::load(inventory).expect("inventory");
    let session = Session::plan(&inv, options, &SystemClock, &Quiet).await?;
    if options.plan_only {
        Ok(session.finish_plan().await)
    } else {
        session.apply(&NoHook, &Quiet).await
    }
}

pub(crate) fn etcdctl(inv: &Inventory, args: &[&str]) -> cairn_testkit::CmdOutput {
    let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", inv.endpoints().join(",")))
        .arg(format!("--cacert={}", pki.ca_cert().display()))
        .arg(format!(
            "--cert={}",
            pki.client_cert(Client::Admin).display()
        ))
        .arg(format!("--key={}", pki.client_key(Client::Admin).display()))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=5s")
        .args(args);
    cairn_testkit::run_command(c, Duration::from_secs(20)).expect("etcdctl")
}

/// One sample: the members that answered, and those of them that knew a leader.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) up: BTreeSet<String>,
    pub(crate) led: BTreeSet<String>,
}

/// Samples every member's status until stopped.
pub(crate) struct QuorumWatch {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl QuorumWatch {
    pub(crate) fn start(inv: &Inventory) -> Self {
        let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
        let probe = EtcdProbe::new(inv, Some(&pki), Duration::from_millis(500)).expect("probe");
        let names: Vec<String> = inv.hosts.iter().map(|h| h.name.clone()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (stop, samples) = (stop.clone(), samples.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let answers = futures::future::join_all(names.iter().map(|n| {
                        let probe = &probe;
                        async move { (n.clone(), probe.status(n).await) }
                    }))
                    .await;
                    let mut sample = Sample {
                        up: BTreeSet::new(),
                        led: BTreeSet::new(),
                    };
                    for (name, status) in answers {
                        if let Ok(s) = status {
                            if s.has_leader() {
                                sample.led.insert(name.clone());
                            }
                            sample.up.insert(name);
                        }
                    }
                    samples.lock().expect("samples").push(sample);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Self {
            stop,
            samples,
            task,
        }
    }

    pub(crate) async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("watch task");
        Arc::try_unwrap(self.samples)
            .expect("one owner")
            .into_inner()
            .expect("samples")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_cluster_is_provisioned_rerun_planned_and_rolled() {
    let hosts = Hosts::start(3).expect("hosts");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let path = hosts
        .write_inventory("cairn", &binary, "")
        .expect("inventory");
    let inv = Inventory::load(&path).expect("inventory");

    // A fresh cluster: every file, every member started together.
    let t0 = Instant::now();
    let first = provision(&path, &options(true, false))
        .await
        .expect("first run");
    let fresh = t0.elapsed();
    assert_eq!(first.hosts.len(), 3);
    for plan in &first.hosts {
        assert_eq!(plan.service, ServiceAction::Start, "{plan}");
        assert_eq!(plan.files.len(), 6, "{plan}");
    }
    let cluster = first.cluster.as_ref().expect("cluster table");
    assert_eq!(cluster.answering(), 3, "{cluster}");
    assert!(cluster.leader().is_some(), "{cluster}");
    for h in &hosts.hosts {
        let key = h.path("/etc/cairn/pki/member-key.pem");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key)
                .expect("key on the host")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        assert_eq!(h.pids_of("cairn-server").len(), 1, "{}", h.name);
    }
    // etcdctl over TLS with the generated admin certificate.
    let put = etcdctl(&inv, &["put", "/provisioned", "yes"]);
    assert!(put.success(), "{}", put.stderr);
    let list = etcdctl(&inv, &["member", "list"]);
    let names: BTreeSet<&str> = list
        .stdout
        .lines()
        .filter_map(|l| l.split(", ").nth(2))
        .collect();
    assert_eq!(names, BTreeSet::from(["m1", "m2", "m3"]), "{}", list.stdout);

    // A second run: nothing to write, nothing restarted.
    let pids: Vec<Vec<u32>> = hosts
        .hosts
        .iter()
        .map(|h| h.pids_of("cairn-server"))
        .collect();
    let before = hosts.snapshot();
    let pki_dir = hosts.dir.path().join("pki");
    let pki_before = crate::dir_snapshot(&pki_dir);
    let t1 = Instant::now();
    let second = provision(&path, &options(false, false))
        .await
        .expect("second run");
    let rerun = t1.elapsed();
    assert!(!second.changed(), "{:#?}", second.hosts);
    assert!(second.services.is_empty());
    assert_eq!(hosts.snapshot(), before);
    assert_eq!(crate::dir_snapshot(&pki_dir), pki_before);
    let pids_after: Vec<Vec<u32>> = hosts
        .hosts
        .iter()
        .map(|h| h.pids_of("cairn-server"))
        .collect();
    assert_eq!(pids_after, pids);

    // --plan after a flag change: shown, not done.
    edit_inventory(
        &path,
        "heartbeat_interval_ms = 50\n",
        "heartbeat_interval_ms = 60\n",
    );
    let planned = provision(&path, &options(false, true)).await.expect("plan");
    assert!(planned.plan_only);
    for plan in &planned.hosts {
        assert_eq!(plan.service, ServiceAction::Restart, "{plan}");
        let diff = plan.files[0].diff.as_deref().expect("env diff");
        assert!(diff.contains("+ETCD_HEARTBEAT_INTERVAL=60"), "{diff}");
    }
    assert_eq!(hosts.snapshot(), before, "--plan wrote on a host");
    assert_eq!(
        crate::dir_snapshot(&pki_dir),
        pki_before,
        "--plan wrote certificates"
    );
    let pids_planned: Vec<Vec<u32>> = hosts
        .hosts
        .iter()
        .map(|h| h.pids_of("cairn-server"))
        .collect();
    assert_eq!(pids_planned, pids, "--plan restarted a member");

    // The change applied: one member at a time, the leader last, a quorum throughout.
    let probe = EtcdProbe::new(
        &inv,
        Some(&Pki::existing(inv.tls.as_ref().expect("tls"))),
        Duration::from_secs(2),
    )
    .expect("probe");
    let mut leader = None;
    for h in &inv.hosts {
        if probe.status(&h.name).await.is_ok_and(|s| s.is_leader()) {
            leader = Some(h.name.clone());
        }
    }
    let leader = leader.expect("a leader before the roll");
    let watch = QuorumWatch::start(&inv);
    let rolled = provision(&path, &options(false, false))
        .await
        .expect("roll");
    let samples = watch.finish().await;
    let order: Vec<&str> = rolled.services.iter().map(|e| e.host.as_str()).collect();
    assert_eq!(order.len(), 3, "{:?}", rolled.services);
    assert!(rolled
        .services
        .iter()
        .all(|e| e.action == ServiceAction::Restart));
    assert_eq!(
        order.last().copied(),
        Some(leader.as_str()),
        "leader last: {order:?}"
    );
    assert!(samples.len() > 10, "only {} samples", samples.len());
    let fewest_up = samples.iter().map(|s| s.up.len()).min().unwrap_or(0);
    assert!(fewest_up >= 2, "quorum lost during the roll: {samples:?}");
    assert!(
        samples.iter().any(|s| s.up.len() == 2),
        "no member was ever seen down: {samples:?}"
    );
    // Leadership is handed over before the leader restarts: at most a sample or two may
    // catch the moment the third member learns of the new term.
    let leaderless = samples.iter().filter(|s| s.led.len() < 2).count();
    assert!(
        leaderless <= 2,
        "{leaderless} samples without a led quorum: {samples:?}"
    );
    for (h, old) in hosts.hosts.iter().zip(&pids) {
        let new = h.pids_of("cairn-server");
        assert_eq!(new.len(), 1, "{}", h.name);
        assert_ne!(&new, old, "{} was not restarted", h.name);
        let env = std::fs::read_to_string(h.path("/etc/cairn/cairn.env")).expect("env");
        assert!(env.contains("ETCD_HEARTBEAT_INTERVAL=60\n"), "{env}");
    }
    let get = etcdctl(&inv, &["get", "/provisioned", "--print-value-only"]);
    assert_eq!(get.stdout, "yes\n", "{}", get.stderr);
    eprintln!(
        "TIMING: fresh 3-member provision {:.2} s, no-change re-run {:.2} s, rolling restart of 3 {:.2} s; {} samples, {leaderless} with fewer than 2 members knowing a leader",
        fresh.as_secs_f64(),
        rerun.as_secs_f64(),
        rolled.elapsed_ms as f64 / 1000.0,
        samples.len(),
    );
}

/// The known_hosts line of `host`, replaced by `with` (None: removed).
fn replace_known_host(hosts: &Hosts, host: &TestHost, with: Option<&str>) {
    let name = format!("[{}]:{} ", host.address, host.ssh_port);
    let text = std::fs::read_to_string(&hosts.known_hosts).expect("known_hosts");
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .filter_map(|l| {
            if l.starts_with(&name) {
                found = true;
                with.map(|key| format!("{name}{key}"))
            } else {
                Some(l.to_string())
            }
        })
        .collect();
    assert!(found, "{name} not in known_hosts:\n{text}");
    std::fs::write(&hosts.known_hosts, lines.join("\n") + "\n").expect("known_hosts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_unknown_and_unreachable_hosts_are_refused_by_name_before_any_change() {
    let hosts = Hosts::start(3).expect("hosts");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let path = hosts
        .write_inventory("cairn", &binary, "")
        .expect("inventory");
    let untouched = hosts.snapshot();

    // First contact records the three keys.
    let planned = provision(&path, &options(true, true)).await.expect("plan");
    assert_eq!(planned.hosts.len(), 3);
    let known = std::fs::read_to_string(&hosts.known_hosts).expect("known_hosts");
    assert_eq!(known.lines().count(), 3, "{known}");

    // m2 presents another key than recorded: refused, even with --accept-new-host-keys.
    let other = hosts.dir.path().join("other_host_key");
    let mut keygen = Command::new("ssh-keygen");
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other);
    assert!(cairn_testkit::run_command(keygen, Duration::from_secs(30))
        .expect("keygen")
        .success());
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let other_key: String = other_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let m2 = &hosts.hosts[1];
    replace_known_host(&hosts, m2, Some(&other_key));
    let err = provision(&path, &options(true, false))
        .await
        .expect_err("mismatch");
    let Error::HostsFailed { failed, first, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(failed, &["m2"], "{err}");
    assert!(
        matches!(**first, Error::HostKeyMismatch { ref host, .. } if host == "m2"),
        "{err}"
    );
    let text = cairn_client::chain(&err);
    assert!(
        text.starts_with(&format!(
            "1 of 3 hosts failed (m2; nothing was changed on any host; fix it or leave the host out with --limit): m2: the host key of [127.0.0.12]:{} does not match {}:",
            m2.ssh_port,
            hosts.known_hosts.display()
        )),
        "{text}"
    );
    assert_eq!(hosts.snapshot(), untouched, "a host was changed");

    // m2 not listed at all: refused unless new keys are accepted.
    replace_known_host(&hosts, m2, None);
    let err = provision(&path, &options(false, true))
        .await
        .expect_err("unknown");
    let text = cairn_client::chain(&err);
    assert!(
        text.contains(&format!(
            "m2: [127.0.0.12]:{} is not in {}; check its key fingerprint (SHA256:",
            m2.ssh_port,
            hosts.known_hosts.display()
        )),
        "{text}"
    );
    provision(&path, &options(true, true))
        .await
        .expect("m2 learned again");

    // m3 does not answer: named, and nothing changes anywhere.
    let m3 = &hosts.hosts[2];
    let closed = cairn_testkit::free_port(m3.address).expect("free port");
    edit_inventory(
        &path,
        &format!("address = \"{}\"\nssh_port = {}\n", m3.address, m3.ssh_port),
        &format!("address = \"{}\"\nssh_port = {closed}\n", m3.address),
    );
    let err = provision(&path, &options(true, false))
        .await
        .expect_err("unreachable");
    let text = cairn_client::chain(&err);
    assert!(
        text.starts_with(&format!(
            "1 of 3 hosts failed (m3; nothing was changed on any host; fix it or leave the host out with --limit): m3: cannot connect to 127.0.0.13:{closed}; check the address, [ssh] port and that sshd runs: "
        )),
        "{text}"
    );
    assert!(
        text.contains("; check the address, [ssh] port and that sshd runs: "),
        "{text}"
    );
    assert_eq!(hosts.snapshot(), untouched, "a host was changed");
    assert!(
        !hosts.dir.path().join("pki").exists(),
        "certificates written by failed runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debians_etcd_is_provisioned_from_the_same_kind_of_inventory() {
    let hosts = Hosts::start(3).expect("hosts");
    let path = hosts
        .write_inventory("etcd", Path::new("/usr/bin/etcd"), "")
        .expect("inventory");
    let inv = Inventory::load(&path).expect("inventory");
    let first = provision(&path, &options(true, false))
        .await
        .expect("first run");
    let cluster = first.cluster.as_ref().expect("cluster table");
    assert_eq!(cluster.answering(), 3, "{cluster}");
    assert!(cluster.leader().is_some(), "{cluster}");
    for row in &cluster.members {
        let version = &row.status.as_ref().expect("status").version;
        assert!(version.starts_with("3.4."), "{version}");
    }
    for h in &hosts.hosts {
        assert_eq!(h.pids_of("etcd").len(), 1, "{}", h.name);
        assert_eq!(
            std::fs::read(h.path("/usr/local/bin/etcd")).expect("pushed binary"),
            std::fs::read("/usr/bin/etcd").expect("etcd")
        );
    }
    let put = etcdctl(&inv, &["put", "/provisioned", "etcd"]);
    assert!(put.success(), "{}", put.stderr);
    let get = etcdctl(&inv, &["get", "/provisioned", "--print-value-only"]);
    assert_eq!(get.stdout, "etcd\n", "{}", get.stderr);

    // The same through the operator binary: a re-run changes nothing, --plan says so, and
    // status prints the table.
    let cairn = |args: &[&str]| {
        let mut c = Command::new(crate::cairn_cli_binary());
        c.args(args).arg("-i").arg(&path);
        cairn_testkit::run_command(c, Duration::from_secs(120)).expect("run cairn")
    };
    let out = cairn(&["provision", "--yes", "--output", "json"]);
    assert!(out.success(), "{}", out.stderr);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json report");
    assert_eq!(report["files_changed"], 0, "{report}");
    assert_eq!(report["services"], serde_json::json!([]), "{report}");
    assert_eq!(
        report["cluster"]["members"].as_array().map(Vec::len),
        Some(3)
    );
    let out = cairn(&["provision", "--plan"]);
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "m1: no changes\nm2: no changes\nm3: no changes\n"
    );
    let out = cairn(&["status"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let rows: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    let leaders = rows
        .iter()
        .filter(|r| r.split_whitespace().nth(2) == Some("true"))
        .count();
    assert_eq!(leaders, 1, "{}", out.stdout);

    // A flag change through --plan: the env file's diff and a rolling restart, per member.
    edit_inventory(
        &path,
        "election_timeout_ms = 500\n",
        "election_timeout_ms = 600\n",
    );
    let out = cairn(&["provision", "--plan"]);
    assert!(out.success(), "{}", out.stderr);
    for member in ["m1", "m2", "m3"] {
        let section = out
            .stdout
            .split(&format!("{member}:\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no plan for {member}: {}", out.stdout));
        assert!(
            section.starts_with(
                "  ~ /etc/cairn/cairn.env\n      --- /etc/cairn/cairn.env\n      +++ /etc/cairn/cairn.env\n"
            ),
            "{}",
            out.stdout
        );
        assert!(
            section
                .contains("\n      -ETCD_ELECTION_TIMEOUT=500\n      +ETCD_ELECTION_TIMEOUT=600\n"),
            "{}",
            out.stdout
        );
        assert!(
            section.contains("\n  restart cairn.service (one member at a time, the leader last)\n"),
            "{}",
            out.stdout
        );
    }
    // Without a terminal and without --yes nothing is applied.
    let out = cairn(&["provision"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.ends_with("cairn: changes are pending and there is no terminal to confirm them: run with --yes to apply, or --plan to only show them\n"), "{}", out.stderr);
    let env = std::fs::read_to_string(hosts.hosts[0].path("/etc/cairn/cairn.env")).expect("env");
    assert!(env.contains("ETCD_ELECTION_TIMEOUT=500\n"), "{env}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_root_login_provisions_through_sudo() {
    let hosts = Hosts::start_with_user(3, Some("cairnop")).expect("hosts");
    let path = hosts
        .write_inventory("etcd", Path::new("/usr/bin/etcd"), "")
        .expect("inventory");
    edit_inventory(&path, "[ssh]\n", "[ssh]\nuser = \"cairnop\"\n");
    let first = provision(&path, &options(true, false))
        .await
        .expect("first run");
    let cluster = first.cluster.as_ref().expect("cluster table");
    assert_eq!(cluster.answering(), 3, "{cluster}");
    for h in &hosts.hosts {
        let log = std::fs::read_to_string(h.root.join("sshd.log")).expect("sshd log");
        assert!(log.contains("Accepted publickey for cairnop "), "{log}");
        assert!(!log.contains("Accepted publickey for root "), "{log}");
        for (file, mode) in [
            ("/etc/cairn/pki/member-key.pem", 0o600),
            ("/etc/cairn/cairn.env", 0o644),
            ("/usr/local/bin/etcd", 0o755),
        ] {
            let meta = std::fs::metadata(h.path(file)).expect("file on the host");
            let (uid, gid) = (
                std::os::unix::fs::MetadataExt::uid(&meta),
                std::os::unix::fs::MetadataExt::gid(&meta),
            );
            let m = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
            assert_eq!((uid, gid, m), (0, 0, mode), "{}:{file}", h.name);
        }
        assert_eq!(h.pids_of("etcd").len(), 1, "{}", h.name);
    }
    let second = provision(&path, &options(false, false))
        .await
        .expect("second run");
    assert!(!second.changed(), "{:#?}", second.hosts);
}
