//! The single write path: one committed command applied to the MVCC store. The standalone
//! group-commit loop feeds it today; the raft log feeds the same function under replication.

use super::txn;
use crate::mvcc::KeyRange;
use crate::mvcc::{CompactionJob, MvccStore};
use crate::proto::cairnpb::{internal_request::Request, InternalRequest};
use crate::proto::etcdserverpb::{
    CompactionResponse, DeleteRangeResponse, LeaseGrantResponse, LeaseRevokeResponse, PutResponse,
    ResponseHeader, TxnResponse,
};
use crate::Error;

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

fn apply_request(
    store: &mut MvccStore,
    index: u64,
    cmd: &InternalRequest,
) -> Result<(Applied, Option<CompactionJob>), Error> {
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
                return Err(Error::LeaseExists);
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
        // Alarm commands are applied by the maintenance module (being added).
        Some(Request::Alarm(_)) | None => {
            store.mark_applied(index);
            Applied::Noop
        }
    };
    Ok((applied, None))
}
