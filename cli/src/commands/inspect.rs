//! `cairn inspect [-i INVENTORY | --endpoints URLS]`: inspects every member (membership,
//! consistency, database, large values, key counts, hot prefixes, latency, certificates) and
//! prints the graded report as a table, JSON, Markdown or HTML. Exits 0 when every check passes, 1
//! on a warning, 2 on a failure. With `--serve ADDR` it keeps inspecting (every `--every`)
//! and serves the results as Prometheus metrics until interrupted.

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_inspector::render::{self, table::Style};
use cairn_inspector::{
    BackupCheck, Catalog, EtcdSource, Expected, FileStore, Limits, Newest, NoStore, Options,
    StateStore, SystemClock, Target, TlsFiles,
};
use cairn_inventory::{Inventory, DEFAULT_FILE};
use cairn_pki::Client;
use cairn_pki::Pki;
use clap::{Args, ValueEnum};

use crate::Error;

/// How the report is printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for the terminal, colored when it is one.
    #[default]
    Table,
    /// The report's JSON schema (docs/inspection.md), for scripts.
    Json,
    /// Markdown, for tickets and wikis.
    Markdown,
    /// One self-contained HTML page with charts.
    Html,
}

/// `cairn inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The cluster's inventory: its members, TLS (the inspector's client certificate) and
    /// `[inspection]` limits. Read from ./cairn.toml when neither this nor --endpoints is given.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        conflicts_with = "endpoints"
    )]
    pub inventory: Option<PathBuf>,
    /// Every member's client URL, comma-separated, instead of an inventory's members
    /// (`host:port` means http, or https with --cacert); members missing from them fail the
    /// membership check. Limits are the defaults.
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) for https endpoints.
    #[arg(long, requires_all = ["cert", "key"], requires = "endpoints")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, requires_all = ["cacert", "key"])]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, requires_all = ["cacert", "cert"])]
    pub key: Option<PathBuf>,
    /// Where the previous run's counts and the history of runs are kept, for growth and
    /// trends; by default the inventory's state file (`[inspection] state_file`, else
    /// ~/.local/state/cairn/<cluster>/inspection.json), none with --endpoints.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// How long writes are watched for hot prefixes (e.g. 10s), instead of `[inspection]
    /// hot_prefix_window`.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub window: Option<Duration>,
    /// How long each request to a member may take, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
    /// Output format (`--format` is its old name).
    #[arg(
        short = 'o',
        long,
        alias = "format",
        visible_short_alias = 'w',
        value_enum,
        default_value_t
    )]
    pub output: Format,
    /// Keep inspecting and serve the results at http://ADDR/metrics (`cairn_inspection_*`)
    /// until interrupted, instead of printing one report.
    #[arg(long, value_name = "ADDR")]
    pub serve: Option<std::net::SocketAddr>,
    /// Time between inspections with --serve; `[inspection] interval` by default.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", requires = "serve")]
    pub every: Option<Duration>,
}

/// Time between inspections with `--serve` and no inventory (`[inspection] interval`'s
/// default).
const DEFAULT_EVERY: Duration = Duration::from_secs(15 * 60);

/// What to inspect, resolved from the inventory or the flags.
struct Plan {
    targets: Vec<Target>,
    tls: Option<TlsFiles>,
    credentials: Option<cairn_client::Credentials>,
    options: Options,
    state: Option<PathBuf>,
    every: Duration,
}

fn from_inventory(inventory: &Inventory) -> Result<Plan, Error> {
    let pki = inventory.tls.as_ref().map(Pki::existing);
    Ok(Plan {
        credentials: inventory.root_login()?.map(cairn_client::Credentials::from),
        targets: inventory
            .hosts
            .iter()
            .map(|h| Target {
                name: h.name.clone(),
                endpoint: inventory.client_url(h),
                metrics: inventory.metrics_port(h).map(|_| {
                    let scheme = if inventory.metrics_tls() {
                        "https"
                    } else {
                        "http"
                    };
                    format!("{scheme}://{}/metrics", inventory.metrics_target(h))
                }),
            })
            .collect(),
        tls: pki.as_ref().map(|p| TlsFiles {
            ca: p.ca_cert(),
            cert: p.client_cert(Client::Inspector),
            key: p.client_key(Client::Inspector),
        }),
        options: Options {
            cluster: inventory.cluster.name.clone(),
            expected: inventory
                .hosts
                .iter()
                .map(|h| Expected {
                    name: Some(h.name.clone()),
                    client_url: inventory.client_url(h),
                })
                .collect(),
            limits: Limits::from_inventory(inventory),
            local_pki: inventory.tls.as_ref().map(|t| t.dir.clone()),
            backups: inventory.backup.as_ref().map(|_| BackupCheck {
                catalog: Arc::new(StoreCatalog(inventory.clone())),
                every: inventory.schedule.backup_interval,
                stale_after: inventory.schedule.backup_stale_after,
            }),
        },
        state: Some(inventory.inspection_state_file()),
        every: inventory.schedule.inspection_interval,
    })
}

/// The inventory's backup store, listed afresh for every inspection.
#[derive(Debug)]
struct StoreCatalog(Inventory);

impl Catalog for StoreCatalog {
    fn newest(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<Option<Newest>, cairn_inspector::Error>> + Send + '_>>
    {
        Box::pin(async move {
            let backups = cairn_backupd::Backups::from_inventory(
                &self.0,
                Arc::new(cairn_backupd::SystemClock),
            )
            .await
            .map_err(|e| cairn_inspector::Error::Catalog(Box::new(e)))?;
            let listed = backups
                .list()
                .await
                .map_err(|e| cairn_inspector::Error::Catalog(Box::new(e)))?;
            Ok(listed
                .into_iter()
                .max_by_key(|m| m.finished_at)
                .map(|m| Newest {
                    id: m.id,
                    finished_at: m.finished_at.into(),
                    revision: m.revision,
                }))
        })
    }
}

/// `endpoint` as a URL: a bare `host:port` gets the scheme etcdctl would use.
fn url(endpoint: &str, tls: bool) -> String {
    if endpoint.contains("://") {
        endpoint.trim_end_matches('/').to_string()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

fn from_endpoints(args: &InspectArgs) -> Plan {
    let urls: Vec<String> = args
        .endpoints
        .iter()
        .map(|e| url(e, args.cacert.is_some()))
        .collect();
    Plan {
        targets: urls
            .iter()
            .map(|e| Target {
                name: e.clone(),
                endpoint: e.clone(),
                metrics: None,
            })
            .collect(),
        credentials: None,
        tls: match (&args.cacert, &args.cert, &args.key) {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        },
        options: Options {
            cluster: urls.join(","),
            expected: urls
                .iter()
                .map(|e| Expected {
                    name: None,
                    client_url: e.clone(),
                })
                .collect(),
            limits: Limits::default(),
            local_pki: None,
            backups: None,
        },
        state: None,
        every: DEFAULT_EVERY,
    }
}

/// Inspects and prints the report; the exit code is the report's status.
pub fn run(args: InspectArgs) -> Result<ExitCode, Error> {
    let mut plan = if args.endpoints.is_empty() {
        let path = args
            .inventory
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
        let inventory = Inventory::load(&path)?;
        for warning in inventory.warnings() {
            eprintln!("cairn: warning: {warning}");
        }
        from_inventory(&inventory)?
    } else {
        from_endpoints(&args)
    };
    if let Some(state) = &args.state {
        plan.state = Some(state.clone());
    }
    if let Some(window) = args.window {
        plan.options.limits.hot_prefix_window = window;
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    let source = EtcdSource::new(
        plan.targets,
        plan.tls.as_ref(),
        plan.credentials.as_ref(),
        timeout,
    )?;
    let store: Box<dyn StateStore> = match plan.state {
        Some(path) => Box::new(FileStore::new(path)),
        None => Box::new(NoStore),
    };
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    if let Some(addr) = args.serve {
        let every = args.every.unwrap_or(plan.every);
        runtime.block_on(serve(addr, every, &source, store.as_ref(), &plan.options))?;
        return Ok(ExitCode::SUCCESS);
    }
    let report = runtime.block_on(cairn_inspector::inspect(
        &source,
        &SystemClock,
        store.as_ref(),
        &plan.options,
    ))?;
    match args.output {
        Format::Json => print!("{}", render::json::render(&report)?),
        Format::Markdown => print!("{}", render::markdown::render(&report)),
        Format::Html => {
            // The trends come from the state the run just saved.
            let history = store.load()?.map(|s| s.history).unwrap_or_default();
            print!("{}", render::html::render(&report, &history));
        }
        Format::Table => {
            // -v (global): every figure, not only those of checks that are not a pass.
            let ui = crate::ui::get();
            let style = Style {
                color: ui.color(std::io::stdout().is_terminal()),
                verbose: ui.verbose,
            };
            print!("{}", render::table::render(&report, style));
        }
    }
    Ok(ExitCode::from(report.status.exit_code()))
}

/// `--serve`: inspections every `every`, each logged as one line on stderr, until Ctrl-C.
async fn serve(
    addr: std::net::SocketAddr,
    every: Duration,
    source: &EtcdSource,
    store: &dyn StateStore,
    options: &Options,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    eprintln!(
        "cairn: serving inspection metrics on http://{bound}/metrics, inspecting every {}",
        humantime::format_duration(every)
    );
    let job = cairn_inspector::Job {
        source,
        clock: &SystemClock,
        store,
        options,
    };
    let log = |outcome: &Result<cairn_inspector::Report, cairn_inspector::Error>| match outcome {
        Ok(r) => {
            let findings: Vec<String> = r
                .checks
                .iter()
                .filter(|c| c.status != cairn_inspector::Status::Pass)
                .map(|c| format!("{} {}", c.check, c.status))
                .collect();
            eprintln!(
                "cairn: inspection {} in {:.1}s{}{}",
                r.status,
                r.duration_seconds,
                if findings.is_empty() { "" } else { ": " },
                findings.join(", ")
            );
        }
        Err(e) => eprintln!("cairn: inspection failed: {}", cairn_client::chain(&e)),
    };
    let interrupted = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    cairn_inspector::serve(listener, every, job, log, interrupted).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_endpoints_get_etcdctls_scheme() {
        assert_eq!(url("127.0.0.1:2379", false), "http://127.0.0.1:2379");
        assert_eq!(url("10.0.0.1:2379", true), "https://10.0.0.1:2379");
        assert_eq!(url("https://a:1/", false), "https://a:1");
    }
}
