//! `cairn backupd`: the backup daemon, until SIGINT/SIGTERM; one log line per run.

use std::process::ExitCode;
use std::sync::Arc;

use cairn_backupd::{Backups, DaemonOptions, Schedule, SystemClock};
use cairn_inventory::InventoryArg;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::Error;

/// `cairn backupd`.
#[derive(Debug, Args)]
pub struct BackupdArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Serve metrics here instead of `[backup] listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// Check once that the store can be listed and written and a member reached, then exit
    /// (the provisioner runs this before it starts the daemon).
    #[arg(long)]
    pub check: bool,
}

/// Runs the daemon.
pub fn run(args: BackupdArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    let config = inventory
        .backup
        .clone()
        .ok_or(cairn_backupd::Error::NotConfigured)?;
    let schedule = Schedule::parse_in(&config.schedule, config.timezone.as_deref())?;
    let addr = match args.listen {
        Some(a) => a,
        None => config
            .listen
            .parse()
            .map_err(|_| cairn_backupd::Error::Serve {
                address: config.listen.clone(),
                source: std::io::Error::other("not an address"),
            })?,
    };
    // The inventory's checks already parsed it.
    let incremental = config
        .incremental
        .as_deref()
        .and_then(|p| humantime::parse_duration(p).ok());
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    runtime.block_on(async {
        let backups = Backups::from_inventory(&inventory, Arc::new(SystemClock)).await?;
        if args.check {
            let found = backups.preflight().await?;
            println!(
                "ok: {} is readable and writable ({} backups listed); backups would come from {} at revision {}",
                config.store, found.backups, found.member, found.revision
            );
            return Ok(ExitCode::SUCCESS);
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        eprintln!(
            "cairn backupd: {} on \"{}\", metrics on http://{addr}/metrics",
            config.store, config.schedule
        );
        let options = DaemonOptions {
            schedule,
            listener,
            prune: true,
            incremental,
        };
        // systemd stops the unit with SIGTERM; a backup in flight finishes first.
        let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(Error::Signal)?;
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!("cairn backupd: stopping after the run in progress, if any");
        };
        cairn_backupd::run_daemon(
            &backups,
            options,
            |outcome| match outcome {
                Ok(m) => eprintln!(
                    "backup {} ok: revision {}, {} bytes stored in {:.1}s",
                    m.id,
                    m.revision,
                    m.stored_bytes,
                    (m.finished_at - m.started_at).num_milliseconds() as f64 / 1000.0
                ),
                Err(e) => eprintln!("backup failed: {}", cairn_client::chain(&e)),
            },
            shutdown,
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}
