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
