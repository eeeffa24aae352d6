//! cairn's snapshot format: header, records and the SHA-256 trailer, encoded and decoded
//! (no files, no live store: [`super::file`] and [`super::capture`] build on this).

use std::io::Read;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::mvcc::revision::{Revision, REVISION_LEN};

/// The first bytes of every cairn snapshot.
pub const MAGIC: &[u8; 8] = b"CAIRNSNP";
pub use super::version::{FORMAT_VERSION, OLDEST_VERSION};
/// etcd's sector alignment before the SHA-256 trailer.
pub const ALIGN: u64 = 512;
/// Length of the SHA-256 trailer.
pub const HASH_LEN: usize = 32;
/// Bytes per streamed message: large enough to keep gRPC overhead small, small enough that a
/// slow client never makes the member hold much in memory.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Backend entries read per scan while streaming.
pub(crate) const SCAN_BATCH: usize = 1024;
/// Chunks a stream may have produced ahead of its client.
pub(crate) const CHUNKS_AHEAD: usize = 4;
/// How long a Snapshot stream waits for its client to take the next chunk before abandoning
/// the snapshot. The stream holds the compaction gate (see the module docs) until it ends, so
/// without a bound a client that stops reading but stays connected would stop compaction, and
/// with it the reclaiming of space, for as long as it pleased. A client that reads at all,
/// however slowly, takes a 256 KiB chunk far more often than this.
pub const SEND_STALL_LIMIT: Duration = Duration::from_secs(30);

pub(crate) const TAG_META: u8 = 1;
pub(crate) const TAG_KV: u8 = 2;
pub(crate) const TAG_END: u8 = 3;
pub(crate) const TAG_LEASE: u8 = 4;
pub(crate) const TAG_AUTH: u8 = 5;
pub(crate) const META_LEN: usize = 24;
pub(crate) const LEASE_LEN: usize = 16;

pub use crate::error::FormatError;

/// `bytes` as lowercase hex, as sha256sum prints a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

/// One auth record (a user, a role, the switch or the revision), as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthRecord {
    /// Its key in the store.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
}

/// One record after META.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// Auth state (version 3 on; all of it before the first LEASE or KV record).
    Auth(AuthRecord),
    /// A lease (all of them come before the first KV record).
    Lease(LeaseRecord),
    /// A stored revision.
    Kv(KvRecord),
}

/// Writes the format incrementally into caller-provided buffers, hashing as it goes, so a
/// stream of any size is produced without holding it. Records go in the order the format
/// requires: [`Encoder::header`], [`Encoder::auth`]s, [`Encoder::lease`]s, [`Encoder::kv`]s,
/// [`Encoder::finish`].
#[derive(Debug)]
pub struct Encoder {
    pub(crate) sha: Sha256,
    pub(crate) written: u64,
    pub(crate) records: u64,
    pub(crate) leases: u64,
    pub(crate) auth: u64,
    pub(crate) version: u32,
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
    pub(crate) fn of_version(version: u32) -> Self {
        Self {
            sha: Sha256::new(),
            written: 0,
            records: 0,
            leases: 0,
            auth: 0,
            version,
        }
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.sha.update(bytes);
        self.written += bytes.len() as u64;
        out.extend_from_slice(bytes);
    }

    pub(crate) fn record(&mut self, out: &mut Vec<u8>, tag: u8, parts: &[&[u8]]) {
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

    /// One AUTH record; all of them before the first LEASE record.
    pub fn auth(&mut self, out: &mut Vec<u8>, record: &AuthRecord) {
        debug_assert!(self.version >= 3 && self.leases == 0 && self.records == 0);
        let key_len = u32::try_from(record.key.len()).expect("auth keys are short");
        self.record(
            out,
            TAG_AUTH,
            &[&key_len.to_be_bytes(), &record.key, &record.value],
        );
        self.auth += 1;
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
        if self.version >= 3 {
            self.record(out, TAG_END, &[&count, &leases, &self.auth.to_be_bytes()]);
        } else if self.version >= 2 {
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
    auth: u64,
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
            auth: 0,
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

    /// The next AUTH, LEASE or KV record, or `None` after the END record (whose counts are checked,
    /// as is the padding after it).
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.done {
            return Ok(None);
        }
        let index = self.index;
        let (tag, payload) = self.raw()?;
        let word = |i: usize| <[u8; 8]>::try_from(&payload[i * 8..i * 8 + 8]).expect("8 bytes");
        let end_len = match self.version {
            1 => 8,
            2 => 16,
            _ => 24,
        };
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
            // Version 3 on, and only before the first LEASE or KV record.
            TAG_AUTH
                if self.version >= 3
                    && self.records == 0
                    && self.leases == 0
                    && payload.len() >= 4 =>
            {
                let key_len =
                    u32::from_be_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
                if payload.len() < 4 + key_len {
                    return Err(FormatError::Record { index, tag });
                }
                self.auth += 1;
                Ok(Some(Record::Auth(AuthRecord {
                    key: payload[4..4 + key_len].to_vec(),
                    value: payload[4 + key_len..].to_vec(),
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
                if self.version >= 3 && u64::from_be_bytes(word(2)) != self.auth {
                    return Err(FormatError::Count {
                        what: "auth",
                        declared: u64::from_be_bytes(word(2)),
                        found: self.auth,
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
