//! Against a real S3-compatible server on loopback (moto): a round trip, and the store going
//! away in the middle of an upload.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_backupd::store::S3Store;
use cairn_backupd::{ObjectStore, Retry, S3Options, Target};
use cairn_testkit::Kind;

use crate::*;

/// moto (testkit's S3 server) with bucket `cairn-test`, the SDK's variables set for it.
pub struct Moto {
    _server: cairn_testkit::s3::S3Server,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    port: u16,
}

impl Moto {
    pub async fn start() -> Self {
        let server = cairn_testkit::s3::S3Server::start("cairn-test").expect("moto starts");
        for (name, value) in server.env() {
            std::env::set_var(name, value);
        }
        Self {
            endpoint: server.endpoint.clone(),
            port: server.port,
            _server: server,
        }
    }

    pub async fn store_at(endpoint: &str) -> Arc<dyn ObjectStore> {
        let options = S3Options {
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint.to_string()),
            path_style: true,
        };
        Arc::new(S3Store::connect("cairn-test".into(), &options).await)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cairn_backup_round_trip_through_s3() {
    let moto = Moto::start().await;
    let c = cluster(Kind::Cairn, 1);
    let endpoint = c.member(0).client_url();
    fill(&endpoint, 200, 1000).await;
    let (revision, source_hash) = hash_kv(&endpoint, 0).await;
    let b = backups(
        &c,
        Moto::store_at(&moto.endpoint).await,
        "backups/x",
        zstd(),
    );
    let m = b.full(None).await.expect("backup");
    assert!(m.object.starts_with("backups/x/test/"), "{}", m.object);
    assert_eq!(b.list().await.expect("list").len(), 1);
    b.verify(&m.id).await.expect("verify");
    let dir = tempfile::tempdir().expect("tempdir");
    let (plan, peer) = single_member_plan(dir.path());
    b.restore(&Target::Revision(revision), &plan)
        .await
        .expect("restore");
    let r = start_restored(Kind::Cairn, &plan, 0, peer);
    assert_eq!(
        hash_kv(&r.client_url(), revision).await,
        (revision, source_hash)
    );
}

/// A TCP proxy in front of the store that can be cut: open connections drop, new ones close.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    upstream_bytes: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let upstream_bytes = Arc::new(AtomicU64::new(0));
        let (c, u) = (cut.clone(), upstream_bytes.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let (c, u) = (c.clone(), u.clone());
                tokio::spawn(async move {
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.split();
                    let (mut sr, mut sw) = server.split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = tokio::io::AsyncReadExt::read(&mut cr, &mut buf)
                                .await
                                .unwrap_or(0);
                            if n == 0 || c.load(Ordering::SeqCst) {
                                return;
                            }
                            u.fetch_add(n as u64, Ordering::SeqCst);
                            if tokio::io::AsyncWriteExt::write_all(&mut sw, &buf[..n])
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    };
                    let down = tokio::io::copy(&mut sr, &mut cw);
                    let watch_cut = async {
                        while !c.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    };
                    tokio::select! {
                        () = up => {}
                        _ = down => {}
                        () = watch_cut => {}
                    }
                });
            }
        });
        Self {
            port,
            cut,
            upstream_bytes,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_going_away_mid_upload_lists_nothing_and_leaves_no_parts_after_a_retry() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(moto.port).await;
    let c = cluster(Kind::Cairn, 1);
    fill(&c.member(0).client_url(), 1300, 10_000).await;
    let through_proxy = Moto::store_at(&format!("http://127.0.0.1:{}", proxy.port)).await;
    let direct = backups(&c, Moto::store_at(&moto.endpoint).await, "", zstd());
    let codec = Codec {
        compression: cairn_inventory::Compression::None,
        key: None,
    };
    let b = backups(&c, through_proxy, "", codec).with_retry(Retry {
        attempts: 2,
        backoff: Duration::from_millis(100),
    });
    let (cut, bytes) = (proxy.cut.clone(), proxy.upstream_bytes.clone());
    let cutter = tokio::spawn(async move {
        while bytes.load(Ordering::SeqCst) < 6 * 1024 * 1024 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        cut.store(true, Ordering::SeqCst);
    });
    let err = b.full(None).await.expect_err("the store went away");
    cutter.await.expect("cutter");
    assert!(matches!(err, cairn_backupd::Error::S3 { .. }), "{err}");
    assert!(
        direct.list().await.expect("list").is_empty(),
        "no backup is listed"
    );
    // The store is back: the next run removes what the failed one left, then succeeds.
    proxy.cut.store(false, Ordering::SeqCst);
    let m = b.full(None).await.expect("backup after the store is back");
    assert_eq!(direct.list().await.expect("list"), vec![m]);
    let pending = direct.store().pending_uploads("").await.expect("uploads");
    assert!(pending.is_empty(), "orphan parts: {pending:?}");
}

/// The daemons' lock is a conditional write: of writers racing for one key, exactly one may
/// win (If-None-Match on stores that have it, the read-back on the others).
#[tokio::test(flavor = "multi_thread")]
async fn racing_conditional_writes_have_one_winner() {
    let moto = Moto::start().await;
    let store = Moto::store_at(&moto.endpoint).await;
    for round in 0..5 {
        let key = format!("race/{round}/lock.json");
        let racers = (0..8).map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                store
                    .put_if_absent(&key, bytes::Bytes::from(format!("owner {i}")))
                    .await
                    .expect("put_if_absent")
            })
        });
        let won = futures::future::join_all(racers)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().expect("racer"))
            .count();
        assert_eq!(won, 1, "round {round}");
    }
}
