//! Snapshot save throughput: `etcdctl snapshot save` against cairn-server and etcd 3.4, each
//! holding the same keyspace of N MB (16 KiB values), on this machine in the same run. Prints
//! the snapshot size, the best time of a few saves and MB/s for both, and the ratio.
//!
//! `cargo bench -p cairn-server --bench snapshot` (BENCH_SNAPSHOT_MB=50 for a quick run;
//! default 200).

use std::time::{Duration, Instant};

use cairn_testkit::{Kind, Member};
use etcd_client::Client;

const VALUE_BYTES: usize = 16 * 1024;
const WRITERS: usize = 16;
const SAVES: usize = 3;

async fn fill(url: &str, mb: usize) {
    let keys = mb * 1024 * 1024 / VALUE_BYTES;
    let client = Client::connect([url], None).await.expect("connect");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut c = client.clone();
        tasks.push(tokio::spawn(async move {
            let value = vec![(w % 251) as u8; VALUE_BYTES];
            for k in (w..keys).step_by(WRITERS) {
                c.put(format!("bench/{k:08}"), value.clone(), None)
                    .await
                    .expect("put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
}

/// Best wall time of `SAVES` snapshot saves, and the snapshot's size.
fn save(m: &Member, dir: &std::path::Path) -> (Duration, u64) {
    let mut best = Duration::MAX;
    let mut size = 0;
    for i in 0..SAVES {
        let path = dir.join(format!("{}-{i}.db", m.kind()));
        let started = Instant::now();
        let out = m
            .etcdctl(&["snapshot", "save", path.to_str().expect("utf-8 path")])
            .expect("etcdctl");
        let took = started.elapsed();
        assert!(out.success(), "snapshot save failed: {out:?}");
        size = std::fs::metadata(&path).expect("snapshot file").len();
        std::fs::remove_file(&path).expect("remove snapshot");
        best = best.min(took);
    }
    (best, size)
}

#[tokio::main]
async fn main() {
    let mb: usize = std::env::var("BENCH_SNAPSHOT_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let cairn = Member::builder(Kind::Cairn)
        .cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
        .start()
        .expect("start cairn-server");
    let etcd = Member::builder(Kind::Etcd).start().expect("start etcd");
    let dir = tempfile::tempdir().expect("tempdir");
    println!("snapshot save via etcdctl 3.4: {mb} MB keyspace ({VALUE_BYTES}-byte values), best of {SAVES}, same machine, same run");
    println!(
        "{:<14} {:>14} {:>10} {:>10}",
        "server", "snapshot MB", "seconds", "MB/s"
    );
    let mut rates = Vec::new();
    for m in [&cairn, &etcd] {
        fill(&m.client_url(), mb).await;
        let (took, size) = save(m, dir.path());
        let size_mb = size as f64 / 1e6;
        let rate = size_mb / took.as_secs_f64();
        // Throughput of the keyspace itself, so formats of different overhead compare fairly.
        let data_rate = (mb * 1024 * 1024) as f64 / 1e6 / took.as_secs_f64();
        rates.push(data_rate);
        println!(
            "{:<14} {:>14.1} {:>10.3} {:>10.1}   ({data_rate:.1} MB/s of keyspace)",
            m.kind().to_string(),
            size_mb,
            took.as_secs_f64(),
            rate
        );
    }
    println!(
        "ratio cairn/etcd (keyspace MB/s): {:.2}x",
        rates[0] / rates[1]
    );
}
