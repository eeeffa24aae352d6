//! `cairn bench MODE`: etcd benchmark's load generator (put, range, txn-put, watch,
//! lease-keepalive) with its flags, against cairn-server or etcd.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_bench::load::{self, Consistency, LoadSpec, Mode, Stop, Tls};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use cairn_client::Credentials;

use crate::login_args::LoginArgs;
use crate::{Error, Output};

/// `cairn bench ...`: the flags work before or after the mode, as in etcd's benchmark.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload.
    #[command(subcommand)]
    pub mode: BenchMode,
    /// Connection, size and pacing flags.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The workloads.
#[derive(Debug, Subcommand)]
pub enum BenchMode {
    /// Put keys of the key space (random, or with --sequential-keys in order).
    Put,
    /// Range one key, written once before the run.
    Range(RangeArgs),
    /// Txn with one Put, keys as for put.
    TxnPut,
    /// Watchers on one key while puts are issued to it: put-to-event delivery latency.
    Watch(WatchArgs),
    /// LeaseKeepAlive round trips, one lease per client.
    LeaseKeepalive,
}

/// `cairn bench range` options.
#[derive(Debug, Args)]
pub struct RangeArgs {
    /// Read consistency: l (linearizable) or s (serializable).
    #[arg(long, value_enum, default_value_t = ConsistencyArg::L)]
    pub consistency: ConsistencyArg,
}

/// `cairn bench watch` options.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Watchers on the key, each with its own watch stream.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub watchers: u64,
}

/// etcd's `--consistency` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsistencyArg {
    /// Linearizable.
    #[value(name = "l")]
    L,
    /// Serializable.
    #[value(name = "s")]
    S,
}

/// Flags shared by every workload.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Client URLs, comma-separated.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// gRPC connections; clients share them round-robin.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub conns: u64,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub clients: u64,
    /// Requests to issue (puts, for watch).
    #[arg(long, global = true, default_value_t = 10_000, conflicts_with = "duration",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub total: u64,
    /// Run for this long instead of --total (e.g. 10s, 1m).
    #[arg(long, global = true, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Key size in bytes.
    #[arg(long, global = true, default_value_t = 8)]
    pub key_size: usize,
    /// Value size in bytes.
    #[arg(long, global = true, default_value_t = 8)]
    pub val_size: usize,
    /// Distinct keys written by put and txn-put.
    #[arg(long, global = true, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space_size: u64,
    /// Write keys in order (modulo the key space) instead of at random.
    #[arg(long, global = true)]
    pub sequential_keys: bool,
    /// Take the endpoints, and the admin client certificate when the cluster uses TLS, from
    /// this inventory (as `cairn provision` set them up).
    #[arg(
        short = 'i',
        long = "inventory",
        global = true,
        value_name = "FILE",
        conflicts_with = "endpoints"
    )]
    pub inventory: Option<PathBuf>,
    /// Send every request to the leader's endpoint (found among --endpoints).
    #[arg(long, global = true)]
    pub target_leader: bool,
    /// Requests per second over all clients; 0 is unlimited.
    #[arg(long, global = true, default_value_t = 0)]
    pub rate: u64,
    /// CA certificate (PEM) for https endpoints.
    #[arg(long, global = true)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, global = true, requires = "cert")]
    pub key: Option<PathBuf>,
    /// A user to log in as (with -i and no --user: root, with the inventory's password).
    #[command(flatten)]
    pub login: LoginArgs,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        visible_short_alias = 'w',
        global = true,
        value_enum,
        default_value_t
    )]
    pub output: Output,
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("must be longer than 0s".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(cairn_client::chain(&e)),
    }
}

impl BenchArgs {
    /// The load run these flags ask for.
    pub fn spec(&self) -> LoadSpec {
        let c = &self.common;
        let (mode, consistency, watchers) = match &self.mode {
            BenchMode::Put => (Mode::Put, Consistency::default(), 1),
            BenchMode::TxnPut => (Mode::TxnPut, Consistency::default(), 1),
            BenchMode::LeaseKeepalive => (Mode::LeaseKeepalive, Consistency::default(), 1),
            BenchMode::Watch(w) => (Mode::Watch, Consistency::default(), w.watchers),
            BenchMode::Range(r) => (
                Mode::Range,
                match r.consistency {
                    ConsistencyArg::L => Consistency::Linearizable,
                    ConsistencyArg::S => Consistency::Serializable,
                },
                1,
            ),
        };
        let tls = (c.cacert.is_some() || c.cert.is_some()).then(|| Tls {
            ca: c.cacert.clone(),
            identity: c.cert.clone().zip(c.key.clone()),
        });
        LoadSpec {
            endpoints: c.endpoints.clone(),
            conns: c.conns as usize,
            clients: c.clients as usize,
            stop: c.duration.map_or(Stop::Total(c.total), Stop::Duration),
            key_size: c.key_size,
            val_size: c.val_size,
            key_space_size: c.key_space_size,
            sequential_keys: c.sequential_keys,
            consistency,
            rate: c.rate,
            watchers: watchers as usize,
            tls,
            target_leader: c.target_leader,
            ..LoadSpec::new(mode, Vec::new())
        }
    }
}

/// A progress bar on stderr while both stdout and stderr are terminals; hidden otherwise.
pub(crate) fn progress_bar(stop: Stop) -> ProgressBar {
    let interactive = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
    if !interactive {
        return ProgressBar::hidden();
    }
    let bar = match stop {
        Stop::Total(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template"),
        ),
        Stop::Duration(d) => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {{elapsed}}/{} {{pos}} requests {{per_sec}}",
                humantime::format_duration(d)
            ))
            .expect("valid template"),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs the workload and prints its report.
pub fn run(args: BenchArgs) -> Result<ExitCode, Error> {
    let mut spec = args.spec();
    spec.credentials = args.common.login.credentials()?;
    if let Some(path) = &args.common.inventory {
        let inventory = cairn_inventory::Inventory::load(path)?;
        spec.endpoints = inventory.endpoints();
        if spec.credentials.is_none() {
            spec.credentials = inventory
                .root_login()?
                .map(|(user, password)| Credentials { user, password });
        }
        if let (Some(tls), None) = (&inventory.tls, &spec.tls) {
            let pki = cairn_pki::Pki::existing(tls);
            let admin = cairn_pki::Client::Admin;
            spec.tls = Some(Tls {
                ca: Some(pki.ca_cert()),
                identity: Some((pki.client_cert(admin), pki.client_key(admin))),
            });
        }
    }
    let bar = progress_bar(spec.stop);
    let ticks = bar.clone();
    let report = load::run_blocking(&spec, Arc::new(move |n| ticks.inc(n)));
    bar.finish_and_clear();
    let report = report?;
    match args.common.output {
        Output::Text => print!("{report}"),
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Cli, Command};

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let cli = Cli::try_parse_from(["cairn", "bench"].iter().chain(args))?;
        match cli.command {
            Command::Bench(b) => Ok(b),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn defaults_are_etcd_benchmarks() {
        let spec = parse(&["put"]).unwrap().spec();
        assert_eq!(
            spec,
            LoadSpec::new(Mode::Put, vec!["127.0.0.1:2379".into()])
        );
        assert_eq!(spec.stop, Stop::Total(10_000));
    }

    #[test]
    fn flags_before_or_after_the_mode() {
        let a = parse(&[
            "--endpoints=http://127.0.0.1:1,http://127.0.0.2:2",
            "--conns",
            "2",
            "range",
            "--clients=8",
            "--consistency",
            "s",
            "--total",
            "200",
            "-w",
            "json",
            "--rate",
            "100",
        ])
        .unwrap();
        assert_eq!(a.common.output, Output::Json);
        let spec = a.spec();
        assert_eq!(spec.mode, Mode::Range);
        assert_eq!(spec.endpoints, ["http://127.0.0.1:1", "http://127.0.0.2:2"]);
        assert_eq!((spec.conns, spec.clients, spec.rate), (2, 8, 100));
        assert_eq!(spec.consistency, Consistency::Serializable);
        assert_eq!(spec.stop, Stop::Total(200));
    }

    #[test]
    fn sizes_keys_watchers_and_duration() {
        let spec = parse(&[
            "watch",
            "--watchers",
            "4",
            "--duration",
            "1m30s",
            "--key-size",
            "16",
            "--val-size",
            "256",
            "--key-space-size",
            "1000",
            "--sequential-keys",
        ])
        .unwrap()
        .spec();
        assert_eq!(spec.mode, Mode::Watch);
        assert_eq!(spec.watchers, 4);
        assert_eq!(spec.stop, Stop::Duration(Duration::from_secs(90)));
        assert_eq!((spec.key_size, spec.val_size), (16, 256));
        assert_eq!(spec.key_space_size, 1000);
        assert!(spec.sequential_keys);
        assert_eq!(parse(&["txn-put"]).unwrap().spec().mode, Mode::TxnPut);
        assert_eq!(
            parse(&["lease-keepalive"]).unwrap().spec().mode,
            Mode::LeaseKeepalive
        );
    }

    #[test]
    fn tls_flags() {
        let spec = parse(&[
            "put", "--cacert", "ca.pem", "--cert", "c.pem", "--key", "k.pem",
        ])
        .unwrap()
        .spec();
        assert_eq!(
            spec.tls,
            Some(Tls {
                ca: Some("ca.pem".into()),
                identity: Some(("c.pem".into(), "k.pem".into())),
            })
        );
        assert_eq!(parse(&["put"]).unwrap().spec().tls, None);
        assert!(
            parse(&["put", "--cert", "c.pem"]).is_err(),
            "--cert needs --key"
        );
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            &["put", "--total", "5", "--duration", "5s"][..],
            &["put", "--clients", "0"],
            &["put", "--conns", "0"],
            &["put", "--duration", "0s"],
            &["put", "--duration", "soon"],
            &["range", "--consistency", "x"],
            &["watch", "--watchers", "0"],
            &["get"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
