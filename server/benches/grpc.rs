//! cairn-server next to etcd 3.4 over gRPC on this machine in the same run, as a single member
//! and as a 3-member cluster (requests to the leader): puts from 1 and 100 clients,
//! linearizable and serializable ranges from 100 clients. Prints throughput, p50 and p99 for
//! both and the ratio (cairn / etcd).
//!
//! `cargo bench -p cairn-server --bench grpc` (BENCH_SCALE=0.1 for a quick run;
//! BENCH_ONLY=single or BENCH_ONLY=cluster for one table).

use std::sync::Arc;
use std::time::Instant;

use cairn_testkit::{Cluster, Kind, Member};
use etcd_client::{Client, GetOptions};
use hdrhistogram::Histogram;
use tokio::sync::Mutex;

struct Row {
    name: &'static str,
    clients: usize,
    conns: usize,
    total: usize,
    op: Op,
}

#[derive(Clone, Copy)]
enum Op {
    Put,
    Range { serializable: bool },
}

struct Outcome {
    ops_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run_row(url: &str, row: &Row) -> Outcome {
    let mut conns = Vec::new();
    for _ in 0..row.conns {
        conns.push(Client::connect([url], None).await.expect("connect"));
    }
    if let Op::Range { .. } = row.op {
        let mut c = conns[0].clone();
        c.put("rangekey", vec![1u8; 256], None).await.expect("seed");
    }
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("histogram")));
    let per_client = row.total / row.clients;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..row.clients {
        let mut c = conns[i % row.conns].clone();
        let hist = hist.clone();
        let op = row.op;
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new(3).expect("histogram");
            let value = vec![7u8; 256];
            for n in 0..per_client {
                let t = Instant::now();
                match op {
                    Op::Put => {
                        let key = format!("{:08}", (i * per_client + n) % 100_000);
                        c.put(key, value.clone(), None).await.expect("put");
                    }
                    Op::Range { serializable } => {
                        let o = serializable.then(|| GetOptions::new().with_serializable());
                        c.get("rangekey", o).await.expect("get");
                    }
                }
                local
                    .record(t.elapsed().as_micros() as u64)
                    .expect("record");
            }
            hist.lock().await.add(local).expect("merge");
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let elapsed = start.elapsed();
    let h = hist.lock().await;
    Outcome {
        ops_per_sec: (per_client * row.clients) as f64 / elapsed.as_secs_f64(),
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
    }
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; any other argument is ignored.
    let scale: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let n = |x: usize| ((x as f64 * scale) as usize).max(100);
    let rows = [
        Row {
            name: "put, 1 client",
            clients: 1,
            conns: 1,
            total: n(3_000),
            op: Op::Put,
        },
        Row {
            name: "put, 100 clients / 10 conns",
            clients: 100,
            conns: 10,
            total: n(50_000),
            op: Op::Put,
        },
        Row {
            name: "range (linearizable), 100 clients",
            clients: 100,
            conns: 10,
            total: n(100_000),
            op: Op::Range {
                serializable: false,
            },
        },
        Row {
            name: "range (serializable), 100 clients",
            clients: 100,
            conns: 10,
            total: n(100_000),
            op: Op::Range { serializable: true },
        },
    ];
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "cluster" {
        let cairn = Member::builder(Kind::Cairn)
            .cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
            .start()
            .expect("start cairn-server");
        let etcd = Member::builder(Kind::Etcd).start().expect("start etcd");
        table(
            "single member, 8-byte keys, 256-byte values, same machine, same run",
            &rows,
            &cairn.client_url(),
            &etcd.client_url(),
        )
        .await;
    }
    if only != "single" {
        let mut cairn = Cluster::builder(Kind::Cairn)
            .cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
            .start()
            .expect("start a cairn-server cluster");
        let mut etcd = Cluster::builder(Kind::Etcd)
            .start()
            .expect("start an etcd cluster");
        let timeout = std::time::Duration::from_secs(30);
        let c = cairn.wait_leader(timeout).expect("cairn leader");
        let e = etcd.wait_leader(timeout).expect("etcd leader");
        table(
            "3-member cluster, requests to the leader, 8-byte keys, 256-byte values, same machine, same run",
            &rows,
            &cairn.member(c).client_url(),
            &etcd.member(e).client_url(),
        )
        .await;
    }
}

/// Runs every row against both URLs and prints the table.
async fn table(title: &str, rows: &[Row], cairn: &str, etcd: &str) {
    println!("{title}");
    println!(
        "{:<36} {:>12} {:>9} {:>9} | {:>12} {:>9} {:>9} | {:>7}",
        "row", "cairn op/s", "p50 ms", "p99 ms", "etcd op/s", "p50 ms", "p99 ms", "ratio"
    );
    for row in rows {
        let c = run_row(cairn, row).await;
        let e = run_row(etcd, row).await;
        println!(
            "{:<36} {:>12.0} {:>9.2} {:>9.2} | {:>12.0} {:>9.2} {:>9.2} | {:>6.2}x",
            row.name,
            c.ops_per_sec,
            c.p50_ms,
            c.p99_ms,
            e.ops_per_sec,
            e.p50_ms,
            e.p99_ms,
            c.ops_per_sec / e.ops_per_sec
        );
    }
}
