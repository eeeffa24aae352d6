//! `cairn destroy`: the cluster torn down on every host of the inventory: the unit stopped,
//! disabled and removed, the env file, certificates and pushed binary removed, and with
//! `purge` the data directory emptied. Every host is reached before anything is removed, so
//! an unreachable host leaves the whole cluster as it was.

use cairn_inventory::Inventory;
use futures::StreamExt;
use serde::Serialize;

use crate::converge::Progress;
use crate::host::{Host, Systemctl};
use crate::ssh::Timeouts;
use crate::transport::connect_all;
use crate::{layout, Error};

/// How to tear down.
#[derive(Clone, Debug)]
pub struct Options {
    /// Empty the data directories too (the cluster's data is gone for good).
    pub purge: bool,
    /// Record host keys of hosts known_hosts does not list yet.
    pub accept_new_host_keys: bool,
    /// Hosts handled at once.
    pub parallel: usize,
    /// SSH time limits.
    pub timeouts: Timeouts,
}

/// What was removed from one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Teardown {
    /// Member name.
    pub host: String,
    /// The unit was there, and was stopped and disabled.
    pub stopped: bool,
    /// Files removed (those that were there).
    pub removed: Vec<String>,
    /// The data directory, when it was emptied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purged: Option<String>,
}

/// The files `cairn provision` writes on a host of `inventory`, all removed.
fn managed_files(inventory: &Inventory) -> [&'static str; 6] {
    [
        layout::UNIT_FILE,
        layout::ENV_FILE,
        layout::CA_CERT,
        layout::MEMBER_CERT,
        layout::MEMBER_KEY,
        layout::binary(inventory.cluster.server),
    ]
}

/// Tears one host down; `data_dir` is emptied when `purge`.
pub async fn tear_down<H: Host>(
    host: &H,
    inventory: &Inventory,
    data_dir: &str,
    purge: bool,
    progress: &dyn Progress,
) -> Result<Teardown, Error> {
    let name = host.name();
    // The backup daemon first: it talks to the member.
    let daemon = host.file_sha256(layout::BACKUPD_UNIT_FILE).await?.is_some();
    if daemon {
        progress.step(name, "stopping the backup daemon");
        host.systemctl(Systemctl::Stop, layout::BACKUPD_UNIT_NAME)
            .await?;
        host.systemctl(Systemctl::Disable, layout::BACKUPD_UNIT_NAME)
            .await?;
    }
    let stopped = host.file_sha256(layout::UNIT_FILE).await?.is_some();
    if stopped {
        progress.step(name, "stopping");
        host.systemctl(Systemctl::Stop, layout::UNIT_NAME).await?;
        host.systemctl(Systemctl::Disable, layout::UNIT_NAME)
            .await?;
    }
    let mut removed = Vec::new();
    for path in managed_files(inventory)
        .into_iter()
        .chain(layout::BACKUPD_FILES)
    {
        if host.file_sha256(path).await?.is_some() {
            progress.step(name, &format!("removing {path}"));
            host.remove_file(path).await?;
            removed.push(path.to_string());
        }
    }
    let pki_dir = layout::MEMBER_CERT.rsplit_once('/').map_or("", |(d, _)| d);
    host.remove_dir_all(pki_dir).await?;
    host.remove_dir_all(layout::BACKUPD_DIR).await?;
    if stopped || daemon {
        host.systemctl(Systemctl::DaemonReload, layout::UNIT_NAME)
            .await?;
    }
    let purged = if purge {
        progress.step(name, &format!("emptying {data_dir}"));
        host.remove_dir_all(data_dir).await?;
        Some(data_dir.to_string())
    } else {
        None
    };
    Ok(Teardown {
        host: name.to_string(),
        stopped,
        removed,
        purged,
    })
}

/// Connects to every host of `inventory` and tears each down; any host that cannot be
/// reached fails the run before anything is removed anywhere.
pub async fn destroy(
    inventory: &Inventory,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Vec<Teardown>, Error> {
    let parallel = options.parallel.max(1);
    let connected = connect_all(
        inventory,
        options.accept_new_host_keys,
        options.timeouts,
        parallel,
        progress,
        "nothing was removed from any host",
    )
    .await?;
    let hosts: Vec<_> = inventory.hosts.iter().zip(connected).collect();
    let mut failed = Vec::new();
    let mut first = None;
    let results: Vec<Result<Teardown, Error>> =
        futures::stream::iter(hosts.iter().map(|(h, host)| async move {
            let data_dir = inventory.data_dir(h).display().to_string();
            tear_down(host, inventory, &data_dir, options.purge, progress).await
        }))
        .buffered(parallel)
        .collect()
        .await;
    for (_, host) in hosts {
        host.close().await;
    }
    let mut done = Vec::new();
    for (h, result) in inventory.hosts.iter().zip(results) {
        match result {
            Ok(t) => {
                progress.done(&h.name, true, "torn down");
                done.push(t);
            }
            Err(e) => {
                progress.done(&h.name, false, &cairn_client::chain(&e));
                failed.push(h.name.clone());
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(first) => Err(Error::HostsFailed {
            failed,
            total: inventory.hosts.len(),
            consequence: "the other hosts were torn down; run cairn destroy again",
            first: Box::new(first),
        }),
        None => Ok(done),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::converge::{apply, plan_all, Limits, Quiet, Steps, Target};
    use crate::desired::{host_files, Blob};
    use crate::fake::{Event, Fake, FakeProbe};
    use crate::render::Bootstrap;

    #[tokio::test]
    async fn every_written_file_goes_and_data_only_with_purge() {
        let inv = Inventory::parse(
            Path::new("/x/cairn.toml"),
            "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n\
             [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n\
             [backup]\nstore = \"s3://b\"\n"
                .into(),
        )
        .expect("inventory");
        let fake = Fake::new(&["a"], 0);
        fake.reply_to_runs(0, b"");
        let h = &inv.hosts[0];
        let mut files = host_files(
            &inv,
            h,
            None,
            &Blob::new(b"bin".to_vec()),
            &Bootstrap::new_cluster(&inv),
        )
        .expect("files");
        let cairn = Blob::new(b"cairn".to_vec());
        files.extend(crate::desired::backupd_files(&inv, h, None, Some(&cairn)).expect("daemon"));
        let targets = vec![Target {
            host: fake.host("a"),
            files,
            data_dir: "/var/lib/cairn".into(),
            peer_url: inv.peer_url(h),
        }];
        let limits = Limits {
            parallel: 1,
            health_timeout: Duration::from_secs(5),
            poll: Duration::from_millis(1),
        };
        let plans: Vec<_> = plan_all(&targets, &limits, &Quiet)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("plans");
        apply(
            &targets,
            &plans,
            Steps::new(&FakeProbe(fake.clone()), &["a".into()], &limits, &Quiet),
        )
        .await
        .expect("apply");
        let kept = tear_down(&fake.host("a"), &inv, "/var/lib/cairn", false, &Quiet)
            .await
            .expect("teardown");
        assert!(kept.stopped && kept.purged.is_none());
        // The member's binary, env file and unit, the daemon's unit and binary (its
        // directory goes as a whole).
        assert_eq!(kept.removed.len(), 5, "{kept:?}");
        {
            let world = fake.world();
            let m = &world.machines["a"];
            assert!(m.files.is_empty() && !m.active && !m.enabled && m.data);
            assert!(!m.daemon_active && !m.daemon_enabled);
        }
        let purged = tear_down(&fake.host("a"), &inv, "/var/lib/cairn", true, &Quiet)
            .await
            .expect("teardown");
        assert!(!purged.stopped && purged.removed.is_empty());
        assert_eq!(purged.purged.as_deref(), Some("/var/lib/cairn"));
        let world = fake.world();
        assert!(!world.machines["a"].data);
        assert!(world
            .events
            .contains(&Event::Remove("a".into(), "/var/lib/cairn".into())));
    }
}
