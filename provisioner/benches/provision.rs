//! Provisioning time (issue #5): a fresh 3-member and 5-member TLS cluster, and a re-run that
//! changes nothing, against real sshd hosts on 127.0.0.11 onwards (testkit's [`Hosts`], each
//! in its own mount namespace with Debian's Python systemctl). Hosts are handled in parallel,
//! so 5 members should take about as long as 3.
//!
//! Each repetition starts new hosts, provisions them from nothing (`Session::plan` and
//! `apply`, as `cairn provision --yes --accept-new-host-keys` does, default limits), checks
//! that every member answers, re-runs and checks nothing changed, then kills the hosts. The
//! medians (and the spread) of `BENCH_REPS` repetitions (default 3) are printed, for
//! cairn-server (this workspace's build of the bench profile) and for Debian's etcd 3.4 when
//! `/usr/bin/etcd` exists. Needs root (mount namespaces).
//!
//! `cargo bench -p cairn-provisioner --bench provision`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_inventory::Inventory;
use cairn_provisioner::converge::Quiet;
use cairn_provisioner::{Options, Report, Session, SystemClock};
use cairn_testkit::hosts::Hosts;

/// Member counts measured.
const SIZES: [u8; 2] = [3, 5];

/// One provisioning run from planning to the cluster table, timed.
async fn provision(inventory: &Path, accept_new: bool) -> (Report, Duration) {
    let inv = Inventory::load(inventory).expect("inventory");
    let options = Options {
        accept_new_host_keys: accept_new,
        ..Options::default()
    };
    let started = Instant::now();
    let session = Session::plan(&inv, &options, &SystemClock, &Quiet)
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"));
    let report = session
        .apply(&Quiet)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    (report, started.elapsed())
}

/// One repetition on new hosts: (fresh provision, no-change re-run).
async fn once(server: &str, binary: &Path, members: u8) -> (Duration, Duration) {
    let hosts = Hosts::start(members).expect("start the hosts");
    let path = hosts
        .write_inventory(server, binary, "")
        .expect("inventory");
    let (fresh, fresh_took) = provision(&path, true).await;
    let cluster = fresh.cluster.as_ref().expect("cluster table");
    assert_eq!(
        cluster.answering(),
        usize::from(members),
        "not every member answers after the fresh run:\n{cluster}"
    );
    assert!(cluster.leader().is_some(), "no leader:\n{cluster}");
    assert_eq!(
        fresh.services.len(),
        usize::from(members),
        "{:?}",
        fresh.services
    );
    let (again, again_took) = provision(&path, false).await;
    assert!(
        !again.changed(),
        "the re-run changed things: {:#?}",
        again.hosts
    );
    assert!(again.services.is_empty(), "{:?}", again.services);
    // Dropping the hosts kills every process in their namespaces.
    drop(hosts);
    (fresh_took, again_took)
}

/// Median, minimum and maximum in seconds.
fn spread(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let s = |d: Duration| d.as_secs_f64();
    let n = samples.len();
    let median = if n % 2 == 1 {
        s(samples[n / 2])
    } else {
        (s(samples[n / 2 - 1]) + s(samples[n / 2])) / 2.0
    };
    (median, s(samples[0]), s(samples[n - 1]))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(3);
    let mut servers: Vec<(&str, PathBuf)> = vec![(
        "cairn",
        cairn_testkit::cairn_server_binary().expect("cairn-server binary"),
    )];
    let etcd = PathBuf::from("/usr/bin/etcd");
    if etcd.is_file() {
        servers.push(("etcd", etcd));
    }
    let mut rows = Vec::new();
    for (server, binary) in &servers {
        let size = std::fs::metadata(binary).map_or(0, |m| m.len());
        eprintln!(
            "{server}: {} ({:.1} MB)",
            binary.display(),
            size as f64 / 1e6
        );
        for members in SIZES {
            let mut fresh = Vec::new();
            let mut again = Vec::new();
            for rep in 1..=reps {
                let (f, a) = once(server, binary, members).await;
                eprintln!(
                    "{server}, {members} members, run {rep}/{reps}: fresh {:.2} s, no-change {:.2} s",
                    f.as_secs_f64(),
                    a.as_secs_f64()
                );
                fresh.push(f);
                again.push(a);
            }
            rows.push((*server, members, spread(fresh), spread(again)));
        }
    }
    println!();
    println!("| server | members | fresh provision s, median (min–max) | no-change re-run s, median (min–max) |");
    println!("|---|---|---|---|");
    for (server, members, f, a) in rows {
        println!(
            "| {server} | {members} | {:.2} ({:.2}–{:.2}) | {:.2} ({:.2}–{:.2}) |",
            f.0, f.1, f.2, a.0, a.1, a.2
        );
    }
    println!("({reps} repetitions each)");
}
