//! One server process (cairn-server or etcd) on loopback, with its ports, data dir and log.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tempfile::TempDir;

use crate::process::{run, scrub_env, spawn};
use crate::{reserve_port, wait_until, CmdOutput, Error, Pki};

/// The log line cairn-server (and etcd with its default logger, or etcd 3.5) prints once it
/// serves clients.
const READY_LINE: &str = "ready to serve client requests";
/// What etcd 3.4 with `--logger zap` prints instead ("serving client traffic securely" or
/// "... insecurely ..."), after the server is ready.
const ETCD_34_ZAP_READY_LINE: &str = "serving client traffic";
/// How long a member may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Member::stop`] waits after SIGTERM before it sends SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an etcdctl invocation may run before it is killed.
const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of the log goes into error messages.
const LOG_TAIL_LINES: usize = 60;

/// Which server a [`Member`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `cairn-server`, from the path given to [`MemberBuilder::cairn_binary`].
    Cairn,
    /// Debian's `etcd` (3.4) from `PATH`.
    Etcd,
}

impl Kind {
    /// The log lines, any of which says the process serves clients.
    fn ready_lines(self) -> &'static [&'static str] {
        match self {
            Self::Cairn => &[READY_LINE],
            Self::Etcd => &[READY_LINE, ETCD_34_ZAP_READY_LINE],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cairn => "cairn-server",
            Self::Etcd => "etcd",
        })
    }
}

/// Configures and starts a [`Member`]; see [`Member::builder`].
#[derive(Debug)]
#[must_use = "a MemberBuilder does nothing until .start()"]
pub struct MemberBuilder {
    kind: Kind,
    cairn_binary: Option<PathBuf>,
    ip: Ipv4Addr,
    name: String,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    tls: Option<Pki>,
    data_dir: Option<PathBuf>,
    ports: Option<(u16, u16)>,
    initial_cluster: Option<String>,
    existing: bool,
    token: String,
    peer_tls: bool,
}

impl MemberBuilder {
    /// Use these client and peer ports instead of free ones picked at start (a cluster needs
    /// every member's peer URL before any starts).
    pub fn ports(mut self, client: u16, peer: u16) -> Self {
        self.ports = Some((client, peer));
        self
    }

    /// `--initial-cluster` (default: this member alone).
    pub fn initial_cluster(mut self, cluster: impl Into<String>) -> Self {
        self.initial_cluster = Some(cluster.into());
        self
    }

    /// Join a running cluster (`--initial-cluster-state existing`) instead of forming one.
    pub fn existing(mut self) -> Self {
        self.existing = true;
        self
    }

    /// `--initial-cluster-token` (default `testkit`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// Also encrypt and authenticate peer traffic with the [`tls`](Self::tls) PKI
    /// (`--peer-cert-file`, `--peer-key-file`, `--peer-trusted-ca-file`,
    /// `--peer-client-cert-auth`, https peer URLs).
    pub fn peer_tls(mut self) -> Self {
        self.peer_tls = true;
        self
    }

    /// The peer URL this member will have with `ports`/`ip` as set (scheme included).
    pub fn peer_url(&self, peer_port: u16) -> String {
        let scheme = if self.peer_tls && self.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}:{peer_port}", self.ip)
    }
    /// The cairn-server binary to run; required for [`Kind::Cairn`]. Tests pass
    /// `env!("CARGO_BIN_EXE_cairn-server")`.
    pub fn cairn_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.cairn_binary = Some(path.into());
        self
    }

    /// The loopback address the client and peer listeners bind to (default 127.0.0.1).
    /// Addresses outside 127.0.0.0/8 make [`start`](Self::start) fail.
    pub fn ip(mut self, ip: Ipv4Addr) -> Self {
        self.ip = ip;
        self
    }

    /// The member name (`--name`, and its `--initial-cluster` entry); default `m1`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// One extra command-line argument, appended after the standard flags. Call it once per
    /// argument (`.arg("--max-txn-ops").arg("4")`, or `.arg("--max-txn-ops=4")`).
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// An environment variable for the process. Inherited `ETCD_*` and `ETCDCTL_*` variables
    /// are removed; variables set here are not.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// Serve clients over TLS with `pki`'s server certificate and require client
    /// certificates signed by its CA (`--cert-file`, `--key-file`, `--trusted-ca-file`,
    /// `--client-cert-auth`). [`Member::etcdctl`] then uses the client certificate.
    pub fn tls(mut self, pki: &Pki) -> Self {
        self.tls = Some(pki.clone());
        self
    }

    /// Use `dir` as the data dir instead of a fresh temporary one; the caller owns it (it is
    /// not removed). It may exist already (e.g. to start a new member on old data).
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }

    /// Picks free ports, spawns the process and waits (up to 30 s) until it is ready: its log
    /// says `ready to serve client requests` (etcd 3.4 with `--logger zap` says
    /// `serving client traffic ...` instead) and its client port accepts TCP connections.
    /// Fails at once, with the log, if the process exits first.
    pub fn start(self) -> Result<Member, Error> {
        let mut member = self.prepare()?;
        member.launch()?;
        Ok(member)
    }

    /// Everything [`start`](Self::start) does but spawning the process: the member is
    /// stopped until [`Member::spawn`] and [`Member::wait_ready`] (or [`Member::restart`]).
    pub fn prepare(self) -> Result<Member, Error> {
        if !self.ip.is_loopback() {
            return Err(Error::NotLoopback(self.ip));
        }
        let program = match self.kind {
            Kind::Cairn => self.cairn_binary.clone().ok_or(Error::NoCairnBinary)?,
            Kind::Etcd => PathBuf::from("etcd"),
        };
        let work = tempfile::Builder::new()
            .prefix(&format!("testkit-{}-{}-", self.kind, self.name))
            .tempdir()
            .map_err(|e| Error::io("creating the member's temporary directory", e))?;
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| work.path().join("data"));
        let (client_port, peer_port) = match self.ports {
            Some(ports) => ports,
            None => {
                // Hold the client port while picking the peer port, so the two differ.
                let client = reserve_port(self.ip)?;
                let peer = reserve_port(self.ip)?;
                let port_of = |l: &std::net::TcpListener| {
                    l.local_addr()
                        .map(|a| a.port())
                        .map_err(|e| Error::io("reading a reserved port", e))
                };
                (port_of(&client)?, port_of(&peer)?)
            }
        };

        let peer_url = self.peer_url(peer_port);
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let ip = self.ip;
        let client_url = format!("{scheme}://{ip}:{client_port}");

        let name = self.name;
        let initial_cluster = self
            .initial_cluster
            .unwrap_or_else(|| format!("{name}={peer_url}"));
        let mut args: Vec<String> = vec![
            "--name".into(),
            name.clone(),
            "--data-dir".into(),
            data_dir.to_string_lossy().into_owned(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url.clone(),
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone(),
            "--initial-cluster".into(),
            initial_cluster,
            "--initial-cluster-token".into(),
            self.token,
            "--initial-cluster-state".into(),
            if self.existing { "existing" } else { "new" }.into(),
        ];
        if self.kind == Kind::Etcd {
            args.extend(["--logger", "zap", "--log-outputs", "stderr"].map(String::from));
        }
        if let Some(pki) = &self.tls {
            for (flag, path) in [
                ("--cert-file", pki.server_cert_file()),
                ("--key-file", pki.server_key_file()),
                ("--trusted-ca-file", pki.ca_file()),
            ] {
                args.push(flag.into());
                args.push(path.to_string_lossy().into_owned());
            }
            args.push("--client-cert-auth".into());
            if self.peer_tls {
                for (flag, path) in [
                    ("--peer-cert-file", pki.server_cert_file()),
                    ("--peer-key-file", pki.server_key_file()),
                    ("--peer-trusted-ca-file", pki.ca_file()),
                ] {
                    args.push(flag.into());
                    args.push(path.to_string_lossy().into_owned());
                }
                args.push("--peer-client-cert-auth".into());
            }
        }
        args.extend(self.args);

        Ok(Member {
            kind: self.kind,
            name,
            ip,
            client_port,
            peer_url,
            client_url,
            program,
            args,
            envs: self.envs,
            tls: self.tls,
            data_dir,
            log_path: work.path().join("log"),
            child: None,
            pid: 0,
            log_offset: 0,
            _work: work,
        })
    }
}

/// A running (or stopped) server process. Dropping it kills the process (SIGKILL) and
/// removes its temporary directory (log, and the data dir unless one was given).
#[derive(Debug)]
pub struct Member {
    kind: Kind,
    name: String,
    ip: Ipv4Addr,
    client_port: u16,
    peer_url: String,
    client_url: String,
    program: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    tls: Option<Pki>,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    pid: u32,
    /// Where the current run's output starts in the log.
    log_offset: u64,
    /// Owns the log and the default data dir; declared last so it is removed after the kill.
    _work: TempDir,
}

impl Member {
    /// Starts configuring a member of `kind`.
    pub fn builder(kind: Kind) -> MemberBuilder {
        MemberBuilder {
            kind,
            cairn_binary: None,
            ip: Ipv4Addr::LOCALHOST,
            name: "m1".into(),
            args: Vec::new(),
            envs: Vec::new(),
            tls: None,
            data_dir: None,
            ports: None,
            initial_cluster: None,
            existing: false,
            token: "testkit".into(),
            peer_tls: false,
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The member name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `IP:PORT` of the client listener, as etcdctl's `--endpoints` takes it.
    pub fn endpoint(&self) -> String {
        format!("{}:{}", self.ip, self.client_port)
    }

    /// The peer URL (`--initial-advertise-peer-urls`).
    pub fn peer_url(&self) -> String {
        self.peer_url.clone()
    }

    /// The loopback address the member listens on.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The client URL: `http://IP:PORT`, or `https://IP:PORT` with TLS.
    pub fn client_url(&self) -> String {
        self.client_url.clone()
    }

    /// The data dir.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The pid of the current (or, once stopped, the last) process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the process with SIGKILL and waits until it is gone. Does nothing if it is not
    /// running.
    pub fn kill9(&mut self) -> Result<(), Error> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let who = self.describe();
        // Fails only if the process was already reaped, which `wait` below settles.
        let _ = child.kill();
        child
            .wait()
            .map_err(|e| Error::io(format!("waiting for {who} to exit after SIGKILL"), e))?;
        Ok(())
    }

    /// Sends SIGTERM and waits up to 10 s for the process to exit, then SIGKILLs it. Does
    /// nothing if it is not running.
    pub fn stop(&mut self) -> Result<(), Error> {
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        if let Ok(None) = child.try_wait() {
            // ESRCH means it exited meanwhile; the wait below sees that.
            let _ = kill_process(Pid::from_child(child), Signal::TERM);
        }
        let who = self.describe();
        let child = self.child.as_mut().expect("checked above");
        let exited = wait_until(
            &format!("{who} to exit after SIGTERM"),
            STOP_TIMEOUT,
            || !matches!(child.try_wait(), Ok(None)),
        );
        if exited.is_err() {
            // A server that ignores SIGTERM is a bug worth seeing: kill it, then say so.
            self.kill9()?;
            return Err(Error::Timeout {
                what: format!("{who} to exit after SIGTERM (it was killed with SIGKILL)"),
                timeout: STOP_TIMEOUT,
            });
        }
        if let Some(mut child) = self.child.take() {
            child
                .wait()
                .map_err(|e| Error::io(format!("waiting for {who} to exit"), e))?;
        }
        Ok(())
    }

    /// Starts the process again with the same arguments, ports and data dir, and waits until
    /// it is ready. A running process is stopped first (as by [`stop`](Self::stop)).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.stop()?;
        self.launch()
    }

    /// The process's combined stdout and stderr so far, over all runs (lossily decoded).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Runs Debian's `etcdctl` (API v3) against this member: `--endpoints` and, with TLS, the
    /// `--cacert`/`--cert`/`--key` flags come first, then `args`. Stdin is empty. A non-zero
    /// exit is not an error here; check [`CmdOutput::code`].
    pub fn etcdctl(&self, args: &[&str]) -> Result<CmdOutput, Error> {
        run(self.etcdctl_command(args), None, ETCDCTL_TIMEOUT)
    }

    /// Like [`etcdctl`](Self::etcdctl), with `stdin` fed to the command (e.g. `txn`, or
    /// `put KEY` reading the value).
    pub fn etcdctl_stdin(&self, args: &[&str], stdin: &[u8]) -> Result<CmdOutput, Error> {
        run(self.etcdctl_command(args), Some(stdin), ETCDCTL_TIMEOUT)
    }

    /// Starts a long-running etcdctl command (e.g. `watch`) against this member.
    pub fn etcdctl_background(&self, args: &[&str]) -> Result<crate::Background, Error> {
        crate::Background::spawn(
            format!("etcdctl {}", args.join(" ")),
            self.etcdctl_command(args),
        )
    }

    fn etcdctl_command(&self, args: &[&str]) -> Command {
        let endpoint = match &self.tls {
            Some(_) => self.client_url.clone(),
            None => self.endpoint(),
        };
        self.etcdctl_command_for(&endpoint, args)
    }

    /// Runs etcdctl with this member's TLS setup against `endpoints` (comma-separated).
    pub fn etcdctl_at(&self, endpoints: &str, args: &[&str]) -> Result<CmdOutput, Error> {
        run(
            self.etcdctl_command_for(endpoints, args),
            None,
            ETCDCTL_TIMEOUT,
        )
    }

    fn etcdctl_command_for(&self, endpoints: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("etcdctl");
        scrub_env(&mut cmd);
        cmd.env("ETCDCTL_API", "3");
        cmd.arg(format!("--endpoints={endpoints}"));
        if let Some(pki) = &self.tls {
            cmd.arg("--cacert").arg(pki.ca_file());
            cmd.arg("--cert").arg(pki.client_cert_file());
            cmd.arg("--key").arg(pki.client_key_file());
        }
        cmd.args(args);
        cmd
    }

    fn describe(&self) -> String {
        format!(
            "{} member {} (pid {}, {})",
            self.kind, self.name, self.pid, self.client_url
        )
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let run = log.get(self.log_offset as usize..).unwrap_or(&log);
        let lines: Vec<&str> = run.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        if tail.is_empty() {
            "(empty)".into()
        } else {
            tail
        }
    }

    fn open_log(&self) -> Result<File, Error> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| Error::io(format!("opening {}", self.log_path.display()), e))
    }

    /// Spawns the process and waits until it is ready.
    fn launch(&mut self) -> Result<(), Error> {
        self.spawn()?;
        self.wait_ready()
    }

    /// Spawns the process (stopped members only) without waiting for it to be ready: members
    /// of a new cluster only become ready together.
    pub fn spawn(&mut self) -> Result<(), Error> {
        let log = self.open_log()?;
        self.log_offset = log
            .metadata()
            .map_err(|e| Error::io(format!("reading {}", self.log_path.display()), e))?
            .len();
        let stderr = log
            .try_clone()
            .map_err(|e| Error::io("duplicating the log file handle", e))?;
        let mut cmd = Command::new(&self.program);
        scrub_env(&mut cmd);
        cmd.args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        let child = spawn(cmd)?;
        self.pid = child.id();
        self.child = Some(child);
        Ok(())
    }

    /// Waits (up to 30 s) until the spawned process is ready (see [`MemberBuilder::start`]);
    /// kills it if it is not.
    pub fn wait_ready(&mut self) -> Result<(), Error> {
        let addr = SocketAddr::from((self.ip, self.client_port));
        let mut exited: Option<ExitStatus> = None;
        let (log_path, offset) = (self.log_path.clone(), self.log_offset as usize);
        let ready_lines = self.kind.ready_lines();
        let Some(child) = self.child.as_mut() else {
            return Err(Error::NotRunning(self.describe()));
        };
        let ready = wait_until("the member to be ready", READY_TIMEOUT, || {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some(status);
                return true;
            }
            let logged = std::fs::read(&log_path)
                .ok()
                .and_then(|b| {
                    b.get(offset..).map(|run| {
                        let run = String::from_utf8_lossy(run);
                        ready_lines.iter().any(|l| run.contains(l))
                    })
                })
                .unwrap_or(false);
            logged && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
        if let Some(status) = exited {
            self.child = None;
            return Err(Error::ExitedEarly {
                member: self.describe(),
                status,
                log_tail: self.log_tail(),
            });
        }
        if ready.is_err() {
            let err = Error::NotReady {
                member: self.describe(),
                timeout: READY_TIMEOUT,
                ready_lines,
                log_tail: self.log_tail(),
            };
            let _ = self.kill9();
            return Err(err);
        }
        Ok(())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_starts_and_etcdctl_round_trips() {
        let mut m = Member::builder(Kind::Etcd).start().unwrap();
        assert!(m.log().contains(ETCD_34_ZAP_READY_LINE));
        assert!(m.data_dir().join("member").is_dir());
        let put = m.etcdctl(&["put", "k", "v"]).unwrap();
        assert_eq!((put.stdout.as_str(), put.code), ("OK\n", 0), "{put:?}");
        let put = m.etcdctl_stdin(&["put", "k2"], b"from stdin").unwrap();
        assert!(put.success(), "{put:?}");
        let get = m.etcdctl(&["get", "k", "--print-value-only"]).unwrap();
        assert_eq!(get.stdout, "v\n", "{get:?}");
        let get = m.etcdctl(&["get", "k2", "--print-value-only"]).unwrap();
        assert_eq!(get.stdout, "from stdin\n", "{get:?}");

        // Data survives a SIGKILL and a restart on the same ports and data dir.
        let (pid, endpoint) = (m.pid(), m.endpoint());
        m.kill9().unwrap();
        assert!(!m.is_running());
        m.restart().unwrap();
        assert_ne!(m.pid(), pid);
        assert_eq!(m.endpoint(), endpoint);
        let get = m.etcdctl(&["get", "k", "--print-value-only"]).unwrap();
        assert_eq!(get.stdout, "v\n", "{get:?}");
        m.stop().unwrap();
        let failed = m
            .etcdctl(&["--dial-timeout=200ms", "--command-timeout=1s", "get", "k"])
            .unwrap();
        assert!(!failed.success());
        assert!(!failed.error_lines().is_empty(), "{failed:?}");
    }

    #[test]
    fn etcd_with_tls_on_another_loopback_ip() {
        let pki = Pki::new().unwrap();
        let m = Member::builder(Kind::Etcd)
            .ip(Ipv4Addr::new(127, 0, 0, 3))
            .name("tls")
            .tls(&pki)
            .start()
            .unwrap();
        assert!(m.client_url().starts_with("https://127.0.0.3:"));
        let put = m.etcdctl(&["put", "k", "v"]).unwrap();
        assert_eq!(put.stdout, "OK\n", "{put:?}");
    }

    const ORPHAN_ENV: &str = "CAIRN_TESTKIT_ORPHAN_HELPER";

    /// Not a test on its own: when `ORPHAN_ENV` is set, starts etcd, reports its pid and
    /// blocks, for `members_die_with_the_test_binary` to SIGKILL.
    #[test]
    fn orphan_helper() {
        if std::env::var_os(ORPHAN_ENV).is_none() {
            return;
        }
        let m = Member::builder(Kind::Etcd).start().unwrap();
        println!("ETCD_PID {}", m.pid());
        // Blocks until the parent kills us (it never writes to our stdin).
        let _ = std::io::stdin().read_line(&mut String::new());
    }

    #[test]
    fn members_die_with_the_test_binary() {
        use std::io::BufRead;
        let tmp = tempfile::tempdir().unwrap();
        let mut helper = Command::new(std::env::current_exe().unwrap())
            .args(["member::tests::orphan_helper", "--exact", "--nocapture"])
            .env(ORPHAN_ENV, "1")
            // The helper cannot clean up after SIGKILL; keep its temp files in ours.
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(helper.stdout.take().unwrap());
        let pid: u32 = stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("ETCD_PID ").map(|p| p.parse().unwrap()))
            .expect("the helper reports etcd's pid");
        let alive = |pid: u32| {
            // Gone, or a zombie nobody has reaped yet.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or("")
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        };
        assert!(alive(pid));
        helper.kill().unwrap();
        helper.wait().unwrap();
        let died = wait_until(
            "etcd to die with its test binary",
            Duration::from_secs(10),
            || !alive(pid),
        );
        if died.is_err() {
            // Do not leave it behind when the guarantee is broken.
            if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        died.unwrap();
    }

    #[test]
    fn bad_setups_fail_clearly() {
        assert!(matches!(
            Member::builder(Kind::Cairn).start(),
            Err(Error::NoCairnBinary)
        ));
        assert!(matches!(
            Member::builder(Kind::Etcd)
                .ip(Ipv4Addr::new(192, 0, 2, 1))
                .start(),
            Err(Error::NotLoopback(_))
        ));
        let err = Member::builder(Kind::Etcd)
            .arg("--no-such-flag")
            .start()
            .unwrap_err();
        let Error::ExitedEarly { log_tail, .. } = &err else {
            panic!("expected ExitedEarly, got {err}");
        };
        assert!(log_tail.contains("no-such-flag"), "{err}");
    }
}
