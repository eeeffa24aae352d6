//! `cairn provision` with a `[backup]` table against real sshd test hosts and a real S3 server
//! (moto): the daemon is checked on its host, started there only, takes scheduled backups the
//! operator lists; a second run changes nothing, and moving `[backup] host` moves it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::hosts::Hosts;
use cairn_testkit::s3::S3Server;
use cairn_testkit::CmdOutput;

use crate::BIN;

fn cairn(args: &[&str], inventory: &Path, s3: &S3Server) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args(args).arg("-i").arg(inventory).envs(s3.env());
    cairn_testkit::run_command(c, Duration::from_secs(600)).expect("run cairn")
}

fn full_backups(inventory: &Path, s3: &S3Server) -> usize {
    let out = cairn(&["backup", "list", "--output", "json"], inventory, s3);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let listed: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    listed
        .as_array()
        .expect("a list")
        .iter()
        .filter(|m| m["kind"] == "full")
        .count()
}

#[test]
fn provision_runs_the_backup_daemon_on_the_backup_host() {
    let hosts = Hosts::start(3).expect("hosts");
    let s3 = S3Server::start("backups").expect("moto");
    let server = cairn_testkit::cairn_server_binary().expect("cairn-server");
    let path = hosts
        .write_inventory("cairn", &server, "")
        .expect("inventory");
    let dir = path.parent().expect("dir");
    let env: String = s3.env().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.join("aws.env"), env).expect("env file");
    let daemon_host = &hosts.hosts[1];
    let listen = cairn_testkit::free_port(daemon_host.address).expect("port");
    let backup = |host: &str| {
        format!(
            "\n[backup]\nstore = \"s3://backups/it\"\nschedule = \"*/4 * * * * *\"\nhost = \"{host}\"\n\
             endpoint = \"{}\"\npath_style = true\nregion = \"us-east-1\"\n\
             environment_file = \"aws.env\"\nlisten = \"{}:{listen}\"\n",
            s3.endpoint, daemon_host.address
        )
    };
    let base = std::fs::read_to_string(&path).expect("inventory");
    std::fs::write(&path, format!("{base}{}", backup(&daemon_host.name))).expect("inventory");

    let out = cairn(
        &["provision", "--yes", "--accept-new-host-keys"],
        &path,
        &s3,
    );
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("backup daemon started")
            || out.stdout.contains("backup daemon started"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    for h in &hosts.hosts {
        let unit = h.path("/etc/systemd/system/cairn-backupd.service");
        assert_eq!(unit.exists(), h.name == daemon_host.name, "{}", h.name);
    }
    let secret = std::fs::metadata(daemon_host.path("/etc/cairn/backupd/aws.env")).expect("env");
    assert_eq!(secret.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read(daemon_host.path("/usr/local/bin/cairn")).expect("pushed cairn"),
        std::fs::read(BIN).expect("cairn")
    );
    assert_eq!(daemon_host.pids_of("cairn").len(), 1, "one daemon");

    // The daemon's schedule fires every 4 s: its backups show up in the operator's listing.
    cairn_testkit::wait_until("two scheduled backups", Duration::from_secs(120), || {
        full_backups(&path, &s3) >= 2
    })
    .expect("the daemon backs up");

    // Nothing to do the second time.
    let out = cairn(&["provision", "--plan"], &path, &s3);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let no_changes = out.stdout.matches(": no changes").count();
    assert_eq!(no_changes, 3, "{}", out.stdout);

    // Moving it: stopped and removed on m2, started on m3.
    let to = &hosts.hosts[2];
    let moved = format!("{base}{}", backup(&to.name)).replace(
        &format!("listen = \"{}:{listen}\"", daemon_host.address),
        &format!(
            "listen = \"{}:{}\"",
            to.address,
            cairn_testkit::free_port(to.address).expect("port")
        ),
    );
    std::fs::write(&path, moved).expect("inventory");
    let out = cairn(&["provision", "--yes"], &path, &s3);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(daemon_host.pids_of("cairn").is_empty());
    assert!(!daemon_host
        .path("/etc/systemd/system/cairn-backupd.service")
        .exists());
    assert!(!daemon_host.path("/etc/cairn/backupd/cairn.toml").exists());
    assert_eq!(to.pids_of("cairn").len(), 1);
    let before = full_backups(&path, &s3);
    cairn_testkit::wait_until(
        "a backup from the moved daemon",
        Duration::from_secs(60),
        || full_backups(&path, &s3) > before,
    )
    .expect("the moved daemon backs up");
}

/// etcdctl 3.4 against the inventory's cluster with the admin certificate.
fn etcdctl(inventory: &cairn_inventory::Inventory, args: &[&str]) -> CmdOutput {
    let pki = inventory.tls.as_ref().expect("tls").dir.clone();
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", inventory.endpoints().join(",")))
        .arg(format!("--cacert={}", pki.join("ca.pem").display()))
        .arg(format!("--cert={}", pki.join("admin.pem").display()))
        .arg(format!("--key={}", pki.join("admin-key.pem").display()))
        .args(["--dial-timeout=3s", "--command-timeout=10s"])
        .args(args);
    let out = cairn_testkit::run_command(c, Duration::from_secs(30)).expect("etcdctl");
    assert!(
        out.success(),
        "etcdctl {args:?}: {}{}",
        out.stdout,
        out.stderr
    );
    out
}

/// Every member's HashKV at `revision`, as etcdctl prints them.
fn hashes(inventory: &cairn_inventory::Inventory, revision: i64) -> Vec<u64> {
    let out = etcdctl(
        inventory,
        &[
            "endpoint",
            "hashkv",
            "--cluster=false",
            &format!("--rev={revision}"),
            "-w",
            "json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| r["HashKV"]["hash"].as_u64().expect("hash"))
        .collect()
}

#[test]
fn restore_provision_replaces_a_damaged_cluster_with_the_backup() {
    let hosts = Hosts::start(3).expect("hosts");
    let s3 = S3Server::start("backups").expect("moto");
    let server = cairn_testkit::cairn_server_binary().expect("cairn-server");
    // Below the hosts' own /var/lib/cairn, so the old data set aside beside it stays there.
    let path = hosts
        .write_inventory("cairn", &server, "data_dir = \"/var/lib/cairn/data\"\n")
        .expect("inventory");
    let dir = path.parent().expect("dir");
    let env: String = s3.env().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(dir.join("aws.env"), env).expect("env file");
    let daemon_host = &hosts.hosts[0];
    let listen = cairn_testkit::free_port(daemon_host.address).expect("port");
    let base = std::fs::read_to_string(&path).expect("inventory");
    std::fs::write(
        &path,
        format!(
            "{base}\n[backup]\nstore = \"s3://backups/dr\"\nschedule = \"@yearly\"\n\
             endpoint = \"{}\"\npath_style = true\nregion = \"us-east-1\"\n\
             environment_file = \"aws.env\"\nlisten = \"{}:{listen}\"\n",
            s3.endpoint, daemon_host.address
        ),
    )
    .expect("inventory");
    let out = cairn(
        &["provision", "--yes", "--accept-new-host-keys"],
        &path,
        &s3,
    );
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let inv = cairn_inventory::Inventory::load(&path).expect("inventory");
    for i in 0..50 {
        etcdctl(&inv, &["put", &format!("/app/{i:02}"), &format!("v{i}")]);
    }
    let out = cairn(&["backup", "now", "--output", "json"], &path, &s3);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let manifest: serde_json::Value = serde_json::from_str(&out.stdout).expect("manifest");
    let revision = manifest["revision"].as_i64().expect("revision");
    let before = hashes(&inv, revision);
    assert!(before.windows(2).all(|w| w[0] == w[1]), "{before:?}");

    // The damage the backup must undo: a deleted prefix and a stray key.
    etcdctl(&inv, &["del", "--prefix", "/app/1"]);
    etcdctl(&inv, &["put", "/stray", "x"]);

    let restored = dir.join("restored");
    let out = cairn(
        &[
            "backup",
            "restore",
            "--provision",
            "--yes",
            "--out-dir",
            restored.to_str().expect("utf-8"),
        ],
        &path,
        &s3,
    );
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("onto 3 members, a new cluster"),
        "{}",
        out.stdout
    );
    for h in &hosts.hosts {
        let aside: Vec<String> = std::fs::read_dir(h.path("/var/lib/cairn/data"))
            .and_then(|_| std::fs::read_dir(h.root.join("var-lib-cairn")))
            .expect("host's /var/lib/cairn")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("data.pre-restore-"))
            .collect();
        assert_eq!(aside.len(), 1, "{}: {aside:?}", h.name);
        let old = h.root.join("var-lib-cairn").join(&aside[0]).join("member");
        assert!(old.is_dir(), "the old data is kept: {}", old.display());
    }
    let keys = etcdctl(&inv, &["get", "--prefix", "/", "--keys-only"]);
    let listed: Vec<&str> = keys.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(listed.len(), 50, "{listed:?}");
    assert!(!listed.contains(&"/stray"));
    assert_eq!(
        hashes(&inv, revision),
        before,
        "HashKV at the backup's revision"
    );
    // The restored cluster's own chain starts with a full backup at the restored revision.
    assert!(
        out.stdout
            .contains("first full backup of the restored cluster: "),
        "{}",
        out.stdout
    );
    let list = cairn(&["backup", "list", "--output", "json"], &path, &s3);
    let listed: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let fulls: Vec<i64> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter(|m| m["kind"] == "full")
        .map(|m| m["revision"].as_i64().expect("revision"))
        .collect();
    assert_eq!(fulls.last(), Some(&revision), "{fulls:?}");
    // Writes go on, and the daemon runs again.
    etcdctl(&inv, &["put", "/after", "restore"]);
    assert_eq!(daemon_host.pids_of("cairn").len(), 1);
}
