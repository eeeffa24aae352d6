//! The bench crate's one error type.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong while checking or loading a target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file the check needs could not be used.
    #[error("{}: cannot use it (the directory must exist and be writable)", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A check was asked to do nothing.
    #[error("nothing to measure: the size must be at least one block of {block_size} bytes")]
    NothingToMeasure {
        /// The block size asked for.
        block_size: usize,
    },
    /// A load run was given a zero (or empty) setting that must be positive.
    #[error("{what} must be at least 1")]
    Zero {
        /// The setting, as its flag.
        what: &'static str,
    },
    /// A TLS file could not be read.
    #[error("{}: cannot read it", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The endpoints did not answer a first request.
    #[error("cannot reach {endpoints}")]
    Connect {
        /// The endpoints, comma-separated.
        endpoints: String,
        /// Why.
        source: etcd_client::Error,
    },
    /// `--target-leader`, and no endpoint says it leads.
    #[error("none of {endpoints} is the leader: give the endpoints of every member, or drop --target-leader")]
    NoLeader {
        /// The endpoints, comma-separated.
        endpoints: String,
    },
    /// A member could not be reached, or its `/metrics` read, through the client crate.
    #[error(transparent)]
    Client(#[from] cairn_client::Error),
    /// Preparing a workload (pre-populating a key, granting leases, creating watchers)
    /// failed, or a watch stream failed.
    #[error("{what} failed")]
    Setup {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: etcd_client::Error,
    },
    /// A watcher stopped receiving before it saw the last put's event.
    #[error(
        "watcher {watcher} stopped after {received} events without the last put's \
         (stream ended or canceled, or nothing for {waited:?})"
    )]
    WatchIncomplete {
        /// Which watcher (0-based).
        watcher: usize,
        /// The events it received.
        received: usize,
        /// How long it waits for an event.
        waited: Duration,
    },
    /// A check that writes under a prefix found keys there already.
    #[error("prefix {prefix:?} has keys; delete them with 'etcdctl del --prefix {prefix}' first")]
    PrefixNotEmpty {
        /// The prefix.
        prefix: String,
    },
    /// A check was interrupted (Ctrl-C); what it wrote was deleted.
    #[error("interrupted; the check's keys were deleted")]
    Interrupted,
    /// The datascale steps were not increasing key counts from at least 1.
    #[error("steps must be increasing key counts of at least 1, not {steps:?}")]
    Steps {
        /// The steps given.
        steps: Vec<u64>,
    },
    /// A request of a check (other than its load) failed.
    #[error("{what} {prefix:?} failed")]
    Prefix {
        /// What was being done.
        what: &'static str,
        /// The prefix it was done to.
        prefix: String,
        /// Why it failed.
        source: etcd_client::Error,
    },
    /// A member's metrics lacked something the check needs.
    #[error("{url}: no {metric} sample (is it an etcd or cairn-server /metrics URL?)")]
    MetricMissing {
        /// The metrics URL.
        url: String,
        /// The metric name.
        metric: &'static str,
    },
    /// The async runtime could not be started.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A client task panicked or was cancelled.
    #[error("a load client failed")]
    Task(#[from] tokio::task::JoinError),
}
