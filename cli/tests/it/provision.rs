//! `cairn provision` and `cairn status` as operators run them: errors are one line naming the
//! host, the status table comes from the members themselves. (Provisioning real hosts is
//! tested in the provisioner crate, against sshd test hosts.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cairn_testkit::free_port;

use crate::BIN;

/// An inventory of one member at `address` (plain HTTP), with an SSH key and a binary that
/// exist, so only the hosts can be the problem.
fn inventory(dir: &Path, address: &str, client_port: u16, ssh_port: u16) -> PathBuf {
    std::fs::write(dir.join("id"), "not used before a host answers").expect("key");
    std::fs::write(dir.join("server"), "").expect("binary");
    let text = format!(
        "[cluster]\nname = \"t\"\nbinary = \"server\"\ntoken = \"t-1\"\nclient_port = {client_port}\npeer_port = {}\n\
         [ssh]\nidentity_file = \"id\"\nknown_hosts = \"known_hosts\"\nport = {ssh_port}\n\
         [[hosts]]\nname = \"m1\"\naddress = \"{address}\"\n",
        client_port + 1
    );
    let path = dir.join("cairn.toml");
    std::fs::write(&path, text).expect("inventory");
    path
}

fn cairn(args: &[&str], inventory: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("-i")
        .arg(inventory)
        .output()
        .expect("run cairn")
}

/// The one error line (progress lines name a host, warnings say so).
fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("cairn: ") && !l.starts_with("cairn: warning:"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

#[test]
fn status_prints_the_table_from_a_running_member() {
    let member = crate::cairn();
    let dir = tempfile::tempdir().expect("tempdir");
    let port: u16 = member
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let path = inventory(dir.path(), &member.ip().to_string(), port, 22);
    let out = cairn(&["status"], &path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let cells: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        cells[..3],
        ["m1", member.client_url().as_str(), "true"],
        "{stdout}"
    );
    let json = cairn(&["status", "--output", "json"], &path);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert_eq!(doc["members"][0]["name"], "m1");
    assert!(
        doc["members"][0]["status"]["revision"].as_i64().is_some(),
        "{doc}"
    );
}

#[test]
fn status_of_a_member_that_is_down_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let port = free_port(ip).expect("free port");
    let path = inventory(dir.path(), "127.0.0.1", port, 22);
    let out = cairn(&["status", "--timeout", "2"], &path);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("unreachable: ")),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_host_is_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let (client, ssh) = (free_port(ip).expect("port"), free_port(ip).expect("port"));
    let path = inventory(dir.path(), "127.0.0.1", client, ssh);
    // The key is checked before any host is contacted.
    let out = cairn(&["provision", "--plan"], &path);
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!(
            "cairn: {}: cannot use this SSH key (a wrong passphrase, or not an OpenSSH private key); set [ssh] identity_file to another key: ",
            dir.path().join("id").display()
        )),
        "{line}"
    );
    let mut keygen = Command::new("ssh-keygen");
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("id"));
    std::fs::remove_file(dir.path().join("id")).expect("rm");
    assert!(keygen.status().expect("ssh-keygen").success());
    let out = cairn(&["provision", "--yes"], &path);
    assert_eq!(out.status.code(), Some(2));
    let line = error_line(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\nm1: FAILED: cannot connect to"),
        "{stderr}"
    );
    assert!(
        line.starts_with(&format!(
            "cairn: 1 of 1 hosts failed (m1; nothing was changed on any host; fix it or leave the host out with --limit): m1: cannot connect to 127.0.0.1:{ssh}; check the address, [ssh] port and that sshd runs: Connection refused"
        )),
        "{line}"
    );
}

#[test]
fn status_before_provisioning_says_where_the_certificates_come_from() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = inventory(dir.path(), "127.0.0.1", 2379, 22);
    let text = std::fs::read_to_string(&path).expect("inventory") + "[tls]\n";
    std::fs::write(&path, text).expect("inventory with tls");
    let out = cairn(&["status"], &path);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        error_line(&out),
        format!(
            "cairn: {}: no such file; `cairn provision` (`cairn up` on a local inventory) issues the cluster's certificates: run it first, or name certificate files that exist",
            dir.path().join("pki/ca.pem").display()
        )
    );
}

#[test]
fn an_unknown_limit_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = inventory(dir.path(), "127.0.0.1", 2379, 22);
    let out = cairn(&["provision", "--plan", "--limit", "m1,m9"], &path);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        error_line(&out),
        "cairn: --limit m9: no such host in the inventory (its hosts: m1)"
    );
}
