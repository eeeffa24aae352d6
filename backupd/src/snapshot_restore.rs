//! The server's own `snapshot restore` (cairn-server's, or etcd's `etcdutl`/`etcdctl`) into
//! fresh data directories for the members of a new cluster: the step a restore and the
//! point-in-time replay server both build on.

use std::path::{Path, PathBuf};

use cairn_inventory::{Inventory, ServerKind};

use crate::verify::last_line;
use crate::Error;

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
        Self {
            members: inv
                .hosts
                .iter()
                .map(|h| RestoreMember {
                    name: h.name.clone(),
                    peer_url: inv.peer_url(h),
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

/// Runs the server's `snapshot restore` for one member.
pub(crate) async fn restore_one(
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
