//! Full backup, verify and restore round trips: the restored member has the source's keys,
//! values and revisions (HashKV equal at the backed-up revision).

use cairn_backupd::Target;
use cairn_testkit::Kind;

use crate::*;

async fn round_trip(kind: Kind, size: usize, codec: Codec) {
    let c = cluster(kind, size);
    let endpoint = c.member(0).client_url();
    fill(&endpoint, 300, 2000).await;
    let (revision, source_hash) = hash_kv(&endpoint, 0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = backups(&c, file_store(&dir.path().join("store")), "", codec);
    let m = b.full(None).await.expect("full backup");
    assert_eq!(m.revision, revision);
    assert!(m.stored_bytes > 0 && m.plain_bytes > 300 * 2000 / 2);
    let listed = b.list().await.expect("list");
    assert_eq!(listed, vec![m.clone()]);
    let verified = b.verify(&m.id).await.expect("verify");
    assert_eq!(verified.status.is_some(), kind == Kind::Cairn);
    let (plan, peer) = single_member_plan(&dir.path().join("restored"));
    let restored = b.restore(&Target::Latest, &plan).await.expect("restore");
    assert_eq!(
        (restored.id.as_str(), restored.revision),
        (m.id.as_str(), revision)
    );
    let r = start_restored(kind, &plan, 0, peer);
    let (restored_revision, restored_hash) = hash_kv(&r.client_url(), revision).await;
    assert_eq!(restored_revision, revision);
    assert_eq!(restored_hash, source_hash, "HashKV at revision {revision}");
    let mut client = etcd_client::Client::connect([r.client_url()], None)
        .await
        .expect("connect");
    let got = client.get("/k/000123", None).await.expect("get");
    assert_eq!(got.kvs()[0].value().len(), 2000);
}

#[tokio::test(flavor = "multi_thread")]
async fn cairn_full_backup_round_trip_through_a_directory() {
    round_trip(Kind::Cairn, 3, zstd()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_full_backup_round_trip_encrypted_uncompressed() {
    let codec = Codec {
        compression: cairn_inventory::Compression::None,
        key: cairn_backupd::Key::from_hex(&"5a".repeat(32)),
    };
    round_trip(Kind::Etcd, 1, codec).await;
}

async fn point_in_time(kind: Kind) {
    let c = cluster(kind, 1);
    let endpoint = c.member(0).client_url();
    fill(&endpoint, 100, 300).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let b = backups(&c, file_store(&dir.path().join("store")), "", zstd());
    b.full(None).await.expect("full");
    assert!(b.incremental().await.expect("nothing new").is_none());
    let mut client = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect");
    let lease = client.lease_grant(600, None).await.expect("lease").id();
    for i in 0..20 {
        client
            .put(format!("/later/{i}"), format!("v{i}"), None)
            .await
            .expect("put");
    }
    client
        .put(
            "/leased",
            "x",
            Some(etcd_client::PutOptions::new().with_lease(lease)),
        )
        .await
        .expect("leased put");
    // The prefix delete below is one revision of more events than a transaction may hold
    // (etcd's --max-txn-ops, 128): the replay must still apply it as that one revision.
    for i in 0..200 {
        client
            .put(format!("/k/bulk/{i}"), "b", None)
            .await
            .expect("put");
    }
    client
        .delete("/k/", Some(etcd_client::DeleteOptions::new().with_prefix()))
        .await
        .expect("delete range");
    let first = b.incremental().await.expect("increment").expect("events");
    let (middle, middle_hash) = hash_kv(&endpoint, 0).await;
    assert_eq!(first.revision, middle);
    for i in 0..10 {
        client
            .put(format!("/later/{i}"), "again", None)
            .await
            .expect("put");
    }
    b.incremental().await.expect("increment").expect("events");
    let (end, end_hash) = hash_kv(&endpoint, 0).await;
    for (target, hash, sub) in [
        (middle - 5, None, "a"),
        (middle, Some(middle_hash), "b"),
        (end, Some(end_hash), "c"),
    ] {
        let (plan, peer) = single_member_plan(&dir.path().join(sub));
        let restored = b
            .restore(&Target::Revision(target), &plan)
            .await
            .expect("restore");
        assert_eq!(restored.revision, target);
        let r = start_restored(kind, &plan, 0, peer);
        let (now, restored_hash) = hash_kv(&r.client_url(), target).await;
        assert_eq!(
            now, target,
            "the restored cluster ends at the target revision"
        );
        let source_hash = match hash {
            Some(h) => h,
            None => hash_kv(&endpoint, target).await.1,
        };
        assert_eq!(restored_hash, source_hash, "HashKV at revision {target}");
        if target >= middle {
            // The lease came in an increment: granted again with the source's TTL.
            let mut restored_client = etcd_client::Client::connect([r.client_url()], None)
                .await
                .expect("connect");
            let ttl = restored_client
                .lease_time_to_live(lease, None)
                .await
                .expect("lease ttl");
            assert_eq!(ttl.granted_ttl(), 600, "lease granted TTL at {target}");
        }
    }
    let err = b
        .restore(
            &Target::Revision(end + 100),
            &single_member_plan(&dir.path().join("d")).0,
        )
        .await
        .expect_err("beyond the backups");
    assert!(
        err.to_string().contains("the backups reach revision"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cairn_point_in_time_restore_from_full_plus_increments() {
    point_in_time(Kind::Cairn).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_point_in_time_restore_from_full_plus_increments() {
    point_in_time(Kind::Etcd).await;
}

/// Every key and value of a member, with its lease's presence.
async fn dump(endpoint: &str) -> Vec<(Vec<u8>, Vec<u8>, bool)> {
    let mut client = etcd_client::Client::connect([endpoint], None)
        .await
        .expect("connect");
    let r = client
        .get(
            vec![0u8],
            Some(etcd_client::GetOptions::new().with_from_key()),
        )
        .await
        .expect("get");
    r.kvs()
        .iter()
        .map(|kv| (kv.key().to_vec(), kv.value().to_vec(), kv.lease() != 0))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn logical_export_and_import_move_data_from_etcd_to_cairn_and_back() {
    let etcd = cluster(Kind::Etcd, 1);
    let cairn = cluster(Kind::Cairn, 1);
    let etcd_endpoint = etcd.member(0).client_url();
    fill(&etcd_endpoint, 250, 200).await;
    let mut client = etcd_client::Client::connect([etcd_endpoint.as_str()], None)
        .await
        .expect("connect");
    let lease = client.lease_grant(600, None).await.expect("lease").id();
    client
        .put(
            vec![0xffu8, 0],
            vec![1u8, 2, 3],
            Some(etcd_client::PutOptions::new().with_lease(lease)),
        )
        .await
        .expect("binary key with a lease");
    // Users and roles travel too (without passwords: etcd exports no hashes).
    let mut auth = client.auth_client();
    auth.role_add("app").await.expect("role");
    auth.role_grant_permission(
        "app",
        etcd_client::Permission::read_write("/app/").with_prefix(),
    )
    .await
    .expect("grant");
    auth.user_add("app", "pw", None).await.expect("user");
    auth.user_grant_role("app", "app")
        .await
        .expect("grant role");
    let auth_of = |endpoint: String| async move {
        let mut c = etcd_client::Client::connect([endpoint.as_str()], None)
            .await
            .expect("connect");
        cairn_client::auth::read(&mut c, &endpoint)
            .await
            .expect("auth state")
    };
    let mut out = Vec::new();
    let moved = cairn_backupd::logical::export(&spec(&etcd), &mut out)
        .await
        .expect("export");
    assert_eq!((moved.keys, moved.leases), (250, 1));
    let imported = cairn_backupd::logical::import(&spec(&cairn), &mut out.as_slice())
        .await
        .expect("import");
    assert_eq!(imported.keys, 250);
    assert_eq!(imported.passwordless, vec!["app".to_string()]);
    let cairn_endpoint = cairn.member(0).client_url();
    assert_eq!(dump(&cairn_endpoint).await, dump(&etcd_endpoint).await);
    let source_auth = auth_of(etcd_endpoint.clone()).await;
    assert_eq!(source_auth.users.len(), 1);
    assert_eq!(auth_of(cairn_endpoint.clone()).await, source_auth);
    // And back, into a fresh etcd.
    let etcd2 = cluster(Kind::Etcd, 1);
    let mut out2 = Vec::new();
    cairn_backupd::logical::export(&spec(&cairn), &mut out2)
        .await
        .expect("export from cairn");
    cairn_backupd::logical::import(&spec(&etcd2), &mut out2.as_slice())
        .await
        .expect("import into etcd");
    assert_eq!(
        dump(&etcd2.member(0).client_url()).await,
        dump(&etcd_endpoint).await
    );
    assert_eq!(auth_of(etcd2.member(0).client_url()).await, source_auth);
}
