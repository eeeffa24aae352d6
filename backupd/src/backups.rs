//! [`Backups`]: the handle every backup command uses, for one cluster in one store. Its
//! operations live one per file (`full`, `incremental`, `verify`, `restore`, `retention`, ...).

use std::sync::Arc;
use std::time::Duration;

use cairn_inventory::Inventory;

use crate::cluster::ClusterSpec;
use crate::codec::Codec;
use crate::crypto::Key;
use crate::lock;
use crate::progress::{NoProgress, TransferProgress};
use crate::store::{self, ObjectStore, S3Options};
use crate::{Clock, Error};

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
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: String,
    pub(crate) cluster: ClusterSpec,
    pub(crate) codec: Codec,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) part_size: usize,
    pub(crate) retry: Retry,
    pub(crate) retention: cairn_inventory::Retention,
    pub(crate) progress: Arc<dyn TransferProgress>,
    pub(crate) owner: String,
    /// One run at a time through this handle: the store's lock is re-entrant for its owner
    /// (so a run whose release failed can take it again), so the daemon's full and
    /// incremental runs must not overlap in one process.
    pub(crate) run: tokio::sync::Mutex<()>,
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
            progress: Arc::new(NoProgress),
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
            ClusterSpec::from_inventory(inv)?,
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

    /// Where transfers report their bytes (the CLI draws a bar on a terminal).
    pub fn with_progress(mut self, progress: Arc<dyn TransferProgress>) -> Self {
        self.progress = progress;
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

    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }
}
