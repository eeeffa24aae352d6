//! Store-level throughput on sled: puts applied and flushed in groups (as the write loop does),
//! and point and prefix ranges over a preloaded keyspace.
#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn.

use std::sync::Arc;

use cairn_server::proto::cairnpb::{internal_request::Request, InternalRequest};
use cairn_server::proto::etcdserverpb::{PutRequest, RangeRequest};
use cairn_server::{apply, range, Snapshot};
use cairn_server::{Backend, MvccStore, SledBackend};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const GROUP: u64 = 100;

fn open() -> (tempfile::TempDir, MvccStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend: Arc<dyn Backend> =
        Arc::new(SledBackend::open(&dir.path().join("db")).expect("sled"));
    let (store, _) = MvccStore::open(backend).expect("open");
    (dir, store)
}

fn put(store: &mut MvccStore, key: Vec<u8>) {
    let index = store.applied_index() + 1;
    let req = PutRequest {
        key,
        value: vec![7u8; 256],
        ..Default::default()
    };
    let cmd = InternalRequest {
        id: index,
        request: Some(Request::Put(req)),
        ..Default::default()
    };
    apply(store, index, &cmd).expect("put");
}

fn bench_put(c: &mut Criterion) {
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(GROUP));
    let (_dir, mut store) = open();
    let mut n = 0u64;
    g.bench_function("put 256B, flush per 100", |b| {
        b.iter(|| {
            for _ in 0..GROUP {
                n += 1;
                put(&mut store, format!("{:08}", n % 100_000).into_bytes());
            }
            store.persist().expect("persist");
            store.backend().flush().expect("flush");
        })
    });
    g.finish();
}

fn bench_range(c: &mut Criterion) {
    let (_dir, mut store) = open();
    for i in 0..10_000u32 {
        put(&mut store, format!("k/{:03}/{i:05}", i % 100).into_bytes());
    }
    store.persist().expect("persist");
    store.backend().flush().expect("flush");
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(1));
    let rev = store.revision();
    let mut i = 0u32;
    g.bench_function("range one key of 10k", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % 10_000;
                RangeRequest {
                    key: format!("k/{:03}/{i:05}", i % 100).into_bytes(),
                    ..Default::default()
                }
            },
            |req| range::range(&Snapshot { store: &store, rev }, &req).expect("range"),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("range prefix of 100 keys", |b| {
        b.iter(|| {
            let req = RangeRequest {
                key: b"k/042/".to_vec(),
                range_end: b"k/0420".to_vec(),
                ..Default::default()
            };
            let resp = range::range(&Snapshot { store: &store, rev }, &req).expect("range");
            assert_eq!(resp.kvs.len(), 100);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = bench_put, bench_range
}
criterion_main!(benches);
