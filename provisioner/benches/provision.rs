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
//! `/usr/bin/etcd` exists. One more row runs 5 cairn-server members one host at a time
//! (`--parallel 1`), to show what the parallelism saves; the "start → healthy" column is the
//! part of a fresh run from starting the members until the last one answered with a leader.
//! Needs root (mount namespaces).
//!
//! `cargo bench -p cairn-provisioner --bench provision`

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_inventory::Inventory;
use cairn_provisioner::converge::{Limits, Quiet};
use cairn_provisioner::{Options, Report, Session, SystemClock};
use cairn_testkit::hosts::Hosts;

/// (members, hosts handled at once) measured for every server; `cairn provision`'s default
/// is 8 at once.
const ROWS: [(u8, usize); 2] = [(3, 8), (5, 8)];
/// The extra sequential row, cairn-server only.
const SEQUENTIAL: (u8, usize) = (5, 1);

/// One repetition's figures.
struct Sample {
    fresh: Duration,
    start_to_healthy: Duration,
    again: Duration,
}

/// One provisioning run from planning to the cluster table, timed.
async fn provision(inventory: &Path, accept_new: bool, parallel: usize) -> (Report, Duration) {
    let inv = Inventory::load(inventory).expect("inventory");
    let options = Options {
        accept_new_host_keys: accept_new,
        limits: Limits {
            parallel,
            ..Limits::default()
        },
        ..Options::default()
    };
    let started = Instant::now();
    let session = Session::plan(&inv, &options, &SystemClock, &Quiet)
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"));
    let report = session
        .apply(&cairn_provisioner::upgrade::NoHook, &Quiet)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    (report, started.elapsed())
}

/// One repetition on new hosts.
async fn once(server: &str, binary: &Path, members: u8, parallel: usize) -> Sample {
    let hosts = Hosts::start(members).expect("start the hosts");
    let path = hosts
        .write_inventory(server, binary, "")
        .expect("inventory");
    let (fresh, fresh_took) = provision(&path, true, parallel).await;
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
    let start_to_healthy = fresh
        .services
        .iter()
        .map(|e| e.healthy_after_ms)
        .max()
        .unwrap_or(0);
    let (again, again_took) = provision(&path, false, parallel).await;
    assert!(
        !again.changed(),
        "the re-run changed things: {:#?}",
        again.hosts
    );
    assert!(again.services.is_empty(), "{:?}", again.services);
    // Dropping the hosts kills every process in their namespaces.
    drop(hosts);
    Sample {
        fresh: fresh_took,
        start_to_healthy: Duration::from_millis(
            u64::try_from(start_to_healthy).unwrap_or(u64::MAX),
        ),
        again: again_took,
    }
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
        let extra = (*server == "cairn").then_some(SEQUENTIAL);
        for (members, parallel) in ROWS.into_iter().chain(extra) {
            let mut samples = Vec::new();
            for rep in 1..=reps {
                let s = once(server, binary, members, parallel).await;
                eprintln!(
                    "{server}, {members} members, {parallel} at once, run {rep}/{reps}: fresh {:.2} s (start → healthy {:.2} s), no-change {:.2} s",
                    s.fresh.as_secs_f64(),
                    s.start_to_healthy.as_secs_f64(),
                    s.again.as_secs_f64()
                );
                samples.push(s);
            }
            let column = |f: fn(&Sample) -> Duration| spread(samples.iter().map(f).collect());
            rows.push((
                *server,
                members,
                parallel,
                column(|s| s.fresh),
                column(|s| s.start_to_healthy),
                column(|s| s.again),
            ));
        }
    }
    println!();
    println!("| server | members | hosts at once | fresh provision s | of which start → healthy s | no-change re-run s |");
    println!("|---|---|---|---|---|---|");
    let cell = |(median, min, max): (f64, f64, f64)| format!("{median:.2} ({min:.2}–{max:.2})");
    for (server, members, parallel, fresh, healthy, again) in rows {
        println!(
            "| {server} | {members} | {parallel} | {} | {} | {} |",
            cell(fresh),
            cell(healthy),
            cell(again)
        );
    }
    println!("(median (min–max) of {reps} repetitions each)");
}
