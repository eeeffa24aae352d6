//! Long-running client commands (e.g. `etcdctl watch`): their output lines are collected as they
//! arrive, a test waits for a condition on them, and the process is killed when dropped (or
//! when the test binary dies, like every process the kit starts).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::Error;

/// A running command whose stdout is read line by line.
#[derive(Debug)]
pub struct Background {
    what: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout_reader: Option<JoinHandle<()>>,
    stderr_reader: Option<JoinHandle<String>>,
    seen: Vec<String>,
}

impl Background {
    /// Starts `cmd` with stdout read line by line and stderr collected on the side (so a chatty
    /// command never blocks on a full pipe).
    pub fn spawn(what: impl Into<String>, mut cmd: Command) -> Result<Self, Error> {
        let what = what.into();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = crate::process::spawn(cmd)?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr_reader = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        Ok(Self {
            what,
            child,
            lines,
            stdout_reader: Some(stdout_reader),
            stderr_reader: Some(stderr_reader),
            seen: Vec::new(),
        })
    }

    /// Waits until the lines so far satisfy `done`; returns them.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> Result<&[String], Error> {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!("{}: output so far {:?}", self.what, self.seen),
                        timeout,
                    })
                }
            }
        }
        Ok(&self.seen)
    }

    /// Waits for the command to exit by itself; returns its exit code, every stdout line and
    /// its stderr.
    pub fn finish(mut self, timeout: Duration) -> Result<(i32, Vec<String>, String), Error> {
        let what = self.what.clone();
        crate::wait_until(&format!("{what} to exit"), timeout, || {
            !matches!(self.child.try_wait(), Ok(None))
        })?;
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io(format!("waiting for {what}"), e))?;
        // The process is gone, so both pipes are at EOF: the readers end on their own.
        if let Some(r) = self.stdout_reader.take() {
            let _ = r.join();
        }
        self.seen.extend(self.lines.try_iter());
        let stderr = self
            .stderr_reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default();
        Ok((
            status.code().unwrap_or(-1),
            std::mem::take(&mut self.seen),
            stderr,
        ))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
