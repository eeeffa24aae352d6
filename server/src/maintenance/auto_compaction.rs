//! `--auto-compaction-mode` / `--auto-compaction-retention`, as etcd 3.4's `v3compactor`:
//! compactions are proposed through the write path exactly like a client's Compact.
//!
//! - periodic: keeps `retention` of history. Every retention/10 (a period over an hour counts
//!   as an hour) it samples the current revision; once `retention` has passed since the start
//!   (afterwards, every min(retention, 1h)) it compacts at the oldest sample, i.e. the revision
//!   of about `retention` ago.
//! - revision: every 5 minutes (etcd has no flag for it; [`AutoCompactor::revision`] takes
//!   the interval so tests can shorten it) it compacts at current revision − retention, unless
//!   that is not positive or was already done.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

pub use crate::config::{parse_retention, Retention};
use crate::config::{AutoCompactionMode, ConfigError};
use crate::node::Node;
use crate::proto::cairnpb::internal_request::Request;
use crate::proto::etcdserverpb::CompactionRequest;
use crate::{Error, EtcdError};

/// etcd's check interval in revision mode.
pub const REVISION_CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A running auto compactor; stops when dropped.
#[derive(Debug)]
pub struct AutoCompactor {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AutoCompactor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn compact(node: &Node, rev: i64) -> bool {
    // In a cluster only the leader compacts (as in etcd); the others skip their turn.
    if !node.is_leader() {
        return true;
    }
    let req = Request::Compaction(CompactionRequest {
        revision: rev,
        physical: false,
    });
    match node.propose(req).await {
        Ok(_) | Err(Error::Etcd(EtcdError::Compacted)) => {
            tracing::info!(rev, "auto compaction");
            true
        }
        Err(e) => {
            tracing::warn!(rev, error = %crate::error::chain(&e), "auto compaction failed, will retry");
            false
        }
    }
}

fn current_rev(node: &Node) -> i64 {
    node.read(|view| view.rev)
}

impl AutoCompactor {
    /// Starts the compactor the flags ask for (`None` when auto compaction is off).
    pub fn from_flags(
        node: Arc<Node>,
        mode: AutoCompactionMode,
        retention: &str,
    ) -> Result<Option<Self>, ConfigError> {
        Ok(match parse_retention(mode, retention)? {
            None => None,
            Some(Retention::Period(p)) => Some(Self::periodic(node, p)),
            Some(Retention::Revisions(n)) => Some(Self::revision(node, n, REVISION_CHECK_INTERVAL)),
        })
    }

    /// Periodic mode keeping `period` of history.
    pub fn periodic(node: Arc<Node>, period: Duration) -> Self {
        let capped = period.min(Duration::from_secs(3600));
        let retry = (capped / 10).max(Duration::from_millis(1));
        let samples = (period.as_nanos() / retry.as_nanos()) as usize + 1;
        let task = tokio::spawn(async move {
            let mut revs: VecDeque<i64> = VecDeque::new();
            let mut last_success = Instant::now();
            let mut last_rev = 0;
            let mut base = period;
            loop {
                revs.push_back(current_rev(&node));
                if revs.len() > samples {
                    revs.pop_front();
                }
                tokio::time::sleep(retry).await;
                let rev = revs[0];
                if last_success.elapsed() < base || rev == last_rev {
                    continue;
                }
                base = capped;
                if compact(&node, rev).await {
                    last_success = Instant::now();
                    last_rev = rev;
                }
            }
        });
        Self { task }
    }

    /// Revision mode keeping `retention` revisions, checking every `interval`.
    pub fn revision(node: Arc<Node>, retention: i64, interval: Duration) -> Self {
        let task = tokio::spawn(async move {
            let mut prev = 0;
            loop {
                tokio::time::sleep(interval).await;
                let rev = current_rev(&node) - retention;
                if rev <= 0 || rev == prev {
                    continue;
                }
                if compact(&node, rev).await {
                    prev = rev;
                }
            }
        });
        Self { task }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::{MemBackend, MvccStore};
    use crate::proto::etcdserverpb::PutRequest;

    #[test]
    fn retention_is_read_like_etcd() {
        use AutoCompactionMode::*;
        assert_eq!(
            parse_retention(Periodic, "1").unwrap(),
            Some(Retention::Period(Duration::from_secs(3600)))
        );
        assert_eq!(
            parse_retention(Periodic, "30m").unwrap(),
            Some(Retention::Period(Duration::from_secs(1800)))
        );
        assert_eq!(parse_retention(Periodic, "0").unwrap(), None);
        assert_eq!(
            parse_retention(Revision, "1000").unwrap(),
            Some(Retention::Revisions(1000))
        );
        assert!(parse_retention(Periodic, "soon").is_err());
        assert!(parse_retention(Revision, "-3").is_err());
    }

    fn node() -> Arc<Node> {
        let (store, _) = MvccStore::open(Arc::new(MemBackend::new())).unwrap();
        Node::start_for_test(store, 1 << 30)
    }

    async fn put(node: &Node, n: usize) {
        for i in 0..n {
            let req = Request::Put(PutRequest {
                key: format!("k{i}").into_bytes(),
                value: b"v".to_vec(),
                ..Default::default()
            });
            node.propose(req).await.unwrap();
        }
    }

    async fn wait_compacted_to(node: &Node, rev: i64) {
        let mut rx = node.shared().compacted.subscribe();
        tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|r| *r >= rev))
            .await
            .expect("auto compaction within 30 s")
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revision_mode_keeps_the_last_n_revisions() {
        let node = node();
        put(&node, 10).await; // revisions 2..=11
        let _c = AutoCompactor::revision(node.clone(), 3, Duration::from_millis(20));
        wait_compacted_to(&node, 8).await;
        assert_eq!(node.shared().store.read().compact_revision(), 8);
        node.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn periodic_mode_compacts_to_the_revision_of_one_period_ago() {
        let node = node();
        put(&node, 5).await; // revision 6 when the compactor starts
        let _c = AutoCompactor::periodic(node.clone(), Duration::from_millis(200));
        wait_compacted_to(&node, 6).await;
        let compacted = node.shared().store.read().compact_revision();
        assert!(compacted >= 6, "compacted at {compacted}");
        node.shutdown();
    }
}
