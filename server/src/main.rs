//! `cairn-server`: parses etcd-style flags, sets up logging, runs the member.

use std::process::ExitCode;

use cairn_server::Config;
use tracing_subscriber::EnvFilter;

// Requests are allocated on the gRPC workers and freed on the raft thread (and the other way
// round), which glibc's allocator handles poorly: malloc and free were a seventh of a loaded
// member's CPU profile, and 100-client puts on a 3-member cluster went up by about 8% with
// mimalloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("snapshot") => return cairn_server::snapshot_main(std::env::args().collect()),
        Some("gateway") => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .init();
            return cairn_server::gateway_main(std::env::args().collect(), shutdown_signal());
        }
        _ => {}
    }
    let config = match Config::try_parse_etcd_args(std::env::args()) {
        Ok(c) => c,
        Err(e) => return cairn_server::exit_for_args_error(&e, "cairn-server"),
    };
    let filter = EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| EnvFilter::new(config.log_level.directive()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cairn-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A fatal storage failure stops the member at once, wherever it happened (etcd exits
    // too): the library reports it and stops that thread; the process ends here.
    std::thread::Builder::new()
        .name("fatal".into())
        .spawn(|| {
            let failure = cairn_server::wait_for_failure();
            eprintln!("cairn-server: storage failure, stopping: {failure}");
            std::process::exit(1);
        })
        .expect("starting the failure watch thread");
    match runtime.block_on(cairn_server::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn-server: {}", cairn_server::chain(&e));
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
