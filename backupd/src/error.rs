//! The crate's one error type. Every message is one line that says what failed and what to
//! do about it.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::path::PathBuf;

/// Why a backup, listing, verification or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store URL is neither `s3://bucket/prefix` nor `file:///path`.
    #[error("store \"{0}\" is not supported; write s3://bucket/prefix or file:///path in [backup] store")]
    StoreUrl(String),
    /// An S3 request failed.
    #[error("S3 {operation} of {key} failed: {}; check [backup] store, endpoint and region, and the AWS credentials", aws_sdk_s3::error::DisplayErrorContext(source))]
    S3 {
        /// What was attempted.
        operation: &'static str,
        /// The object key.
        key: String,
        /// The SDK's error.
        #[source]
        source: Box<aws_sdk_s3::Error>,
    },
    /// A local file or directory could not be used.
    #[error("{}: cannot use it (check that it exists and its permissions)", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Any other local I/O (pipes, temporary files).
    #[error("local I/O failed")]
    Io(#[from] std::io::Error),
    /// A member could not be reached through the client crate.
    #[error(transparent)]
    Client(#[from] cairn_client::Error),
    /// No member answered a status request.
    #[error("no member of the cluster is reachable ({tried} tried); start at least one or fix the endpoints")]
    NoHealthyMember {
        /// How many endpoints were tried.
        tried: usize,
    },
    /// The server's snapshot stream failed its own SHA-256 trailer: nothing was stored.
    #[error("the snapshot from {endpoint} fails its SHA-256 trailer; nothing was stored, retry the backup (the member's disk may be failing)")]
    SnapshotTrailer {
        /// The member that sent it.
        endpoint: String,
    },
    /// A stored object does not match its manifest.
    #[error("backup {id}: {object} is corrupt (SHA-256 {actual}, the manifest says {expected}); use another backup")]
    Corrupt {
        /// The backup.
        id: String,
        /// The object key.
        object: String,
        /// The manifest's hash.
        expected: String,
        /// The stored object's hash.
        actual: String,
    },
    /// Decryption failed: a wrong key or a tampered object.
    #[error(
        "backup {id} cannot be decrypted: wrong [backup] encryption_key_file or a tampered object"
    )]
    Decrypt {
        /// The backup.
        id: String,
    },
    /// The key file does not hold 64 hex digits.
    #[error("{}: an encryption key file must hold 64 hex digits (32 bytes); create one with `openssl rand -hex 32`", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// A backup ID that the store does not have.
    #[error("no backup {0} in the store; `cairn backup list` shows the IDs")]
    NotFound(String),
    /// The store holds no backup of the cluster at all.
    #[error("the store has no backup of this cluster yet; take one with `cairn backup now`")]
    Empty,
    /// A backup that is encrypted, and no key was given.
    #[error("backup {0} is encrypted; set [backup] encryption_key_file to its key")]
    KeyNeeded(String),
    /// The store holds no full backup to start from.
    #[error(
        "the store has no full backup at or before the target; take one with `cairn backup now`"
    )]
    NoFullBackup,
    /// Another daemon holds the store's lock.
    #[error("another backup of this cluster runs ({owner}, until {until}); wait, or delete {key} if that process is gone")]
    Locked {
        /// Who holds it.
        owner: String,
        /// When the lock expires.
        until: String,
        /// The lock object.
        key: String,
    },
    /// `[backup] timezone` is not a zone of the IANA database.
    #[error("time zone \"{name}\" is unknown: use an IANA name such as \"Europe/Berlin\"")]
    TimeZone {
        /// What was given.
        name: String,
    },
    /// The schedule is not a cron expression.
    #[error("schedule \"{expression}\" is not a crontab line (write e.g. \"0 */6 * * *\")")]
    Schedule {
        /// What was given.
        expression: String,
        /// The parser's error.
        #[source]
        source: cron::error::Error,
    },
    /// A watch could not continue from the last backed-up revision.
    #[error("revision {from} was compacted (compaction at {compacted}) before the incremental backup read it; a full backup is needed")]
    Compacted {
        /// The first revision the increment needed.
        from: i64,
        /// The cluster's compaction revision.
        compacted: i64,
    },
    /// The cluster's revision is below what the chain already holds: it was restored from a
    /// backup (or replaced), so its history after that point is not the chain's.
    #[error("the cluster is at revision {current}, below revision {backed_up} the backups already hold (was it restored?); a full backup starts a new chain")]
    Diverged {
        /// The cluster's revision now.
        current: i64,
        /// The newest revision of the chain.
        backed_up: i64,
    },
    /// A helper program (restore, status) failed.
    #[error("{program} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        program: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The last line it printed on stderr.
        stderr: String,
    },
    /// A manifest or increment that is not the JSON this version writes.
    #[error(
        "a stored manifest or increment is not valid JSON (written by another tool, or damaged)"
    )]
    Json(#[from] serde_json::Error),
    /// The metrics listener failed.
    #[error("cannot serve metrics on {address} (change [backup] listen)")]
    Serve {
        /// The listen address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The restored cluster could not be brought to the target revision.
    #[error("cannot restore to revision {target}: the backups reach revision {reached}")]
    TargetRevision {
        /// The requested revision.
        target: i64,
        /// How far the stored data goes.
        reached: i64,
    },
    /// The inventory's root password could not be read.
    #[error(transparent)]
    Inventory(#[from] cairn_inventory::Error),
    /// The inventory has no `[backup]` table.
    #[error("the inventory has no [backup] table; add one with at least `store = \"s3://bucket/prefix\"`")]
    NotConfigured,
}

impl Error {
    /// Wraps an S3 SDK error.
    pub(crate) fn s3<E>(operation: &'static str, key: &str, e: E) -> Self
    where
        aws_sdk_s3::Error: From<E>,
    {
        Self::S3 {
            operation,
            key: key.to_string(),
            source: Box::new(aws_sdk_s3::Error::from(e)),
        }
    }

    /// Wraps an error about `path`.
    pub(crate) fn file(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::File {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Wraps an etcd client error.
    pub(crate) fn etcd(endpoint: &str, source: etcd_client::Error) -> Self {
        Self::Client(cairn_client::Error::from_etcd(endpoint, source))
    }
}
