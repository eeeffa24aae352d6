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
use std::time::{Duration, Instant};

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
        let spawner = Arc::new(Spawner {
            binary: self.binary.clone(),
            args: self.args.clone(),
            members: self.members.clone(),
            console,
        });
        let mut running = Running {
            members: Vec::new(),
            spawner: spawner.clone(),
        };
        for i in 0..self.members.len() {
            match spawner.spawn(i) {
                Ok(member) => running.members.push(member),
                Err(e) => {
                    running.stop(Duration::from_secs(10)).await;
                    return Err(e);
                }
            }
        }
        Ok(running)
    }
}

/// What starting a member takes, kept to restart it.
struct Spawner {
    binary: PathBuf,
    args: Vec<String>,
    members: Vec<LocalMember>,
    console: Arc<dyn Console>,
}

impl Spawner {
    /// Starts member `i`, its output copied to the console.
    fn spawn(&self, i: usize) -> Result<Member, Error> {
        let m = &self.members[i];
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
            if key.to_string_lossy().starts_with("ETCD_") && !m.vars.iter().any(|(k, _)| key == *k)
            {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            member: m.name.clone(),
            binary: self.binary.clone(),
            source,
        })?;
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
            tokio::spawn(forward(
                pipe,
                m.name.clone(),
                self.console.clone(),
                tail.clone(),
            ));
        }
        Ok(Member {
            name: m.name.clone(),
            child: Some(child),
            tail,
            starts: VecDeque::new(),
        })
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
    /// The running process; `None` while the member is down.
    child: Option<Child>,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// When it was restarted lately, for the start limit.
    starts: VecDeque<Instant>,
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

/// How `cairn up` keeps members running once the cluster is up, as systemd's
/// `Restart=on-failure` does: a member that fails (a non-zero exit or a signal) is started
/// again after a delay that doubles from [`RESTART_DELAY`] up to [`RESTART_DELAY_MAX`]; one
/// restarted more than [`START_LIMIT_BURST`] times within [`START_LIMIT_INTERVAL`] is left
/// down (systemd's start limit) while the others keep running. A member that exits cleanly is
/// left down too.
pub const RESTART_DELAY: Duration = Duration::from_millis(100);
/// See [`RESTART_DELAY`].
pub const RESTART_DELAY_MAX: Duration = Duration::from_secs(5);
/// See [`RESTART_DELAY`] (systemd's `StartLimitBurst` default).
pub const START_LIMIT_BURST: usize = 5;
/// See [`RESTART_DELAY`] (systemd's `StartLimitIntervalSec` default).
pub const START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);

/// The members as child processes; dropping it kills them (SIGKILL), [`Running::stop`]
/// stops them gracefully.
pub struct Running {
    members: Vec<Member>,
    spawner: Arc<Spawner>,
}

impl Running {
    /// The running members' process IDs, in inventory order.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .filter_map(|m| m.child.as_ref()?.id())
            .collect()
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
            e = self.next_exit() => Err(match e {
                Some((i, status)) => self.exit_error(i, status),
                None => Error::AllMembersDown,
            }),
        }
    }

    /// Runs until `shutdown` completes, restarting members that fail (see
    /// [`RESTART_DELAY`]); an error only when every member is down.
    pub async fn supervise(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let mut last = None;
        loop {
            let exit = tokio::select! {
                () = &mut shutdown => return Ok(()),
                e = self.next_exit() => e,
            };
            let Some((i, status)) = exit else {
                return Err(last.unwrap_or(Error::AllMembersDown));
            };
            let error = self.exit_error(i, status);
            let console = self.spawner.console.clone();
            let m = &mut self.members[i];
            let name = m.name.clone();
            let failed = match &error {
                Error::MemberExited { status, .. } => !status.success(),
                _ => true,
            };
            last = Some(error);
            if !failed {
                console.line(&name, "[cairn up] exited cleanly; left down");
                continue;
            }
            let now = Instant::now();
            while m
                .starts
                .front()
                .is_some_and(|t| now.duration_since(*t) > START_LIMIT_INTERVAL)
            {
                m.starts.pop_front();
            }
            if m.starts.len() >= START_LIMIT_BURST {
                console.line(
                    &name,
                    &format!(
                        "[cairn up] failed {} times within {:?}: left down (like systemd's start limit); the other members keep running",
                        m.starts.len() + 1,
                        START_LIMIT_INTERVAL
                    ),
                );
                continue;
            }
            let delay = RESTART_DELAY
                .saturating_mul(1 << m.starts.len().min(16))
                .min(RESTART_DELAY_MAX);
            m.starts.push_back(now);
            console.line(
                &name,
                &format!("[cairn up] failed; restarting in {} ms", delay.as_millis()),
            );
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
            match self.spawner.spawn(i) {
                Ok(fresh) => {
                    let m = &mut self.members[i];
                    m.child = fresh.child;
                    m.tail = fresh.tail;
                    let pid = m.child.as_ref().and_then(Child::id).unwrap_or_default();
                    console.line(&name, &format!("[cairn up] restarted: pid {pid}"));
                }
                Err(e) => console.line(
                    &name,
                    &format!(
                        "[cairn up] cannot restart: {}; left down",
                        cairn_client::chain(&e)
                    ),
                ),
            }
        }
    }

    /// The next running member to exit, with how; `None` when none is running.
    async fn next_exit(&mut self) -> Option<(usize, std::io::Result<ExitStatus>)> {
        let waits: Vec<_> = self
            .members
            .iter_mut()
            .enumerate()
            .filter_map(|(i, m)| {
                let child = m.child.as_mut()?;
                Some(Box::pin(async move { (i, child.wait().await) }))
            })
            .collect();
        if waits.is_empty() {
            return None;
        }
        let ((i, status), _, _) = futures::future::select_all(waits).await;
        self.members[i].child = None;
        Some((i, status))
    }

    fn exit_error(&self, i: usize, status: std::io::Result<ExitStatus>) -> Error {
        match status {
            Ok(status) => self.members[i].exited(status),
            Err(source) => Error::Wait {
                member: self.members[i].name.clone(),
                source,
            },
        }
    }

    /// Sends every running member SIGTERM, waits up to `grace` for each to exit, then kills
    /// what is left. Returns how each ended, in inventory order (`None`: down already, or it
    /// could not be reaped).
    pub async fn stop(mut self, grace: Duration) -> Vec<(String, Option<ExitStatus>)> {
        for m in &self.members {
            if let Some(pid) = m
                .child
                .as_ref()
                .and_then(Child::id)
                .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
            {
                let _ = kill_process(pid, Signal::TERM);
            }
        }
        let mut ended = Vec::new();
        for m in &mut self.members {
            let Some(child) = m.child.as_mut() else {
                ended.push((m.name.clone(), None));
                continue;
            };
            let status = match tokio::time::timeout(grace, child.wait()).await {
                Ok(Ok(s)) => Some(s),
                _ => {
                    let _ = child.kill().await;
                    child.wait().await.ok()
                }
            };
            ended.push((m.name.clone(), status));
        }
        ended
    }
}
