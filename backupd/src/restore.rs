//! Restore: fresh data directories for every member of a new cluster, from a verified full
//! backup, written by the server's own `snapshot restore` (cairn-server's, or etcd's
//! `etcdutl`/`etcdctl`). A backup that fails verification is refused.

use std::path::{Path, PathBuf};

use cairn_inventory::{Inventory, ServerKind};
use chrono::{DateTime, Utc};

use crate::manifest::{Kind, Manifest};
use crate::verify::last_line;
use crate::{Backups, Error};

/// One member of the cluster to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreMember {
    /// `--name`.
    pub name: String,
    /// `--initial-advertise-peer-urls`.
    pub peer_url: String,
}

/// The cluster a restore builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestorePlan {
    /// Its members.
    pub members: Vec<RestoreMember>,
    /// `--initial-cluster-token`.
    pub token: String,
    /// Where `<name>/` data directories are written.
    pub out_dir: PathBuf,
}

impl RestorePlan {
    /// The inventory's members, written below `out_dir`.
    pub fn from_inventory(inv: &Inventory, out_dir: PathBuf) -> Self {
        let scheme = if inv.tls.is_some() { "https" } else { "http" };
        Self {
            members: inv
                .hosts
                .iter()
                .map(|h| RestoreMember {
                    name: h.name.clone(),
                    peer_url: format!("{scheme}://{}:{}", h.address, inv.cluster.peer_port),
                })
                .collect(),
            token: inv.cluster.token.clone(),
            out_dir,
        }
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }
}

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
            .filter(|m| m.kind == Kind::Full)
            .filter(|m| match target {
                Target::Revision(r) => m.revision <= *r,
                Target::Time(t) => m.started_at <= *t,
                _ => true,
            })
            .next_back()
            .ok_or(Error::NoFullBackup)
    }

    /// Verifies the backup `target` names and writes every member's data directory.
    pub async fn restore(&self, target: &Target, plan: &RestorePlan) -> Result<Restored, Error> {
        let manifest = self.pick(target).await?;
        if manifest.kind != Kind::Full {
            return Err(Error::NoFullBackup);
        }
        let verified = self.verify_manifest(manifest).await?;
        let mut data_dirs = Vec::new();
        for m in &plan.members {
            let dir = plan.out_dir.join(&m.name);
            restore_one(
                self.cluster.server,
                &self.cluster.binary,
                &verified.path,
                plan,
                m,
                &dir,
            )
            .await?;
            data_dirs.push(dir);
        }
        Ok(Restored {
            id: verified.manifest.id.clone(),
            revision: verified.manifest.revision,
            data_dirs,
        })
    }
}

/// Runs the server's `snapshot restore` for one member.
async fn restore_one(
    server: ServerKind,
    binary: &Path,
    snapshot: &Path,
    plan: &RestorePlan,
    member: &RestoreMember,
    dir: &Path,
) -> Result<(), Error> {
    let mut cmd = match server {
        ServerKind::Cairn => tokio::process::Command::new(binary),
        ServerKind::Etcd => match which("etcdutl") {
            Some(etcdutl) => tokio::process::Command::new(etcdutl),
            None => {
                let mut c = tokio::process::Command::new("etcdctl");
                c.env("ETCDCTL_API", "3");
                c
            }
        },
    };
    cmd.args(["snapshot", "restore"])
        .arg(snapshot)
        .arg("--data-dir")
        .arg(dir)
        .args(["--name", &member.name])
        .args(["--initial-cluster", &plan.initial_cluster()])
        .args(["--initial-cluster-token", &plan.token])
        .args(["--initial-advertise-peer-urls", &member.peer_url]);
    let program = format!("{:?}", cmd.as_std().get_program());
    let out = cmd
        .output()
        .await
        .map_err(|e| Error::file(Path::new(&program), e))?;
    if !out.status.success() {
        return Err(Error::Command {
            program: format!("{program} snapshot restore"),
            status: out.status,
            stderr: last_line(&out.stderr),
        });
    }
    Ok(())
}

/// A program on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
