//! Faults: a corrupted object, two daemons on one cluster, a slot meeting someone else's
//! lock, a cluster restored behind its backups.

use std::sync::Arc;
use std::time::Duration;

use cairn_backupd::{DaemonOptions, Error, Schedule, Target};
use cairn_testkit::Kind;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_object_is_caught_by_verify_and_refused_by_restore() {
    let c = cluster(Kind::Cairn, 1);
    fill(&c.member(0).client_url(), 50, 500).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let b = backups(&c, file_store(&root), "", zstd());
    let m = b.full(None).await.expect("backup");
    let path = root.join(&m.object);
    let mut bytes = std::fs::read(&path).expect("object");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).expect("corrupt");
    let err = b.verify(&m.id).await.expect_err("corrupt");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("is corrupt"), "{err}");
    let (plan, _) = single_member_plan(&dir.path().join("restored"));
    let err = b
        .restore(&Target::Id(m.id.clone()), &plan)
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(!dir.path().join("restored/r1").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_daemons_back_up_each_slot_once_take_increments_and_serve_metrics() {
    let c = cluster(Kind::Cairn, 1);
    fill(&c.member(0).client_url(), 20, 100).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = file_store(&dir.path().join("store"));
    let a = backups(&c, store.clone(), "", zstd());
    let b = backups(&c, store, "", zstd());
    let every_2s = || Schedule::parse("*/2 * * * * *").expect("schedule");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("addr");
    let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (ra, rb) = (runs.clone(), runs.clone());
    let daemon_a = cairn_backupd::run_daemon(
        &a,
        DaemonOptions {
            schedule: every_2s(),
            listener,
            prune: false,
            incremental: Some(Duration::from_millis(300)),
        },
        move |r| ra.lock().expect("runs").push(r.is_ok()),
        stopped(stop_rx.clone()),
    );
    let daemon_b = cairn_backupd::run_daemon(
        &b,
        DaemonOptions {
            schedule: every_2s(),
            listener: listener_b,
            prune: false,
            incremental: None,
        },
        move |r| rb.lock().expect("runs").push(r.is_ok()),
        stopped(stop_rx),
    );
    let mut writer = etcd_client::Client::connect([c.member(0).client_url()], None)
        .await
        .expect("connect");
    let check = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let listed = a.list().await.expect("list");
            let fulls = listed
                .iter()
                .filter(|m| m.kind == cairn_backupd::Kind::Full)
                .count();
            let increments = listed.len() - fulls;
            if fulls >= 3 && increments >= 1 {
                break;
            }
            if fulls >= 1 {
                writer.put("/during", "x", None).await.expect("put");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "3 backups within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let metrics = http_get(address, "/metrics").await;
        assert!(
            metrics.contains("cairn_backup_last_success_timestamp_seconds"),
            "{metrics}"
        );
        assert!(metrics.contains("cairn_backup_failures_total"), "{metrics}");
        let health = http_get(address, "/healthz").await;
        assert!(
            health.starts_with("HTTP/1.1 200") || health.starts_with("HTTP/1.1 503"),
            "{health}"
        );
        stop_tx.send(true).expect("stop");
    };
    let (ra, rb, ()) = tokio::join!(daemon_a, daemon_b, check);
    ra.expect("daemon a");
    rb.expect("daemon b");
    let listed = a.list().await.expect("list");
    let mut slots: Vec<_> = listed.iter().filter_map(|m| m.slot).collect();
    let n = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), n, "one backup per slot: {listed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slot_that_meets_someone_elses_lock_runs_once_it_is_released() {
    let c = cluster(Kind::Cairn, 1);
    fill(&c.member(0).client_url(), 10, 100).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = file_store(dir.path());
    let b = backups(&c, store.clone(), "", zstd());
    // An operator's `cairn backup now` holds the lock for the first slot.
    let lock = format!("{}/lock.json", b.prefix());
    let held = serde_json::json!({
        "owner": "operator's cairn backup now",
        "until": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
    });
    store
        .put(&lock, serde_json::to_vec(&held).expect("json").into())
        .await
        .expect("lock");
    let schedule = Schedule::parse("*/10 * * * * *").expect("schedule");
    let slot = schedule.next_after(chrono::Utc::now()).expect("slot");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let runs = std::sync::Mutex::new(Vec::new());
    let daemon = cairn_backupd::run_daemon(
        &b,
        DaemonOptions {
            schedule,
            listener,
            prune: false,
            incremental: None,
        },
        |r| {
            runs.lock()
                .expect("runs")
                .push(r.as_ref().map(|m| m.slot).map_err(|e| e.to_string()))
        },
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        },
    );
    let operator = async {
        // The slot comes while the lock is held; the operator's backup ends a second later.
        let after_slot =
            (slot - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
        tokio::time::sleep(after_slot).await;
        store.delete(&lock).await.expect("release");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        while !b
            .list()
            .await
            .expect("list")
            .iter()
            .any(|m| m.slot == Some(slot))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slot was not backed up after the lock was released"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stop_tx.send(true).expect("stop");
    };
    let (done, ()) = tokio::join!(daemon, operator);
    done.expect("daemon");
    assert_eq!(
        *runs.lock().expect("runs"),
        [Ok(Some(slot))],
        "one successful run, no failure"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_behind_its_backups_is_a_diverged_history_not_an_increment() {
    let old = cluster(Kind::Cairn, 1);
    fill(&old.member(0).client_url(), 30, 10).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = file_store(dir.path());
    let b = backups(&old, store.clone(), "", zstd());
    b.full(None).await.expect("full");
    fill(&old.member(0).client_url(), 30, 10).await;
    let chain_end = b.incremental().await.expect("increment").expect("events");
    // The cluster restored from the full backup: same name, an earlier revision, and from
    // here on a history of its own.
    let restored = cluster(Kind::Cairn, 1);
    fill(&restored.member(0).client_url(), 5, 10).await;
    let after = backups(&restored, store, "", zstd());
    let err = after.incremental().await.expect_err("diverged");
    assert!(
        matches!(err, Error::Diverged { backed_up, .. } if backed_up == chain_end.revision),
        "{err}"
    );
    assert!(
        err.to_string().contains("a full backup starts a new chain"),
        "{err}"
    );
    // A full backup is the new chain's base; increments follow it again.
    after.full(None).await.expect("new chain");
    fill(&restored.member(0).client_url(), 5, 10).await;
    assert!(after.incremental().await.expect("increment").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_off_backup_waits_for_the_daemons_run() {
    let c = cluster(Kind::Cairn, 1);
    fill(&c.member(0).client_url(), 10, 100).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = file_store(dir.path());
    let b = backups(&c, store.clone(), "", zstd());
    b.full(None).await.expect("an earlier backup");
    let lock = format!("{}/lock.json", b.prefix());
    let held = serde_json::json!({
        "owner": "the daemon's scheduled run",
        "until": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
    });
    store
        .put(&lock, serde_json::to_vec(&held).expect("json").into())
        .await
        .expect("lock");
    let release = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        store.delete(&lock).await.expect("release");
    };
    let (taken, ()) = tokio::join!(b.full_when_unlocked(Duration::from_secs(30)), release);
    taken.expect("backed up once the lock was free");
    let err = {
        store
            .put(&lock, serde_json::to_vec(&held).expect("json").into())
            .await
            .expect("lock");
        b.full_when_unlocked(Duration::ZERO)
            .await
            .expect_err("held")
    };
    assert!(matches!(err, Error::Locked { .. }), "{err}");
}

async fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("response");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compaction_past_the_last_backup_is_a_reported_gap() {
    let c = cluster(Kind::Etcd, 1);
    let endpoint = c.member(0).client_url();
    fill(&endpoint, 10, 10).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = backups(&c, file_store(dir.path()), "", zstd());
    b.full(None).await.expect("full");
    let mut client = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect");
    for i in 0..5 {
        client.put(format!("/x/{i}"), "v", None).await.expect("put");
    }
    let (now, _) = hash_kv(&endpoint, 0).await;
    client.compact(now, None).await.expect("compact");
    let err = b.incremental().await.expect_err("gap");
    assert!(matches!(err, Error::Compacted { .. }), "{err}");
    assert!(err.to_string().contains("a full backup is needed"), "{err}");
    b.full(None)
        .await
        .expect("a new full backup starts a new chain");
    assert!(b.incremental().await.expect("nothing new").is_none());
}
