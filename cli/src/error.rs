//! The operator binary's one library error type.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

/// What can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A backup, listing, verification, prune or restore failed.
    #[error(transparent)]
    Backup(#[from] cairn_backupd::Error),
    /// A check or benchmark failed to run.
    #[error(transparent)]
    Bench(#[from] cairn_bench::Error),
    /// An inspection could not be made (no member answers, the state file is unusable).
    #[error(transparent)]
    Inspect(#[from] cairn_inspector::Error),
    /// `--serve`'s address could not be bound.
    #[error("cannot listen on {addr} (pick a free address and port for --serve)")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The inventory could not be read or failed its checks.
    #[error(transparent)]
    Inventory(#[from] cairn_inventory::Error),
    /// Generating alert rules and their companions failed.
    #[error(transparent)]
    Rules(#[from] cairn_rules::Error),
    /// Provisioning or a status query failed.
    #[error(transparent)]
    Provision(#[from] cairn_provisioner::Error),
    /// `--password-file` could not be read.
    #[error("--password-file {}: cannot read it", path.display())]
    PasswordFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--user` without a password.
    #[error("--user {0} needs a password: give --password-file or set CAIRN_PASSWORD")]
    NoPassword(String),
    /// Signal handlers could not be installed.
    #[error("cannot handle signals")]
    Signal(#[source] std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// Changes are pending, stdin is not a terminal and `--yes` was not given.
    #[error("changes are pending and there is no terminal to confirm them: run with --yes to apply, or --plan to only show them")]
    NeedsYes,
    /// `cairn backup import` into a cluster holding keys, with no terminal and no `--yes`.
    #[error("cluster {cluster} already holds {present} keys, and the import overwrites those the file has too; there is no terminal to ask: run with --yes to import anyway")]
    ImportNeedsYes {
        /// The cluster's name.
        cluster: String,
        /// Keys it holds.
        present: i64,
    },
    /// `cairn destroy` without a terminal to type the cluster's name and without `--yes`.
    #[error("cairn destroy needs the cluster's name typed on a terminal, or --yes in scripts; nothing was removed")]
    DestroyNeedsYes,
    /// A member of a restored cluster is not at the backup's revision.
    #[error("the restored cluster's member {member} is at revision {} after the restore, not at {want}; check it with cairn status before using the cluster", revision.map_or("unknown (it did not answer)".to_string(), |r| r.to_string()))]
    RestoredBehind {
        /// The member.
        member: String,
        /// Its revision, when it answered.
        revision: Option<i64>,
        /// The backup's.
        want: i64,
    },
    /// The operator answered no.
    #[error("nothing applied (not confirmed)")]
    NotConfirmed,
    /// Reading the confirmation failed.
    #[error("cannot ask for confirmation (answer with --yes when there is no terminal)")]
    Terminal(#[source] std::io::Error),
    /// The running binary could not be found, to copy it to the hosts.
    #[error("cannot find the running cairn binary to copy it to the hosts")]
    CurrentExe(#[source] std::io::Error),
    /// `cairn import --out` names a file that exists.
    #[error("{}: exists; cairn import writes a new inventory, give another --out", .0.display())]
    OutExists(std::path::PathBuf),
    /// A local file could not be read.
    #[error("{}: cannot read it", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A local file could not be written.
    #[error("{}: cannot write it", path.display())]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A result could not be printed as JSON.
    #[error("cannot print the result as JSON")]
    Json(#[from] serde_json::Error),
}
