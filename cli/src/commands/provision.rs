//! `cairn provision [-i INVENTORY] [--plan] [--limit HOST,...] [--yes] [--allow-remove
//! [--purge]]`: converges every host and the membership to the inventory over SSH (scale out
//! and in, rolling upgrades) and prints the cluster table.

use std::process::ExitCode;

use cairn_inventory::InventoryArg;
use cairn_pki::Outcome;
use cairn_provisioner::converge::Limits;
use cairn_provisioner::plan::ServiceAction;
use cairn_provisioner::upgrade::{BeforeFirstChange, HookError};
use cairn_provisioner::{Options, Report, Session, SystemClock};
use clap::Args;

use crate::progress::HostProgress;
use crate::prompt::confirm;
use crate::ssh_args::SshArgs;
use crate::{Error, Output};

/// `cairn provision`.
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Show what would change on each host (diffs, hashes, restarts) and change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Only these hosts (member names, comma-separated).
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Apply without asking; needed when stdin is not a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How hosts are reached.
    #[command(flatten)]
    pub ssh: SshArgs,
    /// Remove members of the running cluster that the inventory no longer lists (MemberRemove,
    /// then stop and disable their service; refused below a healthy majority).
    #[arg(long)]
    pub allow_remove: bool,
    /// With --allow-remove: delete removed members' data directories too.
    #[arg(long, requires = "allow_remove")]
    pub purge: bool,
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

/// Plans, asks (unless `--yes` or `--plan`), applies and reports.
pub fn run(args: ProvisionArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    for warning in inventory.warnings() {
        eprintln!("cairn: warning: {warning}");
    }
    let options = Options {
        limit: args.limit.clone(),
        accept_new_host_keys: args.ssh.accept_new_host_keys,
        plan_only: args.plan,
        limits: Limits {
            parallel: args.ssh.parallel(),
            ..Limits::default()
        },
        allow_remove: args.allow_remove,
        purge: args.purge,
        // This cairn runs the backup daemon on the [backup] host.
        daemon_binary: std::env::current_exe().ok(),
        ..Options::default()
    };
    let json = args.output == Output::Json;
    let names: Vec<&str> = inventory
        .hosts
        .iter()
        .map(|h| h.name.as_str())
        .filter(|n| args.limit.is_empty() || args.limit.iter().any(|l| l == n))
        .collect();
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let progress = HostProgress::new(&names, json);
    let session = runtime.block_on(Session::plan(&inventory, &options, &SystemClock, &progress));
    progress.clear();
    let session = session?;
    let pending = session.pending();
    // Removals without --allow-remove are refused by apply before anything changes: no
    // point asking first.
    let refused = !session.removals().is_empty() && !args.allow_remove;
    if args.plan || (pending && !args.yes && !refused) {
        if !json {
            print_certificates(session.certificates());
            for plan in session.plans() {
                print!("{plan}");
            }
            for removal in session.removals() {
                print!("{removal}");
            }
            for change in session.auth_changes() {
                println!("{change}");
            }
        }
        if args.plan {
            let report = runtime.block_on(session.finish_plan());
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        let hosts = session.plans().iter().filter(|p| !p.is_empty()).count();
        let changes = hosts + session.removals().len();
        let question = if changes == 0 {
            "Apply these auth changes?".to_string()
        } else {
            format!("Apply these changes to {changes} host(s)?")
        };
        if !confirm(&question)? {
            return Err(Error::NotConfirmed);
        }
    }
    let progress = HostProgress::new(&names, json);
    let report = runtime.block_on(session.apply(&BackupBeforeChange(&inventory), &progress));
    progress.clear();
    let report = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, args.yes || !pending);
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes a full backup before `cairn provision` first touches a running cluster (a rolling
/// restart or upgrade, a join, a removal) when the inventory has a `[backup]` table: a backup
/// that fails stops the run before any member is touched.
struct BackupBeforeChange<'a>(&'a cairn_inventory::Inventory);

impl BeforeFirstChange for BackupBeforeChange<'_> {
    async fn before_first_change(&self) -> Result<(), HookError> {
        if self.0.backup.is_none() {
            return Ok(());
        }
        let manifest = cairn_backupd::backup_now(self.0).await?;
        eprintln!(
            "cairn: backup {} taken at revision {} before the first change",
            manifest.id, manifest.revision
        );
        Ok(())
    }
}

pub(crate) fn print_certificates(certificates: &[cairn_pki::Issued]) {
    for c in certificates {
        match &c.outcome {
            Outcome::Reused => {}
            Outcome::Created => println!("certificate {}: new", c.name),
            Outcome::Reissued(reason) => println!("certificate {}: reissued ({reason})", c.name),
        }
    }
}

fn print_report(report: &Report, show_plans: bool) {
    if show_plans {
        print_certificates(&report.certificates);
        for plan in &report.hosts {
            print!("{plan}");
        }
        for removal in &report.removals {
            print!("{removal}");
        }
    }
    for change in &report.auth {
        println!("{change}");
    }
    if let Some(cluster) = &report.cluster {
        print!("{cluster}");
    }
    let count = |action| {
        report
            .services
            .iter()
            .filter(|e| e.action == action)
            .count()
    };
    let started = count(ServiceAction::Start);
    let restarted = count(ServiceAction::Restart);
    let removed = count(ServiceAction::Remove);
    println!(
        "{} host(s) in {:.1} s: {} file(s) written, {started} started, {restarted} restarted, {removed} removed",
        report.hosts.len(),
        report.elapsed_ms as f64 / 1000.0,
        report.files_changed,
    );
}
