//! cairn on clusters with etcd's auth enabled: `cairn up` creates `[auth]`'s roles and users
//! and turns auth on, after which every tool still works, logging in by its certificate's CN;
//! on plain-http members of cairn-server and of etcd 3.4, the tools log in as root with the
//! inventory's root password file.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::{run_command, CmdOutput, Member};

use crate::up::{etcdctl, Up};
use crate::BIN;

/// `cairn ARGS -i INVENTORY`, its inspection state in `dir`.
fn cairn(dir: &Path, inventory: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("-i")
        .arg(inventory)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("STATE_DIRECTORY");
    run_command(cmd, Duration::from_secs(120)).expect("run cairn")
}

fn assert_ok(what: &str, out: &CmdOutput) {
    assert!(out.success(), "{what}: {out:?}");
}

/// The inspection's status of check `name`.
fn check_status(report: &str, name: &str) -> String {
    let report: serde_json::Value = serde_json::from_str(report).expect("inspect JSON");
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == name)
        .map(|c| c["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

/// The tools every operator runs, each against the auth-enabled cluster of `inventory`.
fn every_tool_works(dir: &Path, inventory: &Path) {
    assert_ok("status", &cairn(dir, inventory, &["status"]));
    let inspect = cairn(
        dir,
        inventory,
        &["inspect", "--format", "json", "--window", "100ms"],
    );
    assert_eq!(
        check_status(&inspect.stdout, "consistency"),
        "pass",
        "{inspect:?}"
    );
    let backup = cairn(dir, inventory, &["backup", "now", "--output", "json"]);
    assert_ok("backup now", &backup);
    assert_ok("backup list", &cairn(dir, inventory, &["backup", "list"]));
    assert_ok(
        "bench",
        &cairn(
            dir,
            inventory,
            &["bench", "put", "--total", "200", "--clients", "4"],
        ),
    );
}

#[test]
fn cairn_up_provisions_auth_and_every_tool_logs_in_by_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = crate::up::inventory(dir.path());
    std::fs::write(dir.path().join("app.password"), "app-secret\n").expect("password file");
    let mut text = std::fs::read_to_string(&inventory).expect("inventory");
    text.push_str(
        "\n[backup]\nstore = \"file://store\"\n\n\
         [auth]\n\n\
         [[auth.roles]]\nname = \"app\"\npermissions = [{ access = \"readwrite\", key = \"/app/\", prefix = true }]\n\n\
         [[auth.users]]\nname = \"app\"\npassword_file = \"app.password\"\nroles = [\"app\"]\n",
    );
    std::fs::write(&inventory, text).expect("inventory");
    let up = Up::ready(&inventory);
    let output = up.output();
    assert!(output.contains("auth: add user app"), "{output}");
    assert!(output.contains("auth: enable"), "{output}");
    assert!(
        !output.contains("app-secret"),
        "a password reached the output:\n{output}"
    );
    let endpoints = up.endpoints();

    // The admin certificate is root's; the users are there, auth is on.
    let users = etcdctl(dir.path(), &endpoints, &["user", "list"]);
    assert_ok("user list", &users);
    for user in ["root", "cairn-backup", "cairn-inspector", "app"] {
        assert!(users.stdout.lines().any(|l| l == user), "{users:?}");
    }
    // A certificate whose CN is no user (Prometheus') gets nothing; the app user its prefix.
    let pki = dir.path().join("pki");
    let as_prometheus = {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .arg(format!("--cacert={}", pki.join("ca.pem").display()))
            .arg(format!("--cert={}", pki.join("prometheus.pem").display()))
            .arg(format!(
                "--key={}",
                pki.join("prometheus-key.pem").display()
            ))
            .args(["get", "x"]);
        run_command(cmd, Duration::from_secs(30)).expect("etcdctl")
    };
    assert!(
        as_prometheus.stderr.contains("permission denied"),
        "{as_prometheus:?}"
    );
    let app = |args: &[&str]| {
        let mut all = vec!["--user", "app:app-secret"];
        all.extend_from_slice(args);
        etcdctl(dir.path(), &endpoints, &all)
    };
    assert_ok("app writes its prefix", &app(&["put", "/app/k", "v"]));
    assert!(app(&["put", "/other", "v"])
        .stderr
        .contains("permission denied"));

    every_tool_works(dir.path(), &inventory);

    // Converged: a second look plans no auth change.
    let plan = cairn(dir.path(), &inventory, &["provision", "--plan"]);
    assert!(!plan.stdout.contains("auth:"), "{plan:?}");
}

/// An inventory for the single plain-http member `m` of `server` with `[auth]`'s root
/// password in a file.
fn plain_inventory(dir: &Path, m: &Member, server: &str, binary: &Path) -> std::path::PathBuf {
    std::fs::write(dir.join("root.password"), "root-secret\n").expect("password file");
    let port = m.client_url().rsplit(':').next().expect("port").to_string();
    let inventory = dir.join("cairn.toml");
    std::fs::write(
        &inventory,
        format!(
            "[cluster]\nname = \"t\"\nserver = \"{server}\"\nbinary = \"{}\"\ntoken = \"t-1\"\nclient_port = {port}\n\n\
             [[hosts]]\nname = \"a\"\naddress = \"127.0.0.1\"\n\n\
             [backup]\nstore = \"file://store\"\n\n\
             [auth]\nroot_password_file = \"root.password\"\n",
            binary.display()
        ),
    )
    .expect("inventory");
    inventory
}

#[test]
fn the_tools_log_in_as_root_on_auth_enabled_cairn_and_etcd() {
    let cairn_binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    for (member, server, binary) in [
        (crate::cairn(), "cairn", cairn_binary.clone()),
        (crate::etcd(), "etcd", "/usr/bin/etcd".into()),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        for args in [
            &["user", "add", "root:root-secret"][..],
            &["put", "k", "v"],
            &["auth", "enable"],
        ] {
            let out = member.etcdctl(args).expect("etcdctl");
            assert!(out.success(), "{server}: {args:?}: {out:?}");
        }
        let denied = member.etcdctl(&["get", "k"]).expect("etcdctl");
        assert!(denied.stderr.contains("user name is empty"), "{denied:?}");
        let inventory = plain_inventory(dir.path(), &member, server, &binary);
        every_tool_works(dir.path(), &inventory);
    }
}
