//! `cairn backupd`: verified, scheduled backups of an etcd-style cluster (cairn-server or
//! etcd 3.4) to S3 or a directory, with retention and restore.
//!
//! A full backup streams `Maintenance.Snapshot` from the member with the highest revision
//! through zstd (and AES-256-GCM) into a multipart upload, checking the server's SHA-256
//! trailer on the way and recording its own hash of the stored object; its manifest is
//! written last, so only complete backups are ever listed. [`Backups`] is the handle every
//! command uses; [`backup_now`] is the one-call hook for other tools (the provisioner takes a
//! backup before an upgrade).

mod catalog;

mod cluster;
mod codec;
mod crypto;
mod daemon;
mod error;
mod full;
mod incremental;
mod lock;
pub mod logical;
pub mod manifest;
mod metrics;
mod preflight;
mod replay;
mod restore;
pub mod retention;
mod schedule;
pub mod store;
mod trailer;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use cairn_inventory::Inventory;

pub use cairn_client::TlsFiles;
pub use cairn_client::{Clock, FakeClock, SystemClock};
pub use cluster::ClusterSpec;
pub use codec::Codec;
pub use crypto::Key;
pub use daemon::{run as run_daemon, DaemonOptions};
pub use error::Error;
pub use incremental::Event;
pub use manifest::{Kind, Manifest};
pub use metrics::Metrics;
pub use preflight::Preflight;
pub use restore::{RestoreMember, RestorePlan, Restored, Target};
pub use retention::Pruned;
pub use schedule::Schedule;
pub use store::{ObjectStore, S3Options};
pub use verify::Verified;

/// S3's smallest part but the last is 5 MiB; 8 MiB parts keep memory low and requests few.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;

/// How often, and how patiently, a failed upload is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

/// The backups of one cluster in one store.
pub struct Backups {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    cluster: ClusterSpec,
    codec: Codec,
    clock: Arc<dyn Clock>,
    part_size: usize,
    retry: Retry,
    retention: cairn_inventory::Retention,
    progress: bool,
    owner: String,
    /// One run at a time through this handle: the store's lock is re-entrant for its owner
    /// (so a run whose release failed can take it again), so the daemon's full and
    /// incremental runs must not overlap in one process.
    run: tokio::sync::Mutex<()>,
}

impl Backups {
    /// Backups of `cluster` under `store_prefix/<cluster name>/` in `store`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        store_prefix: &str,
        cluster: ClusterSpec,
        codec: Codec,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let prefix = if store_prefix.is_empty() {
            cluster.name.clone()
        } else {
            format!("{store_prefix}/{}", cluster.name)
        };
        Self {
            store,
            prefix,
            cluster,
            codec,
            clock,
            part_size: DEFAULT_PART_SIZE,
            retry: Retry::default(),
            retention: cairn_inventory::Retention::default(),
            progress: false,
            owner: lock::owner(),
            run: tokio::sync::Mutex::new(()),
        }
    }

    /// The inventory's cluster and `[backup]` store, codec and retention.
    pub async fn from_inventory(inv: &Inventory, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let b = inv.backup.as_ref().ok_or(Error::NotConfigured)?;
        let s3 = S3Options {
            region: b.region.clone(),
            endpoint: b.endpoint.clone(),
            path_style: b.path_style,
        };
        let (store, prefix) = store::open(&b.store, &s3).await?;
        let key = b
            .encryption_key_file
            .as_deref()
            .map(Key::from_file)
            .transpose()?;
        let codec = Codec {
            compression: b.compression,
            key,
        };
        let mut backups = Self::new(
            Arc::from(store),
            &prefix,
            ClusterSpec::from_inventory(inv),
            codec,
            clock,
        );
        backups.retention = b.retention.clone();
        Ok(backups)
    }

    /// Upload part size (tests use small parts).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(1);
        self
    }

    /// Retry policy for failed uploads.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Retention buckets for [`Backups::prune`].
    pub fn with_retention(mut self, retention: cairn_inventory::Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Progress bars on stderr for transfers (for a terminal).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// The cluster.
    pub fn cluster(&self) -> &ClusterSpec {
        &self.cluster
    }

    /// The store.
    pub fn store(&self) -> &dyn ObjectStore {
        self.store.as_ref()
    }

    /// The key prefix of this cluster's backups.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }
}

/// How long a one-off backup waits for a lock someone else holds (the daemon's run in
/// progress) before it gives up.
pub const LOCK_WAIT: Duration = Duration::from_secs(600);

impl Backups {
    /// A full backup now; while someone else holds the store's lock (the daemon's scheduled
    /// run), waits for it, up to `max_wait`.
    pub async fn full_when_unlocked(&self, max_wait: Duration) -> Result<Manifest, Error> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            match self.full(None).await {
                Err(Error::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                outcome => return outcome,
            }
        }
    }
}

/// Takes a full backup now with the inventory's `[backup]` settings (the hook the provisioner
/// calls before an upgrade), after the daemon's run in progress if there is one.
pub async fn backup_now(inv: &Inventory) -> Result<Manifest, Error> {
    Backups::from_inventory(inv, Arc::new(SystemClock))
        .await?
        .full_when_unlocked(LOCK_WAIT)
        .await
}
