//! `cairn backup restore --provision`: restored data directories put on every host and a new
//! cluster started on them. Every member (and the backup daemon) is stopped before any data
//! is replaced: one left running would keep the old cluster going beside the new one. The
//! old data is set aside beside the data directory, never deleted. Then an ordinary
//! provisioning run writes each member's files (an env file for a new cluster of every
//! inventory member, as the restore wrote the data for) and starts all members together.

use std::path::{Path, PathBuf};

use cairn_inventory::Inventory;
use futures::StreamExt;
use serde::Serialize;

use crate::converge::Progress;
use crate::desired::OWNER;
use crate::host::{Host, Systemctl, WriteFile};
use crate::ssh::quote;
use crate::transport::connect_all;
use crate::upgrade::NoHook;
use crate::{layout, Clock, Error, Options, Report, Session};
use cairn_pki::local_file;

/// What was put on one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Placed {
    /// Member name.
    pub host: String,
    /// The data directory now holding the restored data.
    pub data_dir: String,
    /// Where the data that was there went (`None`: it was empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<String>,
    /// Files written.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What a restore onto the hosts did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreReport {
    /// One entry per member, in inventory order.
    pub placed: Vec<Placed>,
    /// The provisioning run that started the new cluster.
    pub provision: Report,
}

/// Stops every member and the backup daemon, sets the old data aside, pushes
/// `data_dirs[i]` (a restored data directory on this machine) as the data directory of
/// `inventory.hosts[i]`, and starts the new cluster with a provisioning run. `stamp` names
/// the set-aside directories (`<data_dir>.pre-restore-<stamp>`).
pub async fn restore_onto_hosts(
    inventory: &Inventory,
    data_dirs: &[PathBuf],
    stamp: &str,
    options: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<RestoreReport, Error> {
    if data_dirs.len() != inventory.hosts.len() {
        return Err(Error::RestoreMismatch {
            dirs: data_dirs.len(),
            hosts: inventory.hosts.len(),
        });
    }
    inventory.check_local_files()?;
    let parallel = options.limits.parallel.max(1);
    let hosts = connect_all(
        inventory,
        options.accept_new_host_keys,
        options.timeouts,
        parallel,
        progress,
        "nothing was stopped or replaced on any host",
    )
    .await?;
    let result = async {
        // All stopped first: no member of the old cluster may still run when the first one
        // of the new cluster starts.
        let stops = futures::future::join_all(hosts.iter().map(|h| stop(h, progress))).await;
        stops.into_iter().collect::<Result<Vec<()>, Error>>()?;
        let placed: Vec<Result<Placed, Error>> =
            futures::stream::iter(hosts.iter().zip(&inventory.hosts).zip(data_dirs).map(
                |((host, h), local)| {
                    let data_dir = inventory.data_dir(h).display().to_string();
                    async move { place(host, local, &data_dir, stamp, progress).await }
                },
            ))
            .buffered(parallel)
            .collect()
            .await;
        placed.into_iter().collect::<Result<Vec<Placed>, Error>>()
    }
    .await;
    for host in hosts {
        host.close().await;
    }
    let placed = result?;
    let session = Session::plan(inventory, options, clock, progress).await?;
    let provision = session.apply(&NoHook, progress).await?;
    Ok(RestoreReport { placed, provision })
}

/// Stops the backup daemon and the member, where their units are.
async fn stop<H: Host>(host: &H, progress: &dyn Progress) -> Result<(), Error> {
    for (file, unit) in [
        (layout::BACKUPD_UNIT_FILE, layout::BACKUPD_UNIT_NAME),
        (layout::UNIT_FILE, layout::UNIT_NAME),
    ] {
        if host.file_sha256(file).await?.is_some() {
            progress.step(host.name(), &format!("stopping {unit}"));
            host.systemctl(Systemctl::Stop, unit).await?;
        }
    }
    Ok(())
}

/// Sets `data_dir`'s contents aside, writes every file of `local` into it, and drops the env
/// file, so the run after it writes one for a new cluster of all members (what the restore
/// built the data for) rather than keep what a former joiner's file said.
pub async fn place<H: Host>(
    host: &H,
    local: &Path,
    data_dir: &str,
    stamp: &str,
    progress: &dyn Progress,
) -> Result<Placed, Error> {
    place_with_chunk(host, local, data_dir, stamp, CHUNK, progress).await
}

/// How much of a file is held in memory and sent at once: an etcd `db` file is the whole
/// keyspace (up to the quota, 8 GiB), which must not have to fit in memory.
const CHUNK: usize = 64 * 1024 * 1024;

/// [`place`], with files over `chunk` bytes sent in pieces of that size (tests send small
/// pieces to exercise the path large files take).
pub async fn place_with_chunk<H: Host>(
    host: &H,
    local: &Path,
    data_dir: &str,
    stamp: &str,
    chunk: usize,
    progress: &dyn Progress,
) -> Result<Placed, Error> {
    let name = host.name();
    let set_aside = if host.has_entries(data_dir).await? {
        let aside = format!("{}.pre-restore-{stamp}", data_dir.trim_end_matches('/'));
        progress.step(name, &format!("setting the old data aside in {aside}"));
        // The contents, not the directory: it may be a mount point.
        let script = format!(
            "set -e; mkdir -p -m 700 -- {a}; find {d} -mindepth 1 -maxdepth 1 -exec mv -t {a} -- {{}} +",
            a = quote(&aside),
            d = quote(data_dir),
        );
        let out = host.run(&["sh", "-c", &script]).await?;
        if out.code != Some(0) {
            return Err(Error::SetAside {
                host: name.to_string(),
                data_dir: data_dir.to_string(),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Some(aside)
    } else {
        None
    };
    host.create_dir(data_dir, 0o700).await?;
    let mut files = 0;
    let mut bytes = 0;
    for (relative, path) in local_file::walk(local)? {
        let target = format!("{}/{relative}", data_dir.trim_end_matches('/'));
        progress.step(name, &format!("writing {target}"));
        bytes += push_file(host, &path, &target, chunk).await?;
        files += 1;
    }
    host.remove_file(layout::ENV_FILE).await?;
    Ok(Placed {
        host: name.to_string(),
        data_dir: data_dir.to_string(),
        set_aside,
        files,
        bytes,
    })
}

/// Sends the local file `path` to `target` (mode 0600, root's): whole when it fits in one
/// `chunk`, else appended piece by piece to a temporary file that is synced and renamed over
/// `target` at the end, so `target` is never half-written. Returns its size.
async fn push_file<H: Host>(
    host: &H,
    path: &Path,
    target: &str,
    chunk: usize,
) -> Result<u64, Error> {
    use std::io::Read;
    let read_err = |source| Error::LocalRead {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size <= chunk as u64 {
        let contents = local_file::read(path)?;
        host.write_file(WriteFile {
            path: target,
            contents: &contents,
            mode: 0o600,
            owner: OWNER,
        })
        .await?;
        return Ok(contents.len() as u64);
    }
    let (dir, base) = target.rsplit_once('/').unwrap_or(("", target));
    let temp = format!("{dir}/.{base}.cairn-tmp");
    host.remove_file(&temp).await?;
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut buffer = vec![0; chunk];
    let mut sent = 0u64;
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read(&mut buffer[filled..]).map_err(read_err)? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        host.append_file(&temp, &buffer[..filled]).await?;
        sent += filled as u64;
    }
    let script = format!(
        "set -e; chown {OWNER} {t}; chmod 600 {t}; sync {t}; mv -f -- {t} {p}",
        t = quote(&temp),
        p = quote(target)
    );
    let out = host.run(&["sh", "-c", &script]).await?;
    if out.code != Some(0) {
        return Err(Error::Push {
            host: host.name().to_string(),
            path: target.to_string(),
            output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::converge::Quiet;
    use crate::fake::Fake;

    #[tokio::test]
    async fn old_data_is_set_aside_and_every_file_written_under_the_data_dir() {
        let local = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(local.path().join("member/snap")).expect("dirs");
        std::fs::write(local.path().join("member/snap/db"), b"restored").expect("db");
        std::fs::write(local.path().join("member/conf"), b"c").expect("conf");
        let fake = Fake::new(&["a"], 0);
        fake.reply_to_runs(0, b"");
        {
            let mut world = fake.world();
            let m = world.machines.get_mut("a").expect("a");
            m.data = true;
            m.files
                .insert(layout::ENV_FILE.into(), (b"ETCD_NAME=a\n".to_vec(), 0o644));
        }
        let placed = place(&fake.host("a"), local.path(), "/var/lib/cairn", "1", &Quiet)
            .await
            .expect("placed");
        assert_eq!(
            placed,
            Placed {
                host: "a".into(),
                data_dir: "/var/lib/cairn".into(),
                set_aside: Some("/var/lib/cairn.pre-restore-1".into()),
                files: 2,
                bytes: 9,
            }
        );
        let world = fake.world();
        let m = &world.machines["a"];
        assert_eq!(m.files["/var/lib/cairn/member/snap/db"].0, b"restored");
        assert_eq!(m.files["/var/lib/cairn/member/snap/db"].1, 0o600);
        assert!(!m.files.contains_key(layout::ENV_FILE));
        assert!(world.events.iter().any(|e| matches!(
            e,
            crate::fake::Event::Run(_, argv) if argv[2].contains("mv -t '/var/lib/cairn.pre-restore-1'")
        )));
    }

    #[tokio::test]
    async fn a_file_larger_than_a_chunk_goes_up_in_pieces_then_is_renamed() {
        let local = tempfile::tempdir().expect("tempdir");
        let db: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::create_dir_all(local.path().join("member/snap")).expect("dirs");
        std::fs::write(local.path().join("member/snap/db"), &db).expect("db");
        let fake = Fake::new(&["a"], 0);
        fake.reply_to_runs(0, b"");
        let placed = place_with_chunk(&fake.host("a"), local.path(), "/d", "1", 4096, &Quiet)
            .await
            .expect("placed");
        assert_eq!((placed.files, placed.bytes), (1, 10_000));
        let world = fake.world();
        let temp = "/d/member/snap/.db.cairn-tmp";
        let appends = world
            .events
            .iter()
            .filter(|e| matches!(e, crate::fake::Event::Append(_, p) if p == temp))
            .count();
        assert_eq!(appends, 3, "4096 + 4096 + 1808 bytes");
        assert_eq!(world.machines["a"].files[temp].0, db);
        assert!(world.events.iter().any(|e| matches!(
            e,
            crate::fake::Event::Run(_, argv) if argv[2].ends_with("mv -f -- '/d/member/snap/.db.cairn-tmp' '/d/member/snap/db'")
        )));
    }
}
