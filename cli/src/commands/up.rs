//! `cairn up [-i INVENTORY]`: the quickstart. A `transport = "local"` inventory's members run
//! here in the foreground with the provisioner's certificates, env files, units and binary,
//! their output prefixed by member name like a Procfile runner, until Ctrl-C (or SIGTERM)
//! stops them all. While it runs, the lifecycle commands (`cairn provision`, `certs rotate`,
//! `destroy`, ...) reach its members through its control socket.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_inventory::{Inventory, InventoryArg};
use cairn_pki::Outcome;
use cairn_provisioner::converge::Limits;
use cairn_provisioner::local::prepare;
use cairn_provisioner::probe::EtcdProbe;
use cairn_provisioner::status::ClusterStatus;
use cairn_provisioner::supervisor::Console;
use cairn_provisioner::SystemClock;
use clap::Args;
use tokio::signal::unix::{signal, SignalKind};

use crate::Error;

/// `cairn up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The cluster: an inventory with `transport = "local"` (try examples/local.toml).
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// How long the members may take to elect a leader and answer, in seconds.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
    /// How long each member may take to exit after SIGTERM before it is killed, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub grace: u64,
}

/// Member output on stdout as `name | line`, each name in its own colour on a terminal.
struct Prefixed {
    width: usize,
    colour: bool,
    names: Vec<String>,
}

impl Prefixed {
    fn say(&self, name: &str, line: &str) {
        let index = self.names.iter().position(|n| n == name);
        let mut out = std::io::stdout().lock();
        let _ = match index.filter(|_| self.colour) {
            // Cyan, yellow, magenta, green, blue, then again.
            Some(i) => writeln!(
                out,
                "\x1b[{}m{name:<w$} |\x1b[0m {line}",
                [36, 33, 35, 32, 34][i % 5],
                w = self.width
            ),
            None => writeln!(out, "{name:<w$} | {line}", w = self.width),
        };
    }
}

impl Console for Prefixed {
    fn line(&self, member: &str, line: &str) {
        self.say(member, line);
    }
}

/// Runs the cluster until a signal. While it comes up, a member that exits stops the others
/// and is the error; once it is up, a member that fails is restarted, and one that keeps
/// failing is left down while the others serve (see `cairn_provisioner::supervisor`).
pub fn run(args: UpArgs) -> Result<ExitCode, Error> {
    // Absolute, so the printed etcdctl line and the env files work from any directory.
    let given = &args.inventory.inventory;
    let path = std::path::absolute(given).unwrap_or_else(|_| given.clone());
    let inventory = Inventory::load(&path)?;
    for warning in inventory.warnings() {
        eprintln!("cairn: warning: {warning}");
    }
    let mut names: Vec<String> = inventory.hosts.iter().map(|h| h.name.clone()).collect();
    names.push("cairn".into());
    let console = Arc::new(Prefixed {
        width: names.iter().map(String::len).max().unwrap_or(5),
        colour: crate::ui::get().color(std::io::stdout().is_terminal()),
        names,
    });
    let say = |line: &str| console.say("cairn", line);
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    runtime.block_on(async {
        let prepared = prepare(&inventory, &SystemClock).await?;
        let issued = prepared
            .certificates()
            .iter()
            .filter(|c| c.outcome != Outcome::Reused)
            .count();
        if let Some(tls) = &inventory.tls {
            say(&format!(
                "certificates in {}: {issued} issued, {} reused",
                tls.dir.display(),
                prepared.certificates().len() - issued
            ));
        }
        for m in prepared.members() {
            say(&format!(
                "{}: files under {}, env file {}, data {}",
                m.name,
                m.root.display(),
                m.env_file.display(),
                m.data_dir.display()
            ));
        }
        let mut interrupt = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(Error::Signal)?;
        let mut shutdown = Box::pin(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        });
        say(&format!(
            "starting {} members of cluster {} ({})",
            inventory.hosts.len(),
            inventory.cluster.name,
            inventory.cluster.binary.display()
        ));
        let probe = EtcdProbe::new(&inventory, prepared.pki(), Duration::from_secs(2))?;
        let etcdctl = prepared.etcdctl(&inventory);
        let admin = prepared
            .pki()
            .map(|p| p.client_files(cairn_pki::Client::Admin));
        let names: Vec<String> = prepared.members().iter().map(|m| m.name.clone()).collect();
        let mut running = prepared.start(console.clone()).await?;
        for (name, pid) in names.iter().zip(running.pids()) {
            say(&format!("{name}: pid {pid}"));
        }
        let limits = Limits {
            health_timeout: Duration::from_secs(args.timeout.max(1)),
            ..Limits::default()
        };
        let outcome = tokio::select! {
            r = running.wait_ready(&probe, &limits) => match r {
                Ok(()) => {
                    // [auth]'s users and roles, auth on last.
                    for change in
                        cairn_provisioner::auth::converge(&inventory, admin.as_ref(), false).await?
                    {
                        say(&change.to_string());
                    }
                    let status = ClusterStatus::query(&inventory, &probe).await;
                    for line in status.to_string().lines() {
                        say(line);
                    }
                    say(&format!(
                        "cluster {} is up; try:  {etcdctl} member list -w table",
                        inventory.cluster.name,
                    ));
                    say("Ctrl-C stops every member");
                    running.supervise(&mut shutdown).await
                }
                Err(e) => Err(e),
            },
            () = &mut shutdown => Ok(()),
        };
        say("stopping the members");
        for (name, status) in running.stop(Duration::from_secs(args.grace)).await {
            let how = status.map_or_else(|| "not running".to_string(), |s| s.to_string());
            say(&format!("{name}: {how}"));
        }
        outcome?;
        Ok(ExitCode::SUCCESS)
    })
}
