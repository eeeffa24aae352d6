//! Catching up through the leader's image: when raft sends a snapshot (the entries this member
//! needs are compacted away), the member streams the leader's MVCC state over the peer
//! service in chunks into a file, checks its SHA-256 trailer, and replaces its store with it.
//! Nothing holds the whole database in memory, on either side.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::consensus::Peers;
use crate::identity::Identity;
use crate::maintenance::snapshot;
use crate::mvcc::backend::scan_chunks;
use crate::mvcc::{CompactionJob, MvccStore, WriteBatch};
use crate::proto::cairnpb::SnapshotRequest;
use crate::shared::Shared;
use crate::{Error, EtcdError};

/// Replaces this member's state with the leader's (see [`super::StateMachine::install_snapshot`]).
pub trait SnapshotInstaller: Send + 'static {
    /// Fetches the image from `leader` (one holding at least `index`) and installs it into
    /// `shared`'s store.
    fn install(
        &mut self,
        shared: &Shared,
        leader: u64,
        index: u64,
    ) -> Result<Option<CompactionJob>, Error>;
}

/// Keys deleted per batch while the old state is cleared.
const CLEAR_BATCH: usize = 10_000;

/// Installs snapshots fetched from the leader's peer service.
pub struct PeerSnapshotInstaller {
    /// Peers, to reach the leader.
    pub peers: Arc<Peers>,
    /// Where the incoming image is written (the member's directory).
    pub dir: PathBuf,
    /// This member's IDs, kept in the installed store.
    pub identity: Identity,
}

impl PeerSnapshotInstaller {
    /// Streams the leader's image into `path`, on the peers' runtime (the raft thread that
    /// calls this waits).
    fn fetch(&self, leader: u64, path: &std::path::Path) -> Result<u64, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (peers, path) = (self.peers.clone(), path.to_path_buf());
        self.peers.runtime().spawn(async move {
            let _ = tx.send(fetch(&peers, leader, &path).await);
        });
        rx.recv().map_err(|_| Error::Etcd(EtcdError::Stopped))?
    }
}

async fn fetch(peers: &Peers, leader: u64, path: &std::path::Path) -> Result<u64, Error> {
    let file_err = |source| Error::File {
        path: path.to_path_buf(),
        source,
    };
    let mut client = peers.client(leader).await?;
    let mut chunks = client
        .snapshot(SnapshotRequest {
            cluster_id: peers.cluster_id(),
            from: peers.member_id(),
        })
        .await?
        .into_inner();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(file_err)?);
    let mut bytes = 0u64;
    while let Some(chunk) = chunks.message().await? {
        bytes += chunk.data.len() as u64;
        file.write_all(&chunk.data).map_err(file_err)?;
    }
    let file = file.into_inner().map_err(|e| file_err(e.into_error()))?;
    file.sync_all().map_err(file_err)?;
    Ok(bytes)
}

/// Attempts to fetch an image that holds the snapshot's index (the leader applies what it
/// committed shortly after).
const FETCH_ATTEMPTS: u32 = 20;

impl SnapshotInstaller for PeerSnapshotInstaller {
    fn install(
        &mut self,
        shared: &Shared,
        leader: u64,
        index: u64,
    ) -> Result<Option<CompactionJob>, Error> {
        let path = self.dir.join("snapshot.incoming");
        let started = std::time::Instant::now();
        let mut attempt = 0;
        let bytes = loop {
            attempt += 1;
            let fetched = self.fetch(leader, &path);
            let fetched = fetched.and_then(|bytes| {
                snapshot::verify(&path)?;
                Ok((bytes, snapshot::status_meta(&path)?.applied_index))
            });
            match fetched {
                Ok((bytes, applied)) if applied >= index => break bytes,
                Ok((_, applied)) => {
                    tracing::info!(
                        applied,
                        index,
                        "the leader's image is behind the snapshot point, fetching again"
                    );
                }
                Err(e) if attempt < FETCH_ATTEMPTS => {
                    tracing::warn!(error = %crate::error::chain(&e), attempt, "fetching the leader's snapshot failed, retrying");
                }
                Err(e) => return Err(e),
            }
            if attempt >= FETCH_ATTEMPTS {
                return Err(Error::SnapshotBehind { index });
            }
            std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)));
        };
        let mut store = shared.store.write();
        let backend = store.backend().clone();
        // Clear the old state, then write the image into the same backend.
        scan_chunks::<()>(&*backend, b"", &[0xff; 64], CLEAR_BATCH, |chunk| {
            let mut batch = WriteBatch::new();
            for (k, _) in chunk {
                batch.delete(k.clone());
            }
            backend.write(batch)?;
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
        let meta =
            snapshot::restore_into(&path, &*backend, snapshot::RestoreAs::Member(self.identity))?;
        let (fresh, pending) = MvccStore::open(backend)?;
        for (id, _) in store.leases().iter() {
            shared.lessor.stop(id);
        }
        for (id, lease) in fresh.leases().iter() {
            shared.lessor.start(id, lease.ttl);
        }
        *store = fresh;
        let rev = store.revision();
        shared.events.reset(rev);
        shared.publish(rev, Vec::new());
        shared.sync_alarms(store.alarms());
        drop(store);
        let _ = std::fs::remove_file(&path);
        tracing::info!(
            leader = %format!("{leader:x}"),
            bytes,
            revision = meta.revision,
            applied_index = meta.applied_index,
            took = ?started.elapsed(),
            "installed the leader's snapshot"
        );
        Ok(pending)
    }
}
