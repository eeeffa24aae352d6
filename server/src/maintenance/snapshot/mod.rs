//! cairn's snapshot format, the point-in-time capture a member streams for etcd's Snapshot
//! RPC, and the offline `status`/`restore` of a saved file.
//!
//! # Format (version 3)
//!
//! ```text
//! magic "CAIRNSNP" | version u32 BE
//! record*          : tag u8 | payload length u32 BE | payload
//!   META (1)       : revision i64 | compact revision i64 | applied index u64   (first, once)
//!   AUTH (5)       : key length u32 | key | value: one auth record as the store keeps it
//!                    (users with their bcrypt hashes, roles, the switch, the revision)
//!                                                              (after META, before LEASE)
//!   LEASE (4)      : lease ID i64 | granted TTL in seconds i64       (after AUTH, before KV)
//!   KV (2)         : revision (16 bytes, as in the data dir) | stored record (kind + KeyValue)
//!   END (3)        : number of KV records u64 | number of LEASE records u64
//!                    | number of AUTH records u64                               (last, once)
//! zero padding     : up to the next multiple of 512 bytes
//! sha256           : of everything above (32 bytes)
//! ```
//!
//! The padding and trailing SHA-256 follow etcd's snapshot convention, so `etcdctl snapshot
//! save` (which requires `size % 512 == 32`) accepts the stream, and a damaged file is
//! recognised before anything is restored from it.
//!
//! ## Versions
//!
//! Version 1 had no LEASE records and an END record of the KV count only: its keys keep the
//! lease IDs they were written with, but the leases themselves were not captured. Version 2
//! had no AUTH records (a file of it restores with auth off and no users). The key simple
//! tokens are signed with is an auth record too, but only snapshots sent to a catching-up
//! member carry it: a file never does, so a backup cannot be used to forge tokens. This build
//! writes version 3 and reads all three (a version 1 file restores as it always did, without
//! leases). Builds that read only version 1 refuse a version 2 file by its version number
//! before reading any record ("snapshot format version 2, this build reads 1"), so a snapshot
//! is never restored without its leases by accident.
//!
//! # Consistency
//!
//! [`capture`] holds the compaction gate from before it reads the store's revision,
//! compaction point and lease table (all three under one store read lock, so they describe the
//! same applied command) until the last record is sent: the compactor cannot delete a revision
//! in the meantime, and records above the captured revision are skipped, so the file holds
//! exactly the history as of one revision while writes and compactions continue. Revisions a
//! compaction made unreachable but had not deleted yet may be included; the restored member
//! finishes that compaction when it opens, as after a crash. Leases are restored with their
//! granted TTL and start a full TTL when the restored member starts, as after a restart.
//!
//! A client that stops reading would otherwise hold the gate, and so stop compaction, for as
//! long as it stays connected: a stream whose client takes no chunk for [`SEND_STALL_LIMIT`]
//! is abandoned (logged, and ended with an error for the client).

mod capture;
mod etcd;
mod file;
mod format;
pub mod version;

pub use capture::*;
pub use file::*;
pub use format::Status;

#[cfg(test)]
mod tests {
    use super::format::*;
    use super::*;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use tokio::sync::mpsc;

    use super::capture::stream_with;
    use crate::mvcc::revision::Revision;
    use sha2::{Digest, Sha256};

    use crate::mvcc::SledBackend;
    use crate::Error;
    use proptest::prelude::*;

    fn encode_version(
        version: u32,
        meta: &Meta,
        leases: &[LeaseRecord],
        kvs: &[(Revision, Vec<u8>)],
    ) -> Vec<u8> {
        encode_all(version, meta, &[], leases, kvs)
    }

    fn encode_all(
        version: u32,
        meta: &Meta,
        auth: &[AuthRecord],
        leases: &[LeaseRecord],
        kvs: &[(Revision, Vec<u8>)],
    ) -> Vec<u8> {
        let mut enc = Encoder::of_version(version);
        let mut out = Vec::new();
        enc.header(&mut out, meta);
        for a in auth {
            enc.auth(&mut out, a);
        }
        for l in leases {
            enc.lease(&mut out, *l);
        }
        for (rev, rec) in kvs {
            enc.kv(&mut out, *rev, rec);
        }
        enc.finish(&mut out);
        out
    }

    fn encode(meta: &Meta, kvs: &[(Revision, Vec<u8>)]) -> Vec<u8> {
        encode_version(FORMAT_VERSION, meta, &[], kvs)
    }

    fn decode(bytes: &[u8]) -> Result<(Meta, Vec<Record>), FormatError> {
        let (meta, mut d) = Decoder::open(bytes, bytes.len() as u64)?;
        let mut out = Vec::new();
        while let Some(record) = d.next_record()? {
            out.push(record);
        }
        Ok((meta, out))
    }

    /// A whole file: `content` padded and followed by its SHA-256.
    fn seal(mut content: Vec<u8>) -> Vec<u8> {
        let pad = (ALIGN - content.len() as u64 % ALIGN) % ALIGN;
        content.resize(content.len() + pad as usize, 0);
        let digest = Sha256::digest(&content);
        content.extend_from_slice(&digest);
        content
    }

    proptest! {
        #[test]
        fn round_trips_with_etcd_trailer_alignment(
            revision in 0i64..i64::MAX,
            compact in 0i64..1_000_000,
            applied in any::<u64>(),
            leases in prop::collection::btree_map(1i64..i64::MAX, 1i64..9_000_000_000, 0..20),
            auth in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 0..200)),
                0..10,
            ),
            kvs in prop::collection::vec(
                ((0i64..1_000_000, 0i64..100), prop::collection::vec(any::<u8>(), 1..300)),
                0..50,
            ),
        ) {
            let meta = Meta { revision, compact_revision: compact, applied_index: applied };
            let leases: Vec<LeaseRecord> =
                leases.into_iter().map(|(id, ttl)| LeaseRecord { id, ttl }).collect();
            let kvs: Vec<(Revision, Vec<u8>)> =
                kvs.into_iter().map(|((m, s), r)| (Revision::new(m, s), r)).collect();
            let auth: Vec<AuthRecord> = auth
                .into_iter()
                .map(|(key, value)| AuthRecord { key, value })
                .collect();
            let bytes = encode_all(FORMAT_VERSION, &meta, &auth, &leases, &kvs);
            prop_assert_eq!(bytes.len() as u64 % ALIGN, HASH_LEN as u64);
            let content = &bytes[..bytes.len() - HASH_LEN];
            let digest = Sha256::digest(content);
            prop_assert_eq!(digest.as_slice(), &bytes[bytes.len() - HASH_LEN..]);
            let (m, got) = decode(&bytes).expect("decodes");
            prop_assert_eq!(m, meta);
            let want: Vec<Record> = auth
                .into_iter()
                .map(Record::Auth)
                .chain(leases.into_iter().map(Record::Lease))
                .chain(kvs.into_iter().map(|(rev, record)| Record::Kv(KvRecord { rev, record })))
                .collect();
            prop_assert_eq!(got, want);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshot_is_one_revision_while_writes_and_compactions_go_on() {
        use crate::identity::Identity;
        use crate::mvcc::{KeyRange, MemBackend, MvccStore, RangeOptions};
        use crate::node::Node;
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::etcdserverpb::{CompactionRequest, PutRequest};

        let backend = Arc::new(SledBackend::temporary().unwrap());
        let (store, _) = MvccStore::open(backend).unwrap();
        let node = Node::start_for_test(store, 1 << 40);
        let put = |i: usize| {
            Request::Put(PutRequest {
                key: format!("k{:03}", i % 100).into_bytes(),
                value: vec![(i % 251) as u8; 1024],
                ..Default::default()
            })
        };
        for i in 0..2000 {
            node.propose(put(i)).await.unwrap();
        }
        let all = KeyRange::From(Vec::new());
        let read_at = |node: &Node, rev: i64| {
            node.read(|v| {
                let opts = RangeOptions {
                    rev,
                    ..Default::default()
                };
                v.store.range(&all, &opts, v.rev).unwrap().kvs
            })
        };
        let at = node.read(|v| v.rev);
        let (now, before) = (read_at(&node, at), read_at(&node, at - 1000));

        // Captured here; then history is compacted away and rewritten while it streams.
        let mut rx = stream(node.shared().clone(), Secrets::Exclude).await;
        let compact = |rev| {
            Request::Compaction(CompactionRequest {
                revision: rev,
                physical: false,
            })
        };
        node.propose(compact(at)).await.unwrap();
        for i in 0..300 {
            node.propose(put(i + 7)).await.unwrap();
        }
        node.propose(compact(at + 200)).await.unwrap();
        let mut bytes = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = rx.recv().await {
            bytes.extend(chunk.unwrap().0);
            chunks += 1;
        }
        assert!(chunks > 4, "streamed in chunks, not at once ({chunks})");
        // The compactions go on once the stream is done.
        node.wait_compacted(at + 200).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        std::fs::write(&path, &bytes).unwrap();
        verify(&path).unwrap();
        let restored = Arc::new(MemBackend::new());
        let identity = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        let meta = restore_into(&path, &*restored, RestoreAs::Member(identity)).unwrap();
        assert_eq!(meta.revision, at);
        let (store, job) = MvccStore::open(restored).unwrap();
        assert!(job.is_none());
        assert_eq!(store.revision(), at);
        let read = |rev| {
            let opts = RangeOptions {
                rev,
                ..Default::default()
            };
            store.range(&all, &opts, at).unwrap().kvs
        };
        assert_eq!(read(at), now);
        assert_eq!(read(at - 1000), before);
        node.shutdown();
    }

    /// A started node on an in-memory backend.
    fn test_node() -> Arc<crate::node::Node> {
        let backend = Arc::new(crate::mvcc::MemBackend::new());
        let (store, _) = crate::mvcc::MvccStore::open(backend).unwrap();
        crate::node::Node::start_for_test(store, 1 << 40)
    }

    async fn save(rx: &mut mpsc::Receiver<Chunk>, path: &Path) {
        let mut bytes = Vec::new();
        while let Some(chunk) = rx.recv().await {
            bytes.extend(chunk.unwrap().0);
        }
        std::fs::write(path, &bytes).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn users_and_roles_survive_snapshot_and_restore_without_the_token_key_in_files() {
        use crate::identity::Identity;
        use crate::mvcc::{MemBackend, MvccStore};
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::cairnpb::TokenKey;
        use crate::proto::etcdserverpb as pb;

        let node = test_node();
        for r in [
            Request::UserAdd(pb::AuthUserAddRequest {
                name: "root".into(),
                hashed_password: "$2a$04$hash".into(),
                ..Default::default()
            }),
            Request::UserGrantRole(pb::AuthUserGrantRoleRequest {
                user: "root".into(),
                role: "root".into(),
            }),
            Request::RoleAdd(pb::AuthRoleAddRequest { name: "r".into() }),
            Request::AuthEnable(pb::AuthEnableRequest {}),
            Request::TokenKey(TokenKey {
                key: b"secret".to_vec(),
            }),
        ] {
            node.propose(r).await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        for (secrets, key) in [
            (Secrets::Exclude, None),
            (Secrets::Include, Some(&b"secret"[..])),
        ] {
            let path = dir.path().join(format!("{secrets:?}.snap"));
            save(&mut stream(node.shared().clone(), secrets).await, &path).await;
            let restored = Arc::new(MemBackend::new());
            restore_into(&path, &*restored, RestoreAs::Member(identity)).unwrap();
            let (store, _) = MvccStore::open(restored).unwrap();
            let (auth, original) = (store.auth(), node.read(|s| s.store.auth().records(true)));
            assert!(auth.enabled());
            assert_eq!(
                auth.user("root").unwrap().user.roles,
                vec!["root".to_string()]
            );
            assert!(auth.role("r").is_some());
            assert_eq!(auth.token_key(), key, "{secrets:?}");
            assert_eq!(
                auth.records(true).len() + usize::from(key.is_none()),
                original.len()
            );
        }
        node.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leases_and_their_keys_survive_snapshot_and_restore() {
        use crate::identity::Identity;
        use crate::mvcc::{MemBackend, MvccStore};
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::etcdserverpb::{LeaseGrantRequest, LeaseRevokeRequest, PutRequest};

        let node = test_node();
        for (id, ttl) in [(100, 600), (200, 60), (300, 60), (400, 30)] {
            node.propose(Request::LeaseGrant(LeaseGrantRequest { ttl, id }))
                .await
                .unwrap();
        }
        for (key, lease) in [("a", 100), ("b", 100), ("c", 200), ("d", 0), ("e", 300)] {
            node.propose(Request::Put(PutRequest {
                key: key.into(),
                value: b"v".to_vec(),
                lease,
                ..Default::default()
            }))
            .await
            .unwrap();
        }
        // Gone before the capture: neither the lease nor its key come back.
        node.propose(Request::LeaseRevoke(LeaseRevokeRequest { id: 300 }))
            .await
            .unwrap();
        let mut rx = stream(node.shared().clone(), Secrets::Exclude).await;
        // Changed after the capture: the snapshot still has lease 200 and key c.
        node.propose(Request::LeaseRevoke(LeaseRevokeRequest { id: 200 }))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        save(&mut rx, &path).await;
        node.shutdown();

        let st = status(&path).unwrap();
        let restored = Arc::new(MemBackend::new());
        let identity = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        let meta = restore_into(&path, &*restored, RestoreAs::Member(identity)).unwrap();
        assert_eq!(meta.revision, st.revision);
        let (store, _) = MvccStore::open(restored).unwrap();
        let got: Vec<(i64, i64, Vec<&[u8]>)> = store
            .leases()
            .iter()
            .map(|(id, l)| (id, l.ttl, l.keys.iter().map(Vec::as_slice).collect()))
            .collect();
        let want: Vec<(i64, i64, Vec<&[u8]>)> = vec![
            (100, 600, vec![b"a", b"b"]),
            (200, 60, vec![b"c"]),
            (400, 30, vec![]),
        ];
        assert_eq!(got, want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_client_lets_go_of_compaction_after_the_bound() {
        use crate::proto::cairnpb::internal_request::Request;
        use crate::proto::etcdserverpb::PutRequest;

        let node = test_node();
        // Some 2 MiB: more chunks than the channel holds.
        for i in 0..2000 {
            node.propose(Request::Put(PutRequest {
                key: format!("k{i:04}").into_bytes(),
                value: vec![(i % 251) as u8; 1024],
                ..Default::default()
            }))
            .await
            .unwrap();
        }
        let limit = Duration::from_millis(300);
        let started = Instant::now();
        // A client that never reads.
        let mut rx = stream_with(node.shared().clone(), limit, super::Secrets::Exclude).await;
        let gate = node.shared().compaction_gate.clone();
        let held = tokio::time::timeout(Duration::from_secs(60), gate.write())
            .await
            .expect("the stalled stream lets go of the compaction gate");
        assert!(started.elapsed() >= limit, "not before the bound");
        drop(held);

        // Reading at last, the client gets what was queued and then why the stream ended.
        let mut chunks = 0;
        let status = loop {
            match rx.recv().await.expect("the stream ends with an error") {
                Ok(_) => chunks += 1,
                Err(status) => break status,
            }
        };
        assert_eq!(chunks, CHUNKS_AHEAD);
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert!(status.message().contains("took no data"), "{status:?}");
        assert!(rx.recv().await.is_none());
        node.shutdown();
    }

    #[test]
    fn version_1_files_read_and_other_versions_are_refused() {
        let meta = Meta {
            revision: 5,
            compact_revision: 2,
            applied_index: 9,
        };
        let kvs = [(Revision::new(3, 0), vec![0, 1, 2])];
        let v1 = encode_version(1, &meta, &[], &kvs);
        let (m, got) = decode(&v1).expect("version 1 still reads");
        assert_eq!(m, meta);
        assert_eq!(
            got,
            vec![Record::Kv(KvRecord {
                rev: kvs[0].0,
                record: kvs[0].1.clone(),
            })]
        );

        // A version this build does not know is refused by its number.
        let v2 = encode_version(2, &meta, &[], &kvs);
        assert_eq!(decode(&v2).expect("version 2 still reads").1.len(), 1);
        let mut v4 = encode(&meta, &kvs)[..12].to_vec();
        v4[8..12].copy_from_slice(&4u32.to_be_bytes());
        let v4 = seal(v4);
        assert!(matches!(decode(&v4), Err(FormatError::Version(4))));
        assert!(FormatError::Version(4)
            .to_string()
            .contains("this build reads versions 1 to 3"));

        // LEASE records are version 2's, and come before every KV record.
        let lease = LeaseRecord { id: 7, ttl: 60 };
        let mut enc = Encoder::of_version(1);
        let mut out = Vec::new();
        enc.header(&mut out, &meta);
        enc.record(
            &mut out,
            TAG_LEASE,
            &[&7i64.to_be_bytes(), &60i64.to_be_bytes()],
        );
        enc.finish(&mut out);
        assert!(matches!(
            decode(&out),
            Err(FormatError::Record { tag: TAG_LEASE, .. })
        ));
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        enc.header(&mut out, &meta);
        enc.kv(&mut out, kvs[0].0, &kvs[0].1);
        enc.record(
            &mut out,
            TAG_LEASE,
            &[&7i64.to_be_bytes(), &60i64.to_be_bytes()],
        );
        enc.finish(&mut out);
        assert!(matches!(
            decode(&out),
            Err(FormatError::Record { tag: TAG_LEASE, .. })
        ));

        // The END record counts the leases.
        let mut enc = Encoder::new();
        let mut out = Vec::new();
        enc.header(&mut out, &meta);
        enc.lease(&mut out, lease);
        enc.leases = 2;
        enc.finish(&mut out);
        assert!(matches!(
            decode(&out),
            Err(FormatError::Count {
                what: "lease",
                declared: 2,
                found: 1
            })
        ));
    }

    #[test]
    fn damaged_files_are_refused() {
        let meta = Meta {
            revision: 5,
            compact_revision: 2,
            applied_index: 9,
        };
        let bytes = encode(&meta, &[(Revision::new(3, 0), vec![0, 1, 2])]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        std::fs::write(&path, &bytes).unwrap();
        verify(&path).expect("intact file verifies");
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            verify(&path),
            Err(Error::Snapshot {
                source: FormatError::HashMismatch { .. },
                ..
            })
        ));
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(
            verify(&path),
            Err(Error::Snapshot {
                source: FormatError::Size(_),
                ..
            })
        ));
        assert!(matches!(
            decode(&bytes[..bytes.len() - 512]),
            Err(FormatError::Size(_))
        ));
    }
}
