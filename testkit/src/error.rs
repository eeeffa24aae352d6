//! The kit's one error type.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::io;
use std::net::Ipv4Addr;
use std::process::ExitStatus;
use std::time::Duration;

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
    #[error("cannot start {program}")]
    Spawn {
        /// The program (path or name on `PATH`).
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An I/O operation failed.
    #[error("{context}")]
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
    #[error("generating test certificates failed")]
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
