//! Request checks done before a request is proposed, with etcd's rules and errors.

use std::collections::HashSet;

use crate::mvcc::KeyRange;
use crate::proto::etcdserverpb::{
    request_op::Request, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use crate::{Error, EtcdError};

/// Range: a key is required, and sort options must be etcd's.
pub fn check_range(r: &RangeRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        return Err(Error::Etcd(EtcdError::EmptyKey));
    }
    if !(0..=2).contains(&r.sort_order) || !(0..=4).contains(&r.sort_target) {
        return Err(Error::Etcd(EtcdError::InvalidSortOption));
    }
    Ok(())
}

/// Put: a key is required; `ignore_value`/`ignore_lease` exclude a value/lease.
pub fn check_put(r: &PutRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        return Err(Error::Etcd(EtcdError::EmptyKey));
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(Error::Etcd(EtcdError::ValueProvided));
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(Error::Etcd(EtcdError::LeaseProvided));
    }
    Ok(())
}

/// DeleteRange: a key is required.
pub fn check_delete(r: &DeleteRangeRequest) -> Result<(), Error> {
    if r.key.is_empty() {
        return Err(Error::Etcd(EtcdError::EmptyKey));
    }
    Ok(())
}

/// Txn: op-count limit at every level, keys on compares, each op valid, and no key written twice.
pub fn check_txn(r: &TxnRequest, max_ops: usize) -> Result<(), Error> {
    check_txn_ops(r, max_ops)?;
    check_intervals(&r.success)?;
    check_intervals(&r.failure)?;
    Ok(())
}

fn check_txn_ops(r: &TxnRequest, max_ops: usize) -> Result<(), Error> {
    if r.compare.len().max(r.success.len()).max(r.failure.len()) > max_ops {
        return Err(Error::Etcd(EtcdError::TooManyOps));
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(Error::Etcd(EtcdError::EmptyKey));
    }
    for op in r.success.iter().chain(&r.failure) {
        match &op.request {
            Some(Request::RequestRange(q)) => check_range(q)?,
            Some(Request::RequestPut(q)) => check_put(q)?,
            Some(Request::RequestDeleteRange(q)) => check_delete(q)?,
            Some(Request::RequestTxn(q)) => check_txn_ops(q, max_ops)?,
            None => return Err(Error::Etcd(EtcdError::KeyNotFound)),
        }
    }
    Ok(())
}

/// Puts and deletes of one branch (nested txns included), as etcd's `checkIntervals`: a key may
/// be put once, and never both put and deleted; a nested txn's then/else may put the same key.
fn check_intervals(ops: &[RequestOp]) -> Result<(HashSet<Vec<u8>>, Vec<KeyRange>), Error> {
    let mut dels: Vec<KeyRange> = ops
        .iter()
        .filter_map(|op| match &op.request {
            Some(Request::RequestDeleteRange(d)) => Some(KeyRange::new(&d.key, &d.range_end)),
            _ => None,
        })
        .collect();
    let deleted = |dels: &[KeyRange], k: &[u8]| dels.iter().any(|d| d.contains(k));
    let mut puts: HashSet<Vec<u8>> = HashSet::new();
    for op in ops {
        let Some(Request::RequestTxn(t)) = &op.request else {
            continue;
        };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for k in &puts_then {
            if puts.contains(k) || deleted(&dels, k) {
                return Err(Error::Etcd(EtcdError::DuplicateKey));
            }
            puts.insert(k.clone());
        }
        for k in puts_else {
            if (puts.contains(&k) && !puts_then.contains(&k)) || deleted(&dels, &k) {
                return Err(Error::Etcd(EtcdError::DuplicateKey));
            }
            puts.insert(k);
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let Some(Request::RequestPut(p)) = &op.request else {
            continue;
        };
        if puts.contains(&p.key) || deleted(&dels, &p.key) {
            return Err(Error::Etcd(EtcdError::DuplicateKey));
        }
        puts.insert(p.key.clone());
    }
    Ok((puts, dels))
}

/// Whether a txn only reads (no put or delete on either branch, at any depth).
pub fn is_read_only(r: &TxnRequest) -> bool {
    r.success
        .iter()
        .chain(&r.failure)
        .all(|op| match &op.request {
            Some(Request::RequestRange(_)) | None => true,
            Some(Request::RequestTxn(t)) => is_read_only(t),
            Some(_) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestPut(PutRequest {
                key: k.into(),
                ..Default::default()
            })),
        }
    }
    fn del(k: &str, end: &str) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestDeleteRange(DeleteRangeRequest {
                key: k.into(),
                range_end: end.into(),
                ..Default::default()
            })),
        }
    }
    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> RequestOp {
        RequestOp {
            request: Some(Request::RequestTxn(TxnRequest {
                compare: vec![],
                success,
                failure,
            })),
        }
    }
    fn check(success: Vec<RequestOp>) -> Result<(), Error> {
        check_txn(
            &TxnRequest {
                compare: vec![],
                success,
                failure: vec![],
            },
            128,
        )
    }

    #[test]
    fn duplicate_writes_are_refused_like_etcd() {
        assert!(matches!(
            check(vec![put("a"), put("a")]),
            Err(Error::Etcd(EtcdError::DuplicateKey))
        ));
        assert!(matches!(
            check(vec![put("b"), del("a", "c")]),
            Err(Error::Etcd(EtcdError::DuplicateKey))
        ));
        assert!(matches!(
            check(vec![put("a"), del("\0", "\0")]),
            Err(Error::Etcd(EtcdError::DuplicateKey))
        ));
        assert!(check(vec![put("a"), put("b"), del("c", "")]).is_ok());
        // then/else of a nested txn are exclusive: both may put the same key.
        assert!(check(vec![txn(vec![put("a")], vec![put("a")])]).is_ok());
        assert!(matches!(
            check(vec![txn(vec![put("a")], vec![]), put("a")]),
            Err(Error::Etcd(EtcdError::DuplicateKey))
        ));
    }

    #[test]
    fn op_limits_apply_at_every_level() {
        let many: Vec<RequestOp> = (0..129).map(|i| put(&i.to_string())).collect();
        assert!(matches!(
            check(many.clone()),
            Err(Error::Etcd(EtcdError::TooManyOps))
        ));
        assert!(matches!(
            check(vec![txn(many, vec![])]),
            Err(Error::Etcd(EtcdError::TooManyOps))
        ));
        assert!(matches!(
            check(vec![RequestOp { request: None }]),
            Err(Error::Etcd(EtcdError::KeyNotFound))
        ));
    }
}
