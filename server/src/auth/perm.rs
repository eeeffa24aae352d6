//! etcd's permission checks: who may read or write which keys, and who is an administrator.
//! A user's permissions are the union of its roles' key ranges; a request's range must lie
//! inside one merged interval of them. The `root` role may do everything.

use crate::mvcc::auth::AuthTable;
use crate::mvcc::lease::LeaseTable;
use crate::proto::authpb::permission::Type as PermType;
use crate::proto::authpb::Permission;
use crate::proto::cairnpb::internal_request::Request;
use crate::proto::etcdserverpb::{request_op, DeleteRangeRequest, PutRequest, TxnRequest};
use crate::EtcdError;

/// The role (and user) etcd treats as the administrator.
pub const ROOT: &str = "root";

/// What a request does to a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Range, Watch, compares, prev_kv.
    Read,
    /// Put, DeleteRange, revoking a lease's keys.
    Write,
}

/// Whether `user` holds the root role.
pub fn has_root(table: &AuthTable, user: &str) -> bool {
    table
        .user(user)
        .is_some_and(|u| u.user.roles.iter().any(|r| r == ROOT))
}

/// etcd's admin check (every Auth change, and UserGet/RoleGet of others).
pub fn admin(table: &AuthTable, user: Option<&str>) -> Result<(), EtcdError> {
    if !table.enabled() {
        return Ok(());
    }
    let user = user.filter(|u| !u.is_empty()).ok_or(EtcdError::UserEmpty)?;
    if table.user(user).is_none() {
        return Err(EtcdError::UserNotFound);
    }
    if !has_root(table, user) {
        return Err(EtcdError::PermissionDenied);
    }
    Ok(())
}

/// Any authenticated user, whatever its permissions (compaction, lease grants).
pub fn authenticated(table: &AuthTable, user: Option<&str>) -> Result<(), EtcdError> {
    if !table.enabled() {
        return Ok(());
    }
    let user = user.filter(|u| !u.is_empty()).ok_or(EtcdError::UserEmpty)?;
    table
        .user(user)
        .map(|_| ())
        .ok_or(EtcdError::PermissionDenied)
}

/// One interval `[start, end)`; `end: None` is unbounded.
type Interval = (Vec<u8>, Option<Vec<u8>>);

/// A permission's interval: a single key (`[key, key\0)`), a range, or from a key on
/// (`range_end` "\0").
fn interval(key: &[u8], range_end: &[u8]) -> Interval {
    match range_end {
        [] => {
            let mut end = key.to_vec();
            end.push(0);
            (key.to_vec(), Some(end))
        }
        [0] => (key.to_vec(), None),
        end => (key.to_vec(), Some(end.to_vec())),
    }
}

fn grants(perm: &Permission, access: Access) -> bool {
    let t = PermType::try_from(perm.perm_type).unwrap_or(PermType::Read);
    matches!(
        (t, access),
        (PermType::Readwrite, _)
            | (PermType::Read, Access::Read)
            | (PermType::Write, Access::Write)
    )
}

/// Whether `user` may `access` keys `[key, range_end)` (etcd's encoding of `range_end`).
pub fn range(
    table: &AuthTable,
    user: Option<&str>,
    key: &[u8],
    range_end: &[u8],
    access: Access,
) -> Result<(), EtcdError> {
    if !table.enabled() {
        return Ok(());
    }
    let user = user.filter(|u| !u.is_empty()).ok_or(EtcdError::UserEmpty)?;
    let Some(u) = table.user(user) else {
        return Err(EtcdError::PermissionDenied);
    };
    if u.user.roles.iter().any(|r| r == ROOT) {
        return Ok(());
    }
    let mut granted: Vec<Interval> = u
        .user
        .roles
        .iter()
        .filter_map(|r| table.role(r))
        .flat_map(|r| &r.key_permission)
        .filter(|p| grants(p, access))
        .map(|p| interval(&p.key, &p.range_end))
        .collect();
    granted.sort();
    // Merge overlapping and touching intervals, then look for one that holds the request.
    let mut merged: Vec<Interval> = Vec::new();
    for (start, end) in granted {
        match merged.last_mut() {
            Some((_, last_end)) if last_end.as_ref().is_none_or(|e| start <= *e) => {
                *last_end = match (last_end.take(), end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            _ => merged.push((start, end)),
        }
    }
    let (want_start, want_end) = interval(key, range_end);
    let inside = merged.iter().any(|(start, end)| {
        *start <= want_start
            && match (end, &want_end) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(e), Some(w)) => w <= e,
            }
    });
    if inside {
        Ok(())
    } else {
        Err(EtcdError::PermissionDenied)
    }
}

/// A put: write on the key, read too with `prev_kv`, and write on every key already attached
/// to its lease (whoever cannot revoke a lease may not attach keys to it).
pub fn put(
    table: &AuthTable,
    user: Option<&str>,
    p: &PutRequest,
    leases: &LeaseTable,
) -> Result<(), EtcdError> {
    range(table, user, &p.key, &[], Access::Write)?;
    if p.lease != 0 {
        lease(table, user, p.lease, leases)?;
    }
    if p.prev_kv {
        range(table, user, &p.key, &[], Access::Read)?;
    }
    Ok(())
}

/// A delete: write on the range, read too with `prev_kv`.
pub fn delete(
    table: &AuthTable,
    user: Option<&str>,
    d: &DeleteRangeRequest,
) -> Result<(), EtcdError> {
    range(table, user, &d.key, &d.range_end, Access::Write)?;
    if d.prev_kv {
        range(table, user, &d.key, &d.range_end, Access::Read)?;
    }
    Ok(())
}

/// A txn: read on every compare, and every operation of both branches (nested txns too).
pub fn txn(
    table: &AuthTable,
    user: Option<&str>,
    t: &TxnRequest,
    leases: &LeaseTable,
) -> Result<(), EtcdError> {
    for c in &t.compare {
        range(table, user, &c.key, &c.range_end, Access::Read)?;
    }
    for op in t.success.iter().chain(&t.failure) {
        match &op.request {
            Some(request_op::Request::RequestRange(r)) => {
                range(table, user, &r.key, &r.range_end, Access::Read)?;
            }
            Some(request_op::Request::RequestPut(p)) => put(table, user, p, leases)?,
            Some(request_op::Request::RequestDeleteRange(d)) => delete(table, user, d)?,
            Some(request_op::Request::RequestTxn(inner)) => txn(table, user, inner, leases)?,
            None => {}
        }
    }
    Ok(())
}

/// Revoking lease `id` deletes its keys: write on every one of them.
pub fn lease(
    table: &AuthTable,
    user: Option<&str>,
    id: i64,
    leases: &LeaseTable,
) -> Result<(), EtcdError> {
    if !table.enabled() {
        return Ok(());
    }
    for key in leases.get(id).iter().flat_map(|l| &l.keys) {
        range(table, user, key, &[], Access::Write)?;
    }
    Ok(())
}

/// The check a committed command must pass, when auth changed after its proposer checked it.
pub fn command(
    table: &AuthTable,
    user: Option<&str>,
    request: &Request,
    leases: &LeaseTable,
) -> Result<(), EtcdError> {
    match request {
        Request::Put(p) => put(table, user, p, leases),
        Request::DeleteRange(d) => delete(table, user, d),
        Request::Txn(t) => txn(table, user, t, leases),
        Request::LeaseRevoke(r) => lease(table, user, r.id, leases),
        Request::Compaction(_) | Request::LeaseGrant(_) => authenticated(table, user),
        Request::AuthEnable(_)
        | Request::AuthDisable(_)
        | Request::UserAdd(_)
        | Request::UserDelete(_)
        | Request::UserChangePassword(_)
        | Request::UserGrantRole(_)
        | Request::UserRevokeRole(_)
        | Request::RoleAdd(_)
        | Request::RoleDelete(_)
        | Request::RoleGrantPermission(_)
        | Request::RoleRevokePermission(_) => admin(table, user),
        // The member's own bookkeeping, and alarms (which etcd 3.4 leaves open).
        Request::Alarm(_)
        | Request::MemberAttributes(_)
        | Request::MemberUpdate(_)
        | Request::TokenKey(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::auth::AuthUser;
    use crate::proto::authpb::{Role, User};

    fn table(perms: &[(PermType, &str, &str)]) -> AuthTable {
        let mut t = AuthTable::default();
        t.put_role(
            "r",
            Role {
                name: b"r".to_vec(),
                key_permission: perms
                    .iter()
                    .map(|(t, k, e)| Permission {
                        perm_type: *t as i32,
                        key: k.as_bytes().to_vec(),
                        range_end: e.as_bytes().to_vec(),
                    })
                    .collect(),
            },
        );
        for (name, roles) in [
            ("u", vec!["r".to_string()]),
            ("root", vec![ROOT.to_string()]),
        ] {
            t.put_user(
                name,
                AuthUser {
                    user: User {
                        name: name.as_bytes().to_vec(),
                        roles,
                        ..Default::default()
                    },
                    changed: 1,
                },
            );
        }
        t.set_enabled(true);
        t
    }

    #[test]
    fn ranges_must_lie_inside_the_merged_grants() {
        let t = table(&[
            (PermType::Read, "a", "c"),
            (PermType::Readwrite, "c", "e"),
            (PermType::Write, "x", ""),
            (PermType::Read, "z", "\0"),
        ]);
        let ok = |k: &str, e: &str, a| range(&t, Some("u"), k.as_bytes(), e.as_bytes(), a).is_ok();
        assert!(ok("a", "", Access::Read));
        assert!(ok("a", "e", Access::Read), "two grants that touch merge");
        assert!(!ok("a", "f", Access::Read));
        assert!(!ok("a", "", Access::Write));
        assert!(ok("c", "d", Access::Write));
        assert!(ok("x", "", Access::Write));
        assert!(!ok("x", "y", Access::Write), "a key grant is not a range");
        assert!(!ok("x", "", Access::Read));
        assert!(
            ok("zz", "\0", Access::Read),
            "from-key grants are unbounded"
        );
        assert!(ok("zz", "zzz", Access::Read));
        assert!(!ok("y", "\0", Access::Read));
        assert!(!ok("q", "\0", Access::Read));
        assert!(range(&t, Some("root"), b"q", b"\0", Access::Write).is_ok());
        assert_eq!(
            range(&t, None, b"a", b"", Access::Read),
            Err(EtcdError::UserEmpty)
        );
        assert_eq!(
            range(&t, Some("ghost"), b"a", b"", Access::Read),
            Err(EtcdError::PermissionDenied)
        );
    }

    #[test]
    fn every_txn_branch_and_compare_is_checked() {
        use crate::proto::etcdserverpb::{Compare, RangeRequest, RequestOp};
        let t = table(&[(PermType::Readwrite, "a", ""), (PermType::Read, "b", "")]);
        let none = LeaseTable::default();
        let put_op = |k: &str| RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: k.as_bytes().to_vec(),
                ..Default::default()
            })),
        };
        let mut txn_req = TxnRequest {
            compare: vec![Compare {
                key: b"b".to_vec(),
                ..Default::default()
            }],
            success: vec![put_op("a")],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key: b"b".to_vec(),
                    ..Default::default()
                })),
            }],
        };
        assert!(txn(&t, Some("u"), &txn_req, &none).is_ok());
        txn_req.failure.push(put_op("b"));
        assert_eq!(
            txn(&t, Some("u"), &txn_req, &none),
            Err(EtcdError::PermissionDenied),
            "a branch that is not taken is still checked"
        );
    }

    #[test]
    fn disabled_auth_checks_nothing() {
        let mut t = table(&[]);
        t.set_enabled(false);
        assert!(range(&t, None, b"a", b"", Access::Write).is_ok());
        assert!(admin(&t, None).is_ok());
        assert_eq!(
            {
                t.set_enabled(true);
                admin(&t, Some("u"))
            },
            Err(EtcdError::PermissionDenied)
        );
    }
}
