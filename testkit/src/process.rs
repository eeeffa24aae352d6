//! Spawning child processes that cannot outlive the test binary, and running short commands
//! with a deadline.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use crate::{wait_until, Error};

/// Removes inherited `ETCD_*` / `ETCDCTL_*` variables: both etcd and cairn-server read
/// `ETCD_*`, and etcdctl reads `ETCDCTL_*`, so a developer's shell must not leak into tests.
pub(crate) fn scrub_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("ETCD_") || k.starts_with("ETCDCTL_") {
            cmd.env_remove(&key);
        }
    }
}

/// Makes the child get SIGKILL when the test binary dies, even if no destructor runs.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // Truncation is impossible: Linux pids fit in pid_t.
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // operations are allowed. It calls only prctl(2) and getppid(2), which are plain system
    // calls, and builds errors with `last_os_error`/`from_raw_os_error`, which do not
    // allocate. It touches no locks and no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            let sigkill = libc::SIGKILL as libc::c_ulong;
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                sigkill,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            ) == -1
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then no signal will come.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The thread all children are forked from.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process.
/// Test threads (and tokio's blocking threads) come and go, so children are forked from one
/// thread that lives as long as the test binary.
fn spawner() -> Option<&'static mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            thread::Builder::new()
                .name("testkit-spawner".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Spawns `cmd` so that the child is SIGKILLed if the test binary dies.
pub(crate) fn spawn(mut cmd: Command) -> Result<Child, Error> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    die_with_parent(&mut cmd);
    let result = match spawner() {
        Some(tx) => {
            let (reply_tx, reply_rx) = mpsc::channel();
            match tx.send((cmd, reply_tx)) {
                Ok(()) => reply_rx.recv().unwrap_or_else(|_| {
                    Err(io::Error::other("the testkit spawner thread is gone"))
                }),
                // The spawner thread is gone; fork from here instead.
                Err(mpsc::SendError((mut cmd, _))) => cmd.spawn(),
            }
        }
        None => cmd.spawn(),
    };
    result.map_err(|source| Error::Spawn { program, source })
}

fn read_to_end<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Runs `cmd` to completion, feeding it `stdin`, killing it after `timeout`.
pub(crate) fn run(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> Result<CmdOutput, Error> {
    let shown = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = spawn(cmd)?;
    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.unwrap_or_default().to_vec();
        // A child that exits without reading all of stdin closes the pipe: not an error here.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = read_to_end::<ChildStdout>(child.stdout.take());
    let err = read_to_end::<ChildStderr>(child.stderr.take());

    let mut status: Option<io::Result<ExitStatus>> = None;
    let waited = wait_until(&format!("{shown} to exit"), timeout, || {
        match child.try_wait() {
            Ok(Some(s)) => {
                status = Some(Ok(s));
                true
            }
            Ok(None) => false,
            Err(e) => {
                status = Some(Err(e));
                true
            }
        }
    });
    if let Err(e) = waited {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    let status = match status {
        Some(s) => s,
        None => child.wait(),
    }
    .map_err(|e| Error::io(format!("waiting for {shown}"), e))?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(CmdOutput {
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        code: status.code().unwrap_or(-1),
    })
}

/// A helper process a test starts (Prometheus, say) that must not outlive the test: dropping
/// the handle kills it (SIGKILL) and reaps it, also when the test panics, and it gets SIGKILL
/// when the test binary dies.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    program: String,
}

impl Daemon {
    /// Starts `cmd` with its stdout and stderr appended to the file `log`.
    pub fn spawn(mut cmd: Command, log: &std::path::Path) -> Result<Self, Error> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io("duplicating the log file handle", e))?;
        scrub_env(&mut cmd);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        Ok(Self {
            child: spawn(cmd)?,
            program,
        })
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs (false once it exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The program that was started.
    pub fn program(&self) -> &str {
        &self.program
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to completion (stdin closed) and returns what it printed; kills it after
/// `timeout`. Like every process the kit starts, it dies with the test binary.
pub fn run_command(cmd: std::process::Command, timeout: Duration) -> Result<CmdOutput, Error> {
    run(cmd, None, timeout)
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
