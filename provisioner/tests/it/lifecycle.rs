//! The cluster's lifecycle from the inventory against real sshd hosts: 3 → 5 → 3 members
//! under a steady write load with nothing acknowledged lost, a join interrupted after
//! MemberAdd and one whose data was wiped, both resumed by the next run.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_inventory::Inventory;
use cairn_pki::Client;
use cairn_pki::Pki;
use cairn_provisioner::plan::ServiceAction;
use cairn_provisioner::scale::Join;
use cairn_provisioner::Error;
use cairn_testkit::hosts::Hosts;
use etcd_client::{Certificate, ConnectOptions, GetOptions, Identity, TlsOptions};

use crate::provision::{options, provision, QuorumWatch};

/// Most writes the load sends, and for how long at most.
const MAX_WRITES: usize = 20_000;
const MAX_LOAD: Duration = Duration::from_secs(600);

/// A client of the members at `endpoints` with the admin certificate.
pub(crate) async fn client(inv: &Inventory, endpoints: &[String]) -> etcd_client::Client {
    let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
    let read = |p: std::path::PathBuf| std::fs::read(&p).expect("pki file");
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read(pki.ca_cert())))
        .identity(Identity::from_pem(
            read(pki.client_cert(Client::Admin)),
            read(pki.client_key(Client::Admin)),
        ));
    let options = ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(Duration::from_secs(3))
        .with_timeout(Duration::from_secs(5));
    etcd_client::Client::connect(endpoints, Some(options))
        .await
        .expect("connect")
}

/// The client URL of the inventory member `name`.
fn endpoint(inv: &Inventory, name: &str) -> String {
    let h = inv.hosts.iter().find(|h| h.name == name).expect("member");
    inv.client_url(h)
}

/// Puts `/load/<n>` one after another through the members given until stopped (or
/// [`MAX_WRITES`], or [`MAX_LOAD`]), recording every acknowledged key.
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(Vec<String>, usize)>,
}

impl Writer {
    async fn start(inv: &Inventory, members: &[&str]) -> Self {
        let endpoints: Vec<String> = members.iter().map(|m| endpoint(inv, m)).collect();
        let mut kv = client(inv, &endpoints).await;
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let started = Instant::now();
                let (mut acked, mut failed) = (Vec::new(), 0);
                for i in 0..MAX_WRITES {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_LOAD {
                        break;
                    }
                    let key = format!("/load/{i:06}");
                    match kv.put(key.as_str(), i.to_string(), None).await {
                        Ok(_) => acked.push(key),
                        Err(_) => failed += 1,
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (acked, failed)
            }
        });
        Self { stop, task }
    }

    /// Waits until at least `n` writes were sent (the load is really running).
    async fn finish(self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer")
    }
}

/// Every member in `members` has every key of `acked`, and they all hash their key spaces
/// alike at the same revision.
async fn assert_nothing_lost(inv: &Inventory, members: &[&str], acked: &[String]) {
    let mut hashes = Vec::new();
    let mut revision = 0;
    for m in members {
        let mut c = client(inv, &[endpoint(inv, m)]).await;
        // A linearizable read: the member has applied everything committed before it.
        let got = c
            .get(
                "/load/",
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )
            .await
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        let keys: BTreeSet<String> = got
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .collect();
        let missing: Vec<&String> = acked.iter().filter(|k| !keys.contains(*k)).collect();
        assert!(
            missing.is_empty(),
            "{m} lost {} acknowledged writes: {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let rev = got.header().expect("header").revision();
        if revision == 0 {
            revision = rev;
        }
        assert!(rev >= revision, "{m} at {rev} before {revision}");
    }
    for m in members {
        let mut c = client(inv, &[endpoint(inv, m)]).await;
        let h = c
            .hash_kv(revision)
            .await
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        hashes.push((m.to_string(), h.hash()));
    }
    assert!(
        hashes.iter().all(|(_, h)| *h == hashes[0].1),
        "HashKV at revision {revision} differs: {hashes:?}"
    );
}

/// The inventory at `full` with only its first `n` hosts.
fn first_hosts(full: &str, n: usize) -> String {
    let mut parts = full.split("\n[[hosts]]\n");
    let mut text = parts.next().expect("head").to_string();
    for part in parts.take(n) {
        text.push_str("\n[[hosts]]\n");
        text.push_str(part);
    }
    text
}

fn member_names(list: &etcd_client::MemberListResponse) -> BTreeSet<String> {
    list.members()
        .iter()
        .map(|m| m.name().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_grows_from_three_to_five_and_back_under_writes_losing_nothing() {
    let hosts = Hosts::start(5).expect("hosts");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let path = hosts
        .write_inventory("cairn", &binary, "")
        .expect("inventory");
    let full = std::fs::read_to_string(&path).expect("inventory");
    std::fs::write(&path, first_hosts(&full, 3)).expect("3 hosts");
    let inv3 = Inventory::load(&path).expect("inventory");
    let t0 = Instant::now();
    provision(&path, &options(true, false))
        .await
        .expect("3 members");
    let writer = Writer::start(&inv3, &["m1", "m2", "m3"]).await;
    let pids: Vec<Vec<u32>> = hosts.hosts[..3]
        .iter()
        .map(|h| h.pids_of("cairn-server"))
        .collect();
    let env_before = std::fs::read(hosts.hosts[0].path("/etc/cairn/cairn.env")).expect("env");

    // 3 → 5: --plan shows the joins, the run adds m4 then m5.
    std::fs::write(&path, &full).expect("5 hosts");
    let inv5 = Inventory::load(&path).expect("inventory");
    let planned = provision(&path, &options(true, true)).await.expect("plan");
    assert!(
        planned.hosts[..3].iter().all(|p| p.is_empty()),
        "{:?}",
        planned.hosts
    );
    for p in &planned.hosts[3..] {
        assert_eq!(p.membership, Some(Join::Add), "{p}");
    }
    let t_grow = Instant::now();
    let grown = provision(&path, &options(true, false))
        .await
        .expect("5 members");
    let grow = t_grow.elapsed();
    let joined: Vec<(&str, ServiceAction)> = grown
        .services
        .iter()
        .map(|e| (e.host.as_str(), e.action))
        .collect();
    assert_eq!(
        joined,
        [("m4", ServiceAction::Start), ("m5", ServiceAction::Start)]
    );
    let cluster = grown.cluster.as_ref().expect("table");
    assert_eq!(cluster.answering(), 5, "{cluster}");
    let mut c = client(&inv5, &inv5.endpoints()).await;
    let list = c.member_list().await.expect("member list");
    assert_eq!(
        member_names(&list),
        ["m1", "m2", "m3", "m4", "m5"].map(String::from).into()
    );
    // The members that ran were neither rewritten nor restarted.
    for (h, old) in hosts.hosts[..3].iter().zip(&pids) {
        assert_eq!(&h.pids_of("cairn-server"), old, "{} restarted", h.name);
    }
    assert_eq!(
        std::fs::read(hosts.hosts[0].path("/etc/cairn/cairn.env")).expect("env"),
        env_before
    );
    let m5_env = std::fs::read_to_string(hosts.hosts[4].path("/etc/cairn/cairn.env")).expect("env");
    assert!(
        m5_env.contains("ETCD_INITIAL_CLUSTER_STATE=existing\n"),
        "{m5_env}"
    );
    assert!(m5_env.contains(",m5=https://127.0.0.15:"), "{m5_env}");
    let again = provision(&path, &options(false, false))
        .await
        .expect("rerun");
    assert!(!again.changed(), "{:#?}", again.hosts);

    // 5 → 3: shown by --plan, refused without --allow-remove, then done.
    std::fs::write(&path, first_hosts(&full, 3)).expect("3 hosts");
    let planned = provision(&path, &options(false, true)).await.expect("plan");
    let removed: Vec<&str> = planned.removals.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(removed, ["m4", "m5"]);
    let cairn = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::cairn_cli_binary());
        cmd.args(args).arg("-i").arg(&path);
        cairn_testkit::run_command(cmd, Duration::from_secs(120)).expect("run cairn")
    };
    let out = cairn(&["provision", "--plan"]);
    assert!(out.success(), "{}", out.stderr);
    assert!(
        out.stdout
            .contains("m4 (127.0.0.14): not in the inventory\n  member remove "),
        "{}",
        out.stdout
    );
    let out = cairn(&["provision", "--yes"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.ends_with("cairn: the inventory no longer lists m4, m5, member(s) of the running cluster: pass --allow-remove to remove them (nothing was changed)\n"),
        "{}",
        out.stderr
    );
    let err = provision(&path, &options(false, false))
        .await
        .expect_err("no --allow-remove");
    assert!(matches!(err, Error::RemovalNotAllowed { .. }), "{err}");
    let t_shrink = Instant::now();
    let mut remove = options(false, false);
    remove.allow_remove = true;
    let shrunk = provision(&path, &remove).await.expect("3 members");
    let shrink = t_shrink.elapsed();
    assert_eq!(
        shrunk
            .services
            .iter()
            .filter(|e| e.action == ServiceAction::Remove)
            .count(),
        2
    );
    let mut c = client(&inv3, &inv3.endpoints()).await;
    let list = c.member_list().await.expect("member list");
    assert_eq!(
        member_names(&list),
        ["m1", "m2", "m3"].map(String::from).into()
    );
    for h in &hosts.hosts[3..] {
        assert!(
            h.pids_of("cairn-server").is_empty(),
            "{} still runs",
            h.name
        );
        let data = std::fs::read_dir(h.root.join("var-lib-cairn"))
            .expect("data dir")
            .count();
        assert!(data > 0, "{}: data deleted without --purge", h.name);
    }
    let (acked, failed) = writer.finish().await;
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    assert_nothing_lost(&inv3, &["m1", "m2", "m3"], &acked).await;
    eprintln!(
        "TIMING: 3 → 5 → 3 in {:.1} s (grow {:.1} s, shrink {:.1} s); {} writes acknowledged and found on every member, {failed} failed",
        t0.elapsed().as_secs_f64(),
        grow.as_secs_f64(),
        shrink.as_secs_f64(),
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interrupted_joins_are_resumed_by_the_next_run() {
    let hosts = Hosts::start(4).expect("hosts");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let path = hosts
        .write_inventory("cairn", &binary, "")
        .expect("inventory");
    let full = std::fs::read_to_string(&path).expect("inventory");
    std::fs::write(&path, first_hosts(&full, 3)).expect("3 hosts");
    provision(&path, &options(true, false))
        .await
        .expect("3 members");
    std::fs::write(&path, &full).expect("4 hosts");
    let inv = Inventory::load(&path).expect("inventory");
    let m4 = &hosts.hosts[3];

    // A run that stopped right after MemberAdd: m4 is listed, unnamed, never started.
    let mut c = client(&inv, &inv.endpoints()[..3]).await;
    let peer = inv.peer_url(&inv.hosts[3]);
    let added = c
        .member_add([peer.as_str()], None)
        .await
        .expect("member add");
    let id = added.member().expect("member").id();
    let planned = provision(&path, &options(true, true)).await.expect("plan");
    assert_eq!(planned.hosts[3].membership, Some(Join::Resume { id }));
    let resumed = provision(&path, &options(true, false))
        .await
        .expect("resumed");
    assert_eq!(resumed.services.len(), 1, "{:?}", resumed.services);
    // A fresh client each time: a connection left idle through a run was seen closed.
    let mut c = client(&inv, &inv.endpoints()[..3]).await;
    let list = c.member_list().await.expect("list");
    assert_eq!(list.members().len(), 4);
    assert!(list
        .members()
        .iter()
        .any(|m| m.id() == id && m.name() == "m4"));

    // m4 killed and its data wiped: removed and added again under a new ID.
    let watch = QuorumWatch::start(&inv);
    m4.kill("cairn-server", Duration::from_secs(30))
        .expect("m4 killed");
    for entry in std::fs::read_dir(m4.root.join("var-lib-cairn")).expect("data dir") {
        std::fs::remove_dir_all(entry.expect("entry").path()).expect("wipe");
    }
    let planned = provision(&path, &options(false, true)).await.expect("plan");
    assert_eq!(
        planned.hosts[3].membership,
        Some(Join::Readd { old_id: id })
    );
    provision(&path, &options(false, false))
        .await
        .expect("re-added");
    let samples = watch.finish().await;
    assert!(
        samples.iter().all(|s| s.led.len() >= 3),
        "quorum of the 3 lost: {samples:?}"
    );
    let mut c = client(&inv, &inv.endpoints()[..3]).await;
    let list = c.member_list().await.expect("list");
    let names: Vec<(u64, String)> = list
        .members()
        .iter()
        .map(|m| (m.id(), m.name().to_string()))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names.iter().any(|(i, n)| n == "m4" && *i != id),
        "{names:?}"
    );
    assert_eq!(m4.pids_of("cairn-server").len(), 1);
    let again = provision(&path, &options(false, false))
        .await
        .expect("rerun");
    assert!(!again.changed(), "{:#?}", again.hosts);
}
