//! Txn: compares decide a branch (recursively for nested txns), the chosen ops are checked
//! before anything is written, then run in order against one write txn.

use std::cmp::Ordering;

use super::range::range;
use super::view::ReadView;
use crate::mvcc::{KeyRange, RangeOptions, WriteTxn};
use crate::proto::etcdserverpb::compare::{CompareResult, CompareTarget, TargetUnion};
use crate::proto::etcdserverpb::{
    request_op::Request, response_op::Response, Compare, DeleteRangeRequest, DeleteRangeResponse,
    PutRequest, PutResponse, ResponseHeader, ResponseOp, TxnRequest, TxnResponse,
};
use crate::proto::mvccpb::KeyValue;
use crate::{Error, EtcdError};

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let target = CompareTarget::try_from(c.target).unwrap_or(CompareTarget::Version);
    let ord = match target {
        CompareTarget::Value => {
            let want: &[u8] = match &c.target_union {
                Some(TargetUnion::Value(v)) => v,
                _ => &[],
            };
            kv.value.as_slice().cmp(want)
        }
        _ => {
            let want = match (&c.target_union, target) {
                (Some(TargetUnion::Version(v)), CompareTarget::Version)
                | (Some(TargetUnion::CreateRevision(v)), CompareTarget::Create)
                | (Some(TargetUnion::ModRevision(v)), CompareTarget::Mod)
                | (Some(TargetUnion::Lease(v)), CompareTarget::Lease) => *v,
                _ => 0,
            };
            let have = match target {
                CompareTarget::Version => kv.version,
                CompareTarget::Create => kv.create_revision,
                CompareTarget::Mod => kv.mod_revision,
                _ => kv.lease,
            };
            have.cmp(&want)
        }
    };
    match CompareResult::try_from(c.result) {
        Ok(CompareResult::Equal) => ord == Ordering::Equal,
        Ok(CompareResult::NotEqual) => ord != Ordering::Equal,
        Ok(CompareResult::Greater) => ord == Ordering::Greater,
        Ok(CompareResult::Less) => ord == Ordering::Less,
        Err(_) => true,
    }
}

/// One compare over its key or range: every key must satisfy it; a missing key compares as a
/// zero key-value, except that a VALUE compare on a missing key always fails.
fn apply_compare(view: &impl ReadView, c: &Compare) -> bool {
    let Ok(res) = view.range(
        &KeyRange::new(&c.key, &c.range_end),
        &RangeOptions::default(),
    ) else {
        return false;
    };
    if res.kvs.is_empty() {
        return c.target != CompareTarget::Value as i32 && compare_kv(c, &KeyValue::default());
    }
    res.kvs.iter().all(|kv| compare_kv(c, kv))
}

/// The branch taken by `r` and, depth first, by every nested txn on that branch.
pub fn decide(view: &impl ReadView, r: &TxnRequest) -> Vec<bool> {
    let mut path = Vec::new();
    decide_into(view, r, &mut path);
    path
}

fn decide_into(view: &impl ReadView, r: &TxnRequest, path: &mut Vec<bool>) {
    let ok = r.compare.iter().all(|c| apply_compare(view, c));
    path.push(ok);
    for op in if ok { &r.success } else { &r.failure } {
        if let Some(Request::RequestTxn(t)) = &op.request {
            decide_into(view, t, path);
        }
    }
}

/// Checks of the ops on the chosen branches that need the store: reads at a valid revision,
/// `ignore_value`/`ignore_lease` puts on existing keys. Nothing is written before these pass.
pub fn check_ops(view: &impl ReadView, r: &TxnRequest, path: &[bool]) -> Result<usize, Error> {
    let mut used = 1;
    for op in if path[0] { &r.success } else { &r.failure } {
        match &op.request {
            Some(Request::RequestRange(q)) if q.revision > 0 => {
                if q.revision > view.revision() {
                    return Err(Error::Etcd(EtcdError::FutureRevision));
                }
                if q.revision < view.compact_revision() {
                    return Err(Error::Etcd(EtcdError::Compacted));
                }
            }
            Some(Request::RequestPut(p)) => {
                if p.ignore_value || p.ignore_lease {
                    let found =
                        view.range(&KeyRange::new(&p.key, &[]), &RangeOptions::default())?;
                    if found.kvs.is_empty() {
                        return Err(Error::Etcd(EtcdError::KeyNotFound));
                    }
                }
                if p.lease != 0 && !view.lease_exists(p.lease) {
                    return Err(Error::Etcd(EtcdError::LeaseNotFound));
                }
            }
            Some(Request::RequestTxn(t)) => used += check_ops(view, t, &path[used..])?,
            _ => {}
        }
    }
    Ok(used)
}

/// Put through `txn`, as etcd's applier (lease check, prev_kv, ignore_value, ignore_lease).
pub fn put(txn: &mut WriteTxn<'_>, p: &PutRequest) -> Result<PutResponse, Error> {
    if p.lease != 0 && !txn.leases().contains(p.lease) {
        return Err(Error::Etcd(EtcdError::LeaseNotFound));
    }
    let mut value = p.value.clone();
    let mut lease = p.lease;
    let mut prev = None;
    if p.prev_kv || p.ignore_value || p.ignore_lease {
        let found = txn.range(&KeyRange::new(&p.key, &[]), &RangeOptions::default())?;
        prev = found.kvs.into_iter().next();
        if (p.ignore_value || p.ignore_lease) && prev.is_none() {
            return Err(Error::Etcd(EtcdError::KeyNotFound));
        }
    }
    if let Some(prev) = &prev {
        if p.ignore_value {
            value = prev.value.clone();
        }
        if p.ignore_lease {
            lease = prev.lease;
        }
    }
    let rev = txn.put(&p.key, value, lease);
    Ok(PutResponse {
        header: Some(ResponseHeader {
            revision: rev,
            ..Default::default()
        }),
        prev_kv: if p.prev_kv { prev } else { None },
    })
}

/// DeleteRange through `txn`, with the previous key-values when asked.
pub fn delete_range(
    txn: &mut WriteTxn<'_>,
    d: &DeleteRangeRequest,
) -> Result<DeleteRangeResponse, Error> {
    let keys = KeyRange::new(&d.key, &d.range_end);
    let prev_kvs = if d.prev_kv {
        txn.range(&keys, &RangeOptions::default())?.kvs
    } else {
        Vec::new()
    };
    let (deleted, rev) = txn.delete_range(&keys);
    Ok(DeleteRangeResponse {
        header: Some(ResponseHeader {
            revision: rev,
            ..Default::default()
        }),
        deleted,
        prev_kvs,
    })
}

/// Runs a txn that writes: decide, check, then execute the chosen ops in order.
pub fn write(txn: &mut WriteTxn<'_>, r: &TxnRequest) -> Result<TxnResponse, Error> {
    let path = decide(txn, r);
    check_ops(txn, r, &path)?;
    let mut path = path.as_slice();
    let mut resp = execute(txn, r, &mut path)?;
    if let Some(h) = resp.header.as_mut() {
        h.revision = txn.read_revision();
    }
    Ok(resp)
}

fn execute(
    txn: &mut WriteTxn<'_>,
    r: &TxnRequest,
    path: &mut &[bool],
) -> Result<TxnResponse, Error> {
    let succeeded = path[0];
    *path = &path[1..];
    let mut responses = Vec::new();
    for op in if succeeded { &r.success } else { &r.failure } {
        let response = match &op.request {
            Some(Request::RequestRange(q)) => Response::ResponseRange(range(txn, q)?),
            Some(Request::RequestPut(p)) => Response::ResponsePut(put(txn, p)?),
            Some(Request::RequestDeleteRange(d)) => {
                Response::ResponseDeleteRange(delete_range(txn, d)?)
            }
            Some(Request::RequestTxn(t)) => Response::ResponseTxn(execute(txn, t, path)?),
            None => return Err(Error::Etcd(EtcdError::KeyNotFound)),
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    Ok(TxnResponse {
        header: Some(ResponseHeader::default()),
        succeeded,
        responses,
    })
}

/// Runs a txn whose every branch only reads, against a committed read view.
pub fn read_only(view: &impl ReadView, r: &TxnRequest) -> Result<TxnResponse, Error> {
    let path = decide(view, r);
    check_ops(view, r, &path)?;
    let mut path = path.as_slice();
    let mut resp = read_branch(view, r, &mut path)?;
    if let Some(h) = resp.header.as_mut() {
        h.revision = view.revision();
    }
    Ok(resp)
}

fn read_branch(
    view: &impl ReadView,
    r: &TxnRequest,
    path: &mut &[bool],
) -> Result<TxnResponse, Error> {
    let succeeded = path[0];
    *path = &path[1..];
    let mut responses = Vec::new();
    for op in if succeeded { &r.success } else { &r.failure } {
        let response = match &op.request {
            Some(Request::RequestRange(q)) => Response::ResponseRange(range(view, q)?),
            Some(Request::RequestTxn(t)) => Response::ResponseTxn(read_branch(view, t, path)?),
            _ => return Err(Error::Etcd(EtcdError::KeyNotFound)),
        };
        responses.push(ResponseOp {
            response: Some(response),
        });
    }
    Ok(TxnResponse {
        header: Some(ResponseHeader::default()),
        succeeded,
        responses,
    })
}
