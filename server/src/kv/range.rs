//! Range, exactly as etcd's applier: filters and sorting fetch the whole range first, `count`
//! ignores limit and filters, `more` says the limit cut the result.

use std::cmp::Ordering;

use super::view::ReadView;
use crate::mvcc::{KeyRange, RangeOptions};
use crate::proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use crate::proto::etcdserverpb::{RangeRequest, RangeResponse, ResponseHeader};
use crate::proto::mvccpb::KeyValue;
use crate::{Error, EtcdError};

/// Serves `r` from `view`; the header carries only the revision.
pub fn range(view: &impl ReadView, r: &RangeRequest) -> Result<RangeResponse, Error> {
    let order =
        SortOrder::try_from(r.sort_order).map_err(|_| Error::Etcd(EtcdError::InvalidSortOption))?;
    let target = SortTarget::try_from(r.sort_target)
        .map_err(|_| Error::Etcd(EtcdError::InvalidSortOption))?;
    let filtered = r.min_mod_revision != 0
        || r.max_mod_revision != 0
        || r.min_create_revision != 0
        || r.max_create_revision != 0;
    let want_all = order != SortOrder::None || filtered;
    let limit = if r.limit <= 0 || want_all {
        0
    } else {
        r.limit as usize + 1
    };
    let opts = RangeOptions {
        limit,
        rev: r.revision,
        count_only: r.count_only,
    };
    let res = view.range(&KeyRange::new(&r.key, &r.range_end), &opts)?;
    let mut kvs = res.kvs;
    if filtered {
        kvs.retain(|kv| {
            (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
                && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
                && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
                && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
        });
    }
    // The store returns key order; any other target sorts ascending unless told otherwise.
    let order = if target != SortTarget::Key && order == SortOrder::None {
        SortOrder::Ascend
    } else {
        order
    };
    if order != SortOrder::None {
        let cmp: fn(&KeyValue, &KeyValue) -> Ordering = match target {
            SortTarget::Key => |a, b| a.key.cmp(&b.key),
            SortTarget::Version => |a, b| a.version.cmp(&b.version),
            SortTarget::Create => |a, b| a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => |a, b| a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => |a, b| a.value.cmp(&b.value),
        };
        match order {
            SortOrder::Descend => kvs.sort_by(|a, b| cmp(b, a)),
            _ => kvs.sort_by(cmp),
        }
    }
    let mut more = false;
    if r.limit > 0 && kvs.len() > r.limit as usize {
        kvs.truncate(r.limit as usize);
        more = true;
    }
    if r.keys_only {
        for kv in &mut kvs {
            kv.value.clear();
        }
    }
    Ok(RangeResponse {
        header: Some(ResponseHeader {
            revision: res.rev,
            ..Default::default()
        }),
        kvs,
        more,
        count: res.count as i64,
    })
}
