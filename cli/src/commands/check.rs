//! `cairn check disk PATH`: the etcd guides' fdatasync test, done natively.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_bench::disk::{self, DiskCheck};
use clap::{Args, Subcommand};

use crate::{Error, Output};

/// `cairn check ...`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Which check.
    #[command(subcommand)]
    pub what: CheckCommand,
}

/// The checks.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// fdatasync latency of the disk holding PATH: 2,300-byte writes, each followed by
    /// fdatasync; PASS when p99 is under 10 ms, as etcd needs.
    Disk(DiskArgs),
}

/// `cairn check disk` options.
#[derive(Debug, Args)]
pub struct DiskArgs {
    /// A directory on the disk to check (e.g. the data dir's parent); a scratch file is
    /// written there and removed.
    pub path: PathBuf,
    /// MiB to write in all (the guides use 22).
    #[arg(long, default_value_t = 22)]
    pub size_mib: u64,
    /// Output format.
    #[arg(long, short = 'w', value_enum, default_value_t)]
    pub output: Output,
}

/// Runs a check; exit code 1 when it fails.
pub fn run(args: CheckArgs) -> Result<ExitCode, Error> {
    match args.what {
        CheckCommand::Disk(d) => {
            let check = DiskCheck {
                total_bytes: d.size_mib * 1024 * 1024,
                ..DiskCheck::etcd_guide(d.path)
            };
            let report = disk::run(&check)?;
            match d.output {
                Output::Text => println!("{report}"),
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
            }
            Ok(if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
