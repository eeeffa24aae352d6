//! The server's errors. [`EtcdError`] is what clients see, with etcd's exact texts, so clients
//! that match on them (etcdctl, clientv3, Kubernetes) behave the same against cairn, each
//! mapped to its gRPC code with no catch-all; [`Error`] adds the member's own failures
//! (storage, files, TLS, raft), which clients see as `Internal`.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use crate::maintenance::snapshot::version::{FORMAT_VERSION, OLDEST_VERSION};

use std::path::PathBuf;

/// The errors etcd's clients know, with etcd's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
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
    /// AuthEnable without a root user.
    #[error("etcdserver: root user does not exist")]
    RootUserNotExist,
    /// AuthEnable while root lacks the root role.
    #[error("etcdserver: root user does not have root role")]
    RootRoleNotExist,
    /// UserAdd of an existing user.
    #[error("etcdserver: user name already exists")]
    UserExists,
    /// A user name is needed (UserAdd without one; a request without credentials while auth
    /// is on).
    #[error("etcdserver: user name is empty")]
    UserEmpty,
    /// A user that does not exist.
    #[error("etcdserver: user name not found")]
    UserNotFound,
    /// RoleAdd of an existing role.
    #[error("etcdserver: role name already exists")]
    RoleExists,
    /// A role that does not exist.
    #[error("etcdserver: role name not found")]
    RoleNotFound,
    /// RoleAdd without a name.
    #[error("etcdserver: role name is empty")]
    RoleEmpty,
    /// A wrong user name or password.
    #[error("etcdserver: authentication failed, invalid user ID or password")]
    AuthFailed,
    /// The user's roles do not allow the request.
    #[error("etcdserver: permission denied")]
    PermissionDenied,
    /// UserRevokeRole of a role the user lacks.
    #[error("etcdserver: role is not granted to the user")]
    RoleNotGranted,
    /// RoleRevokePermission of a permission the role lacks.
    #[error("etcdserver: permission is not granted to the role")]
    PermissionNotGranted,
    /// Authenticate while auth is off.
    #[error("etcdserver: authentication is not enabled")]
    AuthNotEnabled,
    /// A token that is forged, expired, or older than its user's last change.
    #[error("etcdserver: invalid auth token")]
    InvalidAuthToken,
    /// Deleting root, its role, or taking the role from it while auth is on.
    #[error("etcdserver: invalid auth management")]
    InvalidAuthMgmt,
    /// Authenticate of a user created with `--no-password` (etcd's unwrapped error).
    #[error("auth: authentication failed, password was given for no password user")]
    NoPasswordUser,
    /// etcd 3.4's Maintenance admin check answers its auth store's own error, unwrapped.
    #[error("auth: user name is empty")]
    MaintenanceUserEmpty,
    /// As [`EtcdError::MaintenanceUserEmpty`], for a user that does not exist.
    #[error("auth: user name not found")]
    MaintenanceUserNotFound,
    /// As [`EtcdError::MaintenanceUserEmpty`], for a user without the root role.
    #[error("auth: permission denied")]
    MaintenancePermissionDenied,
}

impl EtcdError {
    /// The same refusal as etcd 3.4's Maintenance service words it.
    pub fn as_maintenance(self) -> Self {
        match self {
            Self::UserEmpty => Self::MaintenanceUserEmpty,
            Self::UserNotFound => Self::MaintenanceUserNotFound,
            Self::PermissionDenied => Self::MaintenancePermissionDenied,
            other => other,
        }
    }
}

impl EtcdError {
    /// The gRPC code etcd answers this error with.
    pub fn code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            Self::Compacted | Self::FutureRevision | Self::LeaseTtlTooLarge => Code::OutOfRange,
            Self::EmptyKey
            | Self::KeyNotFound
            | Self::ValueProvided
            | Self::LeaseProvided
            | Self::TooManyOps
            | Self::DuplicateKey
            | Self::RequestTooLarge
            | Self::InvalidSortOption
            | Self::UserEmpty
            | Self::RoleEmpty
            | Self::AuthFailed
            | Self::InvalidAuthMgmt => Code::InvalidArgument,
            Self::LeaseNotFound | Self::MemberNotFound => Code::NotFound,
            Self::RootUserNotExist
            | Self::RootRoleNotExist
            | Self::UserExists
            | Self::UserNotFound
            | Self::RoleExists
            | Self::RoleNotFound
            | Self::RoleNotGranted
            | Self::PermissionNotGranted
            | Self::AuthNotEnabled
            | Self::BadLeaderTransferee
            | Self::LeaseExists
            | Self::PeerUrlExists
            | Self::NotLearner
            | Self::LearnerNotReady
            | Self::NotEnoughStartedMembers => Code::FailedPrecondition,
            Self::NoSpace => Code::ResourceExhausted,
            Self::Corrupt => Code::DataLoss,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::InvalidAuthToken => Code::Unauthenticated,
            Self::NoPasswordUser
            | Self::MaintenanceUserEmpty
            | Self::MaintenanceUserNotFound
            | Self::MaintenancePermissionDenied => Code::Unknown,
            Self::Stopped
            | Self::NoLeader
            | Self::Timeout
            | Self::LeaderChanged
            | Self::NotLeader => Code::Unavailable,
        }
    }
}

/// Everything that can go wrong in cairn-server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error etcd's clients know.
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    /// The storage engine failed.
    #[error("the storage engine failed")]
    Storage(#[from] sled::Error),
    /// A stored record did not decode.
    #[error("corrupt record in the data dir")]
    Decode(#[from] prost::DecodeError),
    /// The backend's database was closed by a defragment that failed half-way.
    #[error("storage: the database is closed (a defragment failed; restart the member)")]
    BackendClosed,
    /// A snapshot file is damaged or not a cairn snapshot.
    #[error("snapshot {}: cannot use it", path.display())]
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
    #[error("{}: cannot use it (check that it exists and its permissions)", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {url}{}", listen_hint(source))]
    Listen {
        /// The URL from the flags.
        url: String,
        /// Why.
        source: std::io::Error,
    },
    /// The flags contradict each other.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A PEM file (certificate or key) could not be parsed.
    #[error("{}: not a PEM certificate or key", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls_pki_types::pem::Error,
    },
    /// The TLS configuration was refused (e.g. a key that does not match the certificate).
    #[error("the TLS certificate and key were refused (does the key match the certificate?)")]
    Tls(#[from] tokio_rustls::rustls::Error),
    /// The client certificate verifier could not be built from `--trusted-ca-file`.
    #[error("cannot verify client certificates with --trusted-ca-file")]
    ClientVerifier(#[from] tokio_rustls::rustls::server::VerifierBuilderError),
    /// A listener stopped serving although no shutdown was asked for.
    #[error("a client listener stopped unexpectedly")]
    ListenerStopped,
    /// A listener's task panicked.
    #[error("a client listener crashed")]
    ListenerPanicked(#[source] tokio::task::JoinError),
    /// The raft library refused an operation.
    #[error("raft refused the operation")]
    Raft(#[from] raft::Error),
    /// A peer refused or failed a request.
    #[error("a peer refused the request")]
    Peer(#[from] tonic::Status),
    /// An operating system call failed outside file access (threads, runtimes).
    #[error("{0}")]
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
    /// `--auth-token` cannot be used.
    #[error(transparent)]
    TokenConfig(#[from] TokenConfigError),
    /// TLS or HTTP/2 transport setup failed.
    #[error("cannot set up the peer transport (TLS or HTTP/2)")]
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

impl From<EtcdError> for tonic::Status {
    fn from(e: EtcdError) -> Self {
        tonic::Status::new(e.code(), e.to_string())
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Etcd(e) => e.into(),
            // A member's own failure: Internal, its whole chain of causes in the message.
            Error::Storage(_)
            | Error::Decode(_)
            | Error::BackendClosed
            | Error::Snapshot { .. }
            | Error::DataDirExists(_)
            | Error::CorruptRecord
            | Error::SchemaVersion { .. }
            | Error::File { .. }
            | Error::Listen { .. }
            | Error::Config(_)
            | Error::Pem { .. }
            | Error::Tls(_)
            | Error::ClientVerifier(_)
            | Error::ListenerStopped
            | Error::ListenerPanicked(_)
            | Error::Raft(_)
            | Error::Peer(_)
            | Error::Io(..)
            | Error::RaftStopped
            | Error::SnapshotBehind { .. }
            | Error::Removed
            | Error::TokenConfig(_)
            | Error::Transport(_) => tonic::Status::internal(chain(&e)),
        }
    }
}

/// An error and its causes on one line, each once: `what: cause: cause`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        line.push_str(": ");
        line.push_str(&c.to_string());
        cause = c.source();
    }
    line
}

/// Why a snapshot file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading the file failed.
    #[error("cannot read it")]
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
    /// Neither a cairn snapshot nor an etcd (bbolt) one.
    #[error("neither a cairn snapshot nor an etcd one (bad magic); give a file from etcdctl snapshot save")]
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

/// Why `--auth-token` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenConfigError {
    /// Neither simple nor jwt.
    #[error("--auth-token {0:?}: use simple, or jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256")]
    Kind(String),
    /// An option of the jwt form that etcd does not have, or a malformed one.
    #[error("--auth-token: unknown or malformed option {0:?} (jwt takes pub-key, priv-key, sign-method and ttl)")]
    Option(String),
    /// A sign method jsonwebtoken does not do.
    #[error("--auth-token: sign-method {0:?} is not one of RS256/384/512, PS256/384/512, ES256/384, HS256/384/512")]
    Method(String),
    /// jwt without a key.
    #[error("--auth-token jwt needs pub-key (and priv-key to issue tokens)")]
    NoKey,
    /// A key file could not be read.
    #[error("--auth-token: cannot read {}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A key file is not a key for the sign method.
    #[error("--auth-token: {} is not a PEM key for the sign method (ES keys must be PKCS#8: openssl pkcs8 -topk8 -nocrypt)", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// The ttl option is not a duration.
    #[error("--auth-token: ttl {0:?} is not a duration such as 5m")]
    Ttl(String),
}
