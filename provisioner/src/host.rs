//! What the provisioner needs from a host, as a trait: the SSH transport implements it for real
//! machines and the unit tests implement it in memory, so planning, idempotence and restart
//! order are tested without a network.

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The systemctl operations the provisioner uses, on the one unit it manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Systemctl {
    /// `systemctl daemon-reload`, after the unit file changed.
    DaemonReload,
    /// `systemctl enable UNIT`, so the member starts at boot.
    Enable,
    /// `systemctl start UNIT`.
    Start,
    /// `systemctl restart UNIT`.
    Restart,
    /// `systemctl stop UNIT`.
    Stop,
    /// `systemctl disable UNIT`, so a removed member stays down after a reboot.
    Disable,
}

impl Systemctl {
    /// The systemctl verb.
    pub fn verb(self) -> &'static str {
        match self {
            Systemctl::DaemonReload => "daemon-reload",
            Systemctl::Enable => "enable",
            Systemctl::Start => "start",
            Systemctl::Restart => "restart",
            Systemctl::Stop => "stop",
            Systemctl::Disable => "disable",
        }
    }
}

/// The managed unit's state on a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// `systemctl is-active` says active.
    pub active: bool,
    /// `systemctl is-enabled` says enabled.
    pub enabled: bool,
}

/// A file to write: where, what, with which permissions.
#[derive(Clone, Copy, Debug)]
pub struct WriteFile<'a> {
    /// Absolute path on the host.
    pub path: &'a str,
    /// The whole contents.
    pub contents: &'a [u8],
    /// Permission bits (`0o600` for keys).
    pub mode: u32,
    /// `user:group`.
    pub owner: &'a str,
}

/// What a program run on a host printed, and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exec {
    /// Its exit code; `None` when it ended without one (killed by a signal).
    pub code: Option<u32>,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// One machine the provisioner converges. Every method names the host in its errors.
pub trait Host: Send + Sync {
    /// The member name, for messages.
    fn name(&self) -> &str;

    /// The SHA-256 (hex) of the file, or `None` when it does not exist.
    fn file_sha256(&self, path: &str)
        -> impl Future<Output = Result<Option<String>, Error>> + Send;

    /// The file's contents, or `None` when it does not exist. For small text files.
    fn read_file(&self, path: &str) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;

    /// Writes the file atomically: a temporary file in the same directory with the mode and
    /// owner set, renamed over the path (parents are created).
    fn write_file(&self, file: WriteFile<'_>) -> impl Future<Output = Result<(), Error>> + Send;

    /// Appends `contents` to the file (created with mode 0600, parents too, if missing): a
    /// file too large to hold in memory whole goes up in pieces.
    fn append_file(
        &self,
        path: &str,
        contents: &[u8],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Creates a directory (and parents) if missing, with `mode` when created.
    fn create_dir(&self, path: &str, mode: u32) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether `path` is a directory with anything in it: a member's data directory that
    /// has data (a missing or empty one does not).
    fn has_entries(&self, path: &str) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Removes the file if it exists (teardown).
    fn remove_file(&self, path: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// Removes everything in the directory, and the directory itself unless it cannot go (a
    /// mount point), if it exists (`--purge`, a member's data before it joins again).
    fn remove_dir_all(&self, path: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The managed unit's state.
    fn service_state(&self, unit: &str)
        -> impl Future<Output = Result<ServiceState, Error>> + Send;

    /// Runs a systemctl action on `unit` (ignored by `daemon-reload`).
    fn systemctl(
        &self,
        action: Systemctl,
        unit: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Runs the program `argv[0]` with its arguments as root and returns how it ended,
    /// whatever the exit code: the callers (`cairn check disk` on every host) read failing
    /// programs' output too. Only not being able to run it is an error.
    fn run(&self, argv: &[&str]) -> impl Future<Output = Result<Exec, Error>> + Send;
}
