//! One contract every `ObjectStore` keeps, run against each: memory, a directory, and S3 on
//! moto. The backup lock relies on `put_if_absent` having exactly one winner; listings and
//! multipart uploads are what verify, retention and crash clean-up rely on.

use std::sync::Arc;

use bytes::Bytes;
use cairn_backupd::store::{FileStore, MemoryStore};
use cairn_backupd::ObjectStore;
use tokio::io::AsyncReadExt;

use crate::s3::Moto;

/// Racers per round, and rounds, of the conditional-write race.
const RACERS: usize = 8;
const ROUNDS: usize = 5;
/// S3's smallest part but the last.
const PART: usize = 5 * 1024 * 1024;

async fn read_all(store: &dyn ObjectStore, key: &str) -> Vec<u8> {
    let mut r = store.open(key).await.expect("open");
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.expect("read");
    out
}

async fn sorted_list(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let mut keys = store.list(prefix).await.expect("list");
    keys.sort();
    keys
}

/// The contract, under `root/` of `store`.
async fn contract(store: Arc<dyn ObjectStore>, root: &str) {
    let key = |k: &str| format!("{root}/{k}");

    // Small objects: absent, written, overwritten, deleted (twice: no error).
    assert_eq!(store.get(&key("a")).await.expect("get"), None);
    store
        .put(&key("a"), Bytes::from_static(b"one"))
        .await
        .expect("put");
    store
        .put(&key("a"), Bytes::from_static(b"two"))
        .await
        .expect("put");
    assert_eq!(
        store.get(&key("a")).await.expect("get").as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(read_all(store.as_ref(), &key("a")).await, b"two");

    // Listing is by prefix, and only by prefix.
    store
        .put(&key("dir/b"), Bytes::from_static(b"b"))
        .await
        .expect("put");
    store
        .put(&key("dir/c"), Bytes::from_static(b"c"))
        .await
        .expect("put");
    store
        .put(&key("dirt"), Bytes::from_static(b"t"))
        .await
        .expect("put");
    assert_eq!(
        sorted_list(store.as_ref(), &key("dir/")).await,
        vec![key("dir/b"), key("dir/c")]
    );
    store.delete(&key("dir/b")).await.expect("delete");
    store
        .delete(&key("dir/b"))
        .await
        .expect("delete a gone object");
    assert_eq!(
        sorted_list(store.as_ref(), &key("dir/")).await,
        vec![key("dir/c")]
    );

    // put_if_absent: one winner per round among concurrent racers, and the winner's bytes.
    for round in 0..ROUNDS {
        let lock = key(&format!("lock-{round}"));
        let mut racers = Vec::new();
        for racer in 0..RACERS {
            let (store, lock) = (store.clone(), lock.clone());
            racers.push(tokio::spawn(async move {
                let won = store
                    .put_if_absent(&lock, Bytes::from(format!("racer-{racer}")))
                    .await
                    .expect("put_if_absent");
                (racer, won)
            }));
        }
        let mut winners = Vec::new();
        for r in racers {
            let (racer, won) = r.await.expect("racer");
            if won {
                winners.push(racer);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let held = store.get(&lock).await.expect("get").expect("the lock");
        assert_eq!(held, format!("racer-{}", winners[0]).as_bytes());
        assert!(!store
            .put_if_absent(&lock, Bytes::from_static(b"late"))
            .await
            .expect("put_if_absent"));
    }

    // A multipart upload is invisible until complete, then reads back whole.
    let big = key("big");
    let first: Vec<u8> = (0..PART).map(|i| (i % 251) as u8).collect();
    let mut up = store.start_upload(&big).await.expect("start");
    up.part(Bytes::from(first.clone())).await.expect("part");
    assert_eq!(store.get(&big).await.expect("get"), None);
    assert!(!sorted_list(store.as_ref(), &big).await.contains(&big));
    up.part(Bytes::from_static(b"tail")).await.expect("part");
    up.complete().await.expect("complete");
    let mut want = first.clone();
    want.extend_from_slice(b"tail");
    assert_eq!(read_all(store.as_ref(), &big).await, want);

    // An aborted upload leaves nothing; an abandoned one is listed as pending and can be
    // aborted by its ID (what a crash leaves behind).
    let aborted = key("aborted");
    let mut up = store.start_upload(&aborted).await.expect("start");
    up.part(Bytes::from(first.clone())).await.expect("part");
    up.abort().await.expect("abort");
    assert_eq!(store.get(&aborted).await.expect("get"), None);

    let abandoned = key("abandoned");
    let mut up = store.start_upload(&abandoned).await.expect("start");
    up.part(Bytes::from(first)).await.expect("part");
    drop(up);
    let pending = store.pending_uploads(root).await.expect("pending");
    let ours: Vec<_> = pending.iter().filter(|(k, _)| *k == abandoned).collect();
    assert_eq!(ours.len(), 1, "{pending:?}");
    store
        .abort_upload(&abandoned, &ours[0].1)
        .await
        .expect("abort pending");
    let pending = store.pending_uploads(root).await.expect("pending");
    assert!(pending.iter().all(|(k, _)| *k != abandoned), "{pending:?}");
    assert_eq!(store.get(&abandoned).await.expect("get"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_store_keeps_the_contract() {
    contract(Arc::new(MemoryStore::new()), "contract").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_directory_store_keeps_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    contract(Arc::new(FileStore::new(dir.path())), "contract").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_s3_store_on_moto_keeps_the_contract() {
    let moto = Moto::start().await;
    contract(Moto::store_at(&moto.endpoint).await, "contract").await;
}
