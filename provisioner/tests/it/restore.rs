//! Restored data put on a real sshd host: the old data set aside, small files written whole,
//! a file larger than a piece appended in pieces and renamed into place, the env file gone.

use std::os::unix::fs::PermissionsExt;

use cairn_inventory::Inventory;
use cairn_provisioner::converge::Quiet;
use cairn_provisioner::restore::place_with_chunk;
use cairn_provisioner::ssh::Timeouts;
use cairn_provisioner::transport::connect_all;
use cairn_testkit::hosts::Hosts;

#[tokio::test(flavor = "multi_thread")]
async fn restored_data_replaces_the_old_on_a_real_host() {
    let hosts = Hosts::start(1).expect("hosts");
    let h = &hosts.hosts[0];
    let path = hosts
        .write_inventory("cairn", std::path::Path::new("/bin/true"), "")
        .expect("inventory");
    let inv = Inventory::load(&path).expect("inventory");
    // What a member left: data, and its env file.
    let old = h.path("/var/lib/cairn/data/member/wal/0.wal");
    std::fs::create_dir_all(old.parent().expect("parent")).expect("old dirs");
    std::fs::write(&old, b"old wal").expect("old data");
    std::fs::write(h.path("/etc/cairn/cairn.env"), "ETCD_NAME=m1\n").expect("env");

    let local = tempfile::tempdir().expect("tempdir");
    let db: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::create_dir_all(local.path().join("member/snap")).expect("dirs");
    std::fs::write(local.path().join("member/snap/db"), &db).expect("db");
    std::fs::write(local.path().join("member/conf"), b"conf").expect("conf");

    let connected = connect_all(&inv, true, Timeouts::default(), 1, &Quiet, "nothing done")
        .await
        .expect("connect");
    let placed = place_with_chunk(
        &connected[0],
        local.path(),
        "/var/lib/cairn/data",
        "20261122T000000Z",
        4096,
        &Quiet,
    )
    .await;
    for host in connected {
        host.close().await;
    }
    let placed = placed.expect("placed");
    assert_eq!((placed.files, placed.bytes), (2, 100_004));
    assert_eq!(
        placed.set_aside.as_deref(),
        Some("/var/lib/cairn/data.pre-restore-20261122T000000Z")
    );
    let pushed = h.path("/var/lib/cairn/data/member/snap/db");
    assert_eq!(std::fs::read(&pushed).expect("db"), db);
    let mode = std::fs::metadata(&pushed).expect("db").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!h
        .path("/var/lib/cairn/data/member/snap/.db.cairn-tmp")
        .exists());
    assert!(!h.path("/var/lib/cairn/data/member/wal").exists());
    assert_eq!(
        std::fs::read(h.path("/var/lib/cairn/data.pre-restore-20261122T000000Z/member/wal/0.wal"))
            .expect("kept"),
        b"old wal"
    );
    assert!(!h.path("/etc/cairn/cairn.env").exists());
}
