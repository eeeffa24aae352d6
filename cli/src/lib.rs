//! The `cairn` operator binary's commands, one per file under [`commands`]. The binary only
//! parses arguments and reports the outcome; the work is in the libraries (`cairn-bench`, `cairn-inventory`,
//! `cairn-inspector`, `cairn-provisioner`, `cairn-rules`, `cairn-backupd`).

pub mod commands;
pub mod error;
pub mod login_args;
pub mod progress;
mod prompt;
pub mod ssh_args;
pub mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use error::Error;

/// cairn: operations for etcd-style clusters (cairn-server or etcd).
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// -q, -v and --color.
    #[command(flatten)]
    pub ui: ui::Ui,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One-off backups: take one now, list, verify, prune and restore.
    #[command(subcommand)]
    Backup(commands::backup::BackupCommand),
    /// The backup daemon: full backups on `[backup] schedule`, retention, /metrics and
    /// /healthz.
    Backupd(commands::backupd::BackupdArgs),
    /// Load generation with etcd benchmark's workloads and flags: throughput, latency
    /// percentiles and a histogram.
    Bench(commands::bench::BenchArgs),
    /// Shell completions from the command line's own definition: `cairn completions bash >
    /// /etc/bash_completion.d/cairn`.
    Completions(commands::completions::CompletionsArgs),
    /// Certificates: rotate them (or the CA) one member at a time, or show every one of
    /// them, locally and as served, with expiry and drift.
    Certs(commands::certs::CertsArgs),
    /// Readiness checks to run before trusting a machine with etcd.
    Check(commands::check::CheckArgs),
    /// Tear the cluster down on every host: services, units, env files, certificates and
    /// the binary (data directories only with --purge), after typing the cluster's name.
    Destroy(commands::destroy::DestroyArgs),
    /// Write an inventory for a running cluster from its member list and Status (the token
    /// and binary are left for the operator to set).
    Import(commands::import::ImportArgs),
    /// Inspect every member: membership, consistency, database, large values, key counts,
    /// hot prefixes, latency and certificates, graded pass/warn/fail (exit 0/1/2).
    Inspect(commands::inspect::InspectArgs),
    /// Man pages (cairn.1 and one per command) from the command line's own definition.
    Man(commands::man::ManArgs),
    /// Converge every host to the inventory over SSH: certificates, the server binary, env
    /// file and systemd unit; new members start together, changed ones restart one at a time
    /// (a new binary rolls as an upgrade), hosts new to a running cluster join one at a time,
    /// members no longer listed leave with --allow-remove.
    Provision(commands::provision::ProvisionArgs),
    /// Prometheus alert rules (etcd's mixin and cairn's own) with their promtool tests, a
    /// scrape configuration and a Grafana dashboard, from the inventory.
    Rules(commands::rules::RulesArgs),
    /// The cluster table: each member's leader flag, revision, database size and version.
    Status(commands::status::StatusArgs),
    /// Run a local cluster (`transport = "local"`, e.g. examples/local.toml) in the
    /// foreground: certificates, env files, every member's output; Ctrl-C stops it.
    Up(commands::up::UpArgs),
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// Runs `cli`; a check that fails exits 1, like etcdctl's checks (`cairn inspect` exits 1 on
/// a warning and 2 on a failure).
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    ui::set(cli.ui);
    cairn_provisioner::ssh_auth::set_passphrase_prompt(Box::new(prompt::TerminalPassphrase));
    match cli.command {
        Command::Backup(cmd) => commands::backup::run(cmd),
        Command::Backupd(args) => commands::backupd::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Certs(args) => commands::certs::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Completions(args) => commands::completions::run(&args),
        Command::Man(args) => commands::man::run(&args),
        Command::Destroy(args) => commands::destroy::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Provision(args) => commands::provision::run(args),
        Command::Rules(args) => commands::rules::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Up(args) => commands::up::run(args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every command, with its path (`cairn backup restore`).
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            out.push((p.clone(), sub.clone()));
            walk(sub, p, out);
        }
    }

    /// The flags every command shares are spelled the same everywhere (ARCHITECTURE.md, "The
    /// command line"): `-i/--inventory`, `-o/--output` (with `-w`), `-y/--yes`, `-v/--verbose`.
    #[test]
    fn shared_flags_are_spelled_the_same_on_every_command() {
        let mut all = Vec::new();
        walk(&Cli::command(), "cairn".into(), &mut all);
        assert!(all.len() > 20, "{} commands", all.len());
        let mut checked = 0;
        for (path, cmd) in &all {
            for arg in cmd.get_arguments() {
                let (short, long) = match arg.get_id().as_str() {
                    "inventory" => ('i', "inventory"),
                    "output" => ('o', "output"),
                    "yes" => ('y', "yes"),
                    "verbose" => ('v', "verbose"),
                    _ => continue,
                };
                checked += 1;
                assert_eq!(arg.get_short(), Some(short), "{path}: --{long}");
                assert_eq!(arg.get_long(), Some(long), "{path}: -{short}");
                if long == "output" {
                    assert!(
                        arg.get_visible_short_aliases()
                            .is_some_and(|a| a.contains(&'w')),
                        "{path}: -w, as etcdctl users type it"
                    );
                }
                if long == "inventory" {
                    assert!(!arg.is_positional(), "{path}");
                }
            }
        }
        assert!(checked > 20, "{checked} shared flags");
    }

    #[test]
    fn the_command_line_definition_holds_together() {
        Cli::command().debug_assert();
    }
}
