//! Watch: etcdctl 3.4's watch output equals etcd's (history, live, prefix, prev-kv, after
//! compaction); under concurrent writers every watcher — a slow one and ones that fall out of the
//! in-memory buffer included — sees exactly the committed event sequence.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cairn_testkit::Member;
use etcd_client::{Compare, CompareOp, EventType, Txn, TxnOp, WatchFilterType, WatchOptions};
use parking_lot::Mutex;

use super::{assert_same, cairn, cairn_builder, etcd};

const WAIT: Duration = Duration::from_secs(30);

fn ctl(m: &Member, args: &[&str]) -> String {
    let out = m.etcdctl(args).expect("etcdctl");
    assert!(out.success(), "etcdctl {args:?}: {}", out.stderr);
    out.stdout
}

fn revision(m: &Member) -> i64 {
    let out = ctl(m, &["get", "nothing-here", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["header"]["revision"].as_i64().expect("revision")
}

/// The next response on a watch stream, within the timeout.
async fn next(s: &mut etcd_client::WatchStream) -> etcd_client::WatchResponse {
    tokio::time::timeout(WAIT, s.message())
        .await
        .expect("a watch response within the timeout")
        .expect("watch stream ok")
        .expect("watch stream open")
}

fn events(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| *l == "PUT" || *l == "DELETE")
        .count()
}

/// Runs `etcdctl watch ARGS` until it printed `n` events, then stops it.
fn watch_n(m: &Member, args: &[&str], n: usize, writes: impl FnOnce()) -> Vec<String> {
    let mut argv = vec!["watch"];
    argv.extend_from_slice(args);
    let mut w = m.etcdctl_background(&argv).expect("start etcdctl watch");
    writes();
    w.wait_for(WAIT, |lines| events(lines) >= n)
        .expect("watch events")
        .to_vec()
}

fn transcript(m: &Member) -> Vec<String> {
    let mut t = Vec::new();
    for args in [
        &["put", "a", "1"][..],
        &["put", "a", "2"],
        &["put", "b", "x"],
        &["del", "a"],
        &["put", "ab", "y"],
        &["put", "a", "3"],
    ] {
        ctl(m, args);
    }
    let txn = "\nput a 4\nput ac z\n\n\n";
    assert!(m
        .etcdctl_stdin(&["txn"], txn.as_bytes())
        .expect("txn")
        .success());
    t.push(format!(
        "history a: {:?}",
        watch_n(m, &["a", "--rev", "1"], 5, || {})
    ));
    t.push(format!(
        "prefix+prev: {:?}",
        watch_n(m, &["--prefix", "a", "--rev", "1", "--prev-kv"], 7, || {})
    ));
    t.push(format!(
        "range: {:?}",
        watch_n(m, &["a", "b", "--rev", "3"], 5, || {})
    ));
    let from = (revision(m) + 1).to_string();
    let live = watch_n(
        m,
        &["--prefix", "k", "--rev", &from, "--prev-kv"],
        5,
        || {
            for args in [
                &["put", "k1", "v1"][..],
                &["put", "k2", "v2"],
                &["put", "k1", "v1b"],
                &["del", "k", "--prefix"],
            ] {
                ctl(m, args);
            }
        },
    );
    t.push(format!("live: {live:?}"));
    ctl(m, &["compaction", "5"]);
    let gone = m
        .etcdctl_background(&["watch", "a", "--rev", "2"])
        .expect("watch");
    let (code, out, err) = gone.finish(WAIT).expect("canceled watch exits");
    let err: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("{\"level\""))
        .collect();
    t.push(format!("compacted: code {code} {out:?} {err:?}"));
    t
}

#[test]
fn etcdctl_watch_matches_etcd() {
    let cairn = cairn();
    let etcd = etcd();
    assert_same("etcdctl watch", &transcript(&cairn), &transcript(&etcd));
}

/// What a writer was told: (revision, position in its txn) → (key, value or None for delete).
type History = BTreeMap<(i64, usize), (String, Option<String>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watcher_sees_exactly_the_committed_events() {
    // A small buffer makes watchers that lag read history from storage.
    let member = cairn_builder()
        .arg("--experimental-watch-event-buffer=64")
        .start()
        .expect("start cairn-server");
    let mut c = super::client(&member).await;
    let start = c
        .get("x", None)
        .await
        .expect("get")
        .header()
        .expect("header")
        .revision()
        + 1;

    let opts = || WatchOptions::new().with_prefix().with_start_revision(start);
    let mut watchers = Vec::new();
    for _ in 0..20 {
        watchers.push(c.watch("s/", Some(opts())).await.expect("watch"));
    }
    let mut slow = c.watch("s/", Some(opts())).await.expect("slow watch");

    let history: Arc<Mutex<History>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut c = super::client(&member).await;
        let history = history.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..300u32 {
                let key = format!("s/{}", (n * 7 + w) % 10);
                match n % 5 {
                    0 => {
                        let r = c.delete(key.as_str(), None).await.expect("delete");
                        if r.deleted() > 0 {
                            let rev = r.header().expect("header").revision();
                            history.lock().insert((rev, 0), (key, None));
                        }
                    }
                    1 => {
                        let (k2, v) = (format!("s/t{w}"), format!("{w}-{n}"));
                        let txn = Txn::new()
                            .when([Compare::version("nothing", CompareOp::Equal, 0)])
                            .and_then([
                                TxnOp::put(key.as_str(), v.as_str(), None),
                                TxnOp::put(k2.as_str(), v.as_str(), None),
                            ]);
                        let r = c.txn(txn).await.expect("txn");
                        let rev = r.header().expect("header").revision();
                        let mut h = history.lock();
                        h.insert((rev, 0), (key, Some(v.clone())));
                        h.insert((rev, 1), (k2, Some(v)));
                    }
                    _ => {
                        let v = format!("{w}-{n}");
                        let r = c.put(key.as_str(), v.as_str(), None).await.expect("put");
                        let rev = r.header().expect("header").revision();
                        history.lock().insert((rev, 0), (key, Some(v)));
                    }
                }
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    let want: Vec<(i64, String, Option<String>)> = history
        .lock()
        .iter()
        .map(|((rev, _), (k, v))| (*rev, k.clone(), v.clone()))
        .collect();
    let last = want.last().expect("writes happened").0;

    async fn collect(
        stream: &mut etcd_client::WatchStream,
        last: i64,
    ) -> Vec<(i64, String, Option<String>)> {
        let mut got = Vec::new();
        while got
            .last()
            .is_none_or(|(rev, _, _): &(i64, String, Option<String>)| *rev < last)
        {
            let resp = tokio::time::timeout(WAIT, stream.message())
                .await
                .expect("events within the timeout")
                .expect("stream ok")
                .expect("stream open");
            for e in resp.events() {
                let kv = e.kv().expect("kv");
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let value = match e.event_type() {
                    EventType::Put => Some(String::from_utf8_lossy(kv.value()).into_owned()),
                    EventType::Delete => None,
                };
                got.push((kv.mod_revision(), key, value));
            }
        }
        got
    }
    // The slow watcher read nothing while the writers ran; it catches up now.
    assert_eq!(collect(&mut slow, last).await, want, "slow watcher");
    for (i, w) in watchers.iter_mut().enumerate() {
        assert_eq!(collect(w, last).await, want, "watcher {i}");
    }
}

#[tokio::test]
async fn watch_options_match_etcd() {
    async fn run(m: &Member) -> Vec<String> {
        let mut c = super::client(m).await;
        let mut t = Vec::new();
        let start = c
            .put("f", "0", None)
            .await
            .expect("put")
            .header()
            .expect("h")
            .revision();
        let mut s = c
            .watch(
                "f",
                Some(
                    WatchOptions::new()
                        .with_start_revision(start)
                        .with_filters([WatchFilterType::NoPut])
                        .with_prev_key(),
                ),
            )
            .await
            .expect("watch");
        let created = next(&mut s).await;
        t.push(format!(
            "created: {} id {}",
            created.created(),
            created.watch_id()
        ));
        c.put("f", "1", None).await.expect("put");
        c.delete("f", None).await.expect("del");
        let mut seen = 0;
        while seen < 1 {
            let r = next(&mut s).await;
            for e in r.events() {
                seen += 1;
                t.push(format!(
                    "nput: {:?} {} prev {:?}",
                    e.event_type(),
                    String::from_utf8_lossy(e.kv().expect("kv").key()),
                    e.prev_kv()
                        .map(|p| String::from_utf8_lossy(p.value()).into_owned())
                ));
            }
        }
        s.request_progress().await.expect("progress request");
        loop {
            let r = next(&mut s).await;
            if r.events().is_empty() && !r.canceled() {
                t.push(format!(
                    "progress: watch_id {} rev {}",
                    r.watch_id(),
                    r.header().expect("h").revision()
                ));
                break;
            }
        }
        s.cancel(created.watch_id()).await.expect("cancel");
        loop {
            let r = next(&mut s).await;
            if r.canceled() {
                t.push(format!("canceled: {}", r.canceled()));
                break;
            }
        }
        t
    }
    let cairn = cairn();
    let etcd = etcd();
    let (on_cairn, on_etcd) = (run(&cairn).await, run(&etcd).await);
    assert_same("watch options", &on_cairn, &on_etcd);
}

#[tokio::test]
async fn idle_watchers_get_progress_notifications_like_etcd() {
    async fn run(m: &Member) -> Vec<String> {
        let mut c = super::client(m).await;
        let rev = c
            .put("p", "1", None)
            .await
            .expect("put")
            .header()
            .expect("h")
            .revision();
        let mut s = c
            .watch("p", Some(WatchOptions::new().with_progress_notify()))
            .await
            .expect("watch");
        let created = next(&mut s).await;
        let mut t = vec![format!("created {}", created.created())];
        let note = tokio::time::timeout(WAIT, s.message())
            .await
            .expect("a progress notification within the timeout")
            .expect("ok")
            .expect("open");
        t.push(format!(
            "progress: events {} canceled {} at current revision {}",
            note.events().len(),
            note.canceled(),
            note.header().expect("h").revision() == rev
        ));
        t
    }
    let interval = "--experimental-watch-progress-notify-interval=300ms";
    let cairn = cairn_builder().arg(interval).start().expect("cairn");
    let etcd = cairn_testkit::Member::builder(cairn_testkit::Kind::Etcd)
        .arg(interval)
        .start()
        .expect("etcd");
    let (on_cairn, on_etcd) = (run(&cairn).await, run(&etcd).await);
    assert_same("progress notify", &on_cairn, &on_etcd);
}

#[tokio::test]
async fn large_responses_are_fragmented_like_etcd() {
    async fn run(m: &Member) -> Vec<String> {
        let mut c = super::client(m).await;
        let value = vec![b'x'; 700 * 1024];
        let mut first = 0;
        for k in ["big/1", "big/2", "big/3"] {
            let rev = c
                .put(k, value.clone(), None)
                .await
                .expect("put")
                .header()
                .expect("h")
                .revision();
            if first == 0 {
                first = rev;
            }
        }
        let mut t = Vec::new();
        for fragment in [false, true] {
            let mut opts = WatchOptions::new().with_prefix().with_start_revision(first);
            if fragment {
                opts = opts.with_fragment();
            }
            let mut s = c.watch("big/", Some(opts)).await.expect("watch");
            let mut sizes = Vec::new();
            while sizes.iter().sum::<usize>() < 3 {
                let r = next(&mut s).await;
                if !r.events().is_empty() {
                    sizes.push(r.events().len());
                }
            }
            t.push(format!(
                "fragment {fragment}: events per response {sizes:?}"
            ));
        }
        t
    }
    let cairn = cairn();
    let etcd = etcd();
    let (on_cairn, on_etcd) = (run(&cairn).await, run(&etcd).await);
    assert_same("watch fragments", &on_cairn, &on_etcd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_never_split_a_revision() {
    // With a tiny buffer every watcher below reads stored history: the delete of all keys is one
    // revision with more events than one read step takes.
    let member = cairn_builder()
        .arg("--experimental-watch-event-buffer=16")
        .start()
        .expect("start cairn-server");
    let mut c = super::client(&member).await;
    let start = c
        .put("h/0000", "v", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    for i in 1..1500 {
        c.put(format!("h/{i:04}"), "v", None).await.expect("put");
    }
    let deleted = c
        .delete("h/", Some(etcd_client::DeleteOptions::new().with_prefix()))
        .await
        .expect("delete");
    assert_eq!(deleted.deleted(), 1500);
    let delete_rev = deleted.header().expect("h").revision();
    let mut s = c
        .watch(
            "h/",
            Some(WatchOptions::new().with_prefix().with_start_revision(start)),
        )
        .await
        .expect("watch");
    let (mut puts, mut deletes) = (0, 0);
    while puts + deletes < 3000 {
        let r = next(&mut s).await;
        for e in r.events() {
            match e.event_type() {
                EventType::Put => puts += 1,
                EventType::Delete => {
                    assert_eq!(e.kv().expect("kv").mod_revision(), delete_rev);
                    deletes += 1;
                }
            }
        }
    }
    assert_eq!((puts, deletes), (1500, 1500));
}
