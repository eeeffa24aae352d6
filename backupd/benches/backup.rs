//! Backup and restore throughput (issue #7): a keyspace of `BENCH_MIB` MiB (default 1024) of
//! incompressible 16 KiB values on one cairn-server member and one etcd 3.4 member, then, for
//! each, `etcdctl snapshot save` and the server's `snapshot restore` (cairn-server's own, or
//! `etcdctl snapshot restore`) next to a backupd full backup (zstd, into a directory store)
//! and a backupd restore (download, verify, restore). Throughput is the snapshot's size over
//! the time. The peak RSS column is this process's high-water mark during the backupd backup
//! (reset just before it through `/proc/self/clear_refs`): what the daemon needs, which must
//! stay far below the snapshot's size.
//!
//! `cargo bench -p cairn-backupd --bench backup` (`BENCH_MIB=256` for a quicker run)

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_backupd::store::FileStore;
use cairn_backupd::{Backups, ClusterSpec, Codec, RestoreMember, RestorePlan, SystemClock, Target};
use cairn_inventory::{Compression, ServerKind};
use cairn_testkit::{Kind, Member};

/// Value size of the filled keys.
const VALUE: usize = 16 * 1024;

/// Puts `mib` MiB of pseudo-random values, 16 at a time.
async fn fill(endpoint: &str, mib: usize) {
    let client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    let keys = mib * 1024 * 1024 / VALUE;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for batch in (0..keys).collect::<Vec<_>>().chunks(16) {
        let puts = batch.iter().map(|&i| {
            let mut value = vec![0u8; VALUE];
            for chunk in value.chunks_mut(8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
            }
            let mut c = client.clone();
            async move {
                c.put(format!("/bench/{i:08}"), value, None)
                    .await
                    .expect("put")
            }
        });
        futures::future::join_all(puts).await;
    }
}

/// This process's peak RSS in KiB since the last reset.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn timed(what: &str, mut cmd: std::process::Command) -> Duration {
    let started = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

async fn bench(kind: Kind, mib: usize) {
    let binary = match kind {
        Kind::Cairn => cairn_testkit::cairn_server_binary().expect("cairn-server"),
        Kind::Etcd => "etcd".into(),
    };
    let mut builder = Member::builder(kind).arg("--quota-backend-bytes=8589934592");
    if kind == Kind::Cairn {
        builder = builder.cairn_binary(binary.clone());
    }
    let member = builder.start().expect("member");
    let endpoint = member.client_url();
    let started = Instant::now();
    fill(&endpoint, mib).await;
    eprintln!("{kind}: filled {mib} MiB in {:.1?}", started.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("etcdctl.db");
    let mut save = std::process::Command::new("etcdctl");
    save.env("ETCDCTL_API", "3")
        .args(["--endpoints", &endpoint, "snapshot", "save"])
        .arg(&snap);
    let save_time = timed("etcdctl snapshot save", save);
    let size = std::fs::metadata(&snap).expect("snapshot").len();
    let restore_args = |cmd: &mut std::process::Command, data: &Path| {
        cmd.args(["snapshot", "restore"])
            .arg(&snap)
            .arg("--data-dir")
            .arg(data)
            .args([
                "--name",
                "r1",
                "--initial-cluster",
                "r1=http://127.0.0.1:1",
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:1",
            ]);
    };
    let mut restore = match kind {
        Kind::Cairn => std::process::Command::new(&binary),
        Kind::Etcd => {
            let mut c = std::process::Command::new("etcdctl");
            c.env("ETCDCTL_API", "3");
            c
        }
    };
    restore_args(&mut restore, &dir.path().join("restored-etcdctl"));
    let restore_time = timed("snapshot restore", restore);
    std::fs::remove_file(&snap).expect("remove snapshot");

    let spec = ClusterSpec {
        credentials: None,
        name: "bench".into(),
        server: if kind == Kind::Cairn {
            ServerKind::Cairn
        } else {
            ServerKind::Etcd
        },
        endpoints: vec![endpoint.clone()],
        tls: None,
        binary: binary.clone(),
    };
    let codec = Codec {
        compression: Compression::Zstd,
        key: None,
    };
    let store = Arc::new(FileStore::new(dir.path().join("store")));
    let backups = Backups::new(store, "", spec, codec, Arc::new(SystemClock));
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let started = Instant::now();
    let m = backups.full(None).await.expect("backup");
    let backup_time = started.elapsed();
    let peak = peak_rss_kib();
    let plan = RestorePlan {
        members: vec![RestoreMember {
            name: "r1".into(),
            peer_url: "http://127.0.0.1:1".into(),
        }],
        token: "bench".into(),
        out_dir: dir.path().join("restored-backupd"),
    };
    let started = Instant::now();
    backups
        .restore(&Target::Id(m.id.clone()), &plan)
        .await
        .expect("restore");
    let backupd_restore_time = started.elapsed();
    drop(member);
    let name = format!("{kind}");
    println!(
        "| {name:<12} | {:>7.0} MB | etcdctl snapshot save | {:>6.1} s | {:>7.1} MB/s | |",
        size as f64 / 1e6,
        save_time.as_secs_f64(),
        mb_per_s(size, save_time)
    );
    println!(
        "| {name:<12} | | snapshot restore | {:>6.1} s | {:>7.1} MB/s | |",
        restore_time.as_secs_f64(),
        mb_per_s(size, restore_time)
    );
    println!(
        "| {name:<12} | | backupd backup (zstd, {:.0} MB stored) | {:>6.1} s | {:>7.1} MB/s | {} MiB |",
        m.stored_bytes as f64 / 1e6,
        backup_time.as_secs_f64(),
        mb_per_s(m.plain_bytes, backup_time),
        peak / 1024
    );
    println!(
        "| {name:<12} | | backupd restore (verify + restore) | {:>6.1} s | {:>7.1} MB/s | |",
        backupd_restore_time.as_secs_f64(),
        mb_per_s(m.plain_bytes, backupd_restore_time)
    );
}

fn main() {
    let mib: usize = std::env::var("BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!("| server | snapshot | operation | time | throughput | peak RSS |");
    println!("|---|---|---|---|---|---|");
    runtime.block_on(bench(Kind::Cairn, mib));
    if Path::new("/usr/bin/etcd").exists() {
        runtime.block_on(bench(Kind::Etcd, mib));
    }
}
