//! `cairn check disk PATH` (the etcd guides' fdatasync test, done natively, here or with `-i`
//! on every host of the inventory over SSH), `cairn check
//! perf` (etcdctl's performance check) and `cairn check datascale` (memory growth with the
//! data).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_bench::datascale::{self, DatascaleCheck};
use cairn_bench::disk::{self, DiskCheck};
use cairn_bench::load::{Stop, Tls};
use cairn_bench::perf::{self, PerfCheck, Profile};
use cairn_provisioner::disk_check;
use cairn_provisioner::ssh::Timeouts;
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use super::bench::{parse_duration, progress_bar};
use crate::login_args::LoginArgs;
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
    /// fdatasync; PASS when p99 is under 10 ms, as etcd needs (WARN on tmpfs: memory is no
    /// disk).
    Disk(DiskArgs),
    /// etcdctl's performance check: a profile's write rate for 60 s under a scratch prefix;
    /// PASS with no errors, throughput above 90% of the target, the slowest request at most
    /// 0.5 s and a standard deviation of at most 0.1 s.
    Perf(PerfArgs),
    /// Memory growth with the data: 1 KiB values until 10k, 100k, then 1M keys are stored,
    /// the member's resident memory (from /metrics) and the write rate after each step.
    Datascale(DatascaleArgs),
}

/// Where the cluster is and how to reach it.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Client URLs, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) for https endpoints.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// A user to log in as.
    #[command(flatten)]
    pub login: LoginArgs,
}

impl ClusterArgs {
    /// The TLS material given, if any.
    pub fn tls(&self) -> Option<Tls> {
        (self.cacert.is_some() || self.cert.is_some()).then(|| Tls {
            ca: self.cacert.clone(),
            identity: self.cert.clone().zip(self.key.clone()),
        })
    }
}

/// etcdctl's `--load` profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoadArg {
    /// 150 writes/s from 50 clients.
    S,
    /// 1,000 writes/s from 200 clients.
    M,
    /// 8,000 writes/s from 500 clients.
    L,
    /// 15,000 writes/s from 1,000 clients.
    Xl,
}

impl LoadArg {
    /// The profile.
    pub fn profile(self) -> Profile {
        let i = match self {
            Self::S => 0,
            Self::M => 1,
            Self::L => 2,
            Self::Xl => 3,
        };
        perf::PROFILES[i]
    }
}

/// `cairn check perf` options.
#[derive(Debug, Args)]
pub struct PerfArgs {
    /// The load profile.
    #[arg(long, value_enum, default_value_t = LoadArg::S)]
    pub load: LoadArg,
    /// Where the check's keys are written; it must be empty and is deleted afterwards.
    #[arg(long, default_value = perf::DEFAULT_PREFIX)]
    pub prefix: String,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// How long to offer the load (tests only; etcdctl's 60 s otherwise).
    #[arg(long, hide = true, value_parser = parse_duration)]
    pub duration: Option<Duration>,
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

impl PerfArgs {
    /// The check these flags ask for.
    pub fn check(&self) -> PerfCheck {
        let defaults = PerfCheck::new(self.load.profile(), self.cluster.endpoints.clone());
        PerfCheck {
            prefix: self.prefix.clone(),
            duration: self.duration.unwrap_or(defaults.duration),
            tls: self.cluster.tls(),
            ..defaults
        }
    }
}

/// `--max` for datascale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MaxArg {
    /// Stop after 10,000 keys.
    #[value(name = "10k")]
    TenK,
    /// Stop after 100,000 keys.
    #[value(name = "100k")]
    HundredK,
    /// Stop after 1,000,000 keys.
    #[value(name = "1m")]
    OneM,
}

impl MaxArg {
    /// The number of keys.
    pub fn keys(self) -> u64 {
        match self {
            Self::TenK => 10_000,
            Self::HundredK => 100_000,
            Self::OneM => 1_000_000,
        }
    }
}

/// `cairn check datascale` options.
#[derive(Debug, Args)]
pub struct DatascaleArgs {
    /// The last step: 10k, 100k or 1m keys.
    #[arg(long, value_enum, default_value_t = MaxArg::OneM)]
    pub max: MaxArg,
    /// Where the check's keys are written; it must be empty and is deleted afterwards.
    #[arg(long, default_value = datascale::DEFAULT_PREFIX)]
    pub prefix: String,
    /// The http URL of the /metrics to read memory from (default: the first endpoint's;
    /// with https endpoints, give the member's http --listen-metrics-urls URL).
    #[arg(long)]
    pub metrics_url: Option<String>,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Keys after each step, comma-separated (tests only; overrides --max).
    #[arg(long, hide = true, value_delimiter = ',')]
    pub steps: Option<Vec<u64>>,
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

impl DatascaleArgs {
    /// The check these flags ask for.
    pub fn check(&self) -> DatascaleCheck {
        let defaults = DatascaleCheck::new(self.cluster.endpoints.clone(), self.max.keys());
        DatascaleCheck {
            metrics_url: self
                .metrics_url
                .clone()
                .unwrap_or(defaults.metrics_url.clone()),
            prefix: self.prefix.clone(),
            steps: self.steps.clone().unwrap_or(defaults.steps.clone()),
            tls: self.cluster.tls(),
            ..defaults
        }
    }
}

fn print<R: std::fmt::Display + Serialize>(report: &R, output: Output) -> Result<(), Error> {
    match output {
        Output::Text => print!("{report}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(())
}

fn exit_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `cairn check disk` options.
#[derive(Debug, Args)]
pub struct DiskArgs {
    /// A directory on the disk to check (e.g. the data dir's parent); a scratch file is
    /// written there and removed. With -i, the directory on every host (default: each
    /// host's data dir, or its parent while the data dir does not exist).
    #[arg(required_unless_present = "inventory")]
    pub path: Option<PathBuf>,
    /// Check every host of this inventory over SSH instead of this machine: the running
    /// cairn binary is copied to /usr/local/bin/cairn on each host (skipped when its sha256
    /// matches) and run there; one row per host.
    #[arg(short = 'i', long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// With -i: trust hosts that known_hosts does not list yet and record their keys.
    #[arg(long, requires = "inventory")]
    pub accept_new_host_keys: bool,
    /// With -i: hosts checked at once.
    #[arg(long, default_value_t = 8, value_name = "N", requires = "inventory")]
    pub parallel: usize,
    /// MiB to write in all (the guides use 22).
    #[arg(long, default_value_t = 22)]
    pub size_mib: u64,
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

/// The disk check on this machine.
fn disk_local(d: DiskArgs, path: PathBuf) -> Result<ExitCode, Error> {
    let check = DiskCheck {
        total_bytes: d.size_mib * 1024 * 1024,
        ..DiskCheck::etcd_guide(path)
    };
    let report = disk::run(&check)?;
    match d.output {
        Output::Text => println!("{report}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(exit_code(report.passed))
}

/// The disk check on every host of the inventory: a row (or a JSON report) per host; hosts
/// that could not be checked are named in the error after the others' results.
fn disk_hosts(d: DiskArgs, inventory: PathBuf) -> Result<ExitCode, Error> {
    let inventory = cairn_inventory::Inventory::load(&inventory)?;
    let cairn = std::env::current_exe().map_err(Error::CurrentExe)?;
    let options = disk_check::Options {
        dir: d.path.map(|p| p.display().to_string()),
        size_mib: d.size_mib,
        accept_new_host_keys: d.accept_new_host_keys,
        parallel: d.parallel.max(1),
        // The command limit covers the check itself: the guides' 22 MiB are 10,029 writes, so a
        // disk at etcd's limit (10 ms per fdatasync) needs 100 s and a slow one several minutes.
        timeouts: Timeouts {
            command: Duration::from_secs(30 * 60),
            ..Timeouts::default()
        },
    };
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let results = runtime.block_on(disk_check::check_all(&inventory, &cairn, &options))?;
    match d.output {
        Output::Text => print!("{}", disk_table(&results)),
        Output::Json => println!("{}", serde_json::to_string_pretty(&results)?),
    }
    let total = results.len();
    let passed = results
        .iter()
        .all(|r| r.result.as_ref().is_ok_and(|report| report.passed));
    let mut failures: Vec<(String, cairn_provisioner::Error)> = results
        .into_iter()
        .filter_map(|r| r.result.err().map(|e| (r.host, e)))
        .collect();
    if failures.is_empty() {
        return Ok(exit_code(passed));
    }
    let failed = failures.iter().map(|(name, _)| name.clone()).collect();
    let (_, first) = failures.swap_remove(0);
    Err(cairn_provisioner::Error::HostsFailed {
        failed,
        total,
        consequence: "the other hosts were checked",
        first: Box::new(first),
    }
    .into())
}

/// One row per host: p50, p99 and the slowest fdatasync in ms, and the verdict.
fn disk_table(results: &[disk_check::HostDisk]) -> String {
    let width = results
        .iter()
        .map(|r| r.host.len())
        .chain([4])
        .max()
        .unwrap_or(4);
    let mut out = format!(
        "{:<width$}  {:>9}  {:>9}  {:>9}  verdict\n",
        "host", "p50 ms", "p99 ms", "max ms"
    );
    for r in results {
        let line = match &r.result {
            Ok(report) => {
                let p = &report.fdatasync_ms;
                format!(
                    "{:<width$}  {:>9.3}  {:>9.3}  {:>9.3}  {}",
                    r.host,
                    p.p50,
                    p.p99,
                    p.max,
                    report.verdict()
                )
            }
            Err(_) => format!(
                "{:<width$}  {:>9}  {:>9}  {:>9}  not checked",
                r.host, "-", "-", "-"
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Runs a check; exit code 1 when it fails.
pub fn run(args: CheckArgs) -> Result<ExitCode, Error> {
    match args.what {
        CheckCommand::Disk(mut d) => match (d.inventory.take(), d.path.clone()) {
            (Some(inventory), _) => disk_hosts(d, inventory),
            (None, Some(path)) => disk_local(d, path),
            // clap requires PATH without -i.
            (None, None) => unreachable!("PATH is required without --inventory"),
        },
        CheckCommand::Perf(p) => {
            let check = PerfCheck {
                credentials: p.cluster.login.credentials()?,
                ..p.check()
            };
            let bar = progress_bar(Stop::Duration(check.duration));
            let ticks = bar.clone();
            let report = perf::run_blocking(&check, Arc::new(move |n| ticks.inc(n)));
            bar.finish_and_clear();
            let report = report?;
            print(&report, p.output)?;
            Ok(exit_code(report.verdict.passed))
        }
        CheckCommand::Datascale(d) => {
            let check = DatascaleCheck {
                credentials: d.cluster.login.credentials()?,
                ..d.check()
            };
            let total = check.steps.last().copied().unwrap_or(0);
            let bar = progress_bar(Stop::Total(total));
            let ticks = bar.clone();
            let report = datascale::run_blocking(&check, Arc::new(move |n| ticks.inc(n)));
            bar.finish_and_clear();
            let report = report?;
            print(&report, d.output)?;
            Ok(exit_code(report.passed))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<CheckCommand, clap::Error> {
        let cli = Cli::try_parse_from(["cairn", "check"].iter().chain(args))?;
        match cli.command {
            Command::Check(c) => Ok(c.what),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn perf_defaults_are_etcdctls() {
        let CheckCommand::Perf(p) = parse(&["perf"]).unwrap() else {
            panic!("not perf")
        };
        assert_eq!(
            p.check(),
            PerfCheck::new(perf::PROFILES[0], vec!["127.0.0.1:2379".into()])
        );
        assert_eq!(p.output, Output::Text);
    }

    #[test]
    fn perf_flags() {
        let CheckCommand::Perf(p) = parse(&[
            "perf",
            "--load",
            "xl",
            "--prefix",
            "/p/",
            "--endpoints",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            "--duration",
            "3s",
            "--cacert",
            "ca.pem",
            "-w",
            "json",
        ])
        .unwrap() else {
            panic!("not perf")
        };
        let c = p.check();
        assert_eq!(c.profile, perf::PROFILES[3]);
        assert_eq!(c.prefix, "/p/");
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.duration, Duration::from_secs(3));
        assert_eq!(c.tls.unwrap().ca, Some("ca.pem".into()));
        assert_eq!(p.output, Output::Json);
        for bad in [
            &["perf", "--load", "xxl"][..],
            &["perf", "--duration", "0s"],
            &["perf", "--cert", "c.pem"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn disk_needs_a_path_or_an_inventory() {
        let CheckCommand::Disk(d) = parse(&["disk", "/var/lib"]).unwrap() else {
            panic!("not disk")
        };
        assert_eq!(d.path, Some(PathBuf::from("/var/lib")));
        assert_eq!(d.inventory, None);
        let CheckCommand::Disk(d) =
            parse(&["disk", "-i", "c.toml", "--accept-new-host-keys"]).unwrap()
        else {
            panic!("not disk")
        };
        assert_eq!(d.path, None);
        assert_eq!(d.inventory, Some(PathBuf::from("c.toml")));
        assert!(d.accept_new_host_keys);
        assert_eq!(d.parallel, 8);
        for bad in [
            &["disk"][..],
            &["disk", "/var/lib", "--accept-new-host-keys"],
            &["disk", "/var/lib", "--parallel", "2"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn datascale_flags() {
        let CheckCommand::Datascale(d) = parse(&["datascale", "--max", "100k"]).unwrap() else {
            panic!("not datascale")
        };
        let c = d.check();
        assert_eq!(c.steps, [10_000, 100_000]);
        assert_eq!(c.metrics_url, "http://127.0.0.1:2379/metrics");
        let CheckCommand::Datascale(d) = parse(&[
            "datascale",
            "--steps",
            "10,30",
            "--metrics-url",
            "http://127.0.0.1:9/metrics",
        ])
        .unwrap() else {
            panic!("not datascale")
        };
        let c = d.check();
        assert_eq!(c.steps, [10, 30]);
        assert_eq!(c.metrics_url, "http://127.0.0.1:9/metrics");
        assert_eq!(
            DatascaleArgs::check(&match parse(&["datascale"]).unwrap() {
                CheckCommand::Datascale(d) => d,
                _ => panic!("not datascale"),
            })
            .steps,
            datascale::DEFAULT_STEPS
        );
        assert!(parse(&["datascale", "--max", "2m"]).is_err());
    }
}
