//! `kill -9` under write load: every acknowledged write is there after restart, unchanged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::GetOptions;
use parking_lot::Mutex;

use super::{cairn, client};

const WRITERS: usize = 16;
const ACKS_BEFORE_KILL: usize = 1500;
const ROUNDS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let mut member = cairn();
    // key -> (value, mod_revision) of every acknowledged put, over all rounds.
    let acked: Arc<Mutex<BTreeMap<String, (String, i64)>>> = Arc::default();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let mut c = client(&member).await;
            let (stop, count, acked) = (stop.clone(), count.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                // Bounded: a writer stops at the kill, or after this many writes at the most.
                for n in 0..10_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (k, v) = (
                        format!("r{round}/w{w}/{n}"),
                        format!("value-{round}-{w}-{n}"),
                    );
                    match c.put(k.as_str(), v.as_str(), None).await {
                        Ok(resp) => {
                            let rev = resp.header().expect("header").revision();
                            acked.lock().insert(k, (v, rev));
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
            }));
        }
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while count.load(Ordering::Relaxed) < ACKS_BEFORE_KILL {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "writers reached {ACKS_BEFORE_KILL} acks; log:\n{}",
            member.log()
        );
        member.kill9().expect("kill -9");
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.expect("writer task");
        }
        member.restart().expect("restart after kill -9");

        let mut c = client(&member).await;
        let all = c
            .get("r", Some(GetOptions::new().with_prefix()))
            .await
            .expect("read back");
        let found: BTreeMap<String, (String, i64)> = all
            .kvs()
            .iter()
            .map(|kv| {
                let k = String::from_utf8_lossy(kv.key()).into_owned();
                (
                    k,
                    (
                        String::from_utf8_lossy(kv.value()).into_owned(),
                        kv.mod_revision(),
                    ),
                )
            })
            .collect();
        let acked = acked.lock();
        let missing: Vec<&String> = acked
            .iter()
            .filter(|(k, v)| found.get(*k) != Some(v))
            .map(|(k, _)| k)
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} of {} acknowledged writes missing or changed after kill -9, e.g. {:?}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)]
        );
        let max_acked = acked.values().map(|(_, r)| *r).max().unwrap_or(0);
        assert!(all.header().expect("header").revision() >= max_acked);
    }
}
