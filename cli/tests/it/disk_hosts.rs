//! `cairn check disk -i`: the check on every host of an inventory over SSH, against real sshd
//! test hosts (testkit's hosts, each in its own mount namespace): as root and through sudo,
//! and a host with nothing listening named while the others are still checked; and on a local
//! inventory, where each member's directory stands in for its host.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::hosts::Hosts;
use cairn_testkit::CmdOutput;

use crate::BIN;

fn cairn(args: &[&str]) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args(args);
    cairn_testkit::run_command(c, Duration::from_secs(300)).expect("run cairn")
}

#[test]
fn check_disk_runs_on_every_inventory_host_and_names_an_unreachable_one() {
    let hosts = Hosts::start(3).expect("hosts");
    let path = hosts
        .write_inventory("cairn", std::path::Path::new(BIN), "")
        .expect("inventory");
    let inventory = path.to_str().expect("utf-8 path");

    // First contact: the binary is pushed, the check runs on each host's data dir.
    let out = cairn(&[
        "check",
        "disk",
        "-i",
        inventory,
        "--accept-new-host-keys",
        "--size-mib",
        "1",
        "--output",
        "json",
    ]);
    let stderr = &out.stderr;
    let rows: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{stderr}", out.stdout));
    let rows = rows.as_array().expect("one entry per host");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let mut all_passed = true;
    for (row, h) in rows.iter().zip(&hosts.hosts) {
        assert_eq!(row["host"], h.name.as_str(), "{row}");
        let report = &row["report"];
        assert_eq!(report["dir"], "/var/lib/cairn", "{row}");
        assert_eq!(report["writes"], 1024 * 1024 / 2300, "{row}");
        let p = &report["fdatasync_ms"];
        let (p50, p99, max) = (
            p["p50"].as_f64().expect("p50"),
            p["p99"].as_f64().expect("p99"),
            p["max"].as_f64().expect("max"),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{row}");
        all_passed &= report["passed"].as_bool().expect("passed");
        assert_eq!(
            std::fs::read(h.path("/usr/local/bin/cairn")).expect("pushed binary"),
            std::fs::read(BIN).expect("cairn"),
            "{}",
            h.name
        );
        let left: Vec<_> = std::fs::read_dir(h.root.join("var-lib-cairn"))
            .expect("data dir")
            .collect();
        assert!(left.is_empty(), "scratch file left on {}: {left:?}", h.name);
    }
    assert_eq!(out.code, if all_passed { 0 } else { 1 }, "{stderr}");

    // Again, as a table: the binary is not copied a second time.
    let pushed_inodes = || -> Vec<u64> {
        hosts
            .hosts
            .iter()
            .map(|h| {
                std::fs::metadata(h.path("/usr/local/bin/cairn"))
                    .expect("binary")
                    .ino()
            })
            .collect()
    };
    let inodes = pushed_inodes();
    let out = cairn(&["check", "disk", "-i", inventory, "--size-mib", "1"]);
    let text = &out.stdout;
    eprint!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}{}", out.stderr);
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["host", "p50", "ms", "p99", "ms", "max", "ms", "verdict"]
    );
    for (line, h) in lines[1..].iter().zip(&hosts.hosts) {
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells.len(), 5, "{line}");
        assert_eq!(cells[0], h.name, "{text}");
        for ms in &cells[1..4] {
            assert!(ms.parse::<f64>().expect("ms") > 0.0, "{line}");
        }
        assert!(["PASS", "FAIL"].contains(&cells[4]), "{line}");
    }
    let again = pushed_inodes();
    assert_eq!(again, inodes, "the binary was copied again");

    // A fourth host with nothing listening: named in the error, the others still checked.
    let closed = cairn_testkit::free_port(std::net::Ipv4Addr::new(127, 0, 0, 14)).expect("port");
    let mut text = std::fs::read_to_string(&path).expect("inventory");
    text.push_str(&format!(
        "\n[[hosts]]\nname = \"m4\"\naddress = \"127.0.0.14\"\nssh_port = {closed}\n"
    ));
    std::fs::write(&path, text).expect("inventory");
    let out = cairn(&["check", "disk", "-i", inventory, "--size-mib", "1"]);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, 2, "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "cairn: 1 of 4 hosts failed (m4; the other hosts were checked): m4: cannot connect to 127.0.0.14:{closed}; check the address, [ssh] port and that sshd runs: "
        )),
        "{stderr}"
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 4, "{stdout}");
    for row in &rows[..3] {
        assert!(["PASS", "FAIL"].contains(&row[4]), "{stdout}");
    }
    assert_eq!(rows[3], ["m4", "-", "-", "-", "not", "checked"], "{stdout}");
}

#[test]
fn check_disk_on_hosts_runs_through_sudo_for_a_non_root_login() {
    let hosts = Hosts::start_with_user(3, Some("cairnop")).expect("hosts");
    let path = hosts
        .write_inventory("cairn", std::path::Path::new(BIN), "")
        .expect("inventory");
    let text = std::fs::read_to_string(&path).expect("inventory");
    std::fs::write(
        &path,
        text.replace("[ssh]\n", "[ssh]\nuser = \"cairnop\"\n"),
    )
    .expect("inventory");
    let out = cairn(&[
        "check",
        "disk",
        "-i",
        path.to_str().expect("utf-8 path"),
        "--accept-new-host-keys",
        "--size-mib",
        "1",
        "-w",
        "json",
    ]);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    let rows = rows.as_array().expect("one entry per host");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (row, h) in rows.iter().zip(&hosts.hosts) {
        assert_eq!(row["report"]["dir"], "/var/lib/cairn", "{row}");
        assert!(row["report"]["fdatasync_ms"]["p99"].as_f64().expect("p99") > 0.0);
        let log = std::fs::read_to_string(h.root.join("sshd.log")).expect("sshd log");
        assert!(log.contains("Accepted publickey for cairnop "), "{log}");
        assert!(!log.contains("Accepted publickey for root "), "{log}");
        let meta = std::fs::metadata(h.path("/usr/local/bin/cairn")).expect("pushed binary");
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o755), "{}", h.name);
    }
}

#[test]
fn check_disk_on_a_local_inventory_runs_in_each_members_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = crate::up::inventory(dir.path());
    let out = cairn(&[
        "check",
        "disk",
        "-i",
        path.to_str().expect("utf-8 path"),
        "--size-mib",
        "1",
        "--output",
        "json",
    ]);
    let stderr = &out.stderr;
    let rows: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{stderr}", out.stdout));
    let rows = rows.as_array().expect("one entry per host");
    assert_eq!(rows.len(), 3, "{rows:?}");
    let mut all_passed = true;
    for (i, row) in rows.iter().enumerate() {
        let name = format!("m{}", i + 1);
        let member = std::path::absolute(dir.path().join("members").join(&name)).expect("path");
        assert_eq!(row["host"], name.as_str(), "{row}");
        let report = &row["report"];
        assert_eq!(report["dir"], member.to_str().expect("utf-8"), "{row}");
        assert_eq!(report["writes"], 1024 * 1024 / 2300, "{row}");
        all_passed &= report["passed"].as_bool().expect("passed");
        assert_eq!(
            std::fs::read(member.join("usr/local/bin/cairn")).expect("installed binary"),
            std::fs::read(BIN).expect("cairn"),
            "{name}"
        );
    }
    assert_eq!(out.code, if all_passed { 0 } else { 1 }, "{stderr}");
}
