//! Watch fan-out: events per second delivered to 1,000 watchers of one key, cairn-server next
//! to etcd 3.4 on this machine in the same run.
//!
//! `cargo bench -p cairn-server --bench watch` (BENCH_SCALE=0.2 for a quick run).

use std::time::{Duration, Instant};

use cairn_testkit::{Kind, Member};
use etcd_client::{Client, WatchOptions};

const WATCHERS: usize = 1000;
const CONNECTIONS: usize = 10;

/// Puts `writes` values to one key watched by `WATCHERS` watchers; returns delivered events/s.
async fn fan_out(url: &str, writes: usize) -> f64 {
    let mut conns = Vec::new();
    for _ in 0..CONNECTIONS {
        conns.push(Client::connect([url], None).await.expect("connect"));
    }
    let mut writer = conns[0].clone();
    let start = writer
        .put("fan", "0", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision()
        + 1;
    let mut tasks = Vec::new();
    for i in 0..WATCHERS {
        let mut c = conns[i % CONNECTIONS].clone();
        let mut stream = c
            .watch("fan", Some(WatchOptions::new().with_start_revision(start)))
            .await
            .expect("watch");
        tasks.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < writes {
                let resp = tokio::time::timeout(Duration::from_secs(120), stream.message())
                    .await
                    .expect("events in time")
                    .expect("stream ok")
                    .expect("stream open");
                seen += resp.events().len();
            }
        }));
    }
    let value = vec![b'v'; 256];
    let began = Instant::now();
    for _ in 0..writes {
        writer.put("fan", value.clone(), None).await.expect("put");
    }
    for t in tasks {
        t.await.expect("watcher");
    }
    (WATCHERS * writes) as f64 / began.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let writes = ((1000.0 * scale) as usize).max(50);
    let cairn = Member::builder(Kind::Cairn)
        .cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
        .start()
        .expect("start cairn-server");
    let etcd = Member::builder(Kind::Etcd).start().expect("start etcd");
    let c = fan_out(&cairn.client_url(), writes).await;
    let e = fan_out(&etcd.client_url(), writes).await;
    println!("watch fan-out: {WATCHERS} watchers of one key, {writes} puts of 256 B, same machine, same run");
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "row", "cairn ev/s", "etcd ev/s", "ratio"
    );
    println!(
        "{:<28} {:>14.0} {:>14.0} {:>7.2}x",
        "events delivered",
        c,
        e,
        c / e
    );
}
