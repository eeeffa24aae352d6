//! The steps every lifecycle operation is made of (write a host's files, restart a member and
//! wait until it has caught up, hand leadership over, poll a condition), and the types they
//! share. [`crate::converge`] orchestrates them; `scale`, `upgrade`, `rotate` and `restore`
//! call them; nothing here calls back up.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::desired::{DesiredFile, OWNER};
use crate::host::{Host, Systemctl, WriteFile};
use crate::plan::{DaemonAction, HostPlan, ServiceAction};
use crate::probe::Probe;
use crate::{layout, Error};

/// One host to converge and what it should have.
pub struct Target<H> {
    /// The connection to it.
    pub host: H,
    /// Its files.
    pub files: Vec<DesiredFile>,
    /// Its data directory, created (0700) before a first start.
    pub data_dir: String,
    /// Its peer URL (how the member list knows it).
    pub peer_url: String,
}

/// Where a run reports what it is doing: a progress bar in a terminal, lines otherwise.
pub trait Progress: Send + Sync {
    /// `host` is now doing `step`.
    fn step(&self, host: &str, step: &str);
    /// `host` is finished (`ok` false: it failed).
    fn done(&self, host: &str, ok: bool, summary: &str);
}

/// Progress that goes nowhere (library callers that only want the result).
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn step(&self, _: &str, _: &str) {}
    fn done(&self, _: &str, _: bool, _: &str) {}
}

/// Bounds on a run.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Hosts handled at once.
    pub parallel: usize,
    /// How long a member may take to answer with a leader after a start or restart.
    pub health_timeout: Duration,
    /// Time between two health questions.
    pub poll: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            parallel: 8,
            health_timeout: Duration::from_secs(90),
            poll: Duration::from_millis(200),
        }
    }
}

/// One service action that was carried out, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceEvent {
    /// Member name.
    pub host: String,
    /// `start` or `restart`.
    pub action: ServiceAction,
    /// How long until it answered with a leader.
    pub healthy_after_ms: u128,
}

/// What every step needs: how members are asked, the members a step waits on (the
/// inventory's, or a joiner's voters), the run's bounds and where it reports. A run makes one
/// and hands it down, in place of the same six arguments on every call.
pub struct Steps<'a, P> {
    /// How members are asked.
    pub probe: &'a P,
    /// The members whose health and leader the steps look at.
    pub members: &'a [String],
    /// Bounds on the run.
    pub limits: &'a Limits,
    /// Where the run reports.
    pub progress: &'a dyn Progress,
}

impl<P> Clone for Steps<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Steps<'_, P> {}

impl<'a, P: Probe> Steps<'a, P> {
    /// Steps over `members`, asked through `probe`.
    pub fn new(
        probe: &'a P,
        members: &'a [String],
        limits: &'a Limits,
        progress: &'a dyn Progress,
    ) -> Self {
        Self {
            probe,
            members,
            limits,
            progress,
        }
    }

    /// The same steps looking at other members (a joiner's voters).
    pub fn with_members(self, members: &'a [String]) -> Self {
        Self { members, ..self }
    }

    /// The backup daemon, once the members are done (it backs the cluster up through them):
    /// checked on its host with its own inventory and environment, then started or restarted;
    /// or stopped and removed where it is no longer wanted.
    pub(crate) async fn converge_daemon<H: Host>(
        &self,
        target: &Target<H>,
        plan: &HostPlan,
    ) -> Result<(), Error> {
        let progress = self.progress;
        let host = &target.host;
        let name = host.name();
        let unit = layout::BACKUPD_UNIT_NAME;
        let action = match plan.backupd {
            DaemonAction::None => return Ok(()),
            DaemonAction::Remove => {
                progress.step(name, "removing the backup daemon");
                host.systemctl(Systemctl::Stop, unit).await?;
                host.systemctl(Systemctl::Disable, unit).await?;
                for path in layout::BACKUPD_FILES {
                    host.remove_file(path).await?;
                }
                host.remove_dir_all(layout::BACKUPD_DIR).await?;
                return host.systemctl(Systemctl::DaemonReload, unit).await;
            }
            DaemonAction::Start => Systemctl::Start,
            DaemonAction::Restart => Systemctl::Restart,
        };
        // What the daemon will do, once, in the foreground: a daemon that cannot reach the
        // store or the cluster would otherwise only show up as a missing backup hours later.
        progress.step(
            name,
            "checking the backup daemon's store and cluster access",
        );
        let script = format!(
            "set -a; [ ! -f {env} ] || . {env}; set +a; exec {cairn} backupd --check --inventory {inventory}",
            env = layout::BACKUPD_ENV_FILE,
            cairn = layout::CAIRN_BINARY,
            inventory = layout::BACKUPD_INVENTORY,
        );
        let check = host.run(&["sh", "-c", &script]).await?;
        if check.code != Some(0) {
            let output = String::from_utf8_lossy(&check.stderr);
            return Err(Error::DaemonCheck {
                host: name.to_string(),
                output: output
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("no output")
                    .to_string(),
            });
        }
        progress.step(name, &format!("{} {unit}", action.verb()));
        host.systemctl(action, unit).await
    }

    /// Moves leadership from `leader` to another healthy member before `leader` restarts, so the
    /// cluster never waits out an election timeout; if that fails the restart goes ahead anyway
    /// (as a plain restart of a leader would).
    pub(crate) async fn hand_over_leadership(&self, leader: &str, own_id: u64) {
        let (probe, progress) = (self.probe, self.progress);
        let mut successor = None;
        for m in self.members.iter().filter(|m| *m != leader) {
            if let Ok(s) = probe.status(m).await {
                if s.has_leader() {
                    successor = Some((m.as_str(), s.member_id));
                    break;
                }
            }
        }
        let Some((to, to_id)) = successor else {
            return;
        };
        progress.step(leader, &format!("moving leadership to {to}"));
        let moved = async {
            probe.move_leader(leader, to_id).await?;
            self.poll_until(leader, || async {
                let s = probe.status(to).await?;
                Ok((
                    s.is_leader() && s.member_id != own_id,
                    format!("{to} does not lead yet"),
                ))
            })
            .await
        };
        if let Err(e) = moved.await {
            progress.step(
                leader,
                &format!(
                    "leadership stays ({}); restarting anyway",
                    cairn_client::chain(&e)
                ),
            );
        }
    }

    /// Writes the plan's files on the target's host, reloads and enables the unit as planned, and
    /// creates the data directory before a first start.
    pub(crate) async fn write_host<H: Host>(
        &self,
        target: &Target<H>,
        plan: &HostPlan,
    ) -> Result<(), Error> {
        let progress = self.progress;
        let host = &target.host;
        for change in &plan.files {
            let Some(file) = target.files.iter().find(|f| f.path == change.path) else {
                continue;
            };
            progress.step(host.name(), &format!("writing {}", file.path));
            host.write_file(WriteFile {
                path: &file.path,
                contents: &file.contents.bytes,
                mode: file.mode,
                owner: OWNER,
            })
            .await?;
        }
        if plan.daemon_reload {
            host.systemctl(Systemctl::DaemonReload, layout::UNIT_NAME)
                .await?;
        }
        if plan.enable {
            host.systemctl(Systemctl::Enable, layout::UNIT_NAME).await?;
        }
        if plan.backupd_enable {
            host.systemctl(Systemctl::Enable, layout::BACKUPD_UNIT_NAME)
                .await?;
        }
        if plan.service == ServiceAction::Start {
            host.create_dir(&target.data_dir, 0o700).await?;
        }
        Ok(())
    }

    /// Polls `check` until it returns `Ok(true)` or `limits.health_timeout` passes; the last thing
    /// seen goes into the error.
    pub(crate) async fn poll_until<F, Fut>(&self, member: &str, mut check: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(bool, String), Error>>,
    {
        let limits = self.limits;
        let deadline = Instant::now() + limits.health_timeout;
        loop {
            let last = match check().await {
                Ok((true, _)) => return Ok(()),
                Ok((false, seen)) => seen,
                Err(e) => cairn_client::chain(&e),
            };
            if Instant::now() >= deadline {
                return Err(Error::Unhealthy {
                    member: member.to_string(),
                    after: limits.health_timeout,
                    last,
                });
            }
            tokio::time::sleep(limits.poll).await;
        }
    }

    /// Waits until `member` answers and knows a leader.
    pub(crate) async fn wait_healthy(&self, member: &str) -> Result<(), Error> {
        self.poll_until(member, || async {
            let s = self.probe.status(member).await?;
            Ok((s.has_leader(), "it answers but knows no leader".to_string()))
        })
        .await
    }

    /// Waits until the member list (as the first member reports it) shows every member of the
    /// run by name with its client URLs: a member publishes them only once it has joined, and
    /// until then clients that discover endpoints from the list miss it.
    pub(crate) async fn wait_published(&self) -> Result<(), Error> {
        let Some(first) = self.members.first() else {
            return Ok(());
        };
        self.poll_until(first, || async {
            let list = self.probe.member_list(first).await?;
            let missing: Vec<&str> = self
                .members
                .iter()
                .filter(|m| {
                    !list
                        .iter()
                        .any(|l| &l.name == *m && !l.client_urls.is_empty())
                })
                .map(String::as_str)
                .collect();
            Ok((
                missing.is_empty(),
                format!(
                    "the member list does not show {} with client URLs yet",
                    missing.join(", ")
                ),
            ))
        })
        .await
    }

    /// Restarts the member's unit (which also starts a stopped or failing one), then waits until
    /// it answers with a leader and has caught up with the leader's revision.
    pub(crate) async fn restart_until_caught_up<H: Host>(
        &self,
        target: &Target<H>,
    ) -> Result<(), Error> {
        let progress = self.progress;
        let name = target.host.name();
        target
            .host
            .systemctl(Systemctl::Restart, layout::UNIT_NAME)
            .await?;
        progress.step(name, "waiting for health");
        self.wait_healthy(name).await?;
        progress.step(name, "catching up with the leader");
        self.wait_caught_up(name).await
    }

    /// Waits until `member` has applied what the leader had when asked: its revision reaches the
    /// leader's (a restarted or new member serves reads only once it has caught up).
    pub(crate) async fn wait_caught_up(&self, member: &str) -> Result<(), Error> {
        let probe = self.probe;
        let mut target = None;
        for m in self.members {
            if let Ok(s) = probe.status(m).await {
                if s.is_leader() {
                    target = Some(s.revision);
                    break;
                }
            }
        }
        let Some(target) = target else {
            return Ok(());
        };
        self.poll_until(member, || async {
            let s = probe.status(member).await?;
            Ok((
                s.revision >= target,
                format!("at revision {} of the leader's {target}", s.revision),
            ))
        })
        .await
    }
}
