//! `cairn import` against running 3-member TLS clusters (cairn-server and etcd 3.4): the
//! written inventory loads, lists every member with its own ports, and `cairn status -i` on
//! it answers from every member.

use std::process::Command;

use cairn_inventory::{Inventory, ServerKind};
use cairn_testkit::{Cluster, Kind, Pki};

use crate::BIN;

fn import_and_status(kind: Kind) {
    let pki = Pki::new().expect("pki");
    let mut builder = Cluster::builder(kind).size(3).tls(&pki);
    if matches!(kind, Kind::Cairn) {
        builder = builder.cairn_binary(cairn_testkit::cairn_server_binary().expect("cairn-server"));
    }
    let cluster = builder.start().expect("cluster");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("cairn.toml");
    let run = Command::new(BIN)
        .arg("import")
        .arg("--endpoints")
        .arg(cluster.member(0).client_url())
        .arg("--cacert")
        .arg(pki.ca_file())
        .arg("--cert")
        .arg(pki.client_cert_file())
        .arg("--key")
        .arg(pki.client_key_file())
        .arg("--name")
        .arg("imported")
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run cairn import");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let inv = Inventory::load(&out).unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&out).expect("inventory");
    let want = match kind {
        Kind::Cairn => ServerKind::Cairn,
        _ => ServerKind::Etcd,
    };
    assert_eq!(inv.cluster.server, want, "{text}");
    assert!(
        text.contains("set the real one") && text.contains("token = \""),
        "{text}"
    );
    let mut urls: Vec<String> = inv.endpoints();
    urls.sort();
    let mut want_urls: Vec<String> = cluster.members().iter().map(|m| m.client_url()).collect();
    want_urls.sort();
    assert_eq!(urls, want_urls, "{text}");
    let peers: Vec<String> = inv.hosts.iter().map(|h| inv.peer_url(h)).collect();
    for m in cluster.members() {
        assert!(
            peers.contains(&m.peer_url()),
            "{} not in {peers:?}",
            m.peer_url()
        );
    }
    let status = Command::new(BIN)
        .args(["status", "-i"])
        .arg(&out)
        .output()
        .expect("run cairn status");
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    let leaders = rows
        .iter()
        .filter(|r| r.split_whitespace().nth(2) == Some("true"))
        .count();
    assert_eq!(leaders, 1, "{stdout}");
    // A second import never overwrites.
    let again = Command::new(BIN)
        .arg("import")
        .arg("--endpoints")
        .arg(cluster.member(0).client_url())
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run cairn import");
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains(": exists; cairn import writes a new inventory"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn import_writes_an_inventory_status_can_use_for_cairn_server() {
    import_and_status(Kind::Cairn);
}

#[test]
fn import_writes_an_inventory_status_can_use_for_etcd() {
    import_and_status(Kind::Etcd);
}
