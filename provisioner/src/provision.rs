//! `cairn provision` from start to end: certificates, connections, per-host plans, and (after
//! the caller had a chance to show the plans and ask) applying them and reading the cluster
//! table. Nothing on a host changes before every selected host has been reached and compared.

use std::time::Instant;

use cairn_inventory::{Inventory, Tls};
use futures::StreamExt;
use serde::Serialize;

use crate::converge::{apply, plan_all, Limits, Progress, ServiceEvent, Target};
use crate::desired::{host_files, Blob};
use crate::host::Host;
use crate::known_hosts::HostKeyPolicy;
use crate::pki::{Issued, Renewal};
use crate::plan::{HostPlan, ServiceAction};
use crate::probe::EtcdProbe;
use crate::ssh::{load_key, Login, SshHost, Timeouts};
use crate::status::ClusterStatus;
use crate::{local_file, Clock, Error, Pki};

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Only the hosts with these member names (all when empty).
    pub limit: Vec<String>,
    /// Record host keys of hosts known_hosts does not list yet.
    pub accept_new_host_keys: bool,
    /// Compare only: certificates are issued into a temporary copy of the TLS directory and
    /// nothing is written anywhere.
    pub plan_only: bool,
    /// Which certificates to reissue beyond those that cannot be kept (`cairn certs rotate`).
    pub renewal: Renewal,
    /// Restart every running member, also those whose files are already as wanted: a run
    /// that stopped after writing files but before restarting every member left members
    /// running the old ones (a CA rotation resuming its phase).
    pub restart_all: bool,
    /// Parallelism and health waits.
    pub limits: Limits,
    /// SSH time limits.
    pub timeouts: Timeouts,
}

/// What a run did (or, with `--plan`, would do), for people and for `--output json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// `--plan`: nothing was changed.
    pub plan_only: bool,
    /// Every certificate and what was done with it.
    pub certificates: Vec<Issued>,
    /// One plan per selected host, in inventory order.
    pub hosts: Vec<HostPlan>,
    /// Starts and restarts, in the order they happened.
    pub services: Vec<ServiceEvent>,
    /// Files written on hosts, over all hosts.
    pub files_changed: usize,
    /// Wall time of the whole run.
    pub elapsed_ms: u128,
    /// The cluster after applying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
}

impl Report {
    /// Whether anything was (or would be) changed, certificates included.
    pub fn changed(&self) -> bool {
        self.files_changed > 0
            || self.hosts.iter().any(|h| !h.is_empty())
            || self
                .certificates
                .iter()
                .any(|c| c.outcome != crate::pki::Outcome::Reused)
    }
}

/// A run that has reached and compared every selected host; [`Session::apply`] carries the
/// plans out, dropping it changes nothing more.
pub struct Session {
    inventory: Inventory,
    /// The certificates as issued for this run, in a scratch copy of `[tls] dir` that only
    /// [`Session::apply`] copies back.
    scratch: Option<tempfile::TempDir>,
    certificates: Vec<Issued>,
    targets: Vec<Target<SshHost>>,
    plans: Vec<HostPlan>,
    options: Options,
    started: Instant,
}

impl Session {
    /// Issues or reuses the certificates, connects to the selected hosts and plans each one.
    /// Any host that cannot be reached or read fails the run before anything is written.
    pub async fn plan(
        inventory: &Inventory,
        options: &Options,
        clock: &dyn Clock,
        progress: &dyn Progress,
    ) -> Result<Self, Error> {
        let started = Instant::now();
        inventory.check_local_files()?;
        let selected = select(inventory, &options.limit)?;
        // Certificates are issued into a copy: the real directory changes only when the plans
        // are applied (never under --plan, nor when a host cannot be reached).
        let scratch = match &inventory.tls {
            Some(tls) => Some(scratch_copy(tls)?),
            None => None,
        };
        let pki = match &inventory.tls {
            Some(tls) => {
                let tls = match &scratch {
                    Some(dir) => Tls {
                        dir: dir.path().to_path_buf(),
                        ..tls.clone()
                    },
                    None => tls.clone(),
                };
                Some(Pki::ensure_with(inventory, &tls, clock, options.renewal)?)
            }
            None => None,
        };
        let certificates = pki
            .as_ref()
            .map(|p| p.report().to_vec())
            .unwrap_or_default();
        let binary = Blob::new(local_file::read(&inventory.cluster.binary)?);
        let key = load_key(inventory)?;
        let policy = HostKeyPolicy {
            known_hosts: inventory.ssh.known_hosts.clone(),
            accept_new: options.accept_new_host_keys,
        };
        let connections: Vec<Result<SshHost, Error>> =
            futures::stream::iter(selected.iter().map(|h| {
                progress.step(&h.name, "connecting");
                SshHost::connect(
                    Login::of(inventory, h),
                    key.clone(),
                    &inventory.ssh.identity_file,
                    policy.clone(),
                    options.timeouts,
                )
            }))
            .buffered(options.limits.parallel.max(1))
            .collect()
            .await;
        let mut targets = Vec::new();
        let mut failures: Vec<(String, Error)> = Vec::new();
        for (h, conn) in selected.iter().zip(connections) {
            match conn {
                Ok(host) => targets.push(Target {
                    host,
                    files: host_files(inventory, h, pki.as_ref(), &binary)?,
                    data_dir: inventory.data_dir(h).display().to_string(),
                }),
                Err(e) => {
                    progress.done(&h.name, false, &e.to_string());
                    failures.push((h.name.clone(), e));
                }
            }
        }
        let plans = plan_all(&targets, &options.limits, progress).await;
        let mut ok_plans = Vec::new();
        for (t, plan) in targets.iter().zip(plans) {
            match plan {
                Ok(mut p) => {
                    if options.restart_all && p.service == ServiceAction::None {
                        p.service = ServiceAction::Restart;
                    }
                    ok_plans.push(p);
                }
                Err(e) => {
                    progress.done(t.host.name(), false, &e.to_string());
                    failures.push((t.host.name().to_string(), e));
                }
            }
        }
        let total = selected.len();
        if !failures.is_empty() {
            // In inventory order, whichever step failed.
            failures.sort_by_key(|(name, _)| selected.iter().position(|h| &h.name == name));
            let failed = failures.iter().map(|(name, _)| name.clone()).collect();
            let (_, first) = failures.swap_remove(0);
            for t in targets {
                t.host.close().await;
            }
            return Err(Error::HostsFailed {
                failed,
                total,
                consequence:
                    "nothing was changed on any host; fix it or leave the host out with --limit",
                first: Box::new(first),
            });
        }
        Ok(Self {
            inventory: inventory.clone(),
            scratch,
            certificates,
            targets,
            plans: ok_plans,
            options: options.clone(),
            started,
        })
    }

    /// The plans, one per selected host, in inventory order.
    pub fn plans(&self) -> &[HostPlan] {
        &self.plans
    }

    /// The certificates and what was done with them.
    pub fn certificates(&self) -> &[Issued] {
        &self.certificates
    }

    /// Closes the connections and reports the plans without applying them.
    pub async fn finish_plan(self) -> Report {
        let report = self.report(Vec::new(), None, true);
        for t in self.targets {
            t.host.close().await;
        }
        report
    }

    /// Applies the plans: writes, starts new members, rolls running ones; then reads the
    /// cluster table.
    pub async fn apply(self, progress: &dyn Progress) -> Result<Report, Error> {
        let probe_timeout = std::time::Duration::from_secs(5);
        let pki = match (&self.inventory.tls, &self.scratch) {
            (Some(tls), Some(scratch)) => {
                commit_pki(scratch.path(), &tls.dir)?;
                Some(Pki::existing(tls))
            }
            _ => None,
        };
        let probe = EtcdProbe::new(&self.inventory, pki.as_ref(), probe_timeout)?;
        let members: Vec<String> = self
            .inventory
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .collect();
        let result = apply(
            &self.targets,
            &self.plans,
            &probe,
            &members,
            &self.options.limits,
            progress,
        )
        .await;
        let events = match result {
            Ok(events) => events,
            Err(e) => {
                for t in self.targets {
                    t.host.close().await;
                }
                return Err(e);
            }
        };
        for plan in &self.plans {
            let summary = match (plan.files.len(), plan.service) {
                (0, ServiceAction::None) => "no changes".to_string(),
                (n, ServiceAction::None) => format!("{n} files written"),
                (n, ServiceAction::Start) => format!("{n} files written, started"),
                (n, ServiceAction::Restart) => format!("{n} files written, restarted"),
            };
            progress.done(&plan.host, true, &summary);
        }
        let cluster = ClusterStatus::query(&self.inventory, &probe).await;
        let report = self.report(events, Some(cluster), false);
        for t in self.targets {
            t.host.close().await;
        }
        Ok(report)
    }

    fn report(
        &self,
        services: Vec<ServiceEvent>,
        cluster: Option<ClusterStatus>,
        plan_only: bool,
    ) -> Report {
        Report {
            plan_only,
            certificates: self.certificates.clone(),
            hosts: self.plans.clone(),
            services,
            files_changed: self.plans.iter().map(|p| p.files.len()).sum(),
            elapsed_ms: self.started.elapsed().as_millis(),
            cluster,
        }
    }
}

/// The hosts `--limit` names (all without it); an unknown name is an error.
fn select<'a>(
    inventory: &'a Inventory,
    limit: &[String],
) -> Result<Vec<&'a cairn_inventory::Host>, Error> {
    if let Some(unknown) = limit
        .iter()
        .find(|n| !inventory.hosts.iter().any(|h| &h.name == *n))
    {
        return Err(Error::UnknownHost {
            name: unknown.clone(),
            known: inventory.member_names().join(", "),
        });
    }
    Ok(inventory
        .hosts
        .iter()
        .filter(|h| limit.is_empty() || limit.contains(&h.name))
        .collect())
}

/// Copies every file of `scratch` that differs into `dir`, atomically and with its mode.
fn commit_pki(scratch: &std::path::Path, dir: &std::path::Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    local_file::create_private_dir(dir)?;
    let entries = std::fs::read_dir(scratch).map_err(|source| Error::LocalRead {
        path: scratch.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let from = entry
            .map_err(|source| Error::LocalRead {
                path: scratch.to_path_buf(),
                source,
            })?
            .path();
        let Some(name) = from.file_name() else {
            continue;
        };
        let to = dir.join(name);
        let contents = local_file::read(&from)?;
        if std::fs::read(&to).is_ok_and(|old| old == contents) {
            continue;
        }
        let mode = std::fs::metadata(&from)
            .map_err(|source| Error::LocalRead {
                path: from.clone(),
                source,
            })?
            .permissions()
            .mode()
            & 0o777;
        local_file::write_atomic(&to, &contents, mode)?;
    }
    Ok(())
}

/// A temporary copy of the TLS directory's files.
pub(crate) fn scratch_copy(tls: &Tls) -> Result<tempfile::TempDir, Error> {
    let dir = tempfile::tempdir().map_err(|source| Error::LocalWrite {
        path: std::env::temp_dir(),
        source,
    })?;
    let entries = match std::fs::read_dir(&tls.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(dir),
        Err(source) => {
            return Err(Error::LocalRead {
                path: tls.dir.clone(),
                source,
            })
        }
    };
    for entry in entries {
        let entry = entry.map_err(|source| Error::LocalRead {
            path: tls.dir.clone(),
            source,
        })?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let to = dir.path().join(entry.file_name());
            std::fs::copy(entry.path(), &to)
                .map_err(|source| Error::LocalWrite { path: to, source })?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    fn inventory(dir: &Path) -> Inventory {
        let text = "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n[tls]\n\
                    [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n\
                    [[hosts]]\nname = \"b\"\naddress = \"10.0.0.2\"\n\
                    [[hosts]]\nname = \"c\"\naddress = \"10.0.0.3\"\n";
        Inventory::parse(&dir.join("cairn.toml"), text.into()).expect("inventory")
    }

    #[test]
    fn limit_selects_in_inventory_order_and_refuses_unknown_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path());
        let names = |limit: &[&str]| -> Vec<String> {
            let limit: Vec<String> = limit.iter().map(|s| s.to_string()).collect();
            select(&inv, &limit)
                .expect("select")
                .iter()
                .map(|h| h.name.clone())
                .collect()
        };
        assert_eq!(names(&[]), ["a", "b", "c"]);
        assert_eq!(names(&["c", "a"]), ["a", "c"]);
        let err = select(&inv, &["b".into(), "x".into()]).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "--limit x: no such host in the inventory (its hosts: a, b, c)"
        );
    }

    #[test]
    fn certificates_reach_the_tls_dir_only_when_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path());
        let tls = inv.tls.clone().expect("tls");
        let scratch = scratch_copy(&tls).expect("scratch of a missing dir");
        let scratch_tls = Tls {
            dir: scratch.path().to_path_buf(),
            ..tls.clone()
        };
        Pki::ensure(&inv, &scratch_tls, &crate::SystemClock).expect("issue");
        assert!(!tls.dir.exists(), "issuing touched the real directory");
        commit_pki(scratch.path(), &tls.dir).expect("commit");
        let key = tls.dir.join("a-key.pem");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read(&key).expect("key"),
            std::fs::read(scratch.path().join("a-key.pem")).expect("scratch key")
        );
        // A second scratch copy starts from the committed files and reuses them all.
        let again = scratch_copy(&tls).expect("scratch");
        let again_tls = Tls {
            dir: again.path().to_path_buf(),
            ..tls
        };
        let pki = Pki::ensure(&inv, &again_tls, &crate::SystemClock).expect("reuse");
        assert!(!pki.changed(), "{:?}", pki.report());
    }
}
