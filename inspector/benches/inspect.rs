//! Inspecting a large keyspace: wall time and peak memory (max RSS) of one whole inspection
//! of N keys (default 1 million) on a single etcd 3.4 member, next to `etcdctl get ""
//! --prefix --keys-only` (counted like `| wc -l`) on the same member. Both run as child
//! processes under GNU time (`/usr/bin/time`), so each peak is that process's own.
//!
//! `cargo bench -p cairn-inspector --bench inspect` (`BENCH_INSPECT_KEYS=100000` for a quick
//! run; `BENCH_INSPECT_SERVER=cairn` for cairn-server instead of etcd).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_inspector::{inspect, EtcdSource, Limits, NoStore, Options, SystemClock, Target};
use cairn_testkit::{Kind, Member};
use etcd_client::{Client, Txn, TxnOp};

/// Set in the child that runs the inspection: the member's client URL.
const CHILD_ENV: &str = "CAIRN_BENCH_INSPECT_ENDPOINT";
/// Puts per transaction (etcd's default `--max-txn-ops`).
const BATCH: usize = 128;
const WRITERS: usize = 8;

async fn fill(url: &str, keys: usize) {
    let client = Client::connect([url], None).await.expect("connect");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let batches = keys.div_ceil(BATCH);
            for b in (w..batches).step_by(WRITERS) {
                let ops: Vec<TxnOp> = (b * BATCH..((b + 1) * BATCH).min(keys))
                    .map(|k| {
                        // Ten prefixes of two segments, like /registry/<kind>/.
                        TxnOp::put(format!("/registry/kind{}/obj{k:08}", k % 10), "v", None)
                    })
                    .collect();
                c.txn(Txn::new().and_then(ops)).await.expect("txn");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
}

/// Runs `cmd` under GNU time; returns (seconds, peak KiB, stdout line count).
fn timed(cmd: Command) -> (f64, u64, u64) {
    let report = tempfile::NamedTempFile::new().expect("temp file");
    let mut time = Command::new("/usr/bin/time");
    time.args(["-f", "%e %M", "-o"])
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => time.env(k, v),
            None => time.env_remove(k),
        };
    }
    let mut child = time
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run /usr/bin/time (Debian: apt-get install time)");
    let lines = BufReader::new(child.stdout.take().expect("stdout"))
        .split(b'\n')
        .count() as u64;
    let status = child.wait().expect("wait");
    assert!(status.success(), "{cmd:?} failed: {status}");
    let text = std::fs::read_to_string(report.path()).expect("time's report");
    let mut fields = text.split_whitespace();
    let secs = fields.next().and_then(|s| s.parse().ok()).expect("seconds");
    let kib = fields.next().and_then(|s| s.parse().ok()).expect("max RSS");
    (secs, kib, lines)
}

/// The child: one whole inspection of `endpoint`, its summary on stdout.
fn child(endpoint: String) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let source = EtcdSource::new(
        vec![Target {
            name: "m1".into(),
            endpoint,
            metrics: None,
        }],
        None,
        None,
        Duration::from_secs(60),
    )
    .expect("source");
    let limits = Limits {
        hot_prefix_window: Duration::from_secs(1),
        ..Limits::default()
    };
    let options = Options {
        cluster: "bench".into(),
        expected: Vec::new(),
        limits,
        local_pki: None,
        backups: None,
    };
    let report = runtime
        .block_on(inspect(&source, &SystemClock, &NoStore, &options))
        .expect("inspection");
    for c in &report.checks {
        println!("{}: {} {}", c.check, c.status, c.summary);
    }
}

fn main() {
    if let Ok(endpoint) = std::env::var(CHILD_ENV) {
        return child(endpoint);
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let keys: usize = std::env::var("BENCH_INSPECT_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let member = match std::env::var("BENCH_INSPECT_SERVER").as_deref() {
        Ok("cairn") => Member::builder(Kind::Cairn)
            .cairn_binary(cairn_testkit::cairn_server_binary().expect("cairn-server"))
            .start(),
        _ => Member::builder(Kind::Etcd).start(),
    }
    .expect("start the member");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = std::time::Instant::now();
    runtime.block_on(fill(&member.client_url(), keys));
    eprintln!(
        "filled {keys} keys into {} in {:.1}s",
        member.kind(),
        started.elapsed().as_secs_f64()
    );

    let mut etcdctl = Command::new("etcdctl");
    etcdctl
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &member.client_url(),
            "--command-timeout=600s",
        ])
        .args(["get", "", "--prefix", "--keys-only"]);
    let (e_secs, e_kib, e_lines) = timed(etcdctl);
    // keys-only prints each key and an empty line.
    assert_eq!(e_lines / 2, keys as u64, "etcdctl saw every key");

    let mut me = Command::new(std::env::current_exe().expect("this binary"));
    me.env(CHILD_ENV, member.client_url());
    let (i_secs, i_kib, _) = timed(me);

    println!("{keys} keys on {} (single member, loopback)", member.kind());
    println!("{:<44} {:>9} {:>12}", "", "seconds", "peak RSS");
    println!(
        "{:<44} {:>9.2} {:>9.1} MiB",
        "etcdctl get \"\" --prefix --keys-only | wc -l",
        e_secs,
        e_kib as f64 / 1024.0
    );
    println!(
        "{:<44} {:>9.2} {:>9.1} MiB",
        "cairn inspect (all checks, 1 s watch window)",
        i_secs,
        i_kib as f64 / 1024.0
    );
}
