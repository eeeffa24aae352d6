//! `cairn up`'s members as child processes, kept running the way systemd keeps a unit with
//! `Restart=on-failure`, and driven through the control socket as systemctl drives a unit.
//!
//! A member is started from the files under its directory ([`crate::local_host`]): the
//! `ExecStart=` and `EnvironmentFile=` of its unit, read anew at every start, so a changed
//! flag, certificate or binary written by `cairn provision` takes effect at the next restart,
//! as on a provisioned host. Absolute paths among the variables are taken under the member's
//! directory, like every path of the local transport. Each member runs in its own process
//! group, so a terminal's Ctrl-C reaches only `cairn up`, which then stops them in order
//! ([`Running::stop`]); each gets SIGTERM if `cairn up` dies.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::host::{ServiceState, Systemctl};
use crate::local_control::{Control, Incoming};
use crate::local_host::resolve;
use crate::probe::Probe;
use crate::render::{parse_env_file, parse_unit};
use crate::steps::{Limits, Quiet, Steps};
use crate::{layout, Error};

/// Log lines kept per member, shown when it exits unexpectedly.
const TAIL_LINES: usize = 20;

/// How long a member stopped through the control socket gets to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How `cairn up` keeps members running once the cluster is up, as systemd's
/// `Restart=on-failure` does: a member that fails (a non-zero exit or a signal) is started
/// again after a delay that doubles from [`RESTART_DELAY`] up to [`RESTART_DELAY_MAX`]; one
/// restarted more than [`START_LIMIT_BURST`] times within [`START_LIMIT_INTERVAL`] is left
/// down (systemd's start limit) while the others keep running. A member that exits cleanly is
/// left down too, and one stopped through the control socket stays down until started.
pub const RESTART_DELAY: Duration = Duration::from_millis(100);
/// See [`RESTART_DELAY`].
pub const RESTART_DELAY_MAX: Duration = Duration::from_secs(5);
/// See [`RESTART_DELAY`] (systemd's `StartLimitBurst` default).
pub const START_LIMIT_BURST: usize = 5;
/// See [`RESTART_DELAY`] (systemd's `StartLimitIntervalSec` default).
pub const START_LIMIT_INTERVAL: Duration = Duration::from_secs(10);

/// Where the members' output goes, a line at a time.
pub trait Console: Send + Sync {
    /// `member` wrote `line` (stdout and stderr alike).
    fn line(&self, member: &str, line: &str);
}

/// A member's last log lines, shared with the tasks copying its output.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// What starting a member takes: the directory holding every member's own one.
struct Spawner {
    data_dir: PathBuf,
    console: Arc<dyn Console>,
}

impl Spawner {
    fn root(&self, member: &str) -> PathBuf {
        self.data_dir.join(member)
    }

    /// Starts `member` from its unit and env file, its output copied to the console.
    fn spawn(&self, member: &str) -> Result<(Child, Tail), Error> {
        let root = self.root(member);
        let unit_path = resolve(&root, layout::UNIT_FILE);
        let unit = std::fs::read_to_string(&unit_path).map_err(|source| Error::LocalRead {
            path: unit_path.clone(),
            source,
        })?;
        let (exec, env_file) =
            parse_unit(&unit).ok_or_else(|| Error::LocalUnit { path: unit_path })?;
        let mut vars = Vec::new();
        if let Some(env_file) = env_file {
            let path = resolve(&root, &env_file);
            let text = std::fs::read_to_string(&path)
                .map_err(|source| Error::LocalRead { path, source })?;
            vars = parse_env_file(&text);
        }
        for (_, value) in &mut vars {
            if value.starts_with('/') {
                *value = resolve(&root, value).display().to_string();
            }
        }
        let binary = resolve(&root, &exec[0]);
        let mut cmd = Command::new(&binary);
        cmd.args(&exec[1..])
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .current_dir(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        stop_with_parent(&mut cmd);
        // The parent's own ETCD_* settings would mix into the member's.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") && !vars.iter().any(|(k, _)| key == **k) {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            member: member.to_string(),
            binary,
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
                member.to_string(),
                self.console.clone(),
                tail.clone(),
            ));
        }
        Ok((child, tail))
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
    tail: Tail,
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
    tail: Tail,
    /// When it was restarted lately, for the start limit.
    starts: VecDeque<Instant>,
    /// Stopped through the control socket: stays down until started.
    stopped: bool,
    /// Disabled through the control socket (what `systemctl is-enabled` would say).
    disabled: bool,
}

impl Member {
    /// A member known but not running (until started).
    fn down(name: &str) -> Self {
        Self {
            name: name.to_string(),
            child: None,
            tail: Arc::default(),
            starts: VecDeque::new(),
            stopped: true,
            disabled: false,
        }
    }

    fn exited(&self, status: ExitStatus) -> Error {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        Error::MemberExited {
            member: self.name.clone(),
            status,
            last_lines: tail.iter().cloned().collect(),
        }
    }

    fn state(&self) -> ServiceState {
        ServiceState {
            active: self.child.is_some(),
            enabled: !self.disabled,
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; how it ended.
    async fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Some(pid) = child
            .id()
            .and_then(|id| Pid::from_raw(i32::try_from(id).ok()?))
        {
            let _ = kill_process(pid, Signal::TERM);
        }
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(s)) => Some(s),
            _ => {
                let _ = child.kill().await;
                child.wait().await.ok()
            }
        }
    }
}

/// The members as child processes; dropping it kills them (SIGKILL), [`Running::stop`]
/// stops them gracefully.
pub struct Running {
    members: Vec<Member>,
    spawner: Spawner,
    control: Control,
}

impl Running {
    /// Starts `members`, each from its directory under `data_dir`; their output goes to
    /// `console`, and `control` carries systemctl's requests. A member that cannot be started
    /// stops the ones already running.
    pub async fn start(
        data_dir: &Path,
        members: &[String],
        console: Arc<dyn Console>,
        control: Control,
    ) -> Result<Self, Error> {
        let mut running = Self {
            members: Vec::new(),
            spawner: Spawner {
                data_dir: data_dir.to_path_buf(),
                console,
            },
            control,
        };
        for name in members {
            if let Err(e) = running.start_member(name).map(drop) {
                running.stop(STOP_GRACE).await;
                return Err(e);
            }
        }
        Ok(running)
    }

    /// Starts `name` (added if it is new), unless it runs; whether it was started now.
    fn start_member(&mut self, name: &str) -> Result<bool, Error> {
        let i = match self.members.iter().position(|m| m.name == name) {
            Some(i) => i,
            None => {
                self.members.push(Member::down(name));
                self.members.len() - 1
            }
        };
        let m = &mut self.members[i];
        m.stopped = false;
        if m.child.is_some() {
            return Ok(false);
        }
        let (child, tail) = self.spawner.spawn(name)?;
        m.child = Some(child);
        m.tail = tail;
        Ok(true)
    }

    /// The running members' process IDs, in start order.
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
            let steps = Steps::new(probe, &names, limits, &Quiet);
            for name in &names {
                steps.wait_healthy(name).await?;
            }
            // Up means every member is in the member list with its client URLs.
            steps.wait_published().await
        };
        tokio::select! {
            r = ready => r,
            e = next_exit(&mut self.members) => Err(match e {
                Some((i, status)) => self.exit_error(i, status),
                None => Error::AllMembersDown,
            }),
        }
    }

    /// Runs until `shutdown` completes, restarting members that fail (see
    /// [`RESTART_DELAY`]) and carrying out the control socket's requests; an error only
    /// when every member has failed for good.
    pub async fn supervise(
        &mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        tokio::pin!(shutdown);
        let mut last = None;
        loop {
            let event = tokio::select! {
                () = &mut shutdown => Event::Shutdown,
                incoming = self.control.next() => Event::Control(incoming),
                e = next_exit(&mut self.members) => Event::Exit(e),
            };
            let (i, status) = match event {
                Event::Shutdown => return Ok(()),
                Event::Control(incoming) => {
                    self.carry_out(incoming).await;
                    continue;
                }
                Event::Exit(Some(exit)) => exit,
                // Members stopped through the control socket come back only through it.
                Event::Exit(None) if self.members.iter().any(|m| m.stopped) => {
                    let event = tokio::select! {
                        () = &mut shutdown => Event::Shutdown,
                        incoming = self.control.next() => Event::Control(incoming),
                    };
                    match event {
                        Event::Control(incoming) => self.carry_out(incoming).await,
                        _ => return Ok(()),
                    }
                    continue;
                }
                Event::Exit(None) => return Err(last.unwrap_or(Error::AllMembersDown)),
            };
            let error = self.exit_error(i, status);
            let failed = match &error {
                Error::MemberExited { status, .. } => !status.success(),
                _ => true,
            };
            last = Some(error);
            let name = self.members[i].name.clone();
            let console = self.spawner.console.clone();
            if !failed {
                console.line(&name, "[cairn up] exited cleanly; left down");
                continue;
            }
            let Some(delay) = self.restart_delay(i) else {
                console.line(
                    &name,
                    &format!(
                        "[cairn up] failed {} times within {:?}: left down (like systemd's start limit); the other members keep running",
                        START_LIMIT_BURST + 1,
                        START_LIMIT_INTERVAL
                    ),
                );
                continue;
            };
            console.line(
                &name,
                &format!("[cairn up] failed; restarting in {} ms", delay.as_millis()),
            );
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
            if self.members[i].stopped {
                continue;
            }
            match self.start_member(&name) {
                Ok(_) => {
                    let pid = self.members[i]
                        .child
                        .as_ref()
                        .and_then(Child::id)
                        .unwrap_or_default();
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

    /// The delay before member `i`'s next restart, `None` past the start limit.
    fn restart_delay(&mut self, i: usize) -> Option<Duration> {
        let m = &mut self.members[i];
        let now = Instant::now();
        while m
            .starts
            .front()
            .is_some_and(|t| now.duration_since(*t) > START_LIMIT_INTERVAL)
        {
            m.starts.pop_front();
        }
        if m.starts.len() >= START_LIMIT_BURST {
            return None;
        }
        let delay = RESTART_DELAY
            .saturating_mul(1 << m.starts.len().min(16))
            .min(RESTART_DELAY_MAX);
        m.starts.push_back(now);
        Some(delay)
    }

    /// One systemctl request from the control socket.
    async fn carry_out(&mut self, incoming: Incoming) {
        let Incoming { request, reply } = incoming;
        let answer = if request.unit != layout::UNIT_NAME {
            // No other unit is installed here: inactive, and nothing to stop or disable.
            match request.action {
                None | Some(Systemctl::Stop | Systemctl::Disable | Systemctl::DaemonReload) => {
                    Ok(ServiceState::default())
                }
                Some(_) => Err(format!(
                    "only {} runs on a local host, not {}",
                    layout::UNIT_NAME,
                    request.unit
                )),
            }
        } else {
            self.act(&request.member, request.action).await
        };
        let _ = reply.send(answer);
    }

    async fn act(
        &mut self,
        member: &str,
        action: Option<Systemctl>,
    ) -> Result<ServiceState, String> {
        let console = self.spawner.console.clone();
        let say = |line: &str| console.line(member, &format!("[cairn up] {line}"));
        let index = self.members.iter().position(|m| m.name == member);
        match action {
            None | Some(Systemctl::DaemonReload) => {}
            Some(Systemctl::Enable | Systemctl::Disable) => {
                let i = match index {
                    Some(i) => i,
                    // A unit written but never started (a member about to join), as systemd
                    // enables a unit file it finds.
                    None if resolve(&self.spawner.root(member), layout::UNIT_FILE).is_file() => {
                        self.members.push(Member::down(member));
                        self.members.len() - 1
                    }
                    None => return Err(format!("{member} has no {} here", layout::UNIT_NAME)),
                };
                self.members[i].disabled = action == Some(Systemctl::Disable);
            }
            Some(Systemctl::Stop) => {
                if let Some(i) = index {
                    let m = &mut self.members[i];
                    m.stopped = true;
                    if let Some(status) = m.terminate(STOP_GRACE).await {
                        say(&format!("stopped ({status}) through the control socket"));
                    }
                }
            }
            Some(Systemctl::Start | Systemctl::Restart) => {
                if let (Some(i), Some(Systemctl::Restart)) = (index, action) {
                    if let Some(status) = self.members[i].terminate(STOP_GRACE).await {
                        say(&format!("stopped ({status}) for a restart"));
                    }
                }
                let started = self
                    .start_member(member)
                    .map_err(|e| cairn_client::chain(&e))?;
                if let Some(i) = self
                    .members
                    .iter()
                    .position(|m| started && m.name == member)
                {
                    self.members[i].starts.clear();
                    let pid = self.members[i]
                        .child
                        .as_ref()
                        .and_then(Child::id)
                        .unwrap_or_default();
                    say(&format!("started: pid {pid}"));
                }
            }
        }
        Ok(self
            .members
            .iter()
            .find(|m| m.name == member)
            .map(Member::state)
            .unwrap_or_default())
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
    /// what is left. Returns how each ended, in start order (`None`: down already, or it
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
            let status = m.terminate(grace).await;
            ended.push((m.name.clone(), status));
        }
        ended
    }
}

/// What the supervisor waits for.
enum Event {
    Shutdown,
    Control(Incoming),
    /// The next member to exit; `None` when none runs.
    Exit(Option<(usize, std::io::Result<ExitStatus>)>),
}

/// The next running member to exit, with how; `None` when none is running.
async fn next_exit(members: &mut [Member]) -> Option<(usize, std::io::Result<ExitStatus>)> {
    let waits: Vec<_> = members
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
    members[i].child = None;
    Some((i, status))
}
