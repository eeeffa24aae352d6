//! Dev-only test kit: starts real `cairn-server` and etcd processes, and sshd test hosts to
//! provision ([`hosts`]), for integration tests and benchmarks.
//!
//! Everything here is loopback-only (127.0.0.0/8), picks free ports instead of fixed ones,
//! waits on conditions (never on fixed sleeps), and kills every process it starts when the
//! handle drops, when a test panics, and (through `PR_SET_PDEATHSIG`) when the test binary
//! itself dies.
//!
//! The API is synchronous and built on [`std::process`], so it works from plain `#[test]`s and
//! from `#[tokio::test]`s alike (in async tests, calls block the current thread while they
//! wait).
//!
//! ```no_run
//! use cairn_testkit::{Kind, Member};
//!
//! let m = Member::builder(Kind::Etcd).start()?;
//! let out = m.etcdctl(&["put", "k", "v"])?;
//! assert_eq!(out.stdout, "OK\n");
//! # Ok::<(), cairn_testkit::Error>(())
//! ```

mod background;
mod cluster;
pub mod hosts;
pub mod linearizability;
mod member;
mod partition;
mod pki;
mod process;
pub mod s3;

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

pub use background::Background;
pub use cluster::{Cluster, ClusterBuilder};
pub use linearizability::{CheckOptions, KvInput, KvOutput, LinearizabilityError, OpId, Recorder};
pub use member::{Kind, Member, MemberBuilder};
pub use partition::Partition;
pub use pki::Pki;
pub use process::Daemon;

/// How often [`wait_until`] (and everything built on it) re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Everything that can go wrong while starting, stopping or talking to test processes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A condition polled by [`wait_until`] did not become true in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long it was waited for.
        timeout: Duration,
    },
    /// A member did not become ready (log line plus client port) in time.
    #[error(
        "{member} was not ready after {timeout:?} (waiting for a log line containing one of \
         {ready_lines:?} and a TCP connect to the client port); log tail:\n{log_tail}"
    )]
    NotReady {
        /// Which member (kind, name, pid, URL).
        member: String,
        /// How long it was waited for.
        timeout: Duration,
        /// The log lines, any of which signals readiness.
        ready_lines: &'static [&'static str],
        /// The end of the member's combined stdout+stderr.
        log_tail: String,
    },
    /// A member's process exited before it became ready.
    #[error("{member} exited ({status}) before it was ready; log tail:\n{log_tail}")]
    ExitedEarly {
        /// Which member (kind, name, pid, URL).
        member: String,
        /// How the process ended.
        status: ExitStatus,
        /// The end of the member's combined stdout+stderr.
        log_tail: String,
    },
    /// A program could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The program (path or name on `PATH`).
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// [`Kind::Cairn`] was asked for without [`MemberBuilder::cairn_binary`].
    #[error(
        "no cairn-server binary given: call MemberBuilder::cairn_binary(env!(\"CARGO_BIN_EXE_cairn-server\"))"
    )]
    NoCairnBinary,
    /// An address outside 127.0.0.0/8 was given; test processes listen on loopback only.
    #[error("{0} is not a loopback address (tests may only use 127.0.0.0/8)")]
    NotLoopback(Ipv4Addr),
    /// A member that is not running was asked to become ready.
    #[error("{0} is not running: spawn it first")]
    NotRunning(String),
    /// A cluster did not reach the state a test waited for; `detail` says what it saw.
    #[error("cluster: {0}")]
    Cluster(String),
    /// `cargo build` of a binary the tests need failed.
    #[error("`{command}` failed (exit code {code}):\n{stderr}")]
    Build {
        /// The command run.
        command: String,
        /// Its exit code.
        code: i32,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Generating the test certificates failed.
    #[error("generating test certificates: {0}")]
    Cert(#[from] rcgen::Error),
    /// A command preparing test hosts (ssh-keygen, apt-get, dpkg-deb) failed.
    #[error("`{command}` failed (exit code {code}):\n{stderr}")]
    Setup {
        /// The command run.
        command: String,
        /// Its exit code.
        code: i32,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A test host's sshd did not listen in time.
    #[error("sshd of {host} was not listening after {timeout:?}; its log:\n{log}")]
    SshdNotListening {
        /// The host's name.
        host: String,
        /// How long it was waited for.
        timeout: Duration,
        /// sshd's log.
        log: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The `cairn-server` binary for tests of other packages (which, unlike the server's own
/// tests, get no `CARGO_BIN_EXE_cairn-server`): `cairn-server` next to the running test
/// binary's profile directory (`target/debug/` for `target/debug/deps/it-...`), built with
/// `cargo build -p cairn-server` (release for a release test binary) once per process if it
/// is missing. `cargo test --workspace` builds it before any test runs; when only one
/// package is tested, an existing binary is used as it is (rebuilding it there could switch
/// the dependencies' feature set and recompile them).
pub fn cairn_server_binary() -> Result<std::path::PathBuf, Error> {
    // Tests run in parallel: one of them builds, the others wait for it.
    static FOUND: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);
    let mut found = FOUND
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = found.as_ref() {
        return Ok(path.clone());
    }
    let path = locate_or_build_cairn_server()?;
    *found = Some(path.clone());
    Ok(path)
}

/// How long building cairn-server may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

fn locate_or_build_cairn_server() -> Result<std::path::PathBuf, Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("finding the running test binary", e))?;
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| {
            Error::io(
                format!("{} has no profile directory", exe.display()),
                io::ErrorKind::NotFound.into(),
            )
        })?
        .to_path_buf();
    let binary = profile_dir.join("cairn-server");
    if binary.is_file() {
        return Ok(binary);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "cairn-server", "--bin", "cairn-server"]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    let command = format!("{cmd:?}");
    let out = run_command(cmd, BUILD_TIMEOUT)?;
    if !out.success() || !binary.is_file() {
        return Err(Error::Build {
            command,
            code: out.code,
            stderr: out.stderr,
        });
    }
    Ok(binary)
}

/// Finds a TCP port that is free on `ip` right now (binds `ip:0` and releases it).
///
/// Only loopback addresses are accepted. Another process could take the port between this
/// call and its use; on a test machine that window is tiny.
pub fn free_port(ip: Ipv4Addr) -> Result<u16, Error> {
    Ok(reserve_port(ip)?
        .local_addr()
        .map_err(|e| Error::io(format!("reading the address bound on {ip}:0"), e))?
        .port())
}

/// Binds `ip:0` and returns the listener, which keeps the port taken until it drops.
pub(crate) fn reserve_port(ip: Ipv4Addr) -> Result<TcpListener, Error> {
    if !ip.is_loopback() {
        return Err(Error::NotLoopback(ip));
    }
    TcpListener::bind((ip, 0))
        .map_err(|e| Error::io(format!("binding {ip}:0 to find a free port"), e))
}

/// Polls `cond` every [`POLL_INTERVAL`] until it returns `true`, for at most `timeout`.
///
/// `cond` is always called at least once, and once more at the deadline. On timeout the
/// error names `what`, so write it as the thing awaited ("key /a to appear").
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

/// Runs `cmd` to completion (stdin closed) and returns what it printed; kills it after
/// `timeout`. Like every process the kit starts, it dies with the test binary.
pub fn run_command(cmd: std::process::Command, timeout: Duration) -> Result<CmdOutput, Error> {
    process::run(cmd, None, timeout)
}

/// What a finished command printed, and its exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdOutput {
    /// Everything written to stdout (lossily decoded as UTF-8).
    pub stdout: String,
    /// Everything written to stderr, raw (including etcdctl's JSON warning lines).
    pub stderr: String,
    /// The exit code; -1 if the process was ended by a signal.
    pub code: i32,
}

impl CmdOutput {
    /// Whether the command exited with code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The stderr lines that are not structured log lines (`{"level":...`), i.e. without the
    /// warnings etcdctl's retry interceptor prints; what is left are the real error messages.
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| !l.starts_with("{\"level\":"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_and_loopback_only() {
        let ip = Ipv4Addr::LOCALHOST;
        let port = free_port(ip).unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((ip, port)).unwrap();
        let other = Ipv4Addr::new(127, 0, 0, 2);
        assert_ne!(free_port(other).unwrap(), 0);
        assert!(matches!(
            free_port(Ipv4Addr::new(10, 0, 0, 1)),
            Err(Error::NotLoopback(_))
        ));
    }

    #[test]
    fn wait_until_succeeds_or_times_out_with_a_clear_error() {
        let mut calls = 0;
        wait_until("the third call", Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);

        let start = Instant::now();
        let err = wait_until("never", Duration::from_millis(100), || false).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(matches!(err, Error::Timeout { .. }));
        assert_eq!(err.to_string(), "timed out after 100ms waiting for never");
    }

    #[test]
    fn error_lines_drop_json_log_lines() {
        let out = CmdOutput {
            stdout: String::new(),
            stderr: "{\"level\":\"warn\",\"msg\":\"retrying\"}\nError: etcdserver: boom\n".into(),
            code: 1,
        };
        assert_eq!(out.error_lines(), vec!["Error: etcdserver: boom"]);
        assert!(!out.success());
    }
}
