//! Integration tests of backupd against real processes on loopback: cairn-server and etcd
//! 3.4 clusters, a real S3-compatible server (moto) and a directory store.

mod faults;
mod roundtrip;
mod s3;
mod store_contract;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_backupd::store::FileStore;
use cairn_backupd::{
    Backups, ClusterSpec, Codec, ObjectStore, RestoreMember, RestorePlan, SystemClock,
};
use cairn_inventory::{Compression, ServerKind};
use cairn_testkit::{Cluster, Kind, Member};

/// How long a cluster may take to agree on a leader.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A started cluster of `kind` with `size` members.
pub fn cluster(kind: Kind, size: usize) -> Cluster {
    let mut b = Cluster::builder(kind).size(size);
    if kind == Kind::Cairn {
        b = b.cairn_binary(cairn_testkit::cairn_server_binary().expect("cairn-server binary"));
    }
    let mut c = b.start().expect("cluster starts");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    c
}

/// The server binary backupd runs for `kind` (snapshot status, restore).
pub fn server_binary(kind: Kind) -> std::path::PathBuf {
    match kind {
        Kind::Cairn => cairn_testkit::cairn_server_binary().expect("cairn-server binary"),
        Kind::Etcd => "etcd".into(),
    }
}

/// What backupd needs to know about `c`.
pub fn spec(c: &Cluster) -> ClusterSpec {
    ClusterSpec {
        credentials: None,
        name: "test".into(),
        server: match c.kind() {
            Kind::Cairn => ServerKind::Cairn,
            Kind::Etcd => ServerKind::Etcd,
        },
        endpoints: c.members().iter().map(Member::client_url).collect(),
        tls: None,
        binary: server_binary(c.kind()),
    }
}

/// Backups of `c` in `store`, zstd, no encryption, small parts.
pub fn backups(c: &Cluster, store: Arc<dyn ObjectStore>, prefix: &str, codec: Codec) -> Backups {
    Backups::new(store, prefix, spec(c), codec, Arc::new(SystemClock))
        .with_part_size(5 * 1024 * 1024)
}

/// zstd, unencrypted.
pub fn zstd() -> Codec {
    Codec {
        compression: Compression::Zstd,
        key: None,
    }
}

/// A directory store.
pub fn file_store(dir: &Path) -> Arc<dyn ObjectStore> {
    Arc::new(FileStore::new(dir))
}

/// Writes `n` keys `/k/<i>` with `size`-byte values through etcdctl's stdin-free `put`s in
/// one process per batch; returns nothing, the caller reads the revision.
pub async fn fill(endpoint: &str, n: usize, size: usize) {
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    for i in 0..n {
        let value: Vec<u8> = (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        client
            .put(format!("/k/{i:06}"), value, None)
            .await
            .expect("put");
    }
    client.delete("/k/000000", None).await.expect("delete");
}

/// The member's current revision and its HashKV at `revision` (0: current).
pub async fn hash_kv(endpoint: &str, revision: i64) -> (i64, u32) {
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    let h = client.hash_kv(revision).await.expect("hash_kv");
    (h.header().expect("header").revision(), h.hash())
}

/// Starts one member on a restored data directory, as the plan named it.
pub fn start_restored(kind: Kind, plan: &RestorePlan, member: usize, peer_port: u16) -> Member {
    let m = &plan.members[member];
    let initial = plan
        .members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",");
    let mut b = Member::builder(kind)
        .name(&m.name)
        .ip(Ipv4Addr::LOCALHOST)
        .ports(
            cairn_testkit::free_port(Ipv4Addr::LOCALHOST).expect("port"),
            peer_port,
        )
        .initial_cluster(initial)
        .token(plan.token.clone())
        .data_dir(plan.out_dir.join(&m.name));
    if kind == Kind::Cairn {
        b = b.cairn_binary(server_binary(kind));
    }
    b.start().expect("restored member starts")
}

/// A one-member plan on a free loopback peer port.
pub fn single_member_plan(out_dir: &Path) -> (RestorePlan, u16) {
    let peer = cairn_testkit::free_port(Ipv4Addr::LOCALHOST).expect("port");
    (
        RestorePlan {
            members: vec![RestoreMember {
                name: "r1".into(),
                peer_url: format!("http://127.0.0.1:{peer}"),
            }],
            token: "restored".into(),
            out_dir: out_dir.to_path_buf(),
        },
        peer,
    )
}
