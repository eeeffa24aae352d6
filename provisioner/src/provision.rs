//! `cairn provision` from start to end: certificates, connections, per-host plans, and (after
//! the caller had a chance to show the plans and ask) applying them and reading the cluster
//! table. Nothing on a host changes before every selected host has been reached and compared.

use std::time::Instant;

use cairn_inventory::{Inventory, Tls};
use futures::StreamExt;
use serde::Serialize;

use crate::auth;
use crate::converge::{apply, plan_all, Limits, Progress, ServiceEvent, Steps, Target};
use crate::desired::{backupd_files, host_files, Blob};
use crate::host::Host;
use crate::login::Login;
use crate::plan::{DaemonAction, HostPlan, ServiceAction};
use crate::probe::{ClusterMember, EtcdProbe};
use crate::scale::{self, HostFacts, Join, Removal};
use crate::ssh::Timeouts;
use crate::status::ClusterStatus;
use crate::transport::{AnyHost, Connector};
use crate::upgrade::BeforeFirstChange;
use crate::{Clock, Error};
use cairn_pki::local_file;
use cairn_pki::Pki;
use cairn_pki::{Issued, Renewal};

/// How long each member may take to answer the member-list question that finds a running
/// cluster.
const DISCOVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

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
    /// Remove members of the running cluster that the inventory no longer lists.
    pub allow_remove: bool,
    /// Removed members' data directories are deleted too.
    pub purge: bool,
    /// The `cairn` binary pushed to the `[backup] host` to run the backup daemon (the CLI
    /// passes itself); needed only with `[backup]`.
    pub daemon_binary: Option<std::path::PathBuf>,
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
    /// Members of the running cluster the inventory no longer lists.
    pub removals: Vec<Removal>,
    /// Starts and restarts, in the order they happened.
    pub services: Vec<ServiceEvent>,
    /// Files written on hosts, over all hosts.
    pub files_changed: usize,
    /// Wall time of the whole run.
    pub elapsed_ms: u128,
    /// The cluster after applying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
    /// The auth changes made (or, with `--plan`, to make), without any password.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<String>,
}

impl Report {
    /// Whether anything was (or would be) changed, certificates included.
    pub fn changed(&self) -> bool {
        self.files_changed > 0
            || self.hosts.iter().any(|h| !h.is_empty())
            || !self.removals.is_empty()
            || !self.auth.is_empty()
            || self
                .certificates
                .iter()
                .any(|c| c.outcome != cairn_pki::Outcome::Reused)
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
    targets: Vec<Target<AnyHost>>,
    plans: Vec<HostPlan>,
    /// Members to remove, each with the connection to its host.
    removals: Vec<(AnyHost, Removal)>,
    /// A cluster was running when the run began.
    running: bool,
    /// What `[auth]` would change, as planned.
    auth: Vec<auth::Change>,
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
        let daemon_binary = match (&inventory.backup, &options.daemon_binary) {
            (Some(_), Some(path)) => Some(Blob::new(local_file::read(path)?)),
            _ => None,
        };
        let connector = Connector::new(inventory, options.accept_new_host_keys, options.timeouts)?;
        // The running cluster's member list decides who joins and who leaves.
        let discovery = EtcdProbe::new(inventory, pki.as_ref(), DISCOVERY_TIMEOUT)?;
        let members = scale::discover(&discovery, inventory).await;
        let admin = pki
            .as_ref()
            .map(|p| p.client_files(cairn_pki::Client::Admin));
        let auth = auth::converge(inventory, admin.as_ref(), true).await?;
        let removing = options.limit.is_empty();
        let leaving: Vec<(Login, ClusterMember)> = match (&members, removing) {
            (Some(list), true) => scale::leaving(inventory, list)
                .into_iter()
                .map(|m| {
                    let address = scale::member_address(&m).unwrap_or_default();
                    let name = if m.name.is_empty() {
                        address.clone()
                    } else {
                        m.name.clone()
                    };
                    Ok((connector.login_at(&name, &address)?, m))
                })
                .collect::<Result<_, Error>>()?,
            _ => Vec::new(),
        };
        let logins: Vec<Login> = selected
            .iter()
            .map(|h| connector.login(inventory, h))
            .chain(leaving.iter().map(|(l, _)| Ok(l.clone())))
            .collect::<Result<_, Error>>()?;
        let connections: Vec<Result<AnyHost, Error>> =
            futures::stream::iter(logins.into_iter().map(|login| {
                progress.step(&login.name, "connecting");
                connector.connect(login)
            }))
            .buffered(options.limits.parallel.max(1))
            .collect()
            .await;
        let mut connected = Vec::new();
        let mut removal_hosts = Vec::new();
        let mut failures: Vec<(String, Error)> = Vec::new();
        let names = selected
            .iter()
            .map(|h| h.name.clone())
            .chain(leaving.iter().map(|(l, _)| l.name.clone()));
        for (i, (name, conn)) in names.zip(connections).enumerate() {
            match conn {
                Ok(host) if i < selected.len() => connected.push((selected[i], host)),
                Ok(host) => removal_hosts.push((host, leaving[i - selected.len()].1.clone())),
                Err(e) => {
                    progress.done(&name, false, &cairn_client::chain(&e));
                    failures.push((name, e));
                }
            }
        }
        let facts: Vec<Result<HostFacts, Error>> =
            futures::stream::iter(connected.iter().map(|(h, host)| {
                let data_dir = inventory.data_dir(h).display().to_string();
                async move { HostFacts::read(host, &data_dir).await }
            }))
            .buffered(options.limits.parallel.max(1))
            .collect()
            .await;
        let mut targets = Vec::new();
        let mut host_facts = Vec::new();
        for ((h, host), fact) in connected.into_iter().zip(facts) {
            match fact {
                Ok(f) => {
                    host_facts.push(f);
                    targets.push((h, host));
                }
                Err(e) => {
                    progress.done(&h.name, false, &cairn_client::chain(&e));
                    failures.push((h.name.clone(), e));
                }
            }
        }
        let mut targets: Vec<(Target<AnyHost>, Option<Join>)> = if failures.is_empty() {
            // Under --limit only the selected hosts are classified (and nothing is removed).
            let hosts: Vec<&cairn_inventory::Host> = targets.iter().map(|(h, _)| *h).collect();
            let membership = scale::classify(inventory, &hosts, &host_facts, members.as_deref())?;
            let mut out = Vec::new();
            for ((h, host), (bootstrap, join)) in targets.into_iter().zip(membership.hosts) {
                out.push((
                    Target {
                        host,
                        files: host_files(inventory, h, pki.as_ref(), &binary, &bootstrap)?
                            .into_iter()
                            .chain(backupd_files(
                                inventory,
                                h,
                                pki.as_ref(),
                                daemon_binary.as_ref(),
                            )?)
                            .collect(),
                        data_dir: inventory.data_dir(h).display().to_string(),
                        peer_url: inventory.peer_url(h),
                    },
                    join,
                ));
            }
            out
        } else {
            let mut hosts: Vec<AnyHost> = targets.into_iter().map(|(_, host)| host).collect();
            hosts.extend(removal_hosts.drain(..).map(|(host, _)| host));
            for host in hosts {
                host.close().await;
            }
            Vec::new()
        };
        let joins: Vec<Option<Join>> = targets.iter().map(|(_, j)| *j).collect();
        let targets: Vec<Target<AnyHost>> = targets.drain(..).map(|(t, _)| t).collect();
        let plans = plan_all(&targets, &options.limits, progress).await;
        let mut ok_plans = Vec::new();
        for ((t, plan), join) in targets.iter().zip(plans).zip(joins) {
            match plan {
                Ok(mut p) => {
                    if join.is_some() {
                        p.membership = join;
                        p.service = ServiceAction::Start;
                    } else if options.restart_all && p.service == ServiceAction::None {
                        p.service = ServiceAction::Restart;
                    }
                    ok_plans.push(p);
                }
                Err(e) => {
                    progress.done(t.host.name(), false, &cairn_client::chain(&e));
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
            for (host, _) in removal_hosts {
                host.close().await;
            }
            return Err(Error::HostsFailed {
                failed,
                total,
                consequence:
                    "nothing was changed on any host; fix it or leave the host out with --limit",
                first: Box::new(first),
            });
        }
        let removals = removal_hosts
            .into_iter()
            .map(|(host, m)| {
                let removal = Removal {
                    name: host.name().to_string(),
                    id: m.id,
                    address: scale::member_address(&m).unwrap_or_default(),
                    purge: options.purge,
                };
                (host, removal)
            })
            .collect();
        Ok(Self {
            inventory: inventory.clone(),
            scratch,
            certificates,
            targets,
            plans: ok_plans,
            removals,
            running: members.is_some(),
            auth,
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

    /// Members of the running cluster the inventory no longer lists.
    pub fn removals(&self) -> Vec<&Removal> {
        self.removals.iter().map(|(_, r)| r).collect()
    }

    /// What `[auth]` would change in the cluster (a cluster not running yet counts as having
    /// no auth).
    pub fn auth_changes(&self) -> &[auth::Change] {
        &self.auth
    }

    /// Whether applying would change anything on a host, in the membership or in auth.
    pub fn pending(&self) -> bool {
        self.plans.iter().any(|p| !p.is_empty())
            || !self.removals.is_empty()
            || !self.auth.is_empty()
    }

    async fn close(self) {
        for t in self.targets {
            t.host.close().await;
        }
        for (host, _) in self.removals {
            host.close().await;
        }
    }

    /// Closes the connections and reports the plans without applying them.
    pub async fn finish_plan(self) -> Report {
        let report = self.report(Vec::new(), None, true);
        self.close().await;
        report
    }

    /// Applies the plans: removals are refused up front without `--allow-remove`; `hook` runs
    /// before the first change to a running cluster; then writes, starts, joins, rolls and
    /// removals; then the cluster table.
    pub async fn apply<B: BeforeFirstChange>(
        self,
        hook: &B,
        progress: &dyn Progress,
    ) -> Result<Report, Error> {
        let result = self.apply_inner(hook, progress).await;
        match result {
            Ok((report, session)) => {
                session.close().await;
                Ok(report)
            }
            Err((e, session)) => {
                session.close().await;
                Err(e)
            }
        }
    }

    async fn apply_inner<B: BeforeFirstChange>(
        self,
        hook: &B,
        progress: &dyn Progress,
    ) -> Result<(Report, Self), (Error, Self)> {
        if !self.removals.is_empty() && !self.options.allow_remove {
            let members = self.removals.iter().map(|(_, r)| r.name.clone()).collect();
            return Err((Error::RemovalNotAllowed { members }, self));
        }
        if self.running && self.pending() {
            if let Err(source) = hook.before_first_change().await {
                return Err((Error::BeforeFirstChange { source }, self));
            }
        }
        match self.carry_out(progress).await {
            Ok(report) => Ok((report, self)),
            Err(e) => Err((e, self)),
        }
    }

    async fn carry_out(&self, progress: &dyn Progress) -> Result<Report, Error> {
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
        let steps = Steps::new(&probe, &members, &self.options.limits, progress);
        let mut events = apply(&self.targets, &self.plans, steps).await?;
        for plan in &self.plans {
            let summary = match (plan.files.len(), plan.service, plan.membership) {
                (n, _, Some(_)) => format!("{n} files written, joined"),
                (0, ServiceAction::None, _) => "no changes".to_string(),
                (n, ServiceAction::None | ServiceAction::Remove, _) => format!("{n} files written"),
                (n, ServiceAction::Start, _) => format!("{n} files written, started"),
                (n, ServiceAction::Restart, _) => format!("{n} files written, restarted"),
            };
            let summary = match plan.backupd {
                DaemonAction::None => summary,
                DaemonAction::Start => format!("{summary}; backup daemon started"),
                DaemonAction::Restart => format!("{summary}; backup daemon restarted"),
                DaemonAction::Remove => format!("{summary}; backup daemon removed"),
            };
            progress.done(&plan.host, true, &summary);
        }
        for (host, removal) in &self.removals {
            let data_dir = self
                .inventory
                .unlisted_data_dir(&removal.name)
                .display()
                .to_string();
            scale::remove(host, removal, &data_dir, steps).await?;
            progress.done(&removal.name, true, "removed");
            events.push(ServiceEvent {
                host: removal.name.clone(),
                action: ServiceAction::Remove,
                healthy_after_ms: 0,
            });
        }
        // Users and roles once every member runs, auth on last.
        let admin = pki
            .as_ref()
            .map(|p| p.client_files(cairn_pki::Client::Admin));
        let auth = auth::converge(&self.inventory, admin.as_ref(), false).await?;
        let cluster = ClusterStatus::query(&self.inventory, &probe).await;
        let mut report = self.report(events, Some(cluster), false);
        report.auth = auth.iter().map(ToString::to_string).collect();
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
            removals: self.removals.iter().map(|(_, r)| r.clone()).collect(),
            services,
            files_changed: self.plans.iter().map(|p| p.files.len()).sum(),
            elapsed_ms: self.started.elapsed().as_millis(),
            cluster,
            auth: if plan_only {
                self.auth.iter().map(ToString::to_string).collect()
            } else {
                Vec::new()
            },
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
