//! `cairn certs rotate` against a running 3-member TLS cluster on sshd test hosts, with a
//! client putting and reading keys throughout: a leaf rotation (and `certs status` before and
//! after, and drift), and a CA rotation interrupted in its second phase and resumed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_inventory::Inventory;
use cairn_pki::rotation::{self, Phase};
use cairn_pki::Pki;
use cairn_provisioner::cert_status::{CertStatus, Port, TlsServedCerts};
use cairn_provisioner::converge::{Progress, Quiet};
use cairn_provisioner::plan::ServiceAction;
use cairn_provisioner::rotate::{rotate_ca, rotate_leaves, Rotation};
use cairn_provisioner::SystemClock;
use cairn_testkit::hosts::Hosts;

use crate::live_client::{assert_all_present, LiveClient, Tally};
use crate::provision::{options, provision};

/// A provisioned 3-member cairn-server cluster.
async fn cluster() -> (Hosts, std::path::PathBuf, Inventory) {
    let hosts = Hosts::start(3).expect("hosts");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let path = hosts
        .write_inventory("cairn", &binary, "")
        .expect("inventory");
    let first = provision(&path, &options(true, false))
        .await
        .expect("provision");
    assert_eq!(first.cluster.as_ref().map(|c| c.answering()), Some(3));
    let inv = Inventory::load(&path).expect("inventory");
    (hosts, path, inv)
}

async fn status(inv: &Inventory) -> CertStatus {
    let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
    let served = TlsServedCerts::new(&pki, Duration::from_secs(5)).expect("reader");
    CertStatus::gather(inv, &served, &SystemClock)
        .await
        .expect("certs status")
}

/// (member, port) → serial of the certificate it serves.
fn served_serials(status: &CertStatus) -> BTreeMap<(String, Port), String> {
    status
        .served
        .iter()
        .map(|s| {
            let cert = s
                .cert
                .as_ref()
                .unwrap_or_else(|| panic!("{} {:?}: {:?}", s.member, s.port, s.error));
            ((s.member.clone(), s.port), cert.serial.clone())
        })
        .collect()
}

/// Waits (bounded) until the live client has `n` more successes than `from`.
async fn wait_for_ops(ok: &AtomicUsize, from: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while ok.load(Ordering::Relaxed) < from + n {
        assert!(
            Instant::now() < deadline,
            "the live client made {} of {n} operations in 120 s",
            ok.load(Ordering::Relaxed) - from
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_client_kept_working(tally: &Tally) {
    assert!(
        tally.failed.is_empty(),
        "{} operations failed on every endpoint: {:?}",
        tally.failed.len(),
        &tally.failed[..tally.failed.len().min(5)]
    );
    assert!(tally.ok >= 40, "only {} operations", tally.ok);
}

fn restarts(rotation: &Rotation) -> Vec<(Option<Phase>, usize)> {
    rotation
        .rollouts
        .iter()
        .map(|r| {
            let n = r.report.services.len();
            assert!(
                r.report
                    .services
                    .iter()
                    .all(|e| e.action == ServiceAction::Restart),
                "{:?}",
                r.report.services
            );
            (r.phase, n)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaf_rotation_rolls_new_certificates_while_a_client_keeps_working() {
    let (hosts, path, inv) = cluster().await;
    let tls_dir = inv.tls.as_ref().expect("tls").dir.clone();

    // Served == local before anything.
    let before = status(&inv).await;
    assert_eq!(before.problems(), 0, "{before}");
    let serials_before = served_serials(&before);
    assert_eq!(
        serials_before.len(),
        6,
        "client and peer port of each member"
    );

    // --plan: every member restarts with a new certificate, nothing is written.
    let on_hosts = hosts.snapshot();
    let local = crate::dir_snapshot(&tls_dir);
    let planned = rotate_leaves(&inv, &options(false, true), &SystemClock, &Quiet)
        .await
        .expect("plan");
    assert!(planned.plan_only);
    for plan in &planned.rollouts[0].report.hosts {
        assert_eq!(plan.service, ServiceAction::Restart, "{plan}");
        let paths: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/etc/cairn/pki/member.pem", "/etc/cairn/pki/member-key.pem"],
            "{plan}"
        );
    }
    assert_eq!(hosts.snapshot(), on_hosts, "--plan wrote on a host");
    assert_eq!(
        crate::dir_snapshot(&tls_dir),
        local,
        "--plan wrote certificates"
    );

    let client = LiveClient::start(&inv, "/leaf");
    wait_for_ops(client.ok(), 0, 20).await;
    let t0 = Instant::now();
    let rotation = rotate_leaves(&inv, &options(false, false), &SystemClock, &Quiet)
        .await
        .expect("rotation");
    let took = t0.elapsed();
    let after_rotation = client.ok().load(Ordering::Relaxed);
    wait_for_ops(client.ok(), after_rotation, 20).await;
    let tally = client.finish().await;
    assert_eq!(restarts(&rotation), [(None, 3)]);
    assert_client_kept_working(&tally);
    assert_all_present(&inv, &tally).await;

    // Every port serves a new certificate, the one in [tls] dir.
    let after = status(&inv).await;
    assert_eq!(after.problems(), 0, "{after}");
    for (port, serial) in served_serials(&after) {
        assert_ne!(
            serials_before[&port], serial,
            "{port:?} serves its old certificate"
        );
    }

    // Drift: the local copy of m1's certificate is not what m1 serves.
    std::fs::copy(tls_dir.join("m1.pem"), tls_dir.join("m1-rotated.pem")).expect("keep");
    let old_m1 = local
        .iter()
        .find(|(p, _)| p.ends_with("m1.pem"))
        .expect("old m1.pem");
    std::fs::write(tls_dir.join("m1.pem"), &old_m1.1).expect("old m1.pem back");
    let drifted = status(&inv).await;
    let flagged: Vec<(&str, Port)> = drifted
        .served
        .iter()
        .filter(|s| s.drift)
        .map(|s| (s.member.as_str(), s.port))
        .collect();
    assert_eq!(
        flagged,
        [("m1", Port::Client), ("m1", Port::Peer)],
        "{drifted}"
    );
    assert_eq!(drifted.problems(), 2, "{drifted}");
    // The same through the operator binary: exit 1, DRIFT in the table and the JSON.
    let cairn = |args: &[&str]| {
        let mut c = std::process::Command::new(crate::cairn_cli_binary());
        c.args(args).arg("-i").arg(&path);
        cairn_testkit::run_command(c, Duration::from_secs(60)).expect("run cairn")
    };
    let out = cairn(&["certs", "status"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let m1_rows: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("m1 "))
        .collect();
    assert_eq!(m1_rows.len(), 3, "{}", out.stdout);
    assert!(
        m1_rows[1..].iter().all(|l| l.contains(" DRIFT")),
        "{}",
        out.stdout
    );
    std::fs::rename(tls_dir.join("m1-rotated.pem"), tls_dir.join("m1.pem")).expect("restore");
    let out = cairn(&["certs", "status", "--output", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["served"].as_array().map(Vec::len), Some(6), "{json}");
    assert!(
        json["served"]
            .as_array()
            .expect("served")
            .iter()
            .all(|s| s["drift"] == false),
        "{json}"
    );
    eprintln!(
        "TIMING: leaf rotation of 3 members {:.1} s; live client {} ops ok, {} attempts retried on another endpoint, {} failed, {} TLS reloads",
        took.as_secs_f64(),
        tally.ok,
        tally.retried,
        tally.failed.len(),
        tally.reloads
    );
}

/// Progress that fires `notify` when the `at`-th member is waiting for health after a
/// restart, so a test interrupts a rotation mid-phase.
struct InterruptAt {
    waits: AtomicUsize,
    at: usize,
    notify: tokio::sync::Notify,
}

impl Progress for InterruptAt {
    fn step(&self, _: &str, step: &str) {
        if step == "waiting for health" && self.waits.fetch_add(1, Ordering::SeqCst) + 1 == self.at
        {
            self.notify.notify_one();
        }
    }

    fn done(&self, _: &str, _: bool, _: &str) {}
}

fn subjects(pem_path: &Path) -> Vec<String> {
    let pem = std::fs::read(pem_path).expect("pem");
    x509_parser::pem::Pem::iter_from_buffer(&pem)
        .map(|p| {
            let p = p.expect("pem block");
            let cert = p.parse_x509().expect("x509");
            cert.subject().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ca_rotation_interrupted_in_its_second_phase_resumes_and_drops_the_old_ca() {
    let (hosts, _path, inv) = cluster().await;
    let tls_dir = inv.tls.as_ref().expect("tls").dir.clone();
    let old_ca = subjects(&tls_dir.join("ca.pem"));
    assert_eq!(old_ca, ["CN=cairn CA"]);

    // --plan: the first phase's files on every member, the other phases listed, nothing
    // written.
    let on_hosts = hosts.snapshot();
    let local = crate::dir_snapshot(&tls_dir);
    let planned = rotate_ca(&inv, &options(false, true), &SystemClock, &Quiet)
        .await
        .expect("plan");
    assert_eq!(planned.rollouts.len(), 1);
    assert_eq!(planned.rollouts[0].phase, Some(Phase::TrustBoth));
    assert_eq!(planned.pending, [Phase::NewLeaves, Phase::DropOld]);
    for plan in &planned.rollouts[0].report.hosts {
        let paths: Vec<&str> = plan.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/etc/cairn/pki/ca.pem"], "{plan}");
        assert_eq!(plan.service, ServiceAction::Restart, "{plan}");
    }
    assert_eq!(hosts.snapshot(), on_hosts, "--plan wrote on a host");
    assert_eq!(
        crate::dir_snapshot(&tls_dir),
        local,
        "--plan wrote certificates"
    );

    let client = LiveClient::start(&inv, "/ca");
    wait_for_ops(client.ok(), 0, 20).await;
    let t0 = Instant::now();
    // Interrupted once the first member of phase 2 is back (3 restarts in phase 1).
    let progress = Arc::new(InterruptAt {
        waits: AtomicUsize::new(0),
        at: 4,
        notify: tokio::sync::Notify::new(),
    });
    // Dropping the run's future stops it where it is, like an operator's Ctrl-C.
    let opts = options(false, false);
    let stopped = tokio::time::timeout(Duration::from_secs(600), async {
        tokio::select! {
            result = rotate_ca(&inv, &opts, &SystemClock, &*progress) => {
                panic!("the rotation ended before phase 2: {result:?}")
            }
            () = progress.notify.notified() => {}
        }
    })
    .await;
    assert!(stopped.is_ok(), "phase 2 not reached in 600 s");
    let interrupted = t0.elapsed();
    assert_eq!(
        rotation::current(&tls_dir).expect("marker"),
        Some(Phase::NewLeaves)
    );
    assert_eq!(subjects(&tls_dir.join("ca.pem")).len(), 2, "both trusted");

    let t1 = Instant::now();
    let resumed = rotate_ca(&inv, &options(false, false), &SystemClock, &Quiet)
        .await
        .expect("resumed rotation");
    let took = t1.elapsed();
    assert_eq!(resumed.resumed, Some(Phase::NewLeaves));
    let phases: Vec<Option<Phase>> = restarts(&resumed).into_iter().map(|(p, _)| p).collect();
    assert_eq!(phases, [Some(Phase::NewLeaves), Some(Phase::DropOld)]);
    let after_rotation = client.ok().load(Ordering::Relaxed);
    wait_for_ops(client.ok(), after_rotation, 20).await;
    let tally = client.finish().await;
    assert_client_kept_working(&tally);
    assert!(tally.reloads >= 3, "the client never followed the files");
    assert_all_present(&inv, &tally).await;

    // Only the new CA, locally and on every member; every served certificate is its.
    let new_ca = subjects(&tls_dir.join("ca.pem"));
    assert_eq!(new_ca.len(), 1);
    assert_ne!(new_ca, old_ca);
    assert_eq!(rotation::current(&tls_dir).expect("no marker"), None);
    for gone in ["ca-next.pem", "ca-next-key.pem", "ca-prev.pem"] {
        assert!(!tls_dir.join(gone).exists(), "{gone} left behind");
    }
    for h in &hosts.hosts {
        assert_eq!(
            subjects(&h.path("/etc/cairn/pki/ca.pem")),
            new_ca,
            "{}",
            h.name
        );
    }
    let status = status(&inv).await;
    assert_eq!(status.problems(), 0, "{status}");
    for s in &status.served {
        assert_eq!(
            s.cert.as_ref().map(|c| c.issuer.as_str()),
            Some(new_ca[0].as_str()),
            "{status}"
        );
    }
    eprintln!(
        "TIMING: CA rotation interrupted after {:.1} s, resumed phases 2-3 in {:.1} s; live client {} ops ok, {} attempts retried on another endpoint, {} failed, {} TLS reloads",
        interrupted.as_secs_f64(),
        took.as_secs_f64(),
        tally.ok,
        tally.retried,
        tally.failed.len(),
        tally.reloads
    );
}
