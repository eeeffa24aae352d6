//! The `cairn` operator binary's commands, one per file under [`commands`]. The binary only
//! parses arguments and reports the outcome; the work is in the libraries (`cairn-bench`, `cairn-inventory`,
//! `cairn-rules`, and the provisioner, backup and inspection crates as they land).

pub mod commands;
pub mod error;

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
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load generation with etcd benchmark's workloads and flags: throughput, latency
    /// percentiles and a histogram.
    Bench(commands::bench::BenchArgs),
    /// Readiness checks to run before trusting a machine with etcd.
    Check(commands::check::CheckArgs),
    /// Prometheus alert rules (etcd's mixin and cairn's own) with their promtool tests, a
    /// scrape configuration and a Grafana dashboard, from the inventory.
    Rules(commands::rules::RulesArgs),
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

/// Runs `cli`; a check that fails exits 1, like etcdctl's checks.
pub fn run(cli: Cli) -> Result<ExitCode, Error> {
    match cli.command {
        Command::Bench(args) => commands::bench::run(args),
        Command::Check(args) => commands::check::run(args),
        Command::Rules(args) => commands::rules::run(args),
    }
}
