//! Every KV option through the `etcd-client` crate, run against cairn-server and etcd 3.4 alike:
//! the transcripts (headers without IDs and term, key-values, errors) must be identical.

use std::future::Future;

use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, DeleteOptions, GetOptions, KeyValue, PutOptions,
    SortOrder, SortTarget, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use super::{assert_same, cairn, client, etcd};

fn kv(kv: &KeyValue) -> String {
    format!(
        "{}={} c{} m{} v{} l{}",
        String::from_utf8_lossy(kv.key()),
        String::from_utf8_lossy(kv.value()),
        kv.create_revision(),
        kv.mod_revision(),
        kv.version(),
        kv.lease()
    )
}

fn kvs(list: &[KeyValue]) -> String {
    list.iter().map(kv).collect::<Vec<_>>().join(", ")
}

fn err(e: etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => format!("error {:?}: {}", s.code(), s.message()),
        other => format!("client error: {other}"),
    }
}

fn txn_resp(t: &TxnResponse) -> String {
    let ops: Vec<String> = t
        .op_responses()
        .iter()
        .map(|op| match op {
            TxnOpResponse::Put(p) => format!(
                "put(rev {} prev [{}])",
                p.header().map_or(-1, |h| h.revision()),
                p.prev_key().map(kv).unwrap_or_default()
            ),
            TxnOpResponse::Get(g) => format!(
                "get(rev {} count {} more {} [{}])",
                g.header().map_or(-1, |h| h.revision()),
                g.count(),
                g.more(),
                kvs(g.kvs())
            ),
            TxnOpResponse::Delete(d) => format!(
                "del(rev {} deleted {} [{}])",
                d.header().map_or(-1, |h| h.revision()),
                d.deleted(),
                kvs(d.prev_kvs())
            ),
            TxnOpResponse::Txn(t) => format!("txn({})", txn_resp(t)),
        })
        .collect();
    format!(
        "rev {} succeeded {} [{}]",
        t.header().map_or(-1, |h| h.revision()),
        t.succeeded(),
        ops.join("; ")
    )
}

/// Records what every call answered, in a form that omits only cluster/member IDs and term.
struct Transcript {
    c: Client,
    lines: Vec<String>,
}

impl Transcript {
    async fn put(&mut self, k: &str, v: &str, o: Option<PutOptions>) {
        let line = match self.c.put(k, v, o).await {
            Ok(r) => format!(
                "put {k}: rev {} prev [{}]",
                r.header().map_or(-1, |h| h.revision()),
                r.prev_key().map(kv).unwrap_or_default()
            ),
            Err(e) => format!("put {k}: {}", err(e)),
        };
        self.lines.push(line);
    }

    async fn get(&mut self, k: &str, o: Option<GetOptions>) {
        let line = match self.c.get(k, o).await {
            Ok(r) => format!(
                "get {k}: rev {} count {} more {} [{}]",
                r.header().map_or(-1, |h| h.revision()),
                r.count(),
                r.more(),
                kvs(r.kvs())
            ),
            Err(e) => format!("get {k}: {}", err(e)),
        };
        self.lines.push(line);
    }

    async fn del(&mut self, k: &str, o: Option<DeleteOptions>) {
        let line = match self.c.delete(k, o).await {
            Ok(r) => format!(
                "del {k}: rev {} deleted {} [{}]",
                r.header().map_or(-1, |h| h.revision()),
                r.deleted(),
                kvs(r.prev_kvs())
            ),
            Err(e) => format!("del {k}: {}", err(e)),
        };
        self.lines.push(line);
    }

    async fn txn(&mut self, name: &str, t: Txn) {
        let line = match self.c.txn(t).await {
            Ok(r) => format!("txn {name}: {}", txn_resp(&r)),
            Err(e) => format!("txn {name}: {}", err(e)),
        };
        self.lines.push(line);
    }

    async fn compact(&mut self, rev: i64, physical: bool) {
        let o = physical.then(|| CompactionOptions::new().with_physical());
        let line = match self.c.compact(rev, o).await {
            Ok(r) => format!(
                "compact {rev}: rev {}",
                r.header().map_or(-1, |h| h.revision())
            ),
            Err(e) => format!("compact {rev}: {}", err(e)),
        };
        self.lines.push(line);
    }
}

/// Runs `scenario` on a fresh cairn-server and a fresh etcd and requires identical transcripts.
async fn compare<F, Fut>(what: &str, scenario: F)
where
    F: Fn(Transcript) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let cairn = cairn();
    let etcd = etcd();
    let on_cairn = scenario(Transcript {
        c: client(&cairn).await,
        lines: vec![],
    })
    .await;
    let on_etcd = scenario(Transcript {
        c: client(&etcd).await,
        lines: vec![],
    })
    .await;
    assert!(!on_etcd.lines.is_empty(), "{what}: the scenario ran");
    assert_same(what, &on_cairn.lines, &on_etcd.lines);
}

#[tokio::test]
async fn put_and_range_options_match_etcd() {
    compare("put/range", |mut t| async move {
        t.get("a", None).await;
        for (k, v) in [
            ("a", "1"),
            ("b", "22"),
            ("c", "3"),
            ("a", "4"),
            ("ab", "0"),
            ("d", "55"),
        ] {
            t.put(k, v, None).await;
        }
        t.put("b", "2", Some(PutOptions::new().with_prev_key()))
            .await;
        t.put("b", "", Some(PutOptions::new().with_ignore_value()))
            .await;
        t.put("zz", "", Some(PutOptions::new().with_ignore_value()))
            .await;
        t.put("zz", "x", Some(PutOptions::new().with_ignore_value()))
            .await;
        t.put("zz", "", Some(PutOptions::new().with_ignore_lease()))
            .await;
        t.put(
            "zz",
            "x",
            Some(PutOptions::new().with_ignore_lease().with_lease(5)),
        )
        .await;
        t.put("", "x", None).await;
        t.get("", None).await;
        t.get("a", None).await;
        t.get("a", Some(GetOptions::new().with_prefix())).await;
        t.get("a", Some(GetOptions::new().with_range("c"))).await;
        t.get("b", Some(GetOptions::new().with_from_key())).await;
        t.get("", Some(GetOptions::new().with_all_keys())).await;
        t.get("", Some(GetOptions::new().with_all_keys().with_limit(2)))
            .await;
        t.get("", Some(GetOptions::new().with_all_keys().with_limit(10)))
            .await;
        t.get(
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await;
        t.get("", Some(GetOptions::new().with_all_keys().with_keys_only()))
            .await;
        t.get(
            "",
            Some(GetOptions::new().with_all_keys().with_serializable()),
        )
        .await;
        for target in [
            SortTarget::Key,
            SortTarget::Version,
            SortTarget::Create,
            SortTarget::Mod,
            SortTarget::Value,
        ] {
            for order in [SortOrder::None, SortOrder::Ascend, SortOrder::Descend] {
                t.get(
                    "",
                    Some(GetOptions::new().with_all_keys().with_sort(target, order)),
                )
                .await;
                t.get(
                    "",
                    Some(
                        GetOptions::new()
                            .with_all_keys()
                            .with_sort(target, order)
                            .with_limit(3),
                    ),
                )
                .await;
            }
        }
        for rev in [1, 2, 4, 7, 9, 100] {
            t.get(
                "",
                Some(GetOptions::new().with_all_keys().with_revision(rev)),
            )
            .await;
        }
        t.get(
            "",
            Some(GetOptions::new().with_all_keys().with_min_mod_revision(4)),
        )
        .await;
        t.get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_max_mod_revision(4)
                    .with_limit(1),
            ),
        )
        .await;
        t.get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_min_create_revision(3)
                    .with_max_create_revision(5),
            ),
        )
        .await;
        t.get(
            "",
            Some(
                GetOptions::new()
                    .with_all_keys()
                    .with_max_create_revision(3)
                    .with_count_only(),
            ),
        )
        .await;
        t
    })
    .await;
}

#[tokio::test]
async fn delete_and_compact_match_etcd() {
    compare("delete/compact", |mut t| async move {
        for (k, v) in [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("a", "4"),
            ("ab", "0"),
            ("d", "5"),
            ("e", "6"),
        ] {
            t.put(k, v, None).await;
        }
        t.del("nope", None).await;
        t.del("a", Some(DeleteOptions::new().with_prev_key())).await;
        t.del(
            "a",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await;
        t.del("c", Some(DeleteOptions::new().with_range("e"))).await;
        t.put("a", "again", None).await;
        t.get("a", None).await;
        t.get("a", Some(GetOptions::new().with_revision(4))).await;
        t.del("b", Some(DeleteOptions::new().with_from_key())).await;
        t.get("", Some(GetOptions::new().with_all_keys())).await;
        t.del("", None).await;
        t.compact(100, false).await;
        t.compact(5, false).await;
        t.compact(5, false).await;
        t.compact(4, false).await;
        t.get("", Some(GetOptions::new().with_all_keys().with_revision(4)))
            .await;
        t.get("", Some(GetOptions::new().with_all_keys().with_revision(5)))
            .await;
        t.get("", Some(GetOptions::new().with_all_keys().with_revision(6)))
            .await;
        t.compact(9, true).await;
        t.get("", Some(GetOptions::new().with_all_keys().with_revision(9)))
            .await;
        t.get("", Some(GetOptions::new().with_all_keys().with_revision(8)))
            .await;
        t.put("a", "after", None).await;
        t.get("a", None).await;
        t
    })
    .await;
}

#[tokio::test]
async fn txn_matches_etcd() {
    compare("txn", |mut t| async move {
        t.put("k", "v1", None).await;
        t.put("k", "v2", None).await;
        t.put("other", "o", None).await;
        let cmp = [
            Compare::value("k", CompareOp::Equal, "v2"),
            Compare::value("k", CompareOp::NotEqual, "v2"),
            Compare::value("k", CompareOp::Greater, "v1"),
            Compare::value("k", CompareOp::Less, "v1"),
            Compare::value("missing", CompareOp::NotEqual, "x"),
            Compare::version("k", CompareOp::Equal, 2),
            Compare::version("missing", CompareOp::Equal, 0),
            Compare::version("k", CompareOp::Greater, 5),
            Compare::create_revision("k", CompareOp::Equal, 2),
            Compare::create_revision("missing", CompareOp::Less, 1),
            Compare::mod_revision("k", CompareOp::Less, 4),
            Compare::mod_revision("k", CompareOp::Greater, 3),
            Compare::lease("k", CompareOp::Equal, 0),
            Compare::version("", CompareOp::Greater, 0).with_prefix(),
            Compare::version("a", CompareOp::Greater, 0).with_range("l"),
            Compare::value("a", CompareOp::Equal, "v2").with_range("z"),
        ];
        for (i, c) in cmp.into_iter().enumerate() {
            let txn = Txn::new()
                .when([c])
                .and_then([TxnOp::get("k", None)])
                .or_else([TxnOp::get("other", None)]);
            t.txn(&format!("compare {i}"), txn).await;
        }
        let txn = Txn::new()
            .when([Compare::value("k", CompareOp::Equal, "v2")])
            .and_then([
                TxnOp::put("k", "v3", Some(PutOptions::new().with_prev_key())),
                TxnOp::put("n", "new", None),
                TxnOp::get("", Some(GetOptions::new().with_all_keys())),
                TxnOp::delete("other", Some(DeleteOptions::new().with_prev_key())),
                TxnOp::get("", Some(GetOptions::new().with_all_keys().with_revision(2))),
            ]);
        t.txn("writes", txn).await;
        let nested = Txn::new()
            .when([Compare::version("n", CompareOp::Equal, 1)])
            .and_then([
                TxnOp::txn(
                    Txn::new()
                        .when([Compare::value("k", CompareOp::Equal, "nope")])
                        .and_then([TxnOp::put("x", "1", None)])
                        .or_else([TxnOp::put("y", "2", None), TxnOp::get("k", None)]),
                ),
                TxnOp::put("z", "3", None),
            ]);
        t.txn("nested", nested).await;
        t.txn("empty", Txn::new()).await;
        t.txn(
            "no writes chosen",
            Txn::new()
                .when([Compare::value("k", CompareOp::Equal, "no")])
                .and_then([TxnOp::put("k", "w", None)]),
        )
        .await;
        t.txn(
            "dup",
            Txn::new().and_then([TxnOp::put("a", "1", None), TxnOp::put("a", "2", None)]),
        )
        .await;
        t.txn(
            "put+del overlap",
            Txn::new().and_then([
                TxnOp::put("b", "1", None),
                TxnOp::delete("a", Some(DeleteOptions::new().with_range("c"))),
            ]),
        )
        .await;
        t.txn(
            "then/else same key",
            Txn::new().and_then([TxnOp::txn(
                Txn::new()
                    .and_then([TxnOp::put("q", "1", None)])
                    .or_else([TxnOp::put("q", "2", None)]),
            )]),
        )
        .await;
        let many: Vec<TxnOp> = (0..129)
            .map(|i| TxnOp::put(format!("m{i}"), "v", None))
            .collect();
        t.txn("too many", Txn::new().and_then(many)).await;
        let limit: Vec<TxnOp> = (0..128)
            .map(|i| TxnOp::put(format!("m{i}"), "v", None))
            .collect();
        t.txn("at the limit", Txn::new().and_then(limit)).await;
        t.txn(
            "future read",
            Txn::new().and_then([
                TxnOp::put("f", "1", None),
                TxnOp::get("k", Some(GetOptions::new().with_revision(1000))),
            ]),
        )
        .await;
        t.txn(
            "ignore value on missing",
            Txn::new().and_then([TxnOp::put(
                "missing",
                "",
                Some(PutOptions::new().with_ignore_value()),
            )]),
        )
        .await;
        t.compact(5, false).await;
        t.txn(
            "compacted read",
            Txn::new().and_then([TxnOp::get("k", Some(GetOptions::new().with_revision(3)))]),
        )
        .await;
        t.get(
            "",
            Some(GetOptions::new().with_all_keys().with_count_only()),
        )
        .await;
        t
    })
    .await;
}

#[tokio::test]
async fn oversized_requests_match_etcd() {
    compare("request size", |mut t| async move {
        let big = "x".repeat(1_600_000);
        let fits = "y".repeat(1_500_000);
        t.put("big", &big, None).await;
        t.put("fits", &fits, None).await;
        t.get("fits", Some(GetOptions::new().with_count_only()))
            .await;
        t
    })
    .await;
}
