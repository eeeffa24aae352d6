//! The `cairn` binary run as operators run it.

mod auth;
mod backup;
mod backupd_hosts;
mod bench;
mod certs;
mod check;
mod disk_hosts;
mod import;
mod inspect;
mod lifecycle;
mod provision;
mod rules;
mod ssh_access;
mod up;

use std::process::Command;

use cairn_testkit::{Kind, Member};

/// The `cairn` binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// A running single-member cairn-server (this workspace's build).
pub(crate) fn cairn() -> Member {
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    Member::builder(Kind::Cairn)
        .cairn_binary(binary)
        .start()
        .expect("start cairn-server")
}

/// A running single-member etcd 3.4 (Debian's `etcd-server`).
pub(crate) fn etcd() -> Member {
    Member::builder(Kind::Etcd).start().expect("start etcd")
}

#[test]
fn check_disk_reports_fdatasync_percentiles_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["check", "disk", "--size-mib", "1", "-w", "json"])
        .arg(dir.path())
        .output()
        .expect("run cairn");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["writes"], 1024 * 1024 / 2300);
    assert_eq!(report["block_size"], 2300);
    let passed = report["passed"].as_bool().expect("passed");
    assert_eq!(
        out.status.success(),
        passed,
        "exit code follows the verdict"
    );
    assert!(report["fdatasync_ms"]["p99"].as_f64().expect("p99") > 0.0);
}

/// Memory is no disk: a check on tmpfs warns and does not pass, whatever its figures.
#[test]
fn check_disk_on_tmpfs_warns_that_it_is_memory() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("tmpfs dir");
    let out = Command::new(BIN)
        .args(["check", "disk", "--size-mib", "1"])
        .arg(dir.path())
        .output()
        .expect("run cairn");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().last().is_some_and(|l| l.starts_with(&format!(
            "WARN: {} is on tmpfs, which is memory, not a disk",
            dir.path().display()
        ))),
        "{text}"
    );
}

#[test]
fn a_bad_path_is_one_line_and_exit_2() {
    let out = Command::new(BIN)
        .args(["check", "disk", "/nonexistent/cairn"])
        .output()
        .expect("run cairn");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("cairn: /nonexistent/cairn/"), "{err}");
}
