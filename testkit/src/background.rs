//! Long-running client commands (e.g. `etcdctl watch`): their output lines are collected as they
//! arrive, a test waits for a condition on them, and the process is killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Error;

/// A running command whose stdout is read line by line.
#[derive(Debug)]
pub struct Background {
    what: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    /// Starts `cmd` with stdout piped (stderr is kept separately, readable after [`Self::finish`]).
    pub fn spawn(what: impl Into<String>, mut cmd: Command) -> Result<Self, Error> {
        let what = what.into();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("starting {what}"), e))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            what,
            child,
            lines,
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

    /// Waits for the command to exit by itself; returns its exit code, stdout lines and stderr.
    pub fn finish(mut self, timeout: Duration) -> Result<(i32, Vec<String>, String), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| Error::io(format!("waiting for {}", self.what), e))?
            {
                // The reader thread ends at EOF; collect what it still has.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
                }
                return Ok((
                    status.code().unwrap_or(-1),
                    std::mem::take(&mut self.seen),
                    stderr,
                ));
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{} to exit", self.what),
                    timeout,
                });
            }
            std::thread::sleep(crate::POLL_INTERVAL);
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
