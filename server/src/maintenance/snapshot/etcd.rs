//! etcd's own snapshots (a bbolt file, with a SHA-256 trailer when `etcdctl snapshot save`
//! wrote it): recognised by the bolt magic, summarised as `etcdctl snapshot status` does, and
//! read as cairn's records, so `cairn-server snapshot restore` moves a cluster from etcd with
//! its revisions, leases, users and roles. The bbolt file is read by bbolt-rs.

use std::io::Read;
use std::path::Path;

use bbolt_rs::{BucketApi, DbApi, TxApi};
use prost::Message as _;
use sha2::{Digest, Sha256};

use super::format::{
    hex, AuthRecord, FormatError, KvRecord, LeaseRecord, Meta, Record, Status, HASH_LEN,
};
use crate::mvcc::auth::{AuthTable, AuthUser};
use crate::mvcc::revision::Revision;
use crate::proto::authpb::{Role, User};
use crate::Error;

/// bolt's magic number, in every meta page.
const BOLT_MAGIC: u32 = 0xED0C_DAED;
/// Where it sits: after the 16-byte page header of page 0.
const MAGIC_OFFSET: usize = 16;
/// etcd's revision keys: 8-byte main, `_`, 8-byte sub, and `t` for a tombstone.
const REV_KEY_LEN: usize = 17;

/// etcd's `leasepb.Lease`, as its `lease` bucket holds it.
#[derive(Clone, PartialEq, prost::Message)]
struct EtcdLease {
    #[prost(int64, tag = "1")]
    id: i64,
    #[prost(int64, tag = "2")]
    ttl: i64,
}

fn snapshot_error(path: &Path, source: FormatError) -> Error {
    Error::Snapshot {
        path: path.to_path_buf(),
        source,
    }
}

fn file_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether `path` is a bbolt file (an etcd snapshot or data file).
pub fn is_etcd(path: &Path) -> Result<bool, Error> {
    let mut head = [0u8; MAGIC_OFFSET + 4];
    let mut f = std::fs::File::open(path).map_err(file_error(path))?;
    match f.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(file_error(path)(e)),
    }
    let magic = u32::from_le_bytes(head[MAGIC_OFFSET..].try_into().expect("4 bytes"));
    Ok(magic == BOLT_MAGIC)
}

/// Checks the SHA-256 trailer of the snapshot at `path` (when its size says there is one, as
/// etcd decides), unless `skip_hash_check`. bbolt reads the file as it is: the trailer lies
/// past its last page.
fn check_trailer(path: &Path, skip_hash_check: bool) -> Result<(), Error> {
    let size = std::fs::metadata(path).map_err(file_error(path))?.len();
    if skip_hash_check || size % 512 != HASH_LEN as u64 {
        return Ok(());
    }
    let mut input = std::io::BufReader::new(std::fs::File::open(path).map_err(file_error(path))?);
    let mut sha = Sha256::new();
    std::io::copy(&mut (&mut input).take(size - HASH_LEN as u64), &mut sha)
        .map_err(file_error(path))?;
    let mut trailer = [0u8; HASH_LEN];
    input.read_exact(&mut trailer).map_err(file_error(path))?;
    let actual = sha.finalize();
    if actual.as_slice() != trailer {
        return Err(snapshot_error(
            path,
            FormatError::HashMismatch {
                expected: hex(&trailer),
                actual: hex(&actual),
            },
        ));
    }
    Ok(())
}

fn bolt_error(path: &Path) -> impl Fn(bbolt_rs::Error) -> Error + '_ {
    move |e| {
        snapshot_error(
            path,
            FormatError::Io(std::io::Error::other(format!("bbolt: {e}"))),
        )
    }
}

/// An etcd revision key (`main_sub`, `t` after a tombstone's) as cairn's revision.
fn revision(key: &[u8]) -> Option<(Revision, bool)> {
    if key.len() < REV_KEY_LEN || key[8] != b'_' {
        return None;
    }
    let main = i64::from_be_bytes(key[..8].try_into().ok()?);
    let sub = i64::from_be_bytes(key[9..17].try_into().ok()?);
    Some((Revision::new(main, sub), key.get(17) == Some(&b't')))
}

/// What `etcdctl snapshot status` reports of an etcd snapshot, computed as etcd computes it
/// (CRC-32C over every bucket's name, keys and values; the revision of the last key).
pub fn status(path: &Path) -> Result<Status, Error> {
    check_trailer(path, false)?;
    let bolt = bbolt_rs::Bolt::open_ro(path).map_err(bolt_error(path))?;
    let mut hash = 0u32;
    let (mut rev, mut total_key, mut total_size) = (0i64, 0u64, 0u64);
    bolt.view(|tx| {
        total_size = tx.size();
        for (name, bucket) in tx.iter_buckets() {
            hash = crc32c::crc32c_append(hash, name);
            let is_key = name == b"key";
            for (k, v) in bucket.iter_entries() {
                hash = crc32c::crc32c_append(hash, k);
                hash = crc32c::crc32c_append(hash, v);
                if is_key {
                    if let Some((r, _)) = revision(k) {
                        rev = r.main;
                    }
                }
                total_key += 1;
            }
        }
        Ok(())
    })
    .map_err(bolt_error(path))?;
    Ok(Status {
        hash,
        revision: rev,
        total_key,
        total_size,
    })
}

/// Reads the etcd snapshot at `path` as cairn's records (users and roles, then leases, then
/// every stored revision) into `sink`; returns what its META would say.
pub fn read(
    path: &Path,
    skip_hash_check: bool,
    sink: &mut dyn FnMut(Record) -> Result<(), Error>,
) -> Result<Meta, Error> {
    check_trailer(path, skip_hash_check)?;
    let bolt = bbolt_rs::Bolt::open_ro(path).map_err(bolt_error(path))?;
    let mut meta = Meta::default();
    let mut outcome: Result<(), Error> = Ok(());
    bolt.view(|tx| {
        outcome = read_tx(path, &tx, &mut meta, sink);
        Ok(())
    })
    .map_err(bolt_error(path))?;
    outcome?;
    // etcd's store never goes below revision 1.
    meta.revision = meta.revision.max(meta.compact_revision).max(1);
    Ok(meta)
}

fn read_tx<'tx>(
    path: &Path,
    tx: &impl TxApi<'tx>,
    meta: &mut Meta,
    sink: &mut dyn FnMut(Record) -> Result<(), Error>,
) -> Result<(), Error> {
    let corrupt = |what: &'static str| {
        snapshot_error(
            path,
            FormatError::Io(std::io::Error::other(format!(
                "etcd snapshot: bad {what} entry"
            ))),
        )
    };
    // Users and roles, with etcd's auth revision.
    let mut table = AuthTable::default();
    let mut auth_revision = 1;
    if let Some(b) = tx.bucket("auth") {
        let enabled = b.get("authEnabled").is_some_and(|v| v == [1]);
        auth_revision = b
            .get("authRevision")
            .and_then(|v| v.try_into().ok())
            .map_or(1, u64::from_be_bytes);
        table = AuthTable::restored(enabled, auth_revision);
    }
    if let Some(b) = tx.bucket("authUsers") {
        for (name, v) in b.iter_entries() {
            let user = User::decode(v).map_err(|_| corrupt("authUsers"))?;
            let changed = auth_revision;
            table.put_user(&String::from_utf8_lossy(name), AuthUser { user, changed });
        }
    }
    if let Some(b) = tx.bucket("authRoles") {
        for (name, v) in b.iter_entries() {
            let role = Role::decode(v).map_err(|_| corrupt("authRoles"))?;
            table.put_role(&String::from_utf8_lossy(name), role);
        }
    }
    for (key, value) in table.records(false) {
        sink(Record::Auth(AuthRecord { key, value }))?;
    }
    if let Some(b) = tx.bucket("lease") {
        for (_, v) in b.iter_entries() {
            let l = EtcdLease::decode(v).map_err(|_| corrupt("lease"))?;
            sink(Record::Lease(LeaseRecord {
                id: l.id,
                ttl: l.ttl,
            }))?;
        }
    }
    if let Some(b) = tx.bucket("meta") {
        meta.applied_index = b
            .get("consistent_index")
            .and_then(|v| v.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        meta.compact_revision = b
            .get("scheduledCompactRev")
            .and_then(revision)
            .map_or(0, |(r, _)| r.main);
    }
    if let Some(b) = tx.bucket("key") {
        for (k, v) in b.iter_entries() {
            let (rev, tombstone) = revision(k).ok_or_else(|| corrupt("key"))?;
            meta.revision = meta.revision.max(rev.main);
            let record = crate::mvcc::store::raw_record(tombstone, v);
            sink(Record::Kv(KvRecord { rev, record }))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_keys_decode_as_etcd_writes_them() {
        let mut key = 5i64.to_be_bytes().to_vec();
        key.push(b'_');
        key.extend(2i64.to_be_bytes());
        assert_eq!(revision(&key), Some((Revision::new(5, 2), false)));
        key.push(b't');
        assert_eq!(revision(&key), Some((Revision::new(5, 2), true)));
        assert_eq!(revision(b"short"), None);
    }
}
