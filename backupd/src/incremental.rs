//! Incremental backups: the events since the last backed-up revision, read with a watch from
//! there up to the cluster's current revision and streamed in revision order into a multipart
//! upload (one part in memory at a time, as full backups). A watch that finds its start
//! compacted is a gap: [`Error::Compacted`], and a full backup is needed. A put's lease is
//! stored with the TTL it was granted, so a replay grants it as the source did.

use std::time::Duration;

use etcd_client::{EventType, WatchOptions};
use serde::{Deserialize, Serialize};

use crate::codec::Encoder;
use crate::lock::Lock;
use crate::manifest::{self, backup_id, Kind, Manifest};
use crate::{Backups, Error};

/// How long catching up may take.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

/// One stored event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The revision it happened at.
    pub revision: i64,
    /// Put or delete.
    pub delete: bool,
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for a delete).
    pub value: Vec<u8>,
    /// The lease the key is attached to (0: none).
    pub lease: i64,
    /// The TTL that lease was granted with, in seconds, when it was still alive at backup
    /// time (0: unknown; a replay then grants it for an hour).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease_ttl: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl Backups {
    /// Stores the events since the newest backup of the newest full backup's chain; `None`
    /// when nothing changed.
    pub async fn incremental(&self) -> Result<Option<Manifest>, Error> {
        let _run = self.run.lock().await;
        let lock_key = self.key("lock.json");
        let lock =
            Lock::acquire(self.store(), &lock_key, &self.owner, self.clock.now_utc()).await?;
        let result = self.incremental_locked().await;
        let released = lock.release(self.store()).await;
        let manifest = result?;
        released?;
        Ok(manifest)
    }

    async fn incremental_locked(&self) -> Result<Option<Manifest>, Error> {
        let list = self.list().await?;
        let base = list
            .iter()
            .rfind(|m| m.kind == Kind::Full)
            .ok_or(Error::NoFullBackup)?;
        let last = list
            .iter()
            .filter(|m| m.base.as_deref() == Some(base.id.as_str()))
            .map(|m| m.revision)
            .fold(base.revision, i64::max);
        let mut member = self.cluster.best_member().await?;
        let current = member.revision;
        if current < last {
            // Events from here on would be another history than the chain's.
            return Err(Error::Diverged {
                current,
                backed_up: last,
            });
        }
        if current == last {
            return Ok(None);
        }
        let started_at = self.clock.now_utc();
        let endpoint = member.endpoint.clone();
        let id = backup_id(Kind::Incremental, started_at, current);
        let mut name = String::from("events.jsonl");
        if self.codec.compression == cairn_inventory::Compression::Zstd {
            name.push_str(".zst");
        }
        if self.codec.key.is_some() {
            name.push_str(".enc");
        }
        let object = self.key(&format!("{id}/{name}"));
        let options = WatchOptions::new()
            .with_all_keys()
            .with_start_revision(last + 1);
        let mut stream = member
            .client
            .watch(vec![0u8], Some(options))
            .await
            .map_err(|e| Error::etcd(&endpoint, e))?;
        let mut encoder = Encoder::new(&self.codec, self.part_size)?;
        let mut plain = crate::trailer::Trailer::default();
        let mut ttls: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        let mut seen = last;
        let mut upload = self.store.start_upload(&object).await?;
        let mut lease_client = member.client.clone();
        let catch_up = async {
            while seen < current {
                let Some(resp) = stream
                    .message()
                    .await
                    .map_err(|e| Error::etcd(&endpoint, e))?
                else {
                    break;
                };
                if resp.compact_revision() > 0 {
                    return Err(Error::Compacted {
                        from: last + 1,
                        compacted: resp.compact_revision(),
                    });
                }
                for e in resp.events() {
                    let Some(kv) = e.kv() else { continue };
                    if kv.mod_revision() > current {
                        continue;
                    }
                    seen = seen.max(kv.mod_revision());
                    let lease = kv.lease();
                    let lease_ttl = match lease {
                        0 => 0,
                        id => match ttls.get(&id) {
                            Some(ttl) => *ttl,
                            None => {
                                // Granted TTL while the lease lives; unknown once it expired
                                // (its keys' deletes follow in the events then).
                                let ttl = lease_client
                                    .lease_time_to_live(id, None)
                                    .await
                                    .map_or(0, |r| r.granted_ttl().max(0));
                                ttls.insert(id, ttl);
                                ttl
                            }
                        },
                    };
                    let event = Event {
                        revision: kv.mod_revision(),
                        delete: e.event_type() == EventType::Delete,
                        key: kv.key().to_vec(),
                        value: kv.value().to_vec(),
                        lease,
                        lease_ttl,
                    };
                    let mut line = serde_json::to_vec(&event)?;
                    line.push(b'\n');
                    plain.update(&line);
                    encoder.write(&line)?;
                    for part in encoder.ready_parts() {
                        upload.part(part).await?;
                    }
                }
            }
            if seen < current {
                return Err(Error::TargetRevision {
                    target: current,
                    reached: seen,
                });
            }
            let encoded = encoder.finish()?;
            for part in encoded.parts {
                upload.part(part).await?;
            }
            Ok((encoded.size, encoded.sha256))
        };
        let streamed = tokio::time::timeout(CATCH_UP_TIMEOUT, catch_up)
            .await
            .unwrap_or_else(|_| {
                Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "watch catch-up timed out",
                )))
            });
        let (stored_bytes, stored_sha256) = match streamed {
            Ok(done) => done,
            Err(e) => {
                // No orphan parts: the store keeps nothing of a failed increment.
                let _ = upload.abort().await;
                return Err(e);
            }
        };
        let (_, plain_sha256, plain_bytes) = plain.finish();
        upload.complete().await?;
        let m = Manifest {
            format: manifest::FORMAT,
            id,
            kind: Kind::Incremental,
            cluster: self.cluster.name.clone(),
            cluster_id: member.cluster_id,
            member: endpoint,
            member_id: member.member_id,
            server: self.cluster.server,
            server_version: member.version.clone(),
            revision: current,
            from_revision: Some(last + 1),
            base: Some(base.id.clone()),
            slot: None,
            started_at,
            finished_at: self.clock.now_utc(),
            object,
            plain_bytes,
            plain_sha256,
            stored_bytes,
            stored_sha256,
            compression: self.codec.compression,
            encrypted: self.codec.key.is_some(),
        };
        self.write_manifest(&m).await?;
        Ok(Some(m))
    }
}
