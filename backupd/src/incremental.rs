//! Incremental backups: the events since the last backed-up revision, read with a watch from
//! there up to the cluster's current revision and stored in revision order. A watch that
//! finds its start compacted is a gap: [`Error::Compacted`], and a full backup is needed.

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
}

impl Backups {
    /// Stores the events since the newest backup of the newest full backup's chain; `None`
    /// when nothing changed.
    pub async fn incremental(&self) -> Result<Option<Manifest>, Error> {
        let lock_key = self.key("lock.json");
        let lock = Lock::acquire(self.store(), &lock_key, &self.owner, self.clock.now()).await?;
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
        if current <= last {
            return Ok(None);
        }
        let started_at = self.clock.now();
        let endpoint = member.endpoint.clone();
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
        let mut parts = Vec::new();
        let mut seen = last;
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
                    let event = Event {
                        revision: kv.mod_revision(),
                        delete: e.event_type() == EventType::Delete,
                        key: kv.key().to_vec(),
                        value: kv.value().to_vec(),
                        lease: kv.lease(),
                    };
                    let mut line = serde_json::to_vec(&event)?;
                    line.push(b'\n');
                    plain.update(&line);
                    encoder.write(&line)?;
                    parts.extend(encoder.ready_parts());
                }
            }
            Ok(())
        };
        tokio::time::timeout(CATCH_UP_TIMEOUT, catch_up)
            .await
            .map_err(|_| {
                Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "watch catch-up timed out",
                ))
            })??;
        if seen < current {
            return Err(Error::TargetRevision {
                target: current,
                reached: seen,
            });
        }
        let (_, plain_sha256, plain_bytes) = plain.finish();
        let encoded = encoder.finish()?;
        parts.extend(encoded.parts);
        let id = backup_id(Kind::Incremental, started_at, current);
        let mut name = String::from("events.jsonl");
        if self.codec.compression == cairn_inventory::Compression::Zstd {
            name.push_str(".zst");
        }
        if self.codec.key.is_some() {
            name.push_str(".enc");
        }
        let object = self.key(&format!("{id}/{name}"));
        let mut upload = self.store.start_upload(&object).await?;
        for part in parts {
            if let Err(e) = upload.part(part).await {
                let _ = upload.abort().await;
                return Err(e);
            }
        }
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
            finished_at: self.clock.now(),
            object,
            plain_bytes,
            plain_sha256,
            stored_bytes: encoded.size,
            stored_sha256: encoded.sha256,
            compression: self.codec.compression,
            encrypted: self.codec.key.is_some(),
        };
        self.write_manifest(&m).await?;
        Ok(Some(m))
    }
}
