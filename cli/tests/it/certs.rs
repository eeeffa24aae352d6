//! `cairn certs` refusals, each one line saying what to do. (Rotations and status against
//! real members are tested in the provisioner crate, against sshd test hosts.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::BIN;

fn inventory(dir: &Path, tls: &str) -> PathBuf {
    std::fs::write(dir.join("id"), "not used before a host answers").expect("key");
    std::fs::write(dir.join("server"), "").expect("binary");
    let text = format!(
        "[cluster]\nname = \"t\"\nbinary = \"server\"\ntoken = \"t-1\"\n\
         [ssh]\nidentity_file = \"id\"\n{tls}\n\
         [[hosts]]\nname = \"m1\"\naddress = \"127.0.0.1\"\n"
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
        .stdin(Stdio::null())
        .output()
        .expect("run cairn")
}

fn error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.contains("warning")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

#[test]
fn certs_refuse_an_operators_ca_a_missing_tls_section_and_an_unconfirmed_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = inventory(dir.path(), "");
    let line = error_line(&cairn(&["certs", "status"], &plain));
    assert!(
        line.starts_with("cairn: ") && line.ends_with("there is no [tls] section, so no certificates to rotate or show; add [tls] and run cairn provision"),
        "{line}"
    );

    let own = tempfile::tempdir().expect("tempdir");
    std::fs::write(own.path().join("my-ca.pem"), "").expect("ca");
    std::fs::write(own.path().join("my-ca-key.pem"), "").expect("key");
    let operator = inventory(
        own.path(),
        "[tls]\nca_cert = \"my-ca.pem\"\nca_key = \"my-ca-key.pem\"",
    );
    let line = error_line(&cairn(&["certs", "rotate", "--ca", "--yes"], &operator));
    assert!(
        line.ends_with("is your own CA, which cairn cannot rotate: rotate it in your PKI, or remove ca_cert and ca_key from [tls] to have cairn generate a CA it can rotate"),
        "{line}"
    );

    let line = error_line(&cairn(&["certs", "rotate"], &operator));
    assert!(line.contains("run with --yes to apply"), "{line}");
}
