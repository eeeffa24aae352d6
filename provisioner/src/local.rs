//! `cairn up`: the members of a `transport = "local"` inventory as child processes of this
//! one, from the same certificates, env files and flags a provisioned host gets.
//!
//! [`prepare`] issues the PKI into `[tls] dir` (as `cairn provision` does, reusing what is
//! valid) and writes each member's env file to `data_dir/<name>/cairn.env` with the local
//! certificate paths; [`Prepared::start`] runs the binary once per member with those variables
//! and the inventory's `extra_flags` (what the systemd unit's `ExecStart` runs), each in its
//! own process group so a terminal's Ctrl-C reaches only `cairn up`, which then stops them
//! in order ([`Running::stop`]). A second `cairn up` finds the data directories and restarts
//! the same cluster.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_inventory::{Inventory, Transport};
use rustix::process::{kill_process, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::local_file::{create_private_dir, write_atomic};
use crate::pki::{Client, Issued};
use crate::probe::Probe;
use crate::render::{env_vars, format_env_file, Bootstrap, TlsPaths};
use crate::steps::{wait_healthy, Limits};
use crate::{Clock, Error, Pki};

/// Log lines kept per member, shown when it exits unexpectedly.
const TAIL_LINES: usize = 20;

/// Where the members' output goes, a line at a time.
pub trait Console: Send + Sync {
    /// `member` wrote `line` (stdout and stderr alike).
    fn line(&self, member: &str, line: &str);
}

/// One member, ready to run.
#[derive(Clone, Debug)]
pub struct LocalMember {
    /// Its name.
    pub name: String,
    /// The env file written for it.
    pub env_file: PathBuf,
    /// Its data directory.
    pub data_dir: PathBuf,
    vars: Vec<(&'static str, String)>,
}

/// The cluster's files are in place; nothing runs yet.
pub struct Prepared {
    binary: PathBuf,
    args: Vec<String>,
    members: Vec<LocalMember>,
    pki: Option<Pki>,
    certificates: Vec<Issued>,
}

/// Issues or reuses the certificates and writes every member's env file and data directory.
pub fn prepare(inventory: &Inventory, clock: &dyn Clock) -> Result<Prepared, Error> {
    if inventory.cluster.transport != Transport::Local {
        return Err(Error::NotLocal {
            path: inventory.path.clone(),
        });
    }
    inventory.check_local_files()?;
    let pki = match &inventory.tls {
        Some(tls) => Some(Pki::ensure(inventory, tls, clock)?),
        None => None,
    };
    let certificates = pki
        .as_ref()
        .map(|p| p.report().to_vec())
        .unwrap_or_default();
    let mut members = Vec::new();
    for host in &inventory.hosts {
        let tls = match &pki {
            Some(pki) => TlsPaths {
                ca: path_text(&pki.ca_cert()),
                cert: path_text(&pki.member_cert(&host.name)),
                key: path_text(&pki.member_key(&host.name)),
            },
            None => TlsPaths::on_host(),
        };
        let vars = env_vars(inventory, host, &Bootstrap::new_cluster(inventory), &tls);
        let dir = inventory.local_dir(host);
        let data_dir = inventory.data_dir(host);
        create_private_dir(&dir)?;
        create_private_dir(&data_dir)?;
        let env_file = dir.join("cairn.env");
        write_atomic(
            &env_file,
            format_env_file(inventory, &vars).as_bytes(),
            0o644,
        )?;
        members.push(LocalMember {
            name: host.name.clone(),
            env_file,
            data_dir,
            vars,
        });
    }
    Ok(Prepared {
        binary: inventory.cluster.binary.clone(),
        args: inventory.cluster.extra_flags.clone(),
        members,
        pki,
        certificates,
    })
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

impl Prepared {
    /// The members, in inventory order.
    pub fn members(&self) -> &[LocalMember] {
        &self.members
    }

    /// The certificates and what was done with them.
    pub fn certificates(&self) -> &[Issued] {
        &self.certificates
    }

    /// The PKI, under `[tls]`.
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// The etcdctl command line that reaches the cluster with the admin certificate.
    pub fn etcdctl(&self, inventory: &Inventory) -> String {
        let mut line = format!(
            "ETCDCTL_API=3 etcdctl --endpoints={}",
            inventory.endpoints().join(",")
        );
        if let Some(pki) = &self.pki {
            for (flag, path) in [
                ("cacert", pki.ca_cert()),
                ("cert", pki.client_cert(Client::Admin)),
                ("key", pki.client_key(Client::Admin)),
            ] {
                line.push_str(&format!(" --{flag}={}", path.display()));
            }
        }
        line
    }

    /// Starts every member; their output goes to `console`. A member that cannot be started
    /// stops the ones already running.
    pub async fn start(&self, console: Arc<dyn Console>) -> Result<Running, Error> {
        let mut running = Running {
            members: Vec::new(),
        };
        for m in &self.members {
            let mut cmd = Command::new(&self.binary);
            cmd.args(&self.args)
                .envs(m.vars.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .kill_on_drop(true);
            stop_with_parent(&mut cmd);
            // The parent's own ETCD_* settings would mix into the member's.
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("ETCD_")
                    && !m.vars.iter().any(|(k, _)| key == *k)
                {
                    cmd.env_remove(key);
                }
            }
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(source) => {
                    running.stop(Duration::from_secs(10)).await;
                    return Err(Error::Spawn {
                        member: m.name.clone(),
                        binary: self.binary.clone(),
                        source,
                    });
                }
            };
            let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
            for pipe in [
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>),
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn AsyncRead + Send + Unpin>),
            ]
            .into_iter()
            .flatten()
            {
                tokio::spawn(forward(pipe, m.name.clone(), console.clone(), tail.clone()));
            }
            running.members.push(Member {
                name: m.name.clone(),
                child,
                tail,
            });
        }
        Ok(running)
    }
}

/// The member gets SIGTERM when `cairn up` dies, even by SIGKILL, so no member outlives it.
#[allow(unsafe_code)]
fn stop_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only makes one prctl
    // system call, which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
}

/// Copies `pipe` to the console line by line, keeping the last lines.
async fn forward(
    pipe: Box<dyn AsyncRead + Send + Unpin>,
    member: String,
    console: Arc<dyn Console>,
    tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        console.line(&member, &line);
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

struct Member {
    name: String,
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Member {
    fn exited(&self, status: ExitStatus) -> Error {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        Error::MemberExited {
            member: self.name.clone(),
            status,
            last_lines: tail.iter().cloned().collect(),
        }
    }
}

/// The members as child processes; dropping it kills them (SIGKILL), [`Running::stop`]
/// stops them gracefully.
pub struct Running {
    members: Vec<Member>,
}

impl Running {
    /// The members' process IDs, in inventory order.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|m| m.child.id()).collect()
    }

    /// Waits until every member answers with a leader. A member that exits first is the
    /// error, with its last log lines.
    pub async fn wait_ready<P: Probe>(&mut self, probe: &P, limits: &Limits) -> Result<(), Error> {
        let names: Vec<String> = self.members.iter().map(|m| m.name.clone()).collect();
        let ready = async {
            for name in &names {
                wait_healthy(probe, name, limits).await?;
            }
            Ok(())
        };
        tokio::select! {
            r = ready => r,
            e = self.first_exit() => Err(e),
        }
    }

    /// Runs until `shutdown` completes (Ok) or a member exits on its own (the error).
    pub async fn supervise(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::select! {
            () = shutdown => Ok(()),
            e = self.first_exit() => Err(e),
        }
    }

    /// The first member to exit, as an error.
    async fn first_exit(&mut self) -> Error {
        let waits = self
            .members
            .iter_mut()
            .enumerate()
            .map(|(i, m)| Box::pin(async move { (i, m.child.wait().await) }));
        let ((i, status), _, _) = futures::future::select_all(waits).await;
        match status {
            Ok(status) => self.members[i].exited(status),
            Err(source) => Error::Wait {
                member: self.members[i].name.clone(),
                source,
            },
        }
    }

    /// Sends every member SIGTERM, waits up to `grace` for each to exit, then kills what is
    /// left. Returns how each ended, in inventory order.
    pub async fn stop(mut self, grace: Duration) -> Vec<(String, Option<ExitStatus>)> {
        for m in &self.members {
            if let Some(pid) = m
                .child
                .id()
                .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
            {
                let _ = kill_process(pid, Signal::TERM);
            }
        }
        let mut ended = Vec::new();
        for m in &mut self.members {
            let status = match tokio::time::timeout(grace, m.child.wait()).await {
                Ok(Ok(s)) => Some(s),
                _ => {
                    let _ = m.child.kill().await;
                    m.child.wait().await.ok()
                }
            };
            ended.push((m.name.clone(), status));
        }
        ended
    }
}
