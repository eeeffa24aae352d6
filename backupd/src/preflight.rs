//! What a daemon must be able to do before it is started (`cairn backupd --check`, which the
//! provisioner runs on the daemon's host): list and write its store and reach a member. A
//! daemon that cannot would otherwise only show up as a missing backup hours later.

use bytes::Bytes;

use crate::{Backups, Error};

/// What the check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preflight {
    /// Backups (full and incremental) the store lists for the cluster.
    pub backups: usize,
    /// The member a backup would come from now.
    pub member: String,
    /// Its revision.
    pub revision: i64,
}

impl Backups {
    /// Lists the store, writes and deletes a small object beside the backups, and picks the
    /// member a backup would come from.
    pub async fn preflight(&self) -> Result<Preflight, Error> {
        let backups = self.list().await?.len();
        let owner: String = self
            .owner
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let key = self.key(&format!("check/{owner}"));
        self.store
            .put(
                &key,
                Bytes::from_static(b"written by cairn backupd --check\n"),
            )
            .await?;
        self.store.delete(&key).await?;
        let member = self.cluster.best_member().await?;
        Ok(Preflight {
            backups,
            member: member.endpoint,
            revision: member.revision,
        })
    }
}
