//! A full backup: the snapshot of the member with the highest revision, streamed through the
//! codec into a multipart upload, the server's trailer checked, the manifest written last.
//! A failed attempt aborts its upload and is retried with backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::codec::Encoder;
use crate::lock::Lock;
use crate::manifest::{self, backup_id, Kind, Manifest};
use crate::store::Upload;
use crate::trailer::Trailer;
use crate::{Backups, Error};

/// What streaming a snapshot produced.
struct Streamed {
    plain_sha256: String,
    plain_bytes: u64,
    stored_sha256: String,
    stored_bytes: u64,
}

impl Backups {
    /// Takes a full backup under the store's lock. With a `slot` (the schedule time it runs
    /// for) that is already backed up, returns that backup instead of taking another.
    pub async fn full(&self, slot: Option<DateTime<Utc>>) -> Result<Manifest, Error> {
        let _run = self.run.lock().await;
        let lock_key = self.key("lock.json");
        let lock =
            Lock::acquire(self.store(), &lock_key, &self.owner, self.clock.now_utc()).await?;
        let result = self.full_locked(slot).await;
        let released = lock.release(self.store()).await;
        let manifest = result?;
        released?;
        Ok(manifest)
    }

    async fn full_locked(&self, slot: Option<DateTime<Utc>>) -> Result<Manifest, Error> {
        // Holding the lock, any unfinished upload is an earlier run's orphan.
        self.abort_orphans().await?;
        if let Some(slot) = slot {
            if let Some(done) = self
                .list()
                .await?
                .into_iter()
                .find(|m| m.kind == Kind::Full && m.slot == Some(slot))
            {
                return Ok(done);
            }
        }
        let mut attempt = 0;
        loop {
            match self.try_full(slot).await {
                Ok(m) => return Ok(m),
                Err(e) if attempt + 1 < self.retry.attempts.max(1) && retryable(&e) => {
                    let wait = self.retry.backoff * 2u32.saturating_pow(attempt);
                    tracing::warn!(
                        "backup attempt {} failed: {}; retrying in {wait:?}",
                        attempt + 1,
                        cairn_client::chain(&e)
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn object_name(&self) -> String {
        let mut name = String::from("snapshot.db");
        if self.codec.compression == cairn_inventory::Compression::Zstd {
            name.push_str(".zst");
        }
        if self.codec.key.is_some() {
            name.push_str(".enc");
        }
        name
    }

    async fn try_full(&self, slot: Option<DateTime<Utc>>) -> Result<Manifest, Error> {
        let mut member = self.cluster.best_member().await?;
        let started_at = self.clock.now_utc();
        let id = backup_id(Kind::Full, started_at, member.revision);
        let object = self.key(&format!("{id}/{}", self.object_name()));
        let mut upload = self.store.start_upload(&object).await?;
        let streamed = match self.stream_snapshot(&mut member, upload.as_mut()).await {
            Ok(s) => s,
            Err(e) => {
                if let Err(abort) = upload.abort().await {
                    tracing::warn!(
                        "aborting the upload of {object} failed: {abort}; the next run removes it"
                    );
                }
                return Err(e);
            }
        };
        upload.complete().await?;
        let manifest = Manifest {
            format: manifest::FORMAT,
            id: id.clone(),
            kind: Kind::Full,
            cluster: self.cluster.name.clone(),
            cluster_id: member.cluster_id,
            member: member.endpoint.clone(),
            member_id: member.member_id,
            server: self.cluster.server,
            server_version: member.version.clone(),
            revision: member.revision,
            from_revision: None,
            base: None,
            slot,
            started_at,
            finished_at: self.clock.now_utc(),
            object,
            plain_bytes: streamed.plain_bytes,
            plain_sha256: streamed.plain_sha256,
            stored_bytes: streamed.stored_bytes,
            stored_sha256: streamed.stored_sha256,
            compression: self.codec.compression,
            encrypted: self.codec.key.is_some(),
        };
        self.write_manifest(&manifest).await?;
        Ok(manifest)
    }

    async fn stream_snapshot(
        &self,
        member: &mut crate::cluster::Member,
        upload: &mut dyn Upload,
    ) -> Result<Streamed, Error> {
        let endpoint = member.endpoint.clone();
        let mut stream = member
            .client
            .snapshot()
            .await
            .map_err(|e| Error::etcd(&endpoint, e))?;
        let mut encoder = Encoder::new(&self.codec, self.part_size)?;
        let mut trailer = Trailer::default();
        let bar = self.progress.as_ref();
        bar.begin(None);
        let mut total_known = false;
        while let Some(msg) = stream
            .message()
            .await
            .map_err(|e| Error::etcd(&endpoint, e))?
        {
            let blob = msg.blob();
            trailer.update(blob);
            encoder.write(blob)?;
            bar.advance(blob.len() as u64);
            if !total_known {
                bar.set_total(blob.len() as u64 + msg.remaining_bytes());
                total_known = true;
            }
            for part in encoder.ready_parts() {
                upload.part(part).await?;
            }
        }
        bar.end();
        let (ok, plain_sha256, plain_bytes) = trailer.finish();
        if !ok {
            return Err(Error::SnapshotTrailer { endpoint });
        }
        let encoded = encoder.finish()?;
        for part in encoded.parts {
            upload.part(part).await?;
        }
        Ok(Streamed {
            plain_sha256,
            plain_bytes,
            stored_sha256: encoded.sha256,
            stored_bytes: encoded.size,
        })
    }
}

/// Failures worth another attempt: the store or the member may be back.
fn retryable(e: &Error) -> bool {
    matches!(
        e,
        Error::S3 { .. }
            | Error::Io(_)
            | Error::File { .. }
            | Error::Client(
                cairn_client::Error::Etcd { .. }
                    | cairn_client::Error::Unreachable { .. }
                    | cairn_client::Error::Timeout { .. }
                    | cairn_client::Error::NoMember { .. }
                    | cairn_client::Error::NoLeader { .. }
            )
            | Error::NoHealthyMember { .. }
            | Error::SnapshotTrailer { .. }
    )
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
pub async fn backup_now(inv: &cairn_inventory::Inventory) -> Result<Manifest, Error> {
    Backups::from_inventory(inv, std::sync::Arc::new(crate::SystemClock))
        .await?
        .full_when_unlocked(LOCK_WAIT)
        .await
}
