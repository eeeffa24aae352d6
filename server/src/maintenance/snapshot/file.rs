//! Snapshot files: verify, status and restore into a backend or a new data directory.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::format::*;
use crate::mvcc::auth::AUTH_PREFIX;
use crate::mvcc::lease::lease_key;
use crate::mvcc::store::{kv_key, meta};
use crate::mvcc::{Backend, SledBackend, WriteBatch};
use crate::Error;

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

/// Verifies `path` and summarises it (an etcd snapshot as etcdctl does).
pub fn status(path: &Path) -> Result<Status, Error> {
    if super::etcd::is_etcd(path)? {
        return super::etcd::status(path);
    }
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
            Record::Auth(a) => {
                crc = crc32c::crc32c_append(crc, &a.key);
                crc = crc32c::crc32c_append(crc, &a.value);
            }
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
    let mut restorer = Restorer::new(backend);
    while let Some(record) = d.next_record().map_err(err)? {
        restorer.record(record)?;
    }
    restorer.finish(&meta, to)?;
    Ok(meta)
}

/// [`restore_into`] for an etcd snapshot: its revisions, leases, users and roles.
pub fn restore_etcd_into(
    path: &Path,
    backend: &dyn Backend,
    to: RestoreAs,
    skip_hash_check: bool,
) -> Result<Meta, Error> {
    let mut restorer = Restorer::new(backend);
    let meta = super::etcd::read(path, skip_hash_check, &mut |r| restorer.record(r))?;
    restorer.finish(&meta, to)?;
    Ok(meta)
}

/// Writes records into an empty backend in batches, then the META the restored member needs.
struct Restorer<'a> {
    backend: &'a dyn Backend,
    batch: WriteBatch,
    n: usize,
}

impl<'a> Restorer<'a> {
    fn new(backend: &'a dyn Backend) -> Self {
        Self {
            backend,
            batch: WriteBatch::new(),
            n: 0,
        }
    }

    fn record(&mut self, record: Record) -> Result<(), Error> {
        match record {
            Record::Auth(a) => {
                // Only auth records: a crafted file must not write the member's own keys.
                if !a.key.starts_with(AUTH_PREFIX) {
                    return Err(Error::CorruptRecord);
                }
                self.batch.put(a.key, a.value);
            }
            Record::Lease(l) => self
                .batch
                .put(lease_key(l.id), l.ttl.to_be_bytes().to_vec()),
            Record::Kv(kv) => {
                crate::mvcc::store::decode_record(&kv.record)?;
                self.batch.put(kv_key(kv.rev), kv.record);
            }
        }
        self.n += 1;
        if self.n.is_multiple_of(SCAN_BATCH) {
            self.backend.write(std::mem::take(&mut self.batch))?;
        }
        Ok(())
    }

    fn finish(mut self, meta: &Meta, to: RestoreAs) -> Result<(), Error> {
        let u64_be = |v: u64| v.to_be_bytes().to_vec();
        self.batch.put(
            meta::SCHEMA.to_vec(),
            u64_be(crate::mvcc::store::SCHEMA_VERSION),
        );
        if let RestoreAs::Member(identity) = to {
            self.batch
                .put(meta::CLUSTER_ID.to_vec(), u64_be(identity.cluster_id));
            self.batch
                .put(meta::MEMBER_ID.to_vec(), u64_be(identity.member_id));
            self.batch
                .put(meta::APPLIED_INDEX.to_vec(), u64_be(meta.applied_index));
        }
        if meta.compact_revision > 0 {
            self.batch.put(
                meta::COMPACT_SCHEDULED.to_vec(),
                u64_be(meta.compact_revision as u64),
            );
        }
        self.backend.write(self.batch)?;
        self.backend.flush()?;
        Ok(())
    }
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
    let etcd = super::etcd::is_etcd(path)?;
    if !opts.skip_hash_check && !etcd {
        verify(path)?;
    }
    let identity = crate::identity::Identity::derive(
        &opts.initial_cluster,
        &opts.name,
        &opts.initial_cluster_token,
    );
    let member = opts.data_dir.join("member");
    let result = (|| {
        crate::data_dir::create_private_dir(&member)?;
        let backend = SledBackend::open(&member.join("db"))?;
        let to = if opts.initial_cluster.names().len() > 1 {
            RestoreAs::ClusterSeed
        } else {
            RestoreAs::Member(identity)
        };
        if etcd {
            restore_etcd_into(path, &backend, to, opts.skip_hash_check)
        } else {
            restore_into(path, &backend, to)
        }
    })();
    if result.is_err() {
        // Leave nothing half-made behind: the next attempt must find the data dir absent.
        let _ = std::fs::remove_dir_all(&opts.data_dir);
    }
    result
}
