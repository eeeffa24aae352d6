//! Rolling upgrades against real sshd hosts: a failing pre-change hook stops the run before
//! anything changes; a broken binary stops at the first member and leaves the others on the
//! old one with a quorum; a working one then rolls every member, the member left down first
//! and the leader last.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_inventory::Inventory;
use cairn_pki::Pki;
use cairn_provisioner::converge::Quiet;
use cairn_provisioner::plan::{sha256_hex, ServiceAction};
use cairn_provisioner::probe::{EtcdProbe, Probe};
use cairn_provisioner::upgrade::{BeforeFirstChange, HookError};
use cairn_provisioner::{Error, Session, SystemClock};
use cairn_testkit::hosts::Hosts;

use crate::provision::{edit_inventory, options, provision, QuorumWatch};

const PUSHED: &str = "/usr/local/bin/cairn-server";

/// A pre-change hook that counts its calls and fails, as a backup with no space would.
struct FailingBackup(AtomicUsize);

impl BeforeFirstChange for FailingBackup {
    async fn before_first_change(&self) -> Result<(), HookError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Err("no space for the backup".into())
    }
}

fn inv_now(path: &Path) -> Inventory {
    Inventory::load(path).expect("inventory")
}

/// The SHA-256 of a file.
fn sha(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

async fn leader(inv: &Inventory) -> Option<String> {
    let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
    let probe = EtcdProbe::new(inv, Some(&pki), Duration::from_secs(2)).expect("probe");
    for h in &inv.hosts {
        if probe.status(&h.name).await.is_ok_and(|s| s.is_leader()) {
            return Some(h.name.clone());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_upgrade_stops_at_the_first_member_and_a_good_one_rolls_the_leader_last() {
    let hosts = Hosts::start(3).expect("hosts");
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let path = hosts
        .write_inventory("cairn", &binary, "")
        .expect("inventory");
    let inv = Inventory::load(&path).expect("inventory");
    provision(&path, &options(true, false))
        .await
        .expect("3 members");
    let old_sha = sha(&binary);
    let pids: Vec<Vec<u32>> = hosts
        .hosts
        .iter()
        .map(|h| h.pids_of("cairn-server"))
        .collect();

    // A "binary" that exits 1: the first member does not come back, the roll stops there.
    let broken = hosts.dir.path().join("broken-server");
    std::fs::write(&broken, "#!/bin/sh\necho broken >&2\nexit 1\n").expect("script");
    std::fs::set_permissions(&broken, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    edit_inventory(
        &path,
        &format!("binary = \"{}\"", binary.display()),
        &format!("binary = \"{}\"", broken.display()),
    );
    // The pre-change hook (the backup) runs first; its failure stops the run untouched.
    let before = hosts.snapshot();
    let session = Session::plan(
        &inv_now(&path),
        &options(false, false),
        &SystemClock,
        &Quiet,
    )
    .await
    .expect("plan");
    let hook = FailingBackup(AtomicUsize::new(0));
    let err = session
        .apply(&hook, &Quiet)
        .await
        .expect_err("the hook fails");
    assert!(matches!(err, Error::BeforeFirstChange { .. }), "{err}");
    let line = cairn_client::chain(&err);
    assert!(line.contains("no space for the backup"), "{line}");
    assert_eq!(hook.0.load(Ordering::Relaxed), 1);
    assert_eq!(hosts.snapshot(), before, "a host changed before the hook");
    let mut quick = options(false, false);
    quick.limits.health_timeout = Duration::from_secs(20);
    let watch = QuorumWatch::start(&inv);
    let err = provision(&path, &quick).await.expect_err("broken binary");
    let samples = watch.finish().await;
    let Error::RollStopped {
        member, remaining, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(remaining.len(), 2, "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("the roll stopped at {member}; ")),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "; {} still run the old binary and files",
            remaining.join(", ")
        )),
        "{text}"
    );
    let fewest_led = samples.iter().map(|s| s.led.len()).min().unwrap_or(0);
    assert!(fewest_led >= 2, "quorum lost: {samples:?}");
    for (h, old) in hosts.hosts.iter().zip(&pids) {
        if &h.name == member {
            assert_eq!(sha(&h.path(PUSHED)), sha(&broken), "{}", h.name);
            continue;
        }
        assert_eq!(
            sha(&h.path(PUSHED)),
            old_sha,
            "{} got the new binary",
            h.name
        );
        assert_eq!(&h.pids_of("cairn-server"), old, "{} restarted", h.name);
    }
    let failed = member.clone();

    // A working build (the same binary with a byte appended): the member left down first,
    // then the others, the leader last, a quorum throughout.
    let next = hosts.dir.path().join("cairn-server-next");
    let mut bytes = std::fs::read(&binary).expect("binary");
    bytes.push(0);
    std::fs::write(&next, &bytes).expect("next build");
    drop(bytes);
    std::fs::set_permissions(&next, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    edit_inventory(
        &path,
        &format!("binary = \"{}\"", broken.display()),
        &format!("binary = \"{}\"", next.display()),
    );
    let leader_before = leader(&inv).await.expect("a leader");
    let watch = QuorumWatch::start(&inv);
    let rolled = provision(&path, &options(false, false))
        .await
        .expect("upgrade");
    let samples = watch.finish().await;
    let order: Vec<&str> = rolled.services.iter().map(|e| e.host.as_str()).collect();
    assert_eq!(order.len(), 3, "{order:?}");
    // The member the broken binary left down is started (or restarted) first, the others
    // restart after it.
    assert_eq!(
        order[0], failed,
        "the member left down goes first: {order:?}"
    );
    assert!(rolled.services[1..]
        .iter()
        .all(|e| e.action == ServiceAction::Restart));
    assert_eq!(order[2], leader_before, "the leader last: {order:?}");
    let fewest_up = samples.iter().map(|s| s.up.len()).min().unwrap_or(0);
    assert!(
        fewest_up >= 2,
        "quorum lost during the upgrade: {samples:?}"
    );
    let new_sha = sha(&next);
    for h in &hosts.hosts {
        assert_eq!(sha(&h.path(PUSHED)), new_sha, "{}", h.name);
        assert_eq!(h.pids_of("cairn-server").len(), 1, "{}", h.name);
    }
    let cluster = rolled.cluster.as_ref().expect("table");
    assert_eq!(cluster.answering(), 3, "{cluster}");
}
