//! What converging one host would change: compared file by file (a unified diff for text, old
//! and new hashes for binaries and keys) and the unit's state, without changing anything.

use std::fmt;

use serde::Serialize;
use similar::TextDiff;

use crate::desired::{DesiredFile, FileKind, Service};
use crate::host::Host;
use crate::{layout, Error};

/// One file that differs from what the inventory wants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Absolute path on the host.
    pub path: String,
    /// How the change is shown.
    pub kind: FileKind,
    /// SHA-256 of the file there now; `None` when it is missing.
    pub old_sha256: Option<String>,
    /// SHA-256 of the wanted contents.
    pub new_sha256: String,
    /// The service the change restarts.
    pub service: Service,
    /// Unified diff, for text files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// What happens to the member's service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAction {
    /// Running with the wanted files: left alone.
    None,
    /// Not running: started (all new members at once, as a new cluster needs).
    Start,
    /// Running with files that changed: restarted, one member at a time.
    Restart,
    /// Not in the inventory any more: removed from the cluster, stopped and disabled.
    Remove,
}

/// What happens to the backup daemon's service on a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DaemonAction {
    /// Not wanted and not there, or running with the wanted files.
    #[default]
    None,
    /// Not running: started once the members are done.
    Start,
    /// Running with files that changed: restarted once the members are done.
    Restart,
    /// There, but no longer wanted on this host (`[backup] host` moved, or `[backup]` is
    /// gone): stopped, disabled and its files removed.
    Remove,
}

impl DaemonAction {
    fn is_none(&self) -> bool {
        *self == DaemonAction::None
    }
}

/// Everything converging one host would do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostPlan {
    /// Member name.
    pub host: String,
    /// Files to write, in writing order.
    pub files: Vec<FileChange>,
    /// `systemctl daemon-reload` (the unit file changes).
    pub daemon_reload: bool,
    /// `systemctl enable` (the unit is not enabled).
    pub enable: bool,
    /// What happens to the service.
    pub service: ServiceAction,
    /// How the host joins the running cluster (`None`: it is a member, or the cluster is new).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<Join>,
    /// What happens to the backup daemon here.
    #[serde(skip_serializing_if = "DaemonAction::is_none")]
    pub backupd: DaemonAction,
    /// `systemctl enable cairn-backupd.service` (wanted here and not enabled).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub backupd_enable: bool,
}

impl HostPlan {
    /// Whether converging the host changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && !self.daemon_reload
            && !self.enable
            && self.service == ServiceAction::None
            && self.membership.is_none()
            && self.backupd == DaemonAction::None
            && !self.backupd_enable
    }
}

pub use crate::desired::sha256_hex;

/// Compares `host` with `files` and reads the units' states: the member's, and the backup
/// daemon's where `files` has its files or its unit is still there.
pub async fn plan_host<H: Host>(host: &H, files: &[DesiredFile]) -> Result<HostPlan, Error> {
    let mut changes = Vec::new();
    for file in files {
        let new_sha256 = file.contents.sha256.clone();
        let (old_sha256, diff) = match file.kind {
            FileKind::Binary | FileKind::Secret => (host.file_sha256(&file.path).await?, None),
            FileKind::Text => {
                let old = host.read_file(&file.path).await?;
                let old_sha = old.as_deref().map(sha256_hex);
                let diff = (old_sha.as_deref() != Some(new_sha256.as_str())).then(|| {
                    let old_text = old
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    let new_text = String::from_utf8_lossy(&file.contents.bytes);
                    TextDiff::from_lines(old_text.as_ref(), new_text.as_ref())
                        .unified_diff()
                        .context_radius(3)
                        .header(&file.path, &file.path)
                        .to_string()
                });
                (old_sha, diff)
            }
        };
        if old_sha256.as_deref() != Some(new_sha256.as_str()) {
            changes.push(FileChange {
                path: file.path.clone(),
                kind: file.kind,
                old_sha256,
                new_sha256,
                service: file.service,
                diff,
            });
        }
    }
    let changed = |service| changes.iter().any(|c| c.service == service);
    let state = host.service_state(layout::UNIT_NAME).await?;
    let service = if !state.active {
        ServiceAction::Start
    } else if changed(Service::Member) {
        ServiceAction::Restart
    } else {
        ServiceAction::None
    };
    let (backupd, backupd_enable) = if files.iter().any(|f| f.service == Service::Backupd) {
        let daemon = host.service_state(layout::BACKUPD_UNIT_NAME).await?;
        let action = if !daemon.active {
            DaemonAction::Start
        } else if changed(Service::Backupd) {
            DaemonAction::Restart
        } else {
            DaemonAction::None
        };
        (action, !daemon.enabled)
    } else if host.file_sha256(layout::BACKUPD_UNIT_FILE).await?.is_some() {
        (DaemonAction::Remove, false)
    } else {
        (DaemonAction::None, false)
    };
    Ok(HostPlan {
        host: host.name().to_string(),
        daemon_reload: changes
            .iter()
            .any(|c| c.path == layout::UNIT_FILE || c.path == layout::BACKUPD_UNIT_FILE),
        enable: !state.enabled,
        files: changes,
        service,
        membership: None,
        backupd,
        backupd_enable,
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

impl fmt::Display for HostPlan {
    /// The plan for people: one line per file and action, diffs indented under their file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(f, "{}: no changes", self.host);
        }
        writeln!(f, "{}:", self.host)?;
        for c in &self.files {
            let sign = if c.old_sha256.is_some() { '~' } else { '+' };
            match (&c.diff, &c.old_sha256) {
                (Some(diff), _) => {
                    writeln!(f, "  {sign} {}", c.path)?;
                    for line in diff.lines() {
                        writeln!(f, "      {line}")?;
                    }
                }
                (None, Some(old)) => writeln!(
                    f,
                    "  {sign} {} (sha256 {} -> {})",
                    c.path,
                    short(old),
                    short(&c.new_sha256)
                )?,
                (None, None) => {
                    writeln!(f, "  {sign} {} (sha256 {})", c.path, short(&c.new_sha256))?
                }
            }
        }
        if self.daemon_reload {
            writeln!(f, "  systemctl daemon-reload")?;
        }
        if self.enable {
            writeln!(f, "  systemctl enable {}", layout::UNIT_NAME)?;
        }
        if let Some(join) = self.membership {
            writeln!(f, "  {join}")?;
            writeln!(
                f,
                "  start {} (initial-cluster-state=existing, one member at a time) and wait until it has caught up",
                layout::UNIT_NAME
            )?;
        } else {
            match self.service {
                ServiceAction::None | ServiceAction::Remove => {}
                ServiceAction::Start => writeln!(f, "  start {}", layout::UNIT_NAME)?,
                ServiceAction::Restart => writeln!(
                    f,
                    "  restart {} (one member at a time, the leader last)",
                    layout::UNIT_NAME
                )?,
            }
        }
        let daemon = layout::BACKUPD_UNIT_NAME;
        if self.backupd_enable {
            writeln!(f, "  systemctl enable {daemon}")?;
        }
        match self.backupd {
            DaemonAction::None => {}
            DaemonAction::Start => writeln!(f, "  start {daemon} (after the members)")?,
            DaemonAction::Restart => writeln!(f, "  restart {daemon} (after the members)")?,
            DaemonAction::Remove => writeln!(
                f,
                "  stop, disable and remove {daemon} and {} (no backup daemon on this host any more)",
                layout::BACKUPD_DIR
            )?,
        }
        Ok(())
    }
}
/// How a host of the inventory joins the running cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Join {
    /// Not a member yet: MemberAdd, then the first start.
    Add,
    /// Added earlier (member `id`) but never started: started now.
    Resume {
        /// Its member ID.
        id: u64,
    },
    /// A member (`old_id`) whose data directory is gone: removed, added again, started empty.
    Readd {
        /// The ID it had.
        old_id: u64,
    },
}

impl fmt::Display for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Join::Add => write!(f, "member add, then join the running cluster"),
            Join::Resume { id } => write!(
                f,
                "resume the join of member {id:x} (added, never started): start it"
            ),
            Join::Readd { old_id } => write!(
                f,
                "member {old_id:x} lost its data: stop it, member remove, member add, join again"
            ),
        }
    }
}
