//! Which backups exist: manifests under the cluster's prefix, ordered by time and revision as
//! numbers (never as strings), and removing one (manifest first, so that a half-removed
//! backup is never listed).

use crate::manifest::{self, Manifest};
use crate::{Backups, Error};

impl Backups {
    /// Every backup, oldest first.
    pub async fn list(&self) -> Result<Vec<Manifest>, Error> {
        let prefix = format!("{}/", self.prefix);
        let mut manifests = Vec::new();
        for key in self.store.list(&prefix).await? {
            if !key.ends_with(&format!("/{}", manifest::FILE)) {
                continue;
            }
            if let Some(data) = self.store.get(&key).await? {
                manifests.push(serde_json::from_slice::<Manifest>(&data)?);
            }
        }
        manifests.sort_by_key(Manifest::order_key);
        Ok(manifests)
    }

    /// The newest backup (full or increment), for commands whose ID is optional.
    pub async fn newest(&self) -> Result<Manifest, Error> {
        self.list().await?.pop().ok_or(Error::Empty)
    }

    /// The backup `id`.
    pub async fn manifest(&self, id: &str) -> Result<Manifest, Error> {
        let data = self
            .store
            .get(&self.key(&format!("{id}/{}", manifest::FILE)))
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        Ok(serde_json::from_slice(&data)?)
    }

    pub(crate) async fn write_manifest(&self, m: &Manifest) -> Result<(), Error> {
        let body = serde_json::to_vec_pretty(m)?;
        self.store
            .put(
                &self.key(&format!("{}/{}", m.id, manifest::FILE)),
                body.into(),
            )
            .await
    }

    /// Removes a backup: its manifest first, then its object.
    pub async fn delete(&self, m: &Manifest) -> Result<(), Error> {
        self.store
            .delete(&self.key(&format!("{}/{}", m.id, manifest::FILE)))
            .await?;
        self.store.delete(&m.object).await
    }

    /// Aborts uploads that an interrupted run left (call with the lock held); how many.
    pub async fn abort_orphans(&self) -> Result<usize, Error> {
        let pending = self
            .store
            .pending_uploads(&format!("{}/", self.prefix))
            .await?;
        for (key, id) in &pending {
            tracing::info!("aborting the unfinished upload of {key}");
            self.store.abort_upload(key, id).await?;
        }
        Ok(pending.len())
    }
}
