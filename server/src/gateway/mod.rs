//! `cairn-server gateway start`: etcd 3.4's gateway, a stateless L4 TCP proxy to put next to
//! clients, so that only it needs the cluster's endpoint list when membership changes. The
//! flags are etcd's; the proxying is in [`proxy`].

mod proxy;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::parse_duration;

/// `cairn-server gateway ...`.
#[derive(Debug, Parser)]
#[command(
    name = "cairn-server gateway",
    about = "gateway related command: a TCP proxy in front of the cluster's members"
)]
struct GatewayCli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the gateway.
    Start(StartArgs),
}

/// `cairn-server gateway start`, with etcd 3.4's flags.
#[derive(Debug, clap::Args)]
struct StartArgs {
    /// Comma separated etcd cluster endpoints.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    endpoints: Vec<String>,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:23790")]
    listen_addr: String,
    /// Duration of delay before retrying failed endpoints.
    #[arg(long, value_parser = parse_duration, default_value = "1m0s")]
    retry_delay: Duration,
    /// DNS domain used to bootstrap initial cluster.
    #[arg(long)]
    discovery_srv: Option<String>,
    /// Service name to query when using DNS discovery.
    #[arg(long)]
    discovery_srv_name: Option<String>,
    /// Accept insecure SRV records.
    #[arg(long)]
    insecure_discovery: bool,
    /// Path to the client server TLS CA file for verifying the discovered endpoints when
    /// discovery-srv is provided.
    #[arg(long)]
    trusted_ca_file: Option<PathBuf>,
}

/// Runs `cairn-server gateway ARGS...` (`args` as the process got them) until `shutdown`.
pub fn gateway_main(args: Vec<String>, shutdown: impl Future<Output = ()>) -> ExitCode {
    let cli = match GatewayCli::try_parse_from(
        std::iter::once("cairn-server gateway".to_string()).chain(args.into_iter().skip(2)),
    ) {
        Ok(c) => c,
        Err(e) => return crate::config::exit_for_args_error(&e, "cairn-server gateway"),
    };
    let Command::Start(args) = cli.command;
    if args.discovery_srv.is_some() {
        eprintln!(
            "cairn-server gateway start: --discovery-srv is not supported; list the members with --endpoints"
        );
        return ExitCode::from(2);
    }
    let endpoints: Vec<String> = args
        .endpoints
        .iter()
        .map(|e| strip_scheme(e).to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        eprintln!("cairn-server gateway start: no endpoints; give them with --endpoints");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn-server gateway: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(&args.listen_addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "cairn-server gateway start: cannot listen on {}: {e}; free the port or pass another --listen-addr",
                    args.listen_addr
                );
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(endpoints = ?endpoints, "ready to proxy client requests");
        let remotes = proxy::Remotes::new(endpoints, args.retry_delay);
        tokio::select! {
            r = proxy::serve(listener, remotes) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cairn-server gateway: accepting connections failed: {e}");
                    ExitCode::FAILURE
                }
            },
            () = shutdown => ExitCode::SUCCESS,
        }
    })
}

/// etcd's gateway takes `host:port`; a URL's scheme is dropped (the bytes pass through, TLS
/// included, whatever it says).
fn strip_scheme(endpoint: &str) -> &str {
    let e = endpoint.trim();
    let e = e
        .strip_prefix("https://")
        .or_else(|| e.strip_prefix("http://"))
        .unwrap_or(e);
    e.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_flags_parse_with_its_defaults() {
        let cli = GatewayCli::try_parse_from(["gw", "start"]).expect("defaults");
        let Command::Start(a) = cli.command;
        assert_eq!(a.endpoints, ["127.0.0.1:2379"]);
        assert_eq!(a.listen_addr, "127.0.0.1:23790");
        assert_eq!(a.retry_delay, Duration::from_secs(60));
        let cli = GatewayCli::try_parse_from([
            "gw",
            "start",
            "--endpoints=a:1,b:2",
            "--retry-delay=1s",
            "--listen-addr=127.0.0.1:0",
        ])
        .expect("flags");
        let Command::Start(a) = cli.command;
        assert_eq!(a.endpoints, ["a:1", "b:2"]);
        assert_eq!(a.retry_delay, Duration::from_secs(1));
        assert_eq!(strip_scheme("https://10.0.0.1:2379/"), "10.0.0.1:2379");
    }
}
