//! `cairn backup now | list | verify ID | prune [--dry-run] | restore ID | export --logical
//! FILE | import FILE`: one-off backup operations with the inventory's `[backup]` settings.

use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use cairn_backupd::{logical, Backups, ClusterSpec, RestorePlan, SystemClock, Target};
use cairn_inventory::InventoryArg;
use clap::{Args, Subcommand};

use cairn_provisioner::restore::restore_onto_hosts;

use crate::progress::HostProgress;
use crate::prompt::confirm;
use crate::ssh_args::SshArgs;
use crate::{Error, Output};

/// `cairn backup`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Take a full backup now.
    Now(Common),
    /// List the backups, oldest first.
    List(Common),
    /// Download a backup and check every hash (and open a cairn snapshot).
    Verify {
        /// Inventory and output.
        #[command(flatten)]
        common: Common,
        /// The backup's ID (`cairn backup list`); the newest backup when absent.
        id: Option<String>,
    },
    /// Apply `[backup.retention]`.
    Prune {
        /// Inventory and output.
        #[command(flatten)]
        common: Common,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write fresh data directories for every member of the inventory from a backup; with
    /// `--provision`, put them on the hosts and start the cluster on them.
    Restore {
        /// Inventory and output.
        #[command(flatten)]
        common: Common,
        /// The backup's ID; the newest full backup when absent.
        id: Option<String>,
        /// The cluster as it was at this revision: the newest full backup at or before it,
        /// plus the increments up to it.
        #[arg(long, conflicts_with_all = ["id", "to_time"])]
        to_revision: Option<i64>,
        /// The cluster as it was at this time (RFC 3339), to the precision of the increments:
        /// the newest full backup started at or before it, plus the increments finished by
        /// then.
        #[arg(long, conflicts_with = "id", value_parser = rfc3339)]
        to_time: Option<chrono::DateTime<chrono::Utc>>,
        /// Where `<member>/` data directories are written.
        #[arg(long, default_value = "restored")]
        out_dir: PathBuf,
        /// Then stop every member (and the backup daemon), set their data aside as
        /// `<data_dir>.pre-restore-<time>`, push the restored data directories and start a
        /// new cluster on them.
        #[arg(long)]
        provision: bool,
        /// Do not ask before replacing the cluster's data (scripts).
        #[arg(short = 'y', long, requires = "provision")]
        yes: bool,
        /// Only say which backups the restore would use and what it would do on each host;
        /// nothing is downloaded or changed.
        #[arg(long, requires = "provision", conflicts_with = "yes")]
        plan: bool,
        /// How hosts are reached (with `--provision`).
        #[command(flatten)]
        ssh: SshArgs,
    },
    /// Write every key, value and lease at one revision to a portable file (JSON lines), to
    /// move data between etcd and cairn-server.
    Export {
        /// Inventory and output.
        #[command(flatten)]
        common: Common,
        /// The logical format (the only one; the flag says what you get).
        #[arg(long, required = true)]
        logical: bool,
        /// The file to write.
        file: PathBuf,
    },
    /// Write the keys, values and leases of an exported file into the inventory's cluster;
    /// asks first when the cluster already holds keys (those the file has too are
    /// overwritten).
    Import {
        /// Inventory and output.
        #[command(flatten)]
        common: Common,
        /// The file `cairn backup export --logical` wrote.
        file: PathBuf,
        /// Do not ask before writing into a cluster that holds keys (scripts).
        #[arg(short = 'y', long)]
        yes: bool,
    },
}

/// What every `cairn backup` command takes.
#[derive(Debug, Args)]
pub struct Common {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        visible_short_alias = 'w',
        value_enum,
        default_value_t
    )]
    pub output: Output,
}

impl BackupCommand {
    fn common(&self) -> &Common {
        match self {
            Self::Now(c) | Self::List(c) => c,
            Self::Verify { common, .. }
            | Self::Prune { common, .. }
            | Self::Restore { common, .. }
            | Self::Export { common, .. }
            | Self::Import { common, .. } => common,
        }
    }
}

fn print<T: serde::Serialize>(
    output: Output,
    value: &T,
    text: impl FnOnce() -> String,
) -> Result<(), Error> {
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}

/// `--to-time`: RFC 3339, with a message that shows the format (chrono's own says only
/// "input contains invalid characters").
fn rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            format!(
                "{s:?} is not an RFC 3339 time; write it like {}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
            )
        })
}

/// What `backup restore --provision --plan` shows.
#[derive(Debug, serde::Serialize)]
struct RestorePlanView {
    cluster: String,
    full: String,
    full_revision: i64,
    increments: Vec<String>,
    /// The revision the restored cluster starts at, when the target names one.
    to_revision: Option<i64>,
    hosts: Vec<(String, String, String)>,
}

fn restore_plan(
    inventory: &cairn_inventory::Inventory,
    full: &cairn_backupd::Manifest,
    increments: &[cairn_backupd::Manifest],
    target: &Target,
) -> RestorePlanView {
    let last = increments.last().map_or(full.revision, |m| m.revision);
    RestorePlanView {
        cluster: inventory.cluster.name.clone(),
        full: full.id.clone(),
        full_revision: full.revision,
        increments: increments.iter().map(|m| m.id.clone()).collect(),
        to_revision: Some(match target {
            Target::Revision(r) => (*r).min(last),
            _ => last,
        }),
        hosts: inventory
            .hosts
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    h.address.clone(),
                    inventory.data_dir(h).display().to_string(),
                )
            })
            .collect(),
    }
}

impl std::fmt::Display for RestorePlanView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "would restore full backup {} (revision {})",
            self.full, self.full_revision
        )?;
        if !self.increments.is_empty() {
            write!(f, " plus {} increment(s)", self.increments.len())?;
        }
        if let Some(r) = self.to_revision {
            write!(f, " up to revision {r}")?;
        }
        writeln!(
            f,
            ", verified first, as a new cluster {} on {} hosts:",
            self.cluster,
            self.hosts.len()
        )?;
        for (name, address, data_dir) in &self.hosts {
            writeln!(
                f,
                "  {name} ({address}): stop the member, keep {data_dir} as {data_dir}.pre-restore-<time>, push the restored data, start"
            )?;
        }
        writeln!(
            f,
            "nothing was changed (--plan); run without --plan to restore"
        )
    }
}

/// Runs one backup command.
pub fn run(cmd: BackupCommand) -> Result<ExitCode, Error> {
    let common = cmd.common();
    let output = common.output;
    let inventory = common.inventory.load()?;
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    runtime.block_on(async {
        if let BackupCommand::Export { file, .. } | BackupCommand::Import { file, .. } = &cmd {
            let spec = ClusterSpec::from_inventory(&inventory)?;
            let io = |e| cairn_backupd::Error::File {
                path: file.clone(),
                source: e,
            };
            let moved = if matches!(cmd, BackupCommand::Export { .. }) {
                // Every key and value, secrets included: the owner's only, as etcd writes
                // its snapshots.
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(file)
                    .map_err(io)?;
                logical::export(&spec, &mut std::io::BufWriter::new(f)).await?
            } else {
                let f = std::fs::File::open(file).map_err(io)?;
                let present = logical::keys_present(&spec).await?;
                let yes = matches!(cmd, BackupCommand::Import { yes: true, .. });
                if present > 0 && !yes {
                    let question = format!(
                        "Cluster {} already holds {present} keys; the import overwrites those {} has too. Import anyway?",
                        inventory.cluster.name,
                        file.display()
                    );
                    let no_terminal = Error::ImportNeedsYes {
                        cluster: inventory.cluster.name.clone(),
                        present,
                    };
                    if !crate::prompt::confirm_or(&question, no_terminal)? {
                        return Err(Error::NotConfirmed);
                    }
                }
                logical::import(&spec, &mut std::io::BufReader::new(f)).await?
            };
            println!(
                "{} keys and {} leases at revision {}; {} roles and {} users",
                moved.keys, moved.leases, moved.revision, moved.roles, moved.users
            );
            if !moved.passwordless.is_empty() {
                eprintln!(
                    "cairn: users created without a password (etcd exports none): {}; set them with etcdctl user passwd{}",
                    moved.passwordless.join(", "),
                    if moved.auth_was_enabled {
                        ", then turn auth on (etcdctl auth enable, or [auth] and cairn provision)"
                    } else {
                        ""
                    }
                );
            } else if moved.auth_was_enabled && matches!(cmd, BackupCommand::Import { .. }) {
                eprintln!("cairn: the dump's cluster had auth on; turn it on here once passwords are right (etcdctl auth enable)");
            }
            return Ok(ExitCode::SUCCESS);
        }
        let backups = Backups::from_inventory(&inventory, Arc::new(SystemClock))
            .await?
            .with_progress(crate::progress::transfer_progress());
        match &cmd {
            BackupCommand::Now(_) => {
                let m = backups.full_when_unlocked(cairn_backupd::LOCK_WAIT).await?;
                print(output, &m, || {
                    format!(
                        "{}: revision {}, {} bytes stored\n",
                        m.id, m.revision, m.stored_bytes
                    )
                })?;
            }
            BackupCommand::List(_) => {
                let list = backups.list().await?;
                print(output, &list, || {
                    list.iter()
                        .map(|m| {
                            format!(
                                "{}  {:?}  revision {}  {} bytes  {}\n",
                                m.id,
                                m.kind,
                                m.revision,
                                m.stored_bytes,
                                m.started_at.to_rfc3339()
                            )
                        })
                        .collect()
                })?;
            }
            BackupCommand::Verify { id, .. } => {
                let id = match id {
                    Some(id) => id.clone(),
                    None => backups.newest().await?.id,
                };
                let v = backups.verify(&id).await?;
                print(output, &v.manifest, || {
                    format!("{id}: every hash checks out\n")
                })?;
            }
            BackupCommand::Prune { dry_run, .. } => {
                let p = backups.prune(*dry_run).await?;
                let verb = if *dry_run { "would remove" } else { "removed" };
                print(output, &p.removed, || {
                    p.removed
                        .iter()
                        .map(|id| format!("{verb} {id}\n"))
                        .collect::<String>()
                        + &format!("{} kept\n", p.kept.len())
                })?;
            }
            BackupCommand::Export { .. } | BackupCommand::Import { .. } => {}
            BackupCommand::Restore {
                id,
                to_revision,
                to_time,
                out_dir,
                provision,
                yes,
                plan: only_plan,
                ssh,
                ..
            } => {
                let target = match (id, to_revision, to_time) {
                    (Some(id), _, _) => Target::Id(id.clone()),
                    (_, Some(r), _) => Target::Revision(*r),
                    (_, _, Some(t)) => Target::Time(*t),
                    _ => Target::Latest,
                };
                if *only_plan {
                    let (full, increments) = backups.chain_for(&target).await?;
                    let plan = restore_plan(&inventory, &full, &increments, &target);
                    print(output, &plan, || plan.to_string())?;
                    return Ok(ExitCode::SUCCESS);
                }
                let plan = RestorePlan::from_inventory(&inventory, out_dir.clone());
                let r = backups.restore(&target, &plan).await?;
                let dirs: Vec<String> = r
                    .data_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect();
                if !*provision {
                    print(output, &dirs, || {
                        format!(
                            "restored {} (revision {}) into {}\n",
                            r.id,
                            r.revision,
                            dirs.join(", ")
                        )
                    })?;
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!(
                    "restored {} (revision {}) into {}",
                    r.id,
                    r.revision,
                    dirs.join(", ")
                );
                let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
                let question = format!(
                    "Replace the data of cluster {} on its {} hosts with backup {} (revision {})? Every member is stopped; the data there now is kept as <data_dir>.pre-restore-{stamp}.",
                    inventory.cluster.name,
                    inventory.hosts.len(),
                    r.id,
                    r.revision
                );
                if !*yes && !confirm(&question)? {
                    return Err(Error::NotConfirmed);
                }
                let options = cairn_provisioner::Options {
                    accept_new_host_keys: ssh.accept_new_host_keys,
                    limits: cairn_provisioner::converge::Limits {
                        parallel: ssh.parallel(),
                        ..Default::default()
                    },
                    daemon_binary: std::env::current_exe().ok(),
                    ..Default::default()
                };
                let names = inventory.member_names();
                let progress = HostProgress::new(&names, output == Output::Json);
                let report = restore_onto_hosts(
                    &inventory,
                    &r.data_dirs,
                    &stamp,
                    &options,
                    &cairn_provisioner::SystemClock,
                    &progress,
                )
                .await;
                progress.clear();
                let report = report?;
                // The new cluster must hold the backup: every member at its revision or past.
                let cluster = report.provision.cluster.as_ref();
                for h in &inventory.hosts {
                    let row = cluster.and_then(|c| c.members.iter().find(|m| m.name == h.name));
                    let revision = row.and_then(|m| m.status.as_ref()).map(|s| s.revision);
                    if revision.is_none_or(|rev| rev < r.revision) {
                        return Err(Error::RestoredBehind {
                            member: h.name.clone(),
                            revision,
                            want: r.revision,
                        });
                    }
                }
                // The new cluster's history leaves the old chain at the backup's revision:
                // a full backup now starts its own, before the daemon's first increment.
                let first = match backups.full_when_unlocked(cairn_backupd::LOCK_WAIT).await {
                    Ok(m) => Some(m.id),
                    Err(e) => {
                        eprintln!("cairn: warning: the restored cluster is up, but its first full backup failed ({}); run cairn backup now", cairn_client::chain(&e));
                        None
                    }
                };
                print(output, &report, || {
                    let mut text = format!(
                        "restored {} (revision {}) onto {} members, a new cluster:\n",
                        r.id,
                        r.revision,
                        report.placed.len()
                    );
                    for p in &report.placed {
                        text.push_str(&format!(
                            "  {}: {} files, {} bytes in {}{}\n",
                            p.host,
                            p.files,
                            p.bytes,
                            p.data_dir,
                            p.set_aside
                                .as_deref()
                                .map(|a| format!(" (old data in {a})"))
                                .unwrap_or_default()
                        ));
                    }
                    if let Some(c) = &report.provision.cluster {
                        text.push_str(&c.to_string());
                    }
                    if let Some(id) = &first {
                        text.push_str(&format!(
                            "first full backup of the restored cluster: {id}\n"
                        ));
                    }
                    text
                })?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
