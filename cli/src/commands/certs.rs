//! `cairn certs rotate [--ca] [--plan] [--yes]`: new certificates rolled out one member at a
//! time (a new CA in three phases, resumable); `cairn certs status`: every certificate,
//! locally and as each member serves it, with expiry and drift (exit 1 when something needs
//! attention).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use cairn_inventory::InventoryArg;
use cairn_pki::Pki;
use cairn_provisioner::cert_status::{CertStatus, TlsServedCerts};
use cairn_provisioner::converge::Limits;
use cairn_provisioner::rotate::{rotate_ca, rotate_leaves, Rotation};
use cairn_provisioner::{Options, SystemClock};
use clap::{Args, Subcommand};

use crate::commands::provision::print_certificates;
use crate::progress::HostProgress;
use crate::prompt::confirm;
use crate::ssh_args::SshArgs;
use crate::{Error, Output};

/// `cairn certs`.
#[derive(Debug, Args)]
pub struct CertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: CertsCommand,
}

/// The `cairn certs` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Issue new member and client certificates (same CA, or a new CA with --ca) and roll
    /// them out one member at a time, the leader last.
    Rotate(RotateArgs),
    /// Every certificate in [tls] dir and as each member serves it: names, serial,
    /// fingerprint, days left; drift and expiry flagged (exit 1).
    Status(StatusArgs),
}

/// `cairn certs rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Introduce a new CA: trust old + new, reissue everything from the new one, drop the old
    /// one; each phase rolled out to every member. An interrupted run resumes its phase.
    #[arg(long)]
    pub ca: bool,
    /// Show what the (next) roll-out would change and change nothing.
    #[arg(long)]
    pub plan: bool,
    /// Rotate without asking; needed when stdin is not a terminal.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How hosts are reached.
    #[command(flatten)]
    pub ssh: SshArgs,
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

/// `cairn certs status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// How long each member's port may take to present its certificate, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub timeout: u64,
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

/// Runs the subcommand.
pub fn run(args: CertsArgs) -> Result<ExitCode, Error> {
    match args.command {
        CertsCommand::Rotate(args) => rotate(args),
        CertsCommand::Status(args) => status(args),
    }
}

fn rotate(args: RotateArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    for warning in inventory.warnings() {
        eprintln!("cairn: warning: {warning}");
    }
    let json = args.output == Output::Json;
    if !args.plan && !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::NeedsYes);
        }
        let what = if args.ca {
            "a new CA"
        } else {
            "new certificates"
        };
        let question = format!(
            "Roll out {what} to {} member(s), restarting them one at a time?",
            inventory.hosts.len()
        );
        if !confirm(&question)? {
            return Err(Error::NotConfirmed);
        }
    }
    let options = Options {
        accept_new_host_keys: args.ssh.accept_new_host_keys,
        plan_only: args.plan,
        limits: Limits {
            parallel: args.ssh.parallel(),
            ..Limits::default()
        },
        // This cairn runs the backup daemon on the [backup] host.
        daemon_binary: std::env::current_exe().ok(),
        ..Options::default()
    };
    let names = inventory.member_names();
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let progress = HostProgress::new(&names, json);
    let rotation = runtime.block_on(async {
        if args.ca {
            rotate_ca(&inventory, &options, &SystemClock, &progress).await
        } else {
            rotate_leaves(&inventory, &options, &SystemClock, &progress).await
        }
    });
    progress.clear();
    let rotation = rotation?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rotation)?);
    } else {
        print_rotation(&rotation);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_rotation(rotation: &Rotation) {
    if let Some(phase) = rotation.resumed {
        println!("resuming the CA rotation at phase {phase}");
    }
    for rollout in &rotation.rollouts {
        let report = &rollout.report;
        let title = rollout
            .phase
            .map_or_else(|| "leaf certificates".to_string(), |p| format!("phase {p}"));
        if rotation.plan_only {
            println!("{title} (plan):");
            print_certificates(&report.certificates);
            for plan in &report.hosts {
                print!("{plan}");
            }
        } else {
            println!(
                "{title}: {} file(s) written, {} member(s) restarted in {:.1} s",
                report.files_changed,
                report.services.len(),
                report.elapsed_ms as f64 / 1000.0
            );
        }
    }
    if !rotation.pending.is_empty() {
        let rest: Vec<String> = rotation.pending.iter().map(|p| p.to_string()).collect();
        println!("then, each after the one before: {}", rest.join(", "));
    }
    if let Some(cluster) = rotation
        .rollouts
        .last()
        .and_then(|r| r.report.cluster.as_ref())
    {
        print!("{cluster}");
    }
}

fn status(args: StatusArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    let Some(tls) = &inventory.tls else {
        return Err(cairn_provisioner::Error::NoTls {
            setup: inventory.cluster.transport.setup_command(),
            inventory: inventory.path.clone(),
        }
        .into());
    };
    let served = TlsServedCerts::new(
        &Pki::existing(tls),
        Duration::from_secs(args.timeout.max(1)),
    )?;
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let status = runtime.block_on(CertStatus::gather(&inventory, &served, &SystemClock))?;
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{status}");
    }
    if status.problems() == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
