//! Property test: random Put/Delete/Txn/Compact/Range sequences, with physical compactions and
//! restarts from the backend in between, must match a model that keeps the whole keyspace at
//! every revision.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::{apply, range, txn, Applied, Snapshot};
use crate::mvcc::{Backend, MemBackend, MvccStore, SledBackend};
use crate::proto::cairnpb::{internal_request::Request, InternalRequest};
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::{
    request_op, CompactionRequest, Compare, DeleteRangeRequest, PutRequest, RangeRequest,
    RequestOp, TxnRequest,
};
use crate::proto::mvccpb::KeyValue;
use crate::{Error, EtcdError};

type State = BTreeMap<Vec<u8>, KeyValue>;

/// The keyspace after every revision; `states[r]` is the state at revision `r` (index 0 unused).
struct Model {
    states: Vec<State>,
    compacted: i64,
}

impl Model {
    fn new() -> Self {
        Self {
            states: vec![State::new(), State::new()],
            compacted: 0,
        }
    }
    fn rev(&self) -> i64 {
        self.states.len() as i64 - 1
    }
    fn current(&self) -> &State {
        self.states.last().expect("non-empty")
    }
    fn put(next: &mut State, rev: i64, key: &[u8], value: &[u8]) {
        let (create, version) = next
            .get(key)
            .map_or((rev, 1), |kv| (kv.create_revision, kv.version + 1));
        next.insert(
            key.to_vec(),
            KeyValue {
                key: key.to_vec(),
                create_revision: create,
                mod_revision: rev,
                version,
                value: value.to_vec(),
                lease: 0,
            },
        );
    }
    fn in_range(k: &[u8], key: &[u8], end: &[u8]) -> bool {
        match end {
            [] => k == key,
            [0] => k >= key,
            _ => k >= key && k < end,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, u8),
    Delete(u8, Option<u8>),
    /// If key's value equals v: put a, else delete b.
    Txn(u8, u8, u8, u8),
    Compact(i64),
    Range(u8, Option<u8>, i64, i64),
    PhysicalCompact,
    Restart,
}

fn key(k: u8) -> Vec<u8> {
    vec![b'a' + k]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 0u8..4).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (0u8..6, proptest::option::of(0u8..7)).prop_map(|(k, e)| Op::Delete(k, e)),
        2 => (0u8..6, 0u8..4, 0u8..6, 0u8..6).prop_map(|(k, v, a, b)| Op::Txn(k, v, a, b)),
        1 => (0i64..40).prop_map(Op::Compact),
        4 => (0u8..6, proptest::option::of(0u8..7), -1i64..40, 0i64..4)
            .prop_map(|(k, e, r, l)| Op::Range(k, e, r, l)),
        1 => Just(Op::PhysicalCompact),
        1 => Just(Op::Restart),
    ]
}

fn end_of(e: Option<u8>) -> Vec<u8> {
    match e {
        None => vec![],
        Some(6) => vec![0],
        Some(e) => key(e),
    }
}

fn run(backend: Arc<dyn Backend>, ops: &[Op]) -> Result<(), TestCaseError> {
    let (mut store, _) = MvccStore::open(backend.clone()).expect("open");
    let mut model = Model::new();
    let mut jobs = Vec::new();
    for op in ops {
        let index = store.applied_index() + 1;
        let cmd = |r: Request| InternalRequest {
            id: index,
            request: Some(r),
            ..Default::default()
        };
        match op {
            Op::Put(k, v) => {
                let r = PutRequest {
                    key: key(*k),
                    value: vec![*v],
                    prev_kv: true,
                    ..Default::default()
                };
                let (applied, _) = apply(&mut store, index, &cmd(Request::Put(r))).expect("put");
                let Applied::Put(resp) = applied else {
                    panic!("not a put")
                };
                prop_assert_eq!(resp.prev_kv.as_ref(), model.current().get(&key(*k)));
                let mut next = model.current().clone();
                Model::put(&mut next, model.rev() + 1, &key(*k), &[*v]);
                model.states.push(next);
            }
            Op::Delete(k, e) => {
                let end = end_of(*e);
                let r = DeleteRangeRequest {
                    key: key(*k),
                    range_end: end.clone(),
                    prev_kv: true,
                };
                let (applied, _) =
                    apply(&mut store, index, &cmd(Request::DeleteRange(r))).expect("del");
                let Applied::DeleteRange(resp) = applied else {
                    panic!("not a delete")
                };
                let gone: Vec<KeyValue> = model
                    .current()
                    .values()
                    .filter(|kv| Model::in_range(&kv.key, &key(*k), &end))
                    .cloned()
                    .collect();
                prop_assert_eq!(resp.deleted, gone.len() as i64);
                prop_assert_eq!(&resp.prev_kvs, &gone);
                if !gone.is_empty() {
                    let mut next = model.current().clone();
                    for kv in gone {
                        next.remove(&kv.key);
                    }
                    model.states.push(next);
                }
            }
            Op::Txn(k, v, a, b) => {
                let compare = Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Value as i32,
                    key: key(*k),
                    target_union: Some(TargetUnion::Value(vec![*v])),
                    range_end: vec![],
                };
                let put = RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: key(*a),
                        value: vec![9],
                        ..Default::default()
                    })),
                };
                let del = RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(
                        DeleteRangeRequest {
                            key: key(*b),
                            ..Default::default()
                        },
                    )),
                };
                let t = TxnRequest {
                    compare: vec![compare],
                    success: vec![put],
                    failure: vec![del],
                };
                let (applied, _) = apply(&mut store, index, &cmd(Request::Txn(t))).expect("txn");
                let Applied::Txn(resp) = applied else {
                    panic!("not a txn")
                };
                let hit = model
                    .current()
                    .get(&key(*k))
                    .is_some_and(|kv| kv.value == [*v]);
                prop_assert_eq!(resp.succeeded, hit);
                let mut next = model.current().clone();
                if hit {
                    Model::put(&mut next, model.rev() + 1, &key(*a), &[9]);
                    model.states.push(next);
                } else if next.remove(&key(*b)).is_some() {
                    model.states.push(next);
                }
                prop_assert_eq!(resp.header.expect("header").revision, model.rev());
            }
            Op::Compact(r) => {
                let c = CompactionRequest {
                    revision: *r,
                    physical: false,
                };
                let got = apply(&mut store, index, &cmd(Request::Compaction(c)));
                if *r <= model.compacted {
                    prop_assert!(
                        matches!(got, Err(Error::Etcd(EtcdError::Compacted))),
                        "{got:?}"
                    );
                } else if *r > model.rev() {
                    prop_assert!(
                        matches!(got, Err(Error::Etcd(EtcdError::FutureRevision))),
                        "{got:?}"
                    );
                } else {
                    let (_, job) = got.expect("compact");
                    jobs.extend(job);
                    model.compacted = *r;
                }
            }
            Op::Range(k, e, r, limit) => {
                let req = RangeRequest {
                    key: key(*k),
                    range_end: end_of(*e),
                    revision: *r,
                    limit: *limit,
                    ..Default::default()
                };
                let view = Snapshot {
                    store: &store,
                    rev: store.revision(),
                };
                let got = range::range(&view, &req);
                let at = if *r <= 0 { model.rev() } else { *r };
                if at > model.rev() {
                    prop_assert!(
                        matches!(got, Err(Error::Etcd(EtcdError::FutureRevision))),
                        "{got:?}"
                    );
                } else if at < model.compacted {
                    prop_assert!(
                        matches!(got, Err(Error::Etcd(EtcdError::Compacted))),
                        "{got:?}"
                    );
                } else {
                    let got = got.expect("range");
                    let want: Vec<KeyValue> = model.states[at as usize]
                        .values()
                        .filter(|kv| Model::in_range(&kv.key, &key(*k), &end_of(*e)))
                        .cloned()
                        .collect();
                    prop_assert_eq!(got.count, want.len() as i64);
                    let shown = if *limit > 0 {
                        (*limit as usize).min(want.len())
                    } else {
                        want.len()
                    };
                    prop_assert_eq!(&got.kvs, &want[..shown].to_vec());
                    prop_assert_eq!(got.more, shown < want.len());
                    // A read-only txn sees the same.
                    let t = TxnRequest {
                        compare: vec![],
                        success: vec![RequestOp {
                            request: Some(request_op::Request::RequestRange(req.clone())),
                        }],
                        failure: vec![],
                    };
                    let tr = txn::read_only(&view, &t).expect("read-only txn");
                    prop_assert!(tr.succeeded);
                }
            }
            Op::PhysicalCompact => {
                store.persist().expect("persist");
                for job in jobs.drain(..) {
                    job.run(&*backend).expect("compaction job");
                }
            }
            Op::Restart => {
                store.persist().expect("persist");
                drop(store);
                backend.flush().expect("flush");
                let (reopened, pending) = MvccStore::open(backend.clone()).expect("reopen");
                store = reopened;
                jobs.clear();
                jobs.extend(pending);
            }
        }
        prop_assert_eq!(store.revision(), model.rev());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn store_matches_model_in_memory(ops in proptest::collection::vec(op(), 1..80)) {
        run(Arc::new(MemBackend::new()), &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn store_matches_model_on_sled(ops in proptest::collection::vec(op(), 1..80)) {
        run(Arc::new(SledBackend::temporary().expect("sled")), &ops)?;
    }
}
