//! cairn's snapshot format, the point-in-time capture a member streams for etcd's Snapshot
//! RPC, and the offline `status`/`restore` of a saved file.
//!
//! # Format (version 2)
//!
//! ```text
//! magic "CAIRNSNP" | version u32 BE
//! record*          : tag u8 | payload length u32 BE | payload
//!   META (1)       : revision i64 | compact revision i64 | applied index u64   (first, once)
//!   LEASE (4)      : lease ID i64 | granted TTL in seconds i64       (after META, before KV)
//!   KV (2)         : revision (16 bytes, as in the data dir) | stored record (kind + KeyValue)
//!   END (3)        : number of KV records u64 | number of LEASE records u64     (last, once)
//! zero padding     : up to the next multiple of 512 bytes
//! sha256           : of everything above (32 bytes)
//! ```
//!
//! The padding and trailing SHA-256 follow etcd's snapshot convention, so `etcdctl snapshot
//! save` (which requires `size % 512 == 32`) accepts the stream, and a damaged file is
//! recognised before anything is restored from it.
//!
//! ## Versions
//!
//! Version 1 had no LEASE records and an END record of the KV count only: its keys keep the
//! lease IDs they were written with, but the leases themselves were not captured. This build
//! writes version 2 and reads both (a version 1 file restores as it always did, without
//! leases). Builds that read only version 1 refuse a version 2 file by its version number
//! before reading any record ("snapshot format version 2, this build reads 1"), so a snapshot
//! is never restored without its leases by accident.
//!
//! # Consistency
//!
//! [`capture`] holds the compaction gate from before it reads the store's revision,
//! compaction point and lease table (all three under one store read lock, so they describe the
//! same applied command) until the last record is sent: the compactor cannot delete a revision
//! in the meantime, and records above the captured revision are skipped, so the file holds
//! exactly the history as of one revision while writes and compactions continue. Revisions a
//! compaction made unreachable but had not deleted yet may be included; the restored member
//! finishes that compaction when it opens, as after a crash. Leases are restored with their
//! granted TTL and start a full TTL when the restored member starts, as after a restart.
//!
//! A client that stops reading would otherwise hold the gate, and so stop compaction, for as
//! long as it stays connected: a stream whose client takes no chunk for [`SEND_STALL_LIMIT`]
//! is abandoned (logged, and ended with an error for the client).

use std::io::{BufReader, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::mvcc::backend::scan_chunks;
use crate::mvcc::lease::lease_key;
use crate::mvcc::revision::{Revision, REVISION_LEN};
use crate::mvcc::store::{kv_key, meta, KV_PREFIX};
use crate::mvcc::{Backend, SledBackend, WriteBatch};
use crate::node::Shared;
use crate::Error;

/// The first bytes of every cairn snapshot.
pub const MAGIC: &[u8; 8] = b"CAIRNSNP";
/// The format version this build writes (it reads this one and [`OLDEST_VERSION`]).
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format version this build reads: version 1, before LEASE records.
pub const OLDEST_VERSION: u32 = 1;
/// etcd's sector alignment before the SHA-256 trailer.
pub const ALIGN: u64 = 512;
/// Length of the SHA-256 trailer.
pub const HASH_LEN: usize = 32;
/// Bytes per streamed message: large enough to keep gRPC overhead small, small enough that a
/// slow client never makes the member hold much in memory.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Backend entries read per scan while streaming.
const SCAN_BATCH: usize = 1024;
/// Chunks a stream may have produced ahead of its client.
const CHUNKS_AHEAD: usize = 4;
/// How long a Snapshot stream waits for its client to take the next chunk before abandoning
/// the snapshot. The stream holds the compaction gate (see the module docs) until it ends, so
/// without a bound a client that stops reading but stays connected would stop compaction, and
/// with it the reclaiming of space, for as long as it pleased. A client that reads at all,
/// however slowly, takes a 256 KiB chunk far more often than this.
pub const SEND_STALL_LIMIT: Duration = Duration::from_secs(30);

const TAG_META: u8 = 1;
const TAG_KV: u8 = 2;
const TAG_END: u8 = 3;
const TAG_LEASE: u8 = 4;
const META_LEN: usize = 24;
const LEASE_LEN: usize = 16;

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading the file failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The size does not leave a SHA-256 trailer after whole 512-byte sectors.
    #[error("size {0} is not a snapshot's (a multiple of 512 plus a 32-byte sha256); the file is truncated or not a snapshot")]
    Size(u64),
    /// The trailer does not match the contents.
    #[error(
        "sha256 mismatch (file says {expected}, contents hash to {actual}): the file is corrupted"
    )]
    HashMismatch {
        /// The trailer, hex.
        expected: String,
        /// The contents' hash, hex.
        actual: String,
    },
    /// Not a cairn snapshot (e.g. an etcd bbolt snapshot).
    #[error("not a cairn snapshot (bad magic); etcd snapshots are restored with etcdctl")]
    Magic,
    /// Written by a newer cairn.
    #[error("snapshot format version {0}, this build reads versions {OLDEST_VERSION} to {FORMAT_VERSION}: use a newer cairn-server")]
    Version(u32),
    /// A record is cut short or malformed.
    #[error("malformed record {index} (tag {tag})")]
    Record {
        /// Position of the record.
        index: u64,
        /// Its tag byte.
        tag: u8,
    },
    /// The END record's count disagrees with the records read.
    #[error("END record counts {declared} {what} records, the file holds {found}")]
    Count {
        /// Which records ("key" or "lease").
        what: &'static str,
        /// From the END record.
        declared: u64,
        /// Counted.
        found: u64,
    },
    /// Something other than zero padding follows the END record.
    #[error("data after the END record")]
    Trailing,
}

/// What the META record says: the point in history the snapshot captures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The revision the snapshot holds the keyspace at.
    pub revision: i64,
    /// The compaction point at that revision.
    pub compact_revision: i64,
    /// The applied index of the member it was taken from.
    pub applied_index: u64,
}

/// One stored revision: its revision and the record exactly as the data dir holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRecord {
    /// The revision.
    pub rev: Revision,
    /// Kind byte followed by the encoded `KeyValue`.
    pub record: Vec<u8>,
}

/// One lease: its ID and granted TTL (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The lease ID.
    pub id: i64,
    /// The TTL it was granted with.
    pub ttl: i64,
}

/// One record after META.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A lease (all of them come before the first KV record).
    Lease(LeaseRecord),
    /// A stored revision.
    Kv(KvRecord),
}

/// Writes the format incrementally into caller-provided buffers, hashing as it goes, so a
/// stream of any size is produced without holding it. Records go in the order the format
/// requires: [`Encoder::header`], [`Encoder::lease`]s, [`Encoder::kv`]s, [`Encoder::finish`].
#[derive(Debug)]
pub struct Encoder {
    sha: Sha256,
    written: u64,
    records: u64,
    leases: u64,
    version: u32,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A new encoder of the current format; call [`Encoder::header`] first.
    pub fn new() -> Self {
        Self::of_version(FORMAT_VERSION)
    }

    /// An encoder of format `version` (tests write old versions with it).
    fn of_version(version: u32) -> Self {
        Self {
            sha: Sha256::new(),
            written: 0,
            records: 0,
            leases: 0,
            version,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.sha.update(bytes);
        self.written += bytes.len() as u64;
        out.extend_from_slice(bytes);
    }

    fn record(&mut self, out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let len = u32::try_from(len).expect("records are far below 4 GiB");
        self.emit(out, &[tag]);
        self.emit(out, &len.to_be_bytes());
        for p in parts {
            self.emit(out, p);
        }
    }

    /// The magic, version and META record.
    pub fn header(&mut self, out: &mut Vec<u8>, meta: &Meta) {
        self.emit(out, MAGIC);
        let version = self.version;
        self.emit(out, &version.to_be_bytes());
        self.record(
            out,
            TAG_META,
            &[
                &meta.revision.to_be_bytes(),
                &meta.compact_revision.to_be_bytes(),
                &meta.applied_index.to_be_bytes(),
            ],
        );
    }

    /// One LEASE record; all of them before the first KV record.
    pub fn lease(&mut self, out: &mut Vec<u8>, lease: LeaseRecord) {
        debug_assert!(self.version >= 2 && self.records == 0);
        self.record(
            out,
            TAG_LEASE,
            &[&lease.id.to_be_bytes(), &lease.ttl.to_be_bytes()],
        );
        self.leases += 1;
    }

    /// One KV record.
    pub fn kv(&mut self, out: &mut Vec<u8>, rev: Revision, record: &[u8]) {
        self.record(out, TAG_KV, &[&rev.to_bytes(), record]);
        self.records += 1;
    }

    /// The END record, padding and SHA-256 trailer.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        let (count, leases) = (self.records.to_be_bytes(), self.leases.to_be_bytes());
        if self.version >= 2 {
            self.record(out, TAG_END, &[&count, &leases]);
        } else {
            self.record(out, TAG_END, &[&count]);
        }
        let pad = (ALIGN - self.written % ALIGN) % ALIGN;
        self.emit(out, &vec![0u8; pad as usize]);
        out.extend_from_slice(&self.sha.finalize());
    }

    /// Bytes produced so far (without the trailer).
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// Reads the records of a snapshot whose trailer was already checked (or deliberately not).
pub struct Decoder<R: Read> {
    reader: R,
    /// Bytes of content left before the trailer.
    left: u64,
    index: u64,
    records: u64,
    leases: u64,
    version: u32,
    done: bool,
}

impl<R: Read> Decoder<R> {
    /// Reads the header of `reader` (a whole file of `size` bytes) and returns its META record
    /// with a decoder positioned at the record after it.
    pub fn open(mut reader: R, size: u64) -> Result<(Meta, Self), FormatError> {
        if size % ALIGN != HASH_LEN as u64 || size < ALIGN + HASH_LEN as u64 {
            return Err(FormatError::Size(size));
        }
        let mut head = [0u8; 12];
        reader.read_exact(&mut head)?;
        if &head[..8] != MAGIC {
            return Err(FormatError::Magic);
        }
        let version = u32::from_be_bytes(head[8..].try_into().expect("4 bytes"));
        if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(FormatError::Version(version));
        }
        let mut d = Self {
            reader,
            left: size - HASH_LEN as u64 - 12,
            index: 0,
            records: 0,
            leases: 0,
            version,
            done: false,
        };
        let (tag, payload) = d.raw()?;
        if tag != TAG_META || payload.len() != META_LEN {
            return Err(FormatError::Record { index: 0, tag });
        }
        let word = |i: usize| <[u8; 8]>::try_from(&payload[i * 8..i * 8 + 8]).expect("8 bytes");
        let meta = Meta {
            revision: i64::from_be_bytes(word(0)),
            compact_revision: i64::from_be_bytes(word(1)),
            applied_index: u64::from_be_bytes(word(2)),
        };
        Ok((meta, d))
    }

    fn raw(&mut self) -> Result<(u8, Vec<u8>), FormatError> {
        let index = self.index;
        self.index += 1;
        if self.left < 5 {
            return Err(FormatError::Record { index, tag: 0 });
        }
        let mut head = [0u8; 5];
        self.reader.read_exact(&mut head)?;
        let tag = head[0];
        let len = u64::from(u32::from_be_bytes(head[1..].try_into().expect("4 bytes")));
        if len > self.left - 5 {
            return Err(FormatError::Record { index, tag });
        }
        self.left -= 5 + len;
        let mut payload = vec![0u8; len as usize];
        self.reader.read_exact(&mut payload)?;
        Ok((tag, payload))
    }

    /// The next LEASE or KV record, or `None` after the END record (whose counts are checked,
    /// as is the padding after it).
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.done {
            return Ok(None);
        }
        let index = self.index;
        let (tag, payload) = self.raw()?;
        let word = |i: usize| <[u8; 8]>::try_from(&payload[i * 8..i * 8 + 8]).expect("8 bytes");
        let end_len = if self.version >= 2 { 16 } else { 8 };
        match tag {
            TAG_KV if payload.len() > REVISION_LEN => {
                let rev = Revision::from_bytes(&payload[..REVISION_LEN])
                    .ok_or(FormatError::Record { index, tag })?;
                self.records += 1;
                Ok(Some(Record::Kv(KvRecord {
                    rev,
                    record: payload[REVISION_LEN..].to_vec(),
                })))
            }
            // Version 2 on, and only before the first KV record.
            TAG_LEASE if self.version >= 2 && self.records == 0 && payload.len() == LEASE_LEN => {
                self.leases += 1;
                Ok(Some(Record::Lease(LeaseRecord {
                    id: i64::from_be_bytes(word(0)),
                    ttl: i64::from_be_bytes(word(1)),
                })))
            }
            TAG_END if payload.len() == end_len => {
                let declared = u64::from_be_bytes(word(0));
                if declared != self.records {
                    return Err(FormatError::Count {
                        what: "key",
                        declared,
                        found: self.records,
                    });
                }
                if self.version >= 2 && u64::from_be_bytes(word(1)) != self.leases {
                    return Err(FormatError::Count {
                        what: "lease",
                        declared: u64::from_be_bytes(word(1)),
                        found: self.leases,
                    });
                }
                let mut rest = Vec::new();
                (&mut self.reader).take(self.left).read_to_end(&mut rest)?;
                if rest.len() as u64 != self.left || rest.iter().any(|&b| b != 0) {
                    return Err(FormatError::Trailing);
                }
                self.done = true;
                Ok(None)
            }
            _ => Err(FormatError::Record { index, tag }),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `path`'s SHA-256 trailer against its contents, reading it once, in pieces.
pub fn verify(path: &Path) -> Result<(), Error> {
    let err = |source: FormatError| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    let size = file.metadata().map_err(|e| err(e.into()))?.len();
    if size % ALIGN != HASH_LEN as u64 || size < ALIGN + HASH_LEN as u64 {
        return Err(err(FormatError::Size(size)));
    }
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut sha = Sha256::new();
    let mut content = (&mut reader).take(size - HASH_LEN as u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = content.read(&mut buf).map_err(|e| err(e.into()))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    let mut trailer = [0u8; HASH_LEN];
    reader.read_exact(&mut trailer).map_err(|e| err(e.into()))?;
    let actual = sha.finalize();
    if actual.as_slice() != trailer {
        return Err(err(FormatError::HashMismatch {
            expected: hex(&trailer),
            actual: hex(&actual),
        }));
    }
    Ok(())
}

/// The META record of the snapshot at `path` (revision, compaction point, applied index).
pub fn status_meta(path: &Path) -> Result<Meta, Error> {
    open_decoder(path).map(|(meta, _)| meta)
}

fn open_decoder(path: &Path) -> Result<(Meta, Decoder<BufReader<std::fs::File>>), Error> {
    let err = |source: FormatError| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    let size = file.metadata().map_err(|e| err(e.into()))?.len();
    Decoder::open(BufReader::with_capacity(1 << 20, file), size).map_err(err)
}

/// What `snapshot status` reports, with etcdctl's JSON field names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// CRC-32C over the LEASE records (ID and TTL of each) and then the KV records
    /// (revision and stored record of each); without leases, the same as version 1's.
    pub hash: u32,
    /// The revision the snapshot holds.
    pub revision: i64,
    /// Number of stored revisions (etcdctl counts every stored key).
    pub total_key: u64,
    /// The file's size.
    pub total_size: u64,
}

/// Verifies `path` and summarises it.
pub fn status(path: &Path) -> Result<Status, Error> {
    verify(path)?;
    let (meta, mut d) = open_decoder(path)?;
    let err = |source: FormatError| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut crc = 0u32;
    let mut total_key = 0;
    while let Some(record) = d.next_record().map_err(err)? {
        match record {
            Record::Lease(l) => {
                crc = crc32c::crc32c_append(crc, &l.id.to_be_bytes());
                crc = crc32c::crc32c_append(crc, &l.ttl.to_be_bytes());
            }
            Record::Kv(kv) => {
                crc = crc32c::crc32c_append(crc, &kv.rev.to_bytes());
                crc = crc32c::crc32c_append(crc, &kv.record);
                total_key += 1;
            }
        }
    }
    let total_size = std::fs::metadata(path)
        .map_err(|source| Error::File {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    Ok(Status {
        hash: crc,
        revision: meta.revision,
        total_key,
        total_size,
    })
}

/// What a restored keyspace becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreAs {
    /// One member's state with these IDs, as of the snapshot's raft index: a single-member
    /// cluster, or a member catching up from its leader's snapshot.
    Member(crate::identity::Identity),
    /// The starting keyspace of a new multi-member cluster: no IDs and raft index 0, so each
    /// member bootstraps the cluster on it as on an empty data dir (its first raft entries
    /// are the membership), as etcd's restore writes a fresh WAL.
    ClusterSeed,
}

/// Writes the keyspace and leases of a verified snapshot into an empty `backend`, as `to`
/// says. The compaction point is recorded as not yet carried out, so the member deletes any
/// unreachable revision the snapshot carried when it first opens; keys are attached to their
/// leases again when it opens, from their lease fields.
pub fn restore_into(path: &Path, backend: &dyn Backend, to: RestoreAs) -> Result<Meta, Error> {
    let (meta, mut d) = open_decoder(path)?;
    let err = |source: FormatError| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let mut batch = WriteBatch::new();
    let mut n = 0;
    while let Some(record) = d.next_record().map_err(err)? {
        match record {
            Record::Lease(l) => batch.put(lease_key(l.id), l.ttl.to_be_bytes().to_vec()),
            Record::Kv(kv) => {
                crate::mvcc::store::decode_record(&kv.record)?;
                batch.put(kv_key(kv.rev), kv.record);
            }
        }
        n += 1;
        if n % SCAN_BATCH == 0 {
            backend.write(std::mem::take(&mut batch))?;
        }
    }
    let u64_be = |v: u64| v.to_be_bytes().to_vec();
    batch.put(
        meta::SCHEMA.to_vec(),
        u64_be(crate::mvcc::store::SCHEMA_VERSION),
    );
    if let RestoreAs::Member(identity) = to {
        batch.put(meta::CLUSTER_ID.to_vec(), u64_be(identity.cluster_id));
        batch.put(meta::MEMBER_ID.to_vec(), u64_be(identity.member_id));
        batch.put(meta::APPLIED_INDEX.to_vec(), u64_be(meta.applied_index));
    }
    if meta.compact_revision > 0 {
        batch.put(
            meta::COMPACT_SCHEDULED.to_vec(),
            u64_be(meta.compact_revision as u64),
        );
    }
    backend.write(batch)?;
    backend.flush()?;
    Ok(meta)
}

/// etcdutl's `snapshot restore` flags.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The data dir to create (must not exist).
    pub data_dir: PathBuf,
    /// The new member's name.
    pub name: String,
    /// The new cluster.
    pub initial_cluster: crate::config::InitialCluster,
    /// The new cluster's token.
    pub initial_cluster_token: String,
    /// This member's peer URLs (must be its `--initial-cluster` URLs).
    pub initial_advertise_peer_urls: Vec<String>,
    /// Restore without checking the SHA-256 trailer.
    pub skip_hash_check: bool,
}

/// Builds a fresh data dir from the snapshot at `path`: same keyspace and revisions, new
/// cluster and member IDs derived from the flags as etcd derives them.
pub fn restore(path: &Path, opts: &RestoreOptions) -> Result<Meta, Error> {
    if opts.data_dir.exists() {
        return Err(Error::DataDirExists(opts.data_dir.clone()));
    }
    let mut urls = opts.initial_cluster.peer_urls_of(&opts.name);
    if urls.is_empty() {
        return Err(crate::config::ConfigError::NotInCluster {
            name: opts.name.clone(),
        }
        .into());
    }
    let mut advertised = opts.initial_advertise_peer_urls.clone();
    advertised.sort();
    urls.sort();
    let normalise = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect()
    };
    if normalise(&advertised) != normalise(&urls) {
        return Err(crate::config::ConfigError::AdvertiseMismatch {
            name: opts.name.clone(),
            cluster: urls.join(","),
            advertised: advertised.join(","),
        }
        .into());
    }
    if !opts.skip_hash_check {
        verify(path)?;
    }
    let identity = crate::identity::Identity::derive(
        &opts.initial_cluster,
        &opts.name,
        &opts.initial_cluster_token,
    );
    let member = opts.data_dir.join("member");
    let result = (|| {
        crate::server::create_private_dir(&member)?;
        let backend = SledBackend::open(&member.join("db"))?;
        let to = if opts.initial_cluster.names().len() > 1 {
            RestoreAs::ClusterSeed
        } else {
            RestoreAs::Member(identity)
        };
        restore_into(path, &backend, to)
    })();
    if result.is_err() {
        // Leave nothing half-made behind: the next attempt must find the data dir absent.
        let _ = std::fs::remove_dir_all(&opts.data_dir);
    }
    result
}

/// The captured point a snapshot stream is taken at.
struct Capture {
    meta: Meta,
    leases: Vec<LeaseRecord>,
    backend: Arc<dyn Backend>,
    estimate: u64,
    _gate: tokio::sync::OwnedRwLockReadGuard<()>,
}

/// Takes the gate, then reads the revision, compaction point, applied index and leases under
/// one store read lock. They are the store's own, and everything applied is written to the
/// backend first ([`Shared::read_persisted`]), so all of them are in the backend the stream reads
/// (`produce` flushes it before the first record, so the file never holds what a crash could
/// still take back). The revision readers see (`visible_rev`) may lag the store's by the group
/// whose fsync is under way; capturing at it instead would pair that revision with a lease
/// table a later group already changed (a revoke in it would leave its keys' lease missing).
async fn capture(shared: &Shared) -> Capture {
    let gate = shared.compaction_gate.clone().read_owned().await;
    let store = shared.read_persisted();
    let leases = store
        .leases()
        .iter()
        .map(|(id, lease)| LeaseRecord { id, ttl: lease.ttl })
        .collect();
    Capture {
        meta: Meta {
            revision: store.revision(),
            compact_revision: store.compact_revision(),
            applied_index: store.applied_index(),
        },
        leases,
        backend: store.backend().clone(),
        estimate: u64::try_from(store.in_use_bytes()).unwrap_or(0),
        _gate: gate,
    }
}

/// One streamed piece: bytes, and how many are (estimated to be) still to come; or why the
/// stream ended early (the last item then).
pub type Chunk = Result<(Vec<u8>, u64), tonic::Status>;

/// Streams a consistent snapshot of `shared` as chunks of about [`CHUNK_BYTES`] into a
/// channel of a few chunks, so at most those are in memory however large the keyspace.
/// `remaining` is exact for the last chunk (0); before that it is estimated from the bytes
/// in use (each record's framing adds a few bytes, revisions after the capture are skipped).
/// A client that takes no chunk for [`SEND_STALL_LIMIT`] gets an error after the chunks
/// already queued, and the snapshot's hold on compaction ends.
pub async fn stream(shared: Arc<Shared>) -> mpsc::Receiver<Chunk> {
    stream_with(shared, SEND_STALL_LIMIT).await
}

/// [`stream`] with the stall bound as a parameter.
async fn stream_with(shared: Arc<Shared>, stall_limit: Duration) -> mpsc::Receiver<Chunk> {
    // One slot more than the chunks allowed ahead stays reserved for the error that ends a
    // failed stream, so it is queued even when the client has stopped reading.
    let (tx, rx) = mpsc::channel::<Chunk>(CHUNKS_AHEAD + 1);
    let error_slot = tx
        .clone()
        .try_reserve_owned()
        .expect("a new channel has room");
    let cap = capture(&shared).await;
    let out = ChunkSender {
        tx,
        runtime: tokio::runtime::Handle::current(),
        stall_limit,
    };
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = produce(&cap, &out);
        let revision = cap.meta.revision;
        // Let compaction go on before anything else.
        drop(cap);
        match result {
            Ok(Sent::Taken) => shared.metrics.observe_snapshot(started.elapsed()),
            Ok(Sent::Gone) => {
                tracing::debug!(revision, "snapshot client went away before the end");
            }
            Ok(Sent::Stalled) => {
                tracing::warn!(
                    revision,
                    limit_secs = stall_limit.as_secs_f64(),
                    "snapshot client took no data within the limit; snapshot abandoned so \
                     compaction can go on"
                );
                let _ = error_slot.send(Err(tonic::Status::aborted(format!(
                    "snapshot abandoned: the client took no data for {:?}",
                    stall_limit
                ))));
            }
            Err(e) => {
                tracing::warn!(revision, error = %e, "snapshot failed");
                let _ = error_slot.send(Err(e.into()));
            }
        }
    });
    rx
}

/// What became of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Queued for the client.
    Taken,
    /// The client went away.
    Gone,
    /// The client took nothing for the stall limit.
    Stalled,
}

/// The producing (blocking) thread's end of the channel, with the bounded wait.
struct ChunkSender {
    tx: mpsc::Sender<Chunk>,
    runtime: tokio::runtime::Handle,
    stall_limit: Duration,
}

impl ChunkSender {
    /// Waits up to the stall limit for room for `chunk`.
    fn send(&self, chunk: Vec<u8>, remaining: u64) -> Sent {
        let send = tokio::time::timeout(self.stall_limit, self.tx.send(Ok((chunk, remaining))));
        match self.runtime.block_on(send) {
            Ok(Ok(())) => Sent::Taken,
            Ok(Err(_)) => Sent::Gone,
            Err(_) => Sent::Stalled,
        }
    }
}

/// Writes the snapshot of `cap` into `out`; `Taken` once the last chunk is queued.
fn produce(cap: &Capture, out: &ChunkSender) -> Result<Sent, Error> {
    // Everything at or below the captured revision was written to the backend before the
    // capture; make it durable, so the file holds nothing a crash could still undo.
    cap.backend.flush()?;
    let mut enc = Encoder::new();
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    enc.header(&mut buf, &cap.meta);
    let remaining = |enc: &Encoder| cap.estimate.saturating_sub(enc.written()).max(1);
    let full = |buf: &mut Vec<u8>, enc: &Encoder| {
        if buf.len() < CHUNK_BYTES {
            return Sent::Taken;
        }
        let chunk = std::mem::replace(buf, Vec::with_capacity(CHUNK_BYTES + 64 * 1024));
        out.send(chunk, remaining(enc))
    };
    for lease in &cap.leases {
        enc.lease(&mut buf, *lease);
        match full(&mut buf, &enc) {
            Sent::Taken => {}
            stopped => return Ok(stopped),
        }
    }
    let end = kv_key(Revision::new(cap.meta.revision + 1, 0));
    let stopped = scan_chunks(&*cap.backend, &[KV_PREFIX], &end, SCAN_BATCH, |entries| {
        for (k, v) in entries {
            let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
            enc.kv(&mut buf, rev, v);
            match full(&mut buf, &enc) {
                Sent::Taken => {}
                stopped => return Ok(ControlFlow::Break(stopped)),
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some(stopped) = stopped {
        return Ok(stopped);
    }
    enc.finish(&mut buf);
    Ok(out.send(buf, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_version(
        version: u32,
        meta: &Meta,
        leases: &[LeaseRecord],
        kvs: &[(Revision, Vec<u8>)],
    ) -> Vec<u8> {
        let mut enc = Encoder::of_version(version);
        let mut out = Vec::new();
        enc.header(&mut out, meta);
        for l in leases {
            enc.lease(&mut out, *l);
        }
        for (rev, rec) in kvs {
            enc.kv(&mut out, *rev, rec);
        }
        enc.finish(&mut out);
        out
    }

    fn encode(meta: &Meta, kvs: &[(Revision, Vec<u8>)]) -> Vec<u8> {
        encode_version(FORMAT_VERSION, meta, &[], kvs)
    }

    fn decode(bytes: &[u8]) -> Result<(Meta, Vec<Record>), FormatError> {
        let (meta, mut d) = Decoder::open(bytes, bytes.len() as u64)?;
        let mut out = Vec::new();
        while let Some(record) = d.next_record()? {
            out.push(record);
        }
        Ok((meta, out))
    }

    /// A whole file: `content` padded and followed by its SHA-256.
    fn seal(mut content: Vec<u8>) -> Vec<u8> {
        let pad = (ALIGN - content.len() as u64 % ALIGN) % ALIGN;
        content.resize(content.len() + pad as usize, 0);
        let digest = Sha256::digest(&content);
        content.extend_from_slice(&digest);
        content
    }

    proptest! {
        #[test]
        fn round_trips_with_etcd_trailer_alignment(
            revision in 0i64..i64::MAX,
            compact in 0i64..1_000_000,
            applied in any::<u64>(),
            leases in prop::collection::btree_map(1i64..i64::MAX, 1i64..9_000_000_000, 0..20),
            kvs in prop::collection::vec(
                ((0i64..1_000_000, 0i64..100), prop::collection::vec(any::<u8>(), 1..300)),
                0..50,
            ),
        ) {
            let meta = Meta { revision, compact_revision: compact, applied_index: applied };
            let leases: Vec<LeaseRecord> =
                leases.into_iter().map(|(id, ttl)| LeaseRecord { id, ttl }).collect();
            let kvs: Vec<(Revision, Vec<u8>)> =
                kvs.into_iter().map(|((m, s), r)| (Revision::new(m, s), r)).collect();
            let bytes = encode_version(FORMAT_VERSION, &meta, &leases, &kvs);
            prop_assert_eq!(bytes.len() as u64 % ALIGN, HASH_LEN as u64);
            let content = &bytes[..bytes.len() - HASH_LEN];
            let digest = Sha256::digest(content);
            prop_assert_eq!(digest.as_slice(), &bytes[bytes.len() - HASH_LEN..]);
            let (m, got) = decode(&bytes).expect("decodes");
            prop_assert_eq!(m, meta);
            let want: Vec<Record> = leases
                .into_iter()
                .map(Record::Lease)
                .chain(kvs.into_iter().map(|(rev, record)| Record::Kv(KvRecord { rev, record })))
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshot_is_one_revision_while_writes_and_compactions_go_on() {
        use crate::identity::Identity;
        use crate::mvcc::{KeyRange, MemBackend, MvccStore, RangeOptions};
        use crate::node::Node;
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::etcdserverpb::{CompactionRequest, PutRequest};

        let backend = Arc::new(SledBackend::temporary().unwrap());
        let (store, _) = MvccStore::open(backend).unwrap();
        let node = Node::start_for_test(store, 1 << 40);
        let put = |i: usize| {
            Request::Put(PutRequest {
                key: format!("k{:03}", i % 100).into_bytes(),
                value: vec![(i % 251) as u8; 1024],
                ..Default::default()
            })
        };
        for i in 0..2000 {
            node.propose(put(i)).await.unwrap();
        }
        let all = KeyRange::From(Vec::new());
        let read_at = |node: &Node, rev: i64| {
            node.read(|v| {
                let opts = RangeOptions {
                    rev,
                    ..Default::default()
                };
                v.store.range(&all, &opts, v.rev).unwrap().kvs
            })
        };
        let at = node.read(|v| v.rev);
        let (now, before) = (read_at(&node, at), read_at(&node, at - 1000));

        // Captured here; then history is compacted away and rewritten while it streams.
        let mut rx = stream(node.shared().clone()).await;
        let compact = |rev| {
            Request::Compaction(CompactionRequest {
                revision: rev,
                physical: false,
            })
        };
        node.propose(compact(at)).await.unwrap();
        for i in 0..300 {
            node.propose(put(i + 7)).await.unwrap();
        }
        node.propose(compact(at + 200)).await.unwrap();
        let mut bytes = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = rx.recv().await {
            bytes.extend(chunk.unwrap().0);
            chunks += 1;
        }
        assert!(chunks > 4, "streamed in chunks, not at once ({chunks})");
        // The compactions go on once the stream is done.
        node.wait_compacted(at + 200).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        std::fs::write(&path, &bytes).unwrap();
        verify(&path).unwrap();
        let restored = Arc::new(MemBackend::new());
        let identity = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        let meta = restore_into(&path, &*restored, RestoreAs::Member(identity)).unwrap();
        assert_eq!(meta.revision, at);
        let (store, job) = MvccStore::open(restored).unwrap();
        assert!(job.is_none());
        assert_eq!(store.revision(), at);
        let read = |rev| {
            let opts = RangeOptions {
                rev,
                ..Default::default()
            };
            store.range(&all, &opts, at).unwrap().kvs
        };
        assert_eq!(read(at), now);
        assert_eq!(read(at - 1000), before);
        node.shutdown();
    }

    /// A started node on an in-memory backend.
    fn test_node() -> Arc<crate::node::Node> {
        let backend = Arc::new(crate::mvcc::MemBackend::new());
        let (store, _) = crate::mvcc::MvccStore::open(backend).unwrap();
        crate::node::Node::start_for_test(store, 1 << 40)
    }

    async fn save(rx: &mut mpsc::Receiver<Chunk>, path: &Path) {
        let mut bytes = Vec::new();
        while let Some(chunk) = rx.recv().await {
            bytes.extend(chunk.unwrap().0);
        }
        std::fs::write(path, &bytes).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_and_their_keys_survive_snapshot_and_restore() {
        use crate::identity::Identity;
        use crate::mvcc::{MemBackend, MvccStore};
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, PutRequest};

        let node = test_node();
        for (id, ttl) in [(100, 600), (200, 60), (300, 60), (400, 30)] {
            node.propose(Request::LeaseGrant(LeaseGrantRequest { ttl, id }))
                .await
                .unwrap();
        }
        for (key, lease) in [("a", 100), ("b", 100), ("c", 200), ("d", 0), ("e", 300)] {
            node.propose(Request::Put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                lease,
                ..Default::default()
            }))
            .await
            .unwrap();
        }
        // Gone before the capture: neither the lease nor its key come back.
        node.propose(Request::LeaseRevoke(LeaseRevokeRequest { id: 300 }))
            .await
            .unwrap();
        let mut rx = stream(node.shared().clone()).await;
        // Changed after the capture: the snapshot still has lease 200 and key c.
        node.propose(Request::LeaseRevoke(LeaseRevokeRequest { id: 200 }))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        save(&mut rx, &path).await;
        node.shutdown();

        let st = status(&path).unwrap();
        let restored = Arc::new(MemBackend::new());
        let identity = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        let meta = restore_into(&path, &*restored, RestoreAs::Member(identity)).unwrap();
        assert_eq!(meta.revision, st.revision);
        let (store, _) = MvccStore::open(restored).unwrap();
        let got: Vec<(i64, i64, Vec<&[u8]>)> = store
            .leases()
            .iter()
            .map(|(id, l)| (id, l.ttl, l.keys.iter().map(Vec::as_slice).collect()))
            .collect();
        let want: Vec<(i64, i64, Vec<&[u8]>)> = vec![
            (100, 600, vec![b"a", b"b"]),
            (200, 60, vec![b"c"]),
            (400, 30, vec![]),
        ];
        assert_eq!(got, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_client_lets_go_of_compaction_after_the_bound() {
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::etcdserverpb::PutRequest;

        let node = test_node();
        // Some 2 MiB: more chunks than the channel holds.
        for i in 0..2000 {
            node.propose(Request::Put(PutRequest {
                key: format!("k{i:04}").into_bytes(),
                value: vec![(i % 251) as u8; 1024],
                ..Default::default()
            }))
            .await
            .unwrap();
        }
        let limit = Duration::from_millis(300);
        let started = Instant::now();
        // A client that never reads.
        let mut rx = stream_with(node.shared().clone(), limit).await;
        let gate = node.shared().compaction_gate.clone();
        let held = tokio::time::timeout(Duration::from_secs(60), gate.write())
            .await
            .expect("the stalled stream lets go of the compaction gate");
        assert!(started.elapsed() >= limit, "not before the bound");
        drop(held);

        // Reading at last, the client gets what was queued and then why the stream ended.
        let mut chunks = 0;
        let status = loop {
            match rx.recv().await.expect("the stream ends with an error") {
                Ok(_) => chunks += 1,
                Err(status) => break status,
            }
        };
        assert_eq!(chunks, CHUNKS_AHEAD);
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert!(status.message().contains("took no data"), "{status:?}");
        assert!(rx.recv().await.is_none());
        node.shutdown();
    }

    #[test]
    fn version_1_files_read_and_other_versions_are_refused() {
        let meta = Meta {
            revision: 5,
            compact_revision: 2,
            applied_index: 9,
        };
        let kvs = [(Revision::new(3, 0), vec![0, 1, 2])];
        let v1 = encode_version(1, &meta, &[], &kvs);
        let (m, got) = decode(&v1).expect("version 1 still reads");
        assert_eq!(m, meta);
        assert_eq!(
            got,
            vec![Record::Kv(KvRecord {
                rev: kvs[0].0,
                record: kvs[0].1.clone(),
            })]
        );

        // A version this build does not know is refused by its number.
        let mut v3 = encode(&meta, &kvs)[..12].to_vec();
        v3[8..12].copy_from_slice(&3u32.to_be_bytes());
        let v3 = seal(v3);
        assert!(matches!(decode(&v3), Err(FormatError::Version(3))));
        assert!(FormatError::Version(3)
            .to_string()
            .contains("this build reads versions 1 to 2"));

        // LEASE records are version 2's, and come before every KV record.
        let lease = LeaseRecord { id: 7, ttl: 60 };
        let mut enc = Encoder::of_version(1);
        let mut out = Vec::new();
        enc.header(&mut out, &meta);
        enc.record(
            &mut out,
            TAG_LEASE,
            &[&7i64.to_be_bytes(), &60i64.to_be_bytes()],
        );
        enc.finish(&mut out);
        assert!(matches!(
            decode(&out),
            Err(FormatError::Record { tag: TAG_LEASE, .. })
        ));
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        enc.header(&mut out, &meta);
        enc.kv(&mut out, kvs[0].0, &kvs[0].1);
        enc.record(
            &mut out,
            TAG_LEASE,
            &[&7i64.to_be_bytes(), &60i64.to_be_bytes()],
        );
        enc.finish(&mut out);
        assert!(matches!(
            decode(&out),
            Err(FormatError::Record { tag: TAG_LEASE, .. })
        ));

        // The END record counts the leases.
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        enc.header(&mut out, &meta);
        enc.lease(&mut out, lease);
        enc.leases = 2;
        enc.finish(&mut out);
        assert!(matches!(
            decode(&out),
            Err(FormatError::Count {
                what: "lease",
                declared: 2,
                found: 1
            })
        ));
    }

    #[test]
    fn damaged_files_are_refused() {
        let meta = Meta {
            revision: 5,
            compact_revision: 2,
            applied_index: 9,
        };
        let bytes = encode(&meta, &[(Revision::new(3, 0), vec![0, 1, 2])]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        std::fs::write(&path, &bytes).unwrap();
        verify(&path).expect("intact file verifies");
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            verify(&path),
            Err(Error::Snapshot {
                source: FormatError::HashMismatch { .. },
                ..
            })
        ));
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            verify(&path),
            Err(Error::Snapshot {
                source: FormatError::Size(_),
                ..
            })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 512]),
            Err(FormatError::Size(_))
        ));
    }
}
