//! The server's one error type. The etcd-visible variants carry etcd's exact texts, so clients
//! that match on them (etcdctl, clientv3, Kubernetes) behave the same against cairn.

use crate::maintenance::snapshot::version::{FORMAT_VERSION, OLDEST_VERSION};

use std::path::PathBuf;

/// Everything that can go wrong in cairn-server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read or compaction below the compaction point.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted,
    /// A read or compaction above the newest revision.
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    /// A request without a key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` together with a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` together with a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A txn with more compares or ops than `--max-txn-ops`.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// A txn writing one key twice.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// A request larger than `--max-request-bytes`.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A sort order or target outside etcd's enums.
    #[error("etcdserver: invalid sort option")]
    InvalidSortOption,
    /// A put or lease operation names a lease that does not exist.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant with an ID already in use.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A grant with a TTL over etcd's maximum.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// The backend quota is exhausted (NOSPACE alarm active).
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// A CORRUPT alarm is active.
    #[error("etcdserver: corrupt cluster")]
    Corrupt,
    /// MoveLeader named a member that cannot become leader.
    #[error("etcdserver: bad leader transferee")]
    BadLeaderTransferee,
    /// The server is shutting down.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// No leader is known, so nothing can be committed or read linearizably.
    #[error("etcdserver: no leader")]
    NoLeader,
    /// A proposal or linearizable read did not complete in time (leader lost, partition).
    #[error("etcdserver: request timed out")]
    Timeout,
    /// The leader changed while the request waited; it may or may not have been applied.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    /// A member ID that is not in the cluster.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// MemberAdd with a peer URL another member has.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// MemberPromote of a voting member.
    #[error("etcdserver: can only promote a learner member")]
    NotLearner,
    /// MemberPromote of a learner that has not caught up.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// A membership change that would leave the cluster without quorum.
    #[error("etcdserver: re-configuration failed due to not enough started members")]
    NotEnoughStartedMembers,
    /// A request only the leader can serve reached a follower.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    /// A stored record did not decode.
    #[error("corrupt record in the data dir: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The backend's database was closed by a defragment that failed half-way.
    #[error("storage: the database is closed (a defragment failed; restart the member)")]
    BackendClosed,
    /// A snapshot file is damaged or not a cairn snapshot.
    #[error("snapshot {}: {source}", path.display())]
    Snapshot {
        /// The snapshot file.
        path: PathBuf,
        /// What is wrong with it.
        source: FormatError,
    },
    /// A restore would overwrite an existing data dir.
    #[error("data-dir {} exists; restore only creates new data dirs", .0.display())]
    DataDirExists(PathBuf),
    /// A stored record has an impossible shape.
    #[error("corrupt record in the data dir")]
    CorruptRecord,
    /// The data dir was written by an incompatible version.
    #[error(
        "data dir has layout version {found}, this build reads {want}: use a matching cairn-server"
    )]
    SchemaVersion {
        /// Version found on disk.
        found: u64,
        /// Version this build understands.
        want: u64,
    },
    /// A file the server needs could not be used.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {url}: {source}{}", listen_hint(source))]
    Listen {
        /// The URL from the flags.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// The flags contradict each other.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    /// A PEM file (certificate or key) could not be parsed.
    #[error("{}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The TLS configuration was refused (e.g. a key that does not match the certificate).
    #[error("TLS setup: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    /// The client certificate verifier could not be built from `--trusted-ca-file`.
    #[error("client certificate verification: {0}")]
    ClientVerifier(#[from] tokio_rustls::rustls::server::VerifierBuilderError),
    /// A listener stopped serving although no shutdown was asked for.
    #[error("a client listener stopped unexpectedly")]
    ListenerStopped,
    /// A listener's task panicked.
    #[error("a client listener crashed: {0}")]
    ListenerPanicked(#[source] tokio::task::JoinError),
    /// The raft library refused an operation.
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    /// A peer refused or failed a request.
    #[error("peer: {}", .0.message())]
    Peer(#[from] tonic::Status),
    /// An operating system call failed outside file access (threads, runtimes).
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    /// The raft loop stopped (a fatal raft error was logged).
    #[error("the raft loop stopped: see the log above for the reason")]
    RaftStopped,
    /// The leader's image never reached the point raft's snapshot named.
    #[error("the leader's snapshot stayed behind raft index {index}")]
    SnapshotBehind {
        /// The snapshot point.
        index: u64,
    },
    /// This member has been removed from the cluster.
    #[error("this member has been removed from the cluster: remove its data dir, add it again (etcdctl member add) and start it with --initial-cluster-state existing")]
    Removed,
    /// TLS or HTTP/2 transport setup failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How to fix a failed bind, when the cause says it.
fn listen_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another process uses the port: stop it or pick another port)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        std::io::ErrorKind::AddrNotAvailable => " (the address is not one of this host's)",
        _ => "",
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Code;
        let code = match &e {
            Error::Compacted | Error::FutureRevision => Code::OutOfRange,
            Error::EmptyKey
            | Error::KeyNotFound
            | Error::ValueProvided
            | Error::LeaseProvided
            | Error::TooManyOps
            | Error::DuplicateKey
            | Error::RequestTooLarge
            | Error::InvalidSortOption => Code::InvalidArgument,
            Error::LeaseNotFound => Code::NotFound,
            Error::BadLeaderTransferee => Code::FailedPrecondition,
            Error::LeaseExists => Code::FailedPrecondition,
            Error::LeaseTtlTooLarge => Code::OutOfRange,
            Error::NoSpace => Code::ResourceExhausted,
            Error::Corrupt => Code::DataLoss,
            Error::Stopped
            | Error::NoLeader
            | Error::Timeout
            | Error::LeaderChanged
            | Error::NotLeader => Code::Unavailable,
            Error::MemberNotFound => Code::NotFound,
            Error::PeerUrlExists
            | Error::NotLearner
            | Error::LearnerNotReady
            | Error::NotEnoughStartedMembers => Code::FailedPrecondition,
            _ => Code::Internal,
        };
        tonic::Status::new(code, e.to_string())
    }
}

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
