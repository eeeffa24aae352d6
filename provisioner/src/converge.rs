//! Applying plans: files written on every host in parallel, then new members started together
//! (a new cluster needs them all), then running members whose files changed restarted one at a
//! time, the leader last, each only while every member is healthy and the next only once the
//! restarted one is back with a leader and caught up with the leader's revision.

use std::time::Instant;

use futures::StreamExt;

use crate::host::{Host, Systemctl};
use crate::plan::{plan_host, HostPlan, ServiceAction};
use crate::probe::Probe;
use crate::{layout, scale, upgrade, Error};

pub use crate::steps::{Limits, Progress, Quiet, ServiceEvent, Steps, Target};

/// Plans every target, `limits.parallel` at a time, in target order. Nothing is changed.
pub async fn plan_all<H: Host>(
    targets: &[Target<H>],
    limits: &Limits,
    progress: &dyn Progress,
) -> Vec<Result<HostPlan, Error>> {
    futures::stream::iter(targets.iter().map(|t| async move {
        progress.step(t.host.name(), "comparing");
        plan_host(&t.host, &t.files).await
    }))
    .buffered(limits.parallel.max(1))
    .collect()
    .await
}

/// Carries out `plans` (one per target, from [`plan_all`]): files of hosts that neither join
/// nor restart are written on every host at once (a write failure leaves the other hosts'
/// writes done and starts nothing, so no member starts with half its files), new members of
/// a new cluster start together, joiners join one at a time ([`scale::join`]), then changed
/// running members roll ([`upgrade::roll`]), each pushed just before its restart.
pub async fn apply<H: Host, P: Probe>(
    targets: &[Target<H>],
    plans: &[HostPlan],
    steps: Steps<'_, P>,
) -> Result<Vec<ServiceEvent>, Error> {
    let progress = steps.progress;
    let written: Vec<(&str, Result<(), Error>)> = futures::stream::iter(
        targets
            .iter()
            .zip(plans)
            .filter(|(_, p)| p.service != ServiceAction::Restart && p.membership.is_none())
            .map(|(t, p)| async move { (t.host.name(), steps.write_host(t, p).await) }),
    )
    .buffered(steps.limits.parallel.max(1))
    .collect()
    .await;
    let mut failed = Vec::new();
    let mut first = None;
    for (name, result) in written {
        if let Err(e) = result {
            failed.push(name.to_string());
            first.get_or_insert(e);
        }
    }
    if let Some(first) = first {
        return Err(Error::HostsFailed {
            failed,
            total: targets.len(),
            consequence: "the other hosts have their new files; no member was started or restarted",
            first: Box::new(first),
        });
    }
    let mut events = Vec::new();
    // New members start together: the first of a new cluster cannot get a leader alone.
    let starting: Vec<&Target<H>> = targets
        .iter()
        .zip(plans)
        .filter(|(_, p)| p.service == ServiceAction::Start && p.membership.is_none())
        .map(|(t, _)| t)
        .collect();
    if !starting.is_empty() {
        let started = Instant::now();
        let starts = starting.iter().map(|t| async move {
            progress.step(t.host.name(), "starting");
            t.host.systemctl(Systemctl::Start, layout::UNIT_NAME).await
        });
        for result in futures::future::join_all(starts).await {
            result?;
        }
        for t in &starting {
            let name = t.host.name();
            progress.step(name, "waiting for health");
            steps.wait_healthy(name).await?;
            events.push(ServiceEvent {
                host: name.to_string(),
                action: ServiceAction::Start,
                healthy_after_ms: started.elapsed().as_millis(),
            });
        }
        if starting.len() == steps.members.len() {
            steps.wait_published().await?;
        }
    }
    // Joiners, one at a time; each one that is in votes for the next.
    let mut voters: Vec<String> = targets
        .iter()
        .zip(plans)
        .filter(|(_, p)| p.membership.is_none())
        .map(|(t, _)| t.host.name().to_string())
        .collect();
    for (t, p) in targets.iter().zip(plans) {
        let Some(how) = p.membership else {
            continue;
        };
        let event = scale::join(t, p, how, steps.with_members(&voters)).await?;
        events.push(event);
        voters.push(t.host.name().to_string());
    }
    events.extend(upgrade::roll(targets, plans, steps).await?);
    for (t, p) in targets.iter().zip(plans) {
        steps.converge_daemon(t, p).await?;
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use cairn_inventory::Inventory;

    use std::time::Duration;

    use super::*;
    use crate::desired::{host_files, Blob, FileKind};
    use crate::fake::{Event, Fake, FakeHost, FakeProbe};
    use crate::plan::DaemonAction;
    use crate::render::Bootstrap;

    const NAMES: [&str; 3] = ["a", "b", "c"];

    fn inventory(extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n{extra}\n\
             [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n\
             [[hosts]]\nname = \"b\"\naddress = \"10.0.0.2\"\n\
             [[hosts]]\nname = \"c\"\naddress = \"10.0.0.3\"\n"
        );
        Inventory::parse(Path::new("/x/cairn.toml"), text).expect("inventory")
    }

    fn targets(fake: &Fake, inv: &Inventory, binary: &[u8]) -> Vec<Target<FakeHost>> {
        let binary = Blob::new(binary.to_vec());
        inv.hosts
            .iter()
            .map(|h| Target {
                host: fake.host(&h.name),
                files: host_files(inv, h, None, &binary, &Bootstrap::new_cluster(inv))
                    .expect("files"),
                data_dir: inv.data_dir(h).display().to_string(),
                peer_url: inv.peer_url(h),
            })
            .collect()
    }

    fn limits() -> Limits {
        Limits {
            parallel: 2,
            health_timeout: Duration::from_secs(5),
            poll: Duration::from_millis(1),
        }
    }

    fn members() -> Vec<String> {
        NAMES.iter().map(|n| n.to_string()).collect()
    }

    async fn run(
        fake: &Fake,
        inv: &Inventory,
        binary: &[u8],
    ) -> (Vec<HostPlan>, Vec<ServiceEvent>) {
        let targets = targets(fake, inv, binary);
        let plans: Vec<HostPlan> = plan_all(&targets, &limits(), &Quiet)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("plans");
        let events = apply(
            &targets,
            &plans,
            Steps::new(&FakeProbe(fake.clone()), &members(), &limits(), &Quiet),
        )
        .await
        .expect("apply");
        (plans, events)
    }

    fn restarts(fake: &Fake) -> Vec<String> {
        fake.world()
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Systemctl(h, Systemctl::Restart) => Some(h.clone()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_new_cluster_gets_every_file_and_starts_together() {
        let fake = Fake::new(&NAMES, 3);
        let (plans, events) = run(&fake, &inventory(""), b"bin-1").await;
        for plan in &plans {
            let paths: Vec<_> = plan.files.iter().map(|f| f.path.as_str()).collect();
            assert_eq!(
                paths,
                [
                    layout::binary(cairn_inventory::ServerKind::Cairn),
                    layout::ENV_FILE,
                    layout::UNIT_FILE
                ]
            );
            assert!(plan.files.iter().all(|f| f.old_sha256.is_none()));
            assert!(plan.daemon_reload && plan.enable);
            assert_eq!(plan.service, ServiceAction::Start);
        }
        assert_eq!(
            events
                .iter()
                .map(|e| (e.host.as_str(), e.action))
                .collect::<Vec<_>>(),
            [
                ("a", ServiceAction::Start),
                ("b", ServiceAction::Start),
                ("c", ServiceAction::Start)
            ]
        );
        let world = fake.world();
        for name in NAMES {
            let m = &world.machines[name];
            assert!(m.active && m.enabled, "{name}");
            assert_eq!(m.dirs, ["/var/lib/cairn"]);
            assert_eq!(
                m.files[layout::binary(cairn_inventory::ServerKind::Cairn)].1,
                0o755
            );
        }
        // Every write comes before the first start.
        let first_start = world
            .events
            .iter()
            .position(|e| matches!(e, Event::Systemctl(_, Systemctl::Start)))
            .expect("a start");
        assert!(world.events[first_start..]
            .iter()
            .all(|e| !matches!(e, Event::Write(..))));
    }

    /// Plans and applies with the backup daemon's files (the `cairn` binary `cairn`).
    async fn run_with_daemon(
        fake: &Fake,
        inv: &Inventory,
        cairn: &[u8],
    ) -> Result<Vec<HostPlan>, Error> {
        let cairn = Blob::new(cairn.to_vec());
        let mut targets = targets(fake, inv, b"bin-1");
        for (t, h) in targets.iter_mut().zip(&inv.hosts) {
            let daemon = crate::desired::backupd_files(inv, h, None, Some(&cairn))?;
            t.files.extend(daemon);
        }
        let plans: Vec<HostPlan> = plan_all(&targets, &limits(), &Quiet)
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let probe = FakeProbe(fake.clone());
        apply(
            &targets,
            &plans,
            Steps::new(&probe, &members(), &limits(), &Quiet),
        )
        .await?;
        Ok(plans)
    }

    fn daemon_events(fake: &Fake) -> Vec<(String, Systemctl)> {
        fake.world()
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Daemon(h, a) => Some((h.clone(), *a)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn the_backup_daemon_runs_on_one_host_and_restarts_alone() {
        let fake = Fake::new(&NAMES, 1);
        fake.reply_to_runs(0, b"");
        let backup = "[backup]\nstore = \"s3://b/p\"\n";
        let inv = inventory(backup);
        let plans = run_with_daemon(&fake, &inv, b"cairn-1").await.expect("run");
        let actions: Vec<_> = plans
            .iter()
            .map(|p| (p.backupd, p.backupd_enable))
            .collect();
        assert_eq!(
            actions,
            [
                (DaemonAction::Start, true),
                (DaemonAction::None, false),
                (DaemonAction::None, false)
            ]
        );
        assert!(plans[0]
            .to_string()
            .contains("  start cairn-backupd.service (after the members)\n"));
        {
            let world = fake.world();
            let a = &world.machines["a"];
            assert!(a.daemon_active && a.daemon_enabled);
            let inventory = String::from_utf8_lossy(&a.files[layout::BACKUPD_INVENTORY].0);
            assert!(
                inventory.contains("binary = \"/usr/local/bin/cairn-server\""),
                "{inventory}"
            );
            assert!(!world.machines["b"]
                .files
                .contains_key(layout::BACKUPD_UNIT_FILE));
            // Checked on the host, after every member started.
            let last_member_start = world
                .events
                .iter()
                .rposition(|e| matches!(e, Event::Systemctl(_, Systemctl::Start)))
                .expect("member starts");
            let check = world
                .events
                .iter()
                .position(|e| matches!(e, Event::Run(h, argv) if h == "a" && argv.join(" ").contains("backupd --check")))
                .expect("the check ran");
            assert!(check > last_member_start);
        }
        assert_eq!(
            daemon_events(&fake),
            [
                ("a".into(), Systemctl::Enable),
                ("a".into(), Systemctl::Start)
            ]
        );

        // A retention change restarts the daemon, no member.
        let inv = inventory(&format!("{backup}[backup.retention]\nkeep_last = 5\n"));
        let plans = run_with_daemon(&fake, &inv, b"cairn-1").await.expect("run");
        assert_eq!(plans[0].service, ServiceAction::None);
        assert_eq!(plans[0].backupd, DaemonAction::Restart);
        let paths: Vec<_> = plans[0].files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [layout::BACKUPD_INVENTORY]);
        assert!(restarts(&fake).is_empty());
        assert_eq!(
            daemon_events(&fake).last(),
            Some(&("a".into(), Systemctl::Restart))
        );

        // Moving it: stopped and removed on a, started on b.
        let inv = inventory(&format!("{backup}host = \"b\"\n"));
        let plans = run_with_daemon(&fake, &inv, b"cairn-1").await.expect("run");
        assert_eq!(plans[0].backupd, DaemonAction::Remove);
        assert_eq!(plans[1].backupd, DaemonAction::Start);
        {
            let world = fake.world();
            let a = &world.machines["a"];
            assert!(!a.daemon_active && !a.daemon_enabled);
            assert!(
                a.files.keys().all(|f| !f.starts_with(layout::BACKUPD_DIR)
                    && f != layout::BACKUPD_UNIT_FILE
                    && f != layout::CAIRN_BINARY),
                "{:?}",
                a.files.keys()
            );
            assert!(world.machines["b"].daemon_active);
        }
        let again = run_with_daemon(&fake, &inv, b"cairn-1").await.expect("run");
        assert!(again.iter().all(HostPlan::is_empty), "{again:?}");
        assert!(restarts(&fake).is_empty());
    }

    #[tokio::test]
    async fn a_daemon_that_fails_its_check_is_not_started() {
        let fake = Fake::new(&NAMES, 1);
        fake.reply_to_runs(2, b"error: s3://b/p: access denied\n");
        let inv = inventory("[backup]\nstore = \"s3://b/p\"\n");
        let err = run_with_daemon(&fake, &inv, b"cairn-1")
            .await
            .expect_err("the check fails");
        assert_eq!(
            err.to_string(),
            "a: the backup daemon's check failed, so it was not started: error: s3://b/p: access denied"
        );
        assert!(!fake.world().machines["a"].daemon_active);
        // The members are up all the same.
        assert!(fake.world().machines.values().all(|m| m.active));
    }

    #[tokio::test]
    async fn a_second_run_changes_nothing_and_restarts_nothing() {
        let fake = Fake::new(&NAMES, 2);
        let inv = inventory("");
        run(&fake, &inv, b"bin-1").await;
        let before = fake.world().events.len();
        let (plans, events) = run(&fake, &inv, b"bin-1").await;
        assert!(plans.iter().all(HostPlan::is_empty), "{plans:?}");
        assert!(events.is_empty());
        assert_eq!(fake.world().events.len(), before, "no write, no systemctl");
        assert_eq!(plans[0].to_string(), "a: no changes\n");
    }

    #[tokio::test]
    async fn planning_alone_touches_nothing() {
        let fake = Fake::new(&NAMES, 0);
        let inv = inventory("");
        let targets = targets(&fake, &inv, b"bin-1");
        let plans = plan_all(&targets, &limits(), &Quiet).await;
        assert!(plans
            .iter()
            .all(|p| p.as_ref().is_ok_and(|p| !p.is_empty())));
        let world = fake.world();
        assert!(world.events.is_empty());
        assert!(world
            .machines
            .values()
            .all(|m| m.files.is_empty() && !m.active));
    }

    #[tokio::test]
    async fn a_flag_change_rolls_members_one_at_a_time_and_the_leader_last() {
        let fake = Fake::new(&NAMES, 3);
        run(&fake, &inventory(""), b"bin-1").await;
        fake.world().leader = Some("a".into());
        let (plans, events) = run(
            &fake,
            &inventory("heartbeat_interval_ms = 200\nelection_timeout_ms = 2000\n"),
            b"bin-1",
        )
        .await;
        for plan in &plans {
            assert_eq!(plan.service, ServiceAction::Restart);
            assert_eq!(plan.files.len(), 1, "{plan}");
            let diff = plan.files[0].diff.as_deref().expect("text diff");
            assert!(diff.contains("\n-ETCD_HEARTBEAT_INTERVAL=100\n"), "{diff}");
            assert!(diff.contains("\n+ETCD_HEARTBEAT_INTERVAL=200\n"), "{diff}");
            assert!(
                diff.starts_with("--- /etc/cairn/cairn.env\n+++ /etc/cairn/cairn.env\n"),
                "{diff}"
            );
            assert!(!plan.daemon_reload && !plan.enable);
        }
        assert_eq!(restarts(&fake), ["b", "c", "a"]);
        assert_eq!(events.len(), 3);
        // Leadership went to an already restarted member before the leader went down.
        let world = fake.world();
        let last = world.events.len();
        assert_eq!(
            world.events[last - 2..],
            [
                Event::MoveLeader("a".into(), "b".into()),
                Event::Systemctl("a".into(), Systemctl::Restart)
            ]
        );
        drop(world);
        assert!(
            fake.world().violations.is_empty(),
            "{:?}",
            fake.world().violations
        );
    }

    #[tokio::test]
    async fn a_new_binary_shows_hashes_and_restarts_every_member() {
        let fake = Fake::new(&NAMES, 1);
        let inv = inventory("");
        run(&fake, &inv, b"bin-1").await;
        fake.world().leader = Some("c".into());
        let (plans, _) = run(&fake, &inv, b"bin-2").await;
        let change = &plans[1].files[0];
        assert_eq!(change.kind, FileKind::Binary);
        assert_eq!(change.diff, None);
        assert_eq!(
            change.old_sha256.as_deref(),
            Some(crate::plan::sha256_hex(b"bin-1").as_str())
        );
        assert_eq!(change.new_sha256, crate::plan::sha256_hex(b"bin-2"));
        let text = plans[1].to_string();
        assert!(
            text.contains("  ~ /usr/local/bin/cairn-server (sha256 "),
            "{text}"
        );
        assert_eq!(restarts(&fake), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_member_that_never_comes_back_stops_the_roll() {
        let fake = Fake::new(&NAMES, 0);
        run(&fake, &inventory(""), b"bin-1").await;
        fake.world().leader = Some("c".into());
        fake.world().warmup = u32::MAX;
        let inv = inventory("snapshot_count = 10\n");
        let targets = targets(&fake, &inv, b"bin-1");
        let plans: Vec<HostPlan> = plan_all(&targets, &limits(), &Quiet)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("plans");
        let mut l = limits();
        l.health_timeout = Duration::from_millis(50);
        let err = apply(
            &targets,
            &plans,
            Steps::new(&FakeProbe(fake.clone()), &members(), &l, &Quiet),
        )
        .await
        .expect_err("a never healthy");
        let Error::RollStopped {
            member,
            remaining,
            source,
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(
            (member.as_str(), remaining.join(",")),
            ("a", "b,c".to_string())
        );
        assert!(
            matches!(&**source, Error::Unhealthy { member, .. } if member == "a"),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("; b, c still run the old binary and files"),
            "{err}"
        );
        assert_eq!(restarts(&fake), ["a"], "nothing after the first");
        // The members not reached do not even have the new files.
        let world = fake.world();
        let env = |m: &str| world.machines[m].files[layout::ENV_FILE].0.clone();
        assert!(String::from_utf8_lossy(&env("a")).contains("ETCD_SNAPSHOT_COUNT=10"));
        assert!(!String::from_utf8_lossy(&env("b")).contains("ETCD_SNAPSHOT_COUNT"));
    }

    #[tokio::test]
    async fn a_host_lost_while_writing_stops_every_start() {
        let fake = Fake::new(&NAMES, 0);
        let inv = inventory("");
        let targets = targets(&fake, &inv, b"bin-1");
        let plans: Vec<HostPlan> = plan_all(&targets, &limits(), &Quiet)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("plans");
        fake.world().machines.get_mut("c").expect("c").unreachable = true;
        let err = apply(
            &targets,
            &plans,
            Steps::new(&FakeProbe(fake.clone()), &members(), &limits(), &Quiet),
        )
        .await
        .expect_err("c is gone");
        // As the CLI prints it: the summary, then the first failure.
        let line = cairn_client::chain(&err);
        assert!(
            line.starts_with(
                "1 of 3 hosts failed (c; the other hosts have their new files; no member was started or restarted): c: cannot connect"
            ),
            "{line}"
        );
        let world = fake.world();
        assert!(world.machines["a"].files.len() == 3 && world.machines["b"].files.len() == 3);
        assert!(!world.events.iter().any(|e| matches!(
            e,
            Event::Systemctl(_, Systemctl::Start | Systemctl::Restart)
        )));
    }

    #[tokio::test]
    async fn an_unreachable_host_fails_its_plan_by_name() {
        let fake = Fake::new(&NAMES, 0);
        fake.world().machines.get_mut("b").expect("b").unreachable = true;
        let inv = inventory("");
        let targets = targets(&fake, &inv, b"bin-1");
        let plans = plan_all(&targets, &limits(), &Quiet).await;
        assert!(plans[0].is_ok() && plans[2].is_ok());
        let err = plans[1].as_ref().expect_err("b is unreachable");
        assert!(
            err.to_string().starts_with("b: cannot connect to b:22"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn keys_appear_in_plans_as_hashes_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = Inventory::parse(
            &dir.path().join("cairn.toml"),
            "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n[tls]\n[[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n".into(),
        )
        .expect("inventory");
        let pki = cairn_pki::Pki::ensure(&inv, inv.tls.as_ref().expect("tls"), &crate::SystemClock)
            .expect("pki");
        let fake = Fake::new(&["a"], 0);
        let files = host_files(
            &inv,
            &inv.hosts[0],
            Some(&pki),
            &Blob::new(b"bin".to_vec()),
            &Bootstrap::new_cluster(&inv),
        )
        .expect("files");
        let plan = plan_host(&fake.host("a"), &files).await.expect("plan");
        let key = plan
            .files
            .iter()
            .find(|f| f.path == layout::MEMBER_KEY)
            .expect("key");
        assert_eq!((key.kind, key.diff.is_none()), (FileKind::Secret, true));
        assert!(!plan.to_string().contains("PRIVATE KEY"));
        let cert = plan
            .files
            .iter()
            .find(|f| f.path == layout::MEMBER_CERT)
            .expect("cert");
        assert!(cert
            .diff
            .as_deref()
            .is_some_and(|d| d.contains("+-----BEGIN CERTIFICATE-----")));
    }
}
