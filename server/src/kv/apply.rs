//! The single write path: one committed command applied to the MVCC store. The standalone
//! group-commit loop feeds it today; the raft log feeds the same function under replication.

use super::txn;
use crate::auth;
use crate::mvcc::KeyRange;
use crate::mvcc::{CompactionJob, MvccStore};
use crate::proto::cairnpb::{internal_request::Request, InternalRequest};
use crate::proto::etcdserverpb::alarm_request::AlarmAction;
use crate::proto::etcdserverpb::request_op;
use crate::proto::etcdserverpb::{
    AlarmMember, AlarmRequest, AlarmResponse, AlarmType, CompactionResponse, DeleteRangeResponse,
    LeaseGrantResponse, LeaseRevokeResponse, PutResponse, ResponseHeader, TxnRequest, TxnResponse,
};
use crate::{Error, EtcdError};

/// The outcome of an applied command (headers carry only the revision).
#[derive(Debug)]
pub enum Applied {
    /// A Put.
    Put(PutResponse),
    /// A DeleteRange.
    DeleteRange(DeleteRangeResponse),
    /// A Txn.
    Txn(TxnResponse),
    /// A Compact.
    Compaction(CompactionResponse),
    /// A LeaseGrant.
    LeaseGrant(LeaseGrantResponse),
    /// A LeaseRevoke.
    LeaseRevoke(LeaseRevokeResponse),
    /// An Alarm GET, ACTIVATE or DEACTIVATE.
    Alarm(AlarmResponse),
    /// An auth change (its response is only a header).
    Auth,
    /// A command with no request (nothing to do but advance the applied index).
    Noop,
}

/// Applies command `index`. A command that fails (e.g. a compare-time error) still advances the
/// applied index, so a replay after restart skips it exactly like the first time. A compaction
/// also returns the job that frees the compacted revisions, to run off the write path.
pub fn apply(
    store: &mut MvccStore,
    index: u64,
    cmd: &InternalRequest,
) -> Result<(Applied, Option<CompactionJob>), Error> {
    if index <= store.applied_index() {
        return Ok((Applied::Noop, None));
    }
    let result = apply_request(store, index, cmd);
    if result.is_err() {
        store.mark_applied(index);
    }
    result
}

/// Whether a txn would write (etcd's quota cost: only puts count, in either branch).
pub fn txn_has_puts(t: &TxnRequest) -> bool {
    t.success
        .iter()
        .chain(&t.failure)
        .any(|op| matches!(op.request, Some(request_op::Request::RequestPut(_))))
}

/// etcd's capped and corrupt appliers: with NOSPACE active, commands that grow the database
/// fail; with CORRUPT active, every write fails.
fn refused_by_alarm(store: &MvccStore, request: &Request) -> Option<Error> {
    let active = |t: AlarmType| store.alarms().iter().any(|&(_, a)| a == t as i32);
    let membership = matches!(
        request,
        Request::MemberAttributes(_) | Request::MemberUpdate(_)
    );
    if active(AlarmType::Corrupt) && !matches!(request, Request::Alarm(_)) && !membership {
        return Some(Error::Etcd(EtcdError::Corrupt));
    }
    if active(AlarmType::Nospace) {
        let grows = match request {
            Request::Put(_) | Request::LeaseGrant(_) => true,
            Request::Txn(t) => txn_has_puts(t),
            _ => false,
        };
        if grows {
            return Some(Error::Etcd(EtcdError::NoSpace));
        }
    }
    None
}

/// etcd's alarm applier: GET lists the alarms of a type (all for NONE); ACTIVATE and
/// DEACTIVATE answer with the alarm they changed (or found already active), nothing otherwise.
fn apply_alarm(store: &mut MvccStore, index: u64, a: &AlarmRequest) -> AlarmResponse {
    let of_type = |store: &MvccStore| -> Vec<AlarmMember> {
        store
            .alarms()
            .iter()
            .filter(|&&(_, t)| a.alarm == AlarmType::None as i32 || t == a.alarm)
            .map(|&(member_id, alarm)| AlarmMember { member_id, alarm })
            .collect()
    };
    let this = AlarmMember {
        member_id: a.member_id,
        alarm: a.alarm,
    };
    let alarms = match AlarmAction::try_from(a.action) {
        Ok(AlarmAction::Activate) => {
            store.set_alarm(a.member_id, a.alarm, true);
            vec![this]
        }
        Ok(AlarmAction::Deactivate) => {
            if store.set_alarm(a.member_id, a.alarm, false) {
                vec![this]
            } else {
                Vec::new()
            }
        }
        Ok(AlarmAction::Get) | Err(_) => of_type(store),
    };
    store.mark_applied(index);
    AlarmResponse {
        header: Some(ResponseHeader {
            revision: store.revision(),
            ..Default::default()
        }),
        alarms,
    }
}

/// etcd checks permissions where a command is applied. The proposer checked them already, at
/// the auth revision it recorded; only when auth changed since is the check made again.
fn recheck_auth(store: &MvccStore, cmd: &InternalRequest, request: &Request) -> Result<(), Error> {
    let table = store.auth();
    if cmd.auth_revision == 0 || !table.enabled() || cmd.auth_revision == table.revision() {
        return Ok(());
    }
    let user = Some(cmd.auth_user.as_str()).filter(|u| !u.is_empty());
    auth::perm::command(table, user, request, store.leases())?;
    Ok(())
}

fn apply_request(
    store: &mut MvccStore,
    index: u64,
    cmd: &InternalRequest,
) -> Result<(Applied, Option<CompactionJob>), Error> {
    if let Some(e) = cmd
        .request
        .as_ref()
        .and_then(|r| refused_by_alarm(store, r))
    {
        return Err(e);
    }
    if let Some(request) = &cmd.request {
        recheck_auth(store, cmd, request)?;
    }
    let applied = match &cmd.request {
        Some(Request::Put(p)) => {
            let mut w = store.write();
            let resp = txn::put(&mut w, p)?;
            w.commit(index);
            Applied::Put(resp)
        }
        Some(Request::DeleteRange(d)) => {
            let mut w = store.write();
            let resp = txn::delete_range(&mut w, d)?;
            w.commit(index);
            Applied::DeleteRange(resp)
        }
        Some(Request::Txn(t)) => {
            let mut w = store.write();
            let resp = txn::write(&mut w, t)?;
            w.commit(index);
            Applied::Txn(resp)
        }
        Some(Request::Compaction(c)) => {
            let job = store.compact(c.revision, index)?;
            let header = ResponseHeader {
                revision: store.revision(),
                ..Default::default()
            };
            return Ok((
                Applied::Compaction(CompactionResponse {
                    header: Some(header),
                }),
                Some(job),
            ));
        }
        Some(Request::LeaseGrant(g)) => {
            // The proposer chose the ID and clamped the TTL; only existence is decided here.
            if store.leases().contains(g.id) {
                return Err(Error::Etcd(EtcdError::LeaseExists));
            }
            store.grant_lease(g.id, g.ttl, index);
            let header = ResponseHeader {
                revision: store.revision(),
                ..Default::default()
            };
            Applied::LeaseGrant(LeaseGrantResponse {
                header: Some(header),
                id: g.id,
                ttl: g.ttl,
                error: String::new(),
            })
        }
        Some(Request::LeaseRevoke(r)) => {
            let keys = store.revoke_lease(r.id)?;
            let mut w = store.write();
            for key in keys {
                w.delete_range(&KeyRange::Single(key));
            }
            let revision = w.commit(index);
            let header = ResponseHeader {
                revision,
                ..Default::default()
            };
            Applied::LeaseRevoke(LeaseRevokeResponse {
                header: Some(header),
            })
        }
        Some(Request::Alarm(a)) => Applied::Alarm(apply_alarm(store, index, a)),
        Some(
            r @ (Request::AuthEnable(_)
            | Request::AuthDisable(_)
            | Request::UserAdd(_)
            | Request::UserDelete(_)
            | Request::UserChangePassword(_)
            | Request::UserGrantRole(_)
            | Request::UserRevokeRole(_)
            | Request::RoleAdd(_)
            | Request::RoleDelete(_)
            | Request::RoleGrantPermission(_)
            | Request::RoleRevokePermission(_)
            | Request::TokenKey(_)),
        ) => {
            auth::apply::apply(store.auth_mut(), r)?;
            store.mark_applied(index);
            Applied::Auth
        }
        // Membership lives beside the raft log; the store only records the index.
        Some(Request::MemberAttributes(_) | Request::MemberUpdate(_)) | None => {
            store.mark_applied(index);
            Applied::Noop
        }
    };
    Ok((applied, None))
}
