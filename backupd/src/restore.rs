//! Restore: fresh data directories for every member of a new cluster, from a verified full
//! backup, written by the server's own `snapshot restore` (cairn-server's, or etcd's
//! `etcdutl`/`etcdctl`). A backup that fails verification is refused.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::manifest::{Kind, Manifest};
use crate::replay::{read_events, ReplayServer};
use crate::snapshot_restore::restore_one;
pub use crate::snapshot_restore::{RestoreMember, RestorePlan};
use crate::{Backups, Error};

/// Which backup to restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The newest full backup.
    Latest,
    /// A backup by ID.
    Id(String),
    /// The newest full backup at or before a revision.
    Revision(i64),
    /// The newest full backup started at or before a time.
    Time(DateTime<Utc>),
}

/// What a restore wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The backup used.
    pub id: String,
    /// Its revision.
    pub revision: i64,
    /// Data directories, in member order.
    pub data_dirs: Vec<PathBuf>,
}

impl Backups {
    /// Picks the backup for `target`.
    pub async fn pick(&self, target: &Target) -> Result<Manifest, Error> {
        if let Target::Id(id) = target {
            return self.manifest(id).await;
        }
        self.list()
            .await?
            .into_iter()
            .rfind(|m| {
                m.kind == Kind::Full
                    && match target {
                        Target::Revision(r) => m.revision <= *r,
                        Target::Time(t) => m.started_at <= *t,
                        _ => true,
                    }
            })
            .ok_or(Error::NoFullBackup)
    }

    /// Verifies the backups `target` needs (a full one, and for a revision or time past it
    /// the increments up to there, replayed) and writes every member's data directory.
    pub async fn restore(&self, target: &Target, plan: &RestorePlan) -> Result<Restored, Error> {
        let (manifest, increments) = self.chain_for(target).await?;
        let verified = self.verify_manifest(manifest).await?;
        let work = tempfile::tempdir()?;
        let (snapshot, revision) = if increments.is_empty() {
            (verified.path.clone(), verified.manifest.revision)
        } else {
            self.replay(&verified.path, &increments, target, work.path())
                .await?
        };
        let mut data_dirs = Vec::new();
        for m in &plan.members {
            let dir = plan.out_dir.join(&m.name);
            restore_one(
                self.cluster.server,
                &self.cluster.binary,
                &snapshot,
                plan,
                m,
                &dir,
            )
            .await?;
            data_dirs.push(dir);
        }
        Ok(Restored {
            id: verified.manifest.id.clone(),
            revision,
            data_dirs,
        })
    }

    /// What a restore of `target` would use, without downloading it: the full backup and
    /// the increments after it, in revision order (for `backup restore --plan`).
    pub async fn chain_for(&self, target: &Target) -> Result<(Manifest, Vec<Manifest>), Error> {
        let manifest = self.pick(target).await?;
        if manifest.kind != Kind::Full {
            return Err(Error::NoFullBackup);
        }
        let increments = self.increments_for(&manifest, target).await?;
        Ok((manifest, increments))
    }

    /// The increments of `full`'s chain a target needs, in revision order.
    async fn increments_for(
        &self,
        full: &Manifest,
        target: &Target,
    ) -> Result<Vec<Manifest>, Error> {
        let chain: Vec<Manifest> = self
            .list()
            .await?
            .into_iter()
            .filter(|m| m.kind == Kind::Incremental && m.base.as_deref() == Some(full.id.as_str()))
            .collect();
        let mut needed: Vec<Manifest> = match target {
            Target::Revision(r) => {
                let reached = chain
                    .iter()
                    .map(|m| m.revision)
                    .fold(full.revision, i64::max);
                if *r > reached {
                    return Err(Error::TargetRevision {
                        target: *r,
                        reached,
                    });
                }
                chain
                    .into_iter()
                    .filter(|m| m.from_revision.unwrap_or(m.revision) <= *r)
                    .collect()
            }
            Target::Time(t) => chain.into_iter().filter(|m| m.finished_at <= *t).collect(),
            Target::Latest | Target::Id(_) => Vec::new(),
        };
        needed.sort_by_key(|m| m.revision);
        Ok(needed)
    }

    /// Replays `increments` onto `snapshot` up to the target; the resulting snapshot and its
    /// revision.
    async fn replay(
        &self,
        snapshot: &Path,
        increments: &[Manifest],
        target: &Target,
        work: &Path,
    ) -> Result<(PathBuf, i64), Error> {
        let limit = match target {
            Target::Revision(r) => *r,
            _ => i64::MAX,
        };
        let mut server = ReplayServer::start(&self.cluster, snapshot, work).await?;
        let mut revision = server.revision().await?;
        for m in increments {
            let verified = self.verify_manifest(m.clone()).await?;
            let events = read_events(&verified.path)?;
            let mut i = 0;
            while i < events.len() {
                let rev = events[i].revision;
                let end = events[i..]
                    .iter()
                    .position(|e| e.revision != rev)
                    .map_or(events.len(), |n| i + n);
                if rev > revision && rev <= limit {
                    server.apply(rev, &events[i..end]).await?;
                    revision = rev;
                }
                i = end;
            }
        }
        if limit != i64::MAX && revision != limit {
            return Err(Error::TargetRevision {
                target: limit,
                reached: revision,
            });
        }
        let path = server.snapshot(&work.join("replayed.db")).await?;
        Ok((path, revision))
    }
}
