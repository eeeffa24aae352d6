//! `cairn destroy` against real sshd hosts: refused without a confirmation, then everything
//! the provisioner wrote removed with the data kept (a new provision finds the data again),
//! then with `--purge` the data too.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_inventory::Inventory;
use cairn_testkit::hosts::{Hosts, TestHost};

use crate::provision::{etcdctl, options, provision};

/// What `cairn provision` leaves on a host (etcd as the server).
const WRITTEN: [&str; 6] = [
    "/etc/systemd/system/cairn.service",
    "/etc/cairn/cairn.env",
    "/etc/cairn/pki/ca.pem",
    "/etc/cairn/pki/member.pem",
    "/etc/cairn/pki/member-key.pem",
    "/usr/local/bin/etcd",
];

fn data_entries(h: &TestHost) -> usize {
    std::fs::read_dir(h.root.join("var-lib-cairn"))
        .expect("data dir")
        .count()
}

fn cairn(path: &Path, args: &[&str]) -> cairn_testkit::CmdOutput {
    let mut c = Command::new(crate::cairn_cli_binary());
    c.args(args).arg("-i").arg(path);
    cairn_testkit::run_command(c, Duration::from_secs(120)).expect("run cairn")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_removes_what_provision_wrote_and_data_only_with_purge() {
    let hosts = Hosts::start(3).expect("hosts");
    let path = hosts
        .write_inventory("etcd", Path::new("/usr/bin/etcd"), "")
        .expect("inventory");
    let inv = Inventory::load(&path).expect("inventory");
    provision(&path, &options(true, false))
        .await
        .expect("provision");
    let put = etcdctl(&inv, &["put", "/survives", "destroy"]);
    assert!(put.success(), "{}", put.stderr);

    // No terminal, no --yes: refused, nothing touched.
    let before = hosts.snapshot();
    let out = cairn(&path, &["destroy"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stderr.ends_with("cairn: cairn destroy needs the cluster's name typed on a terminal, or --yes in scripts; nothing was removed\n"),
        "{}",
        out.stderr
    );
    assert_eq!(hosts.snapshot(), before);

    let out = cairn(&path, &["destroy", "--yes"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    for h in &hosts.hosts {
        assert!(h.pids_of("etcd").is_empty(), "{} still runs etcd", h.name);
        for file in WRITTEN {
            assert!(!h.path(file).exists(), "{}:{file} left", h.name);
        }
        assert!(!h.path("/etc/cairn/pki/x").parent().expect("dir").exists());
        assert!(
            data_entries(h) > 0,
            "{}: data removed without --purge",
            h.name
        );
    }
    assert!(
        out.stdout.contains("m1: 6 file(s) removed, data kept\n"),
        "{}",
        out.stdout
    );

    // The data stayed: provisioned again, the cluster has its key.
    provision(&path, &options(false, false))
        .await
        .expect("provision again");
    let get = etcdctl(&inv, &["get", "/survives", "--print-value-only"]);
    assert_eq!(get.stdout, "destroy\n", "{}", get.stderr);

    let out = cairn(&path, &["destroy", "--yes", "--purge"]);
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    for h in &hosts.hosts {
        assert!(h.pids_of("etcd").is_empty(), "{} still runs etcd", h.name);
        assert_eq!(data_entries(h), 0, "{}: data left with --purge", h.name);
        for file in WRITTEN {
            assert!(!h.path(file).exists(), "{}:{file} left", h.name);
        }
    }
    assert!(
        out.stdout
            .contains("m2: 6 file(s) removed, /var/lib/cairn emptied\n"),
        "{}",
        out.stdout
    );
}
