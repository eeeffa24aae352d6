//! Point-in-time restore: the full snapshot restored into a temporary single-member server on
//! loopback, the stored events replayed as one transaction per revision (every revision has
//! at least one event, so revision numbers match the source), leases granted with their IDs
//! first; then a snapshot of that server is what the members are restored from.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use etcd_client::{Client, LeaseGrantOptions, PutOptions, Txn, TxnOp};

use crate::incremental::Event;
use crate::snapshot_restore::{restore_one, RestoreMember, RestorePlan};
use crate::trailer::Trailer;
use crate::{ClusterSpec, Error};

/// How long the replay server may take to serve.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// TTL of leases granted during replay when an event does not carry the granted one (the
/// lease had expired when the increment was taken, or an older increment).
const REPLAY_LEASE_TTL: i64 = 3600;
/// The replay server's transaction limits. One revision is replayed as one transaction, and a
/// revision can hold any number of events (a prefix delete removes every key under it in
/// one revision), so the server must take what the source's limits never had to: as many
/// operations as a count can say, and requests up to what a gRPC message can carry.
const REPLAY_MAX_TXN_OPS: &str = "4294967295";
const REPLAY_MAX_REQUEST_BYTES: &str = "2147483647";

/// A free loopback port (the replay server binds it right after).
fn free_port() -> Result<u16, Error> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The replay server, killed when dropped.
pub(crate) struct ReplayServer {
    _child: tokio::process::Child,
    endpoint: String,
    pub(crate) client: Client,
}

impl ReplayServer {
    /// Restores `snapshot` into `work` and starts the server on it.
    pub(crate) async fn start(
        cluster: &ClusterSpec,
        snapshot: &Path,
        work: &Path,
    ) -> Result<Self, Error> {
        let (client_port, peer_port) = (free_port()?, free_port()?);
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let plan = RestorePlan {
            members: vec![RestoreMember {
                name: "replay".into(),
                peer_url: peer_url.clone(),
            }],
            token: "cairn-replay".into(),
            out_dir: work.to_path_buf(),
        };
        let data_dir = work.join("replay");
        restore_one(
            cluster.server,
            &cluster.binary,
            snapshot,
            &plan,
            &plan.members[0],
            &data_dir,
        )
        .await?;
        let endpoint = format!("http://127.0.0.1:{client_port}");
        let log =
            std::fs::File::create(work.join("replay.log")).map_err(|e| Error::file(work, e))?;
        let child = tokio::process::Command::new(&cluster.binary)
            .args(["--name", "replay"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--listen-client-urls",
                &endpoint,
                "--advertise-client-urls",
                &endpoint,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("replay={peer_url}")])
            .args(["--initial-cluster-token", "cairn-replay"])
            .args(["--max-txn-ops", REPLAY_MAX_TXN_OPS])
            .args(["--max-request-bytes", REPLAY_MAX_REQUEST_BYTES])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::file(&cluster.binary, e))?;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(mut client) = Client::connect([endpoint.as_str()], None).await {
                if client.status().await.is_ok() {
                    return Ok(Self {
                        _child: child,
                        endpoint,
                        client,
                    });
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NoHealthyMember { tried: 1 });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's current revision.
    pub(crate) async fn revision(&mut self) -> Result<i64, Error> {
        let status = self
            .client
            .status()
            .await
            .map_err(|e| Error::etcd(&self.endpoint, e))?;
        Ok(status.header().map_or(0, |h| h.revision()))
    }

    /// Applies the events of one revision as one transaction.
    pub(crate) async fn apply(&mut self, revision: i64, events: &[Event]) -> Result<(), Error> {
        let mut ops = Vec::with_capacity(events.len());
        for e in events {
            if e.delete {
                ops.push(TxnOp::delete(e.key.clone(), None));
            } else {
                let options = (e.lease != 0).then(|| PutOptions::new().with_lease(e.lease));
                if e.lease != 0 {
                    // Already granted (from the snapshot or an earlier event) is fine.
                    let _ = self
                        .client
                        .lease_grant(
                            if e.lease_ttl > 0 {
                                e.lease_ttl
                            } else {
                                REPLAY_LEASE_TTL
                            },
                            Some(LeaseGrantOptions::new().with_id(e.lease)),
                        )
                        .await;
                }
                ops.push(TxnOp::put(e.key.clone(), e.value.clone(), options));
            }
        }
        let resp = self
            .client
            .txn(Txn::new().and_then(ops))
            .await
            .map_err(|e| Error::etcd(&self.endpoint, e))?;
        let got = resp.header().map_or(0, |h| h.revision());
        if got != revision {
            return Err(Error::TargetRevision {
                target: revision,
                reached: got,
            });
        }
        Ok(())
    }

    /// Streams a snapshot of the server into `path`, checking its trailer.
    pub(crate) async fn snapshot(&mut self, path: &Path) -> Result<PathBuf, Error> {
        use tokio::io::AsyncWriteExt;
        let mut stream = self
            .client
            .snapshot()
            .await
            .map_err(|e| Error::etcd(&self.endpoint, e))?;
        let mut file = tokio::fs::File::create(path)
            .await
            .map_err(|e| Error::file(path, e))?;
        let mut trailer = Trailer::default();
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|e| Error::etcd(&self.endpoint, e))?
        {
            trailer.update(msg.blob());
            file.write_all(msg.blob())
                .await
                .map_err(|e| Error::file(path, e))?;
        }
        file.flush().await.map_err(|e| Error::file(path, e))?;
        if !trailer.finish().0 {
            return Err(Error::SnapshotTrailer {
                endpoint: self.endpoint.clone(),
            });
        }
        Ok(path.to_path_buf())
    }
}

/// Parses stored events (JSON lines).
pub(crate) fn read_events(path: &Path) -> Result<Vec<Event>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).map_err(Error::from))
        .collect()
}
