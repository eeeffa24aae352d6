//! Hash and HashKV: checksums members compare to detect divergence (etcd's corruption check).

use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::mvcc::backend::scan_chunks;
use crate::mvcc::revision::Revision;
use crate::mvcc::store::{kv_key, meta, KV_PREFIX};
use crate::shared::Shared;
use crate::{Error, EtcdError};

/// Backend entries read per scan while hashing.
const SCAN_BATCH: usize = 4096;

/// HashKV's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    /// CRC-32C of the keyspace as of `hash_revision`.
    pub hash: u32,
    /// The store's current revision.
    pub revision: i64,
    /// The compaction point.
    pub compact_revision: i64,
    /// The revision hashed.
    pub hash_revision: i64,
}

/// etcd's `HashByRev`: CRC-32C (Castagnoli) over the stored revisions `<= rev` (0: the
/// current revision), skipping those at or below the compaction point that a compaction at
/// `rev` would not keep. A revision at or below the compaction point is "compacted", above the
/// current one "future", exactly as etcd answers.
///
/// Members with the same history hash the same bytes (revision keys and stored records),
/// whether or not their compactor has deleted the unreachable revisions yet: the compaction
/// gate keeps the set still while it is read, and the keep set filters what is pending.
pub async fn hash_kv(shared: Arc<Shared>, rev: i64) -> Result<KvHash, Error> {
    let gate = shared.compaction_gate.clone().read_owned().await;
    let (backend, current, compact, rev, keep) = {
        let store = shared.read_persisted();
        let current = shared.visible_rev.load(Ordering::Acquire);
        let compact = store.compact_revision();
        if rev > 0 && rev <= compact {
            return Err(Error::Etcd(EtcdError::Compacted));
        }
        if rev > current {
            return Err(Error::Etcd(EtcdError::FutureRevision));
        }
        let rev = if rev == 0 { current } else { rev };
        let keep = store.keep(rev);
        (store.backend().clone(), current, compact, rev, keep)
    };
    tokio::task::spawn_blocking(move || {
        let _gate = gate;
        let mut h = 0u32;
        h = crc32c::crc32c_append(h, b"key");
        let end = kv_key(Revision::new(rev + 1, 0));
        scan_chunks::<()>(&*backend, &[KV_PREFIX], &end, SCAN_BATCH, |chunk| {
            for (k, v) in chunk {
                let r = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
                if r.main <= compact && !keep.is_empty() && !keep.contains(&r) {
                    continue;
                }
                h = crc32c::crc32c_append(h, k);
                h = crc32c::crc32c_append(h, v);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(KvHash {
            hash: h,
            revision: current,
            compact_revision: compact,
            hash_revision: rev,
        })
    })
    .await
    .map_err(|_| Error::Etcd(EtcdError::Stopped))?
}

/// etcd's `Hash`: CRC-32C over the whole backend as it is on disk now (every entry, apart
/// from the member's own identity, which differs between members by design), read under the
/// store lock so no write lands half-way. Returns the hash and the current revision.
pub async fn hash_backend(shared: Arc<Shared>) -> Result<(u32, i64), Error> {
    tokio::task::spawn_blocking(move || {
        let store = shared.read_persisted();
        let backend = store.backend();
        let mut h = 0u32;
        scan_chunks::<()>(&**backend, &[], &[0xff; 2], SCAN_BATCH, |chunk| {
            for (k, v) in chunk {
                if k == meta::CLUSTER_ID || k == meta::MEMBER_ID {
                    continue;
                }
                h = crc32c::crc32c_append(h, k);
                h = crc32c::crc32c_append(h, v);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok((h, shared.visible_rev.load(Ordering::Acquire)))
    })
    .await
    .map_err(|_| Error::Etcd(EtcdError::Stopped))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_is_castagnoli_fed_piecewise_like_gos_hash() {
        // RFC 3720 / Go's crc32.Checksum([]byte("123456789"), castagnoliTable).
        let h = crc32c::crc32c_append(crc32c::crc32c(b"1234"), b"56789");
        assert_eq!(h, 0xE306_9283);
    }
}
