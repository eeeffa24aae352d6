//! Authentication and RBAC against etcd 3.4: etcdctl's user, role and auth commands, and
//! every kind of request granted and denied, compared step by step with etcd (the oracle);
//! watches and leases through etcd-client on both; tokens across a leader change, a restart
//! and a member added on a 3-member cluster; JWT with RS256 and ES256 keys; the client
//! certificate's CN as the user.

use std::path::Path;
use std::time::Duration;

use cairn_testkit::{Cluster, Kind, Member};

use crate::etcdctl::Compat;

/// `etcdctl --user NAME:PASSWORD ARGS...`
fn as_user<'a>(user: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["--user", user];
    v.extend_from_slice(args);
    v
}

/// Users, roles and permissions set up the same way on both servers.
fn set_up_users(s: &mut Compat) {
    s.ok(&["user", "add", "root:rootpw"]);
    s.ok(&["role", "add", "reader"]);
    s.ok(&["role", "grant-permission", "reader", "read", "a"]);
    s.ok(&[
        "role",
        "grant-permission",
        "reader",
        "--prefix=true",
        "read",
        "ro/",
    ]);
    s.ok(&["role", "add", "writer"]);
    s.ok(&[
        "role",
        "grant-permission",
        "writer",
        "readwrite",
        "w1",
        "w5",
    ]);
    s.ok(&[
        "role",
        "grant-permission",
        "writer",
        "--prefix=true",
        "write",
        "wo/",
    ]);
    s.ok(&[
        "role",
        "grant-permission",
        "writer",
        "--from-key",
        "read",
        "zz",
    ]);
    s.ok(&["user", "add", "alice:alicepw"]);
    s.ok(&["user", "grant-role", "alice", "reader"]);
    s.ok(&["user", "add", "bob:bobpw"]);
    s.ok(&["user", "grant-role", "bob", "writer"]);
    s.ok(&["user", "grant-role", "bob", "reader"]);
}

#[test]
fn etcdctl_auth_answers_like_etcd() {
    let mut s = Compat::between(crate::cairn(), crate::etcd());
    s.mask(r"127\.0\.0\.1:\d+", "<endpoint>");
    s.mask(r#""ID":\d+"#, r#""ID":<lease>"#);
    let root = "root:rootpw";

    // --- before auth is on: users and roles are managed by anyone -------------------------
    s.fails(&["auth", "enable"], None, "root user does not exist");
    set_up_users(&mut s);
    s.fails(
        &["user", "add", "alice:again"],
        None,
        "user name already exists",
    );
    s.fails(&["role", "add", "reader"], None, "role name already exists");
    s.fails(
        &["user", "grant-role", "alice", "nosuch"],
        None,
        "role name not found",
    );
    s.fails(
        &["user", "grant-role", "nobody", "reader"],
        None,
        "user name not found",
    );
    s.ok(&["user", "list"]);
    s.ok(&["role", "list"]);
    s.ok(&["role", "get", "writer"]);
    s.ok(&["role", "get", "writer", "-w", "json"]);
    s.ok(&["user", "get", "bob"]);
    s.ok(&["user", "get", "bob", "--detail"]);
    s.ok(&["put", "a", "1"]);
    s.ok(&["put", "ro/x", "2"]);
    s.ok(&["put", "w2", "3"]);
    s.ok(&["put", "secret", "4"]);
    // Credentials are ignored while auth is off (etcdctl's Authenticate fails, it goes on).
    s.ok(&as_user("alice:wrong", &["get", "secret"]));

    // --- enable: etcdctl adds the root role and grants it ---------------------------------
    s.ok(&["auth", "enable"]);
    s.ok(&as_user(root, &["role", "get", "root"]));
    s.ok(&as_user(root, &["user", "get", "root", "-w", "json"]));

    // --- no credentials, wrong ones ------------------------------------------------------
    s.fails(&["get", "a"], None, "user name is empty");
    s.fails(&["put", "a", "x"], None, "user name is empty");
    s.fails(&["user", "list"], None, "user name is empty");
    s.fails(
        &as_user("alice:wrong", &["get", "a"]),
        None,
        "authentication failed",
    );
    s.fails(
        &as_user("nobody:pw", &["get", "a"]),
        None,
        "authentication failed",
    );

    // --- reads: a key, a prefix; denied outside them ------------------------------------
    let alice = "alice:alicepw";
    s.ok(&as_user(alice, &["get", "a"]));
    s.ok(&as_user(alice, &["get", "ro/", "--prefix"]));
    s.ok(&as_user(alice, &["get", "ro/x", "-w", "json"]));
    s.fails(
        &as_user(alice, &["get", "secret"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(alice, &["get", "a", "--prefix"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(alice, &["get", "", "--prefix"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(alice, &["put", "a", "x"]),
        None,
        "permission denied",
    );
    s.fails(&as_user(alice, &["del", "a"]), None, "permission denied");
    s.fails(
        &as_user(alice, &["user", "list"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(alice, &["user", "get", "bob"]),
        None,
        "permission denied",
    );
    s.ok(&as_user(alice, &["user", "get", "alice"]));
    s.ok(&as_user(alice, &["role", "get", "reader"]));
    s.fails(
        &as_user(alice, &["role", "get", "writer"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(alice, &["endpoint", "hashkv"]),
        None,
        "auth: permission denied",
    );
    s.fails(
        &as_user(alice, &["defrag"]),
        None,
        "auth: permission denied",
    );

    // --- writes: a range, a write-only prefix, reads of two roles merged ---------------------
    let bob = "bob:bobpw";
    s.ok(&as_user(bob, &["put", "w1", "x"]));
    s.ok(&as_user(bob, &["put", "w4", "x", "--prev-kv"]));
    s.fails(
        &as_user(bob, &["put", "w5", "x"]),
        None,
        "permission denied",
    );
    s.ok(&as_user(bob, &["get", "w1", "w5"]));
    s.fails(
        &as_user(bob, &["get", "w1", "w6"]),
        None,
        "permission denied",
    );
    s.ok(&as_user(bob, &["put", "wo/k", "x"]));
    s.fails(&as_user(bob, &["get", "wo/k"]), None, "permission denied");
    s.fails(
        &as_user(bob, &["del", "wo/k", "--prev-kv"]),
        None,
        "permission denied",
    );
    s.ok(&as_user(bob, &["del", "wo/k"]));
    s.ok(&as_user(bob, &["get", "zzz", "--from-key"]));
    s.fails(
        &as_user(bob, &["get", "z", "--from-key"]),
        None,
        "permission denied",
    );
    s.ok(&as_user(bob, &["del", "w1", "w3"]));

    // --- txns: compares and both branches ------------------------------------------------
    let txn = |compares: &[&str], success: &[&str], failure: &[&str]| {
        let mut stdin = String::new();
        for block in [compares, success, failure] {
            for line in block {
                stdin.push_str(line);
                stdin.push('\n');
            }
            stdin.push('\n');
        }
        stdin
    };
    let ok_txn = txn(&["value(\"a\") = \"1\""], &["put w2 y"], &["get a"]);
    s.ok_stdin(&as_user(bob, &["txn"]), &ok_txn);
    let denied_compare = txn(&["value(\"secret\") = \"4\""], &["put w2 z"], &[]);
    s.fails(
        &as_user(bob, &["txn"]),
        Some(&denied_compare),
        "permission denied",
    );
    let denied_failure_branch = txn(&["value(\"a\") = \"1\""], &["put w2 z"], &["put secret z"]);
    s.fails(
        &as_user(bob, &["txn"]),
        Some(&denied_failure_branch),
        "permission denied",
    );
    s.ok(&as_user(root, &["get", "w2"]));

    // --- leases: a key of the lease bob cannot write keeps him from revoking it ----------
    s.ok(&as_user(root, &["lease", "grant", "100", "-w", "json"]));
    // Lease IDs differ between servers; the rest of the lease steps go through etcd-client
    // (watch_and_lease_permissions_match_etcd).

    // --- password change, revoke, delete -------------------------------------------------
    s.ok_stdin(
        &as_user(root, &["user", "passwd", "alice", "--interactive=false"]),
        "newpw\n",
    );
    s.fails(
        &as_user(alice, &["get", "a"]),
        None,
        "authentication failed",
    );
    s.ok(&as_user("alice:newpw", &["get", "a"]));
    s.ok(&as_user(
        root,
        &["role", "revoke-permission", "reader", "a"],
    ));
    s.fails(
        &as_user("alice:newpw", &["get", "a"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(root, &["role", "revoke-permission", "reader", "nosuch"]),
        None,
        "permission is not granted to the role",
    );
    s.ok(&as_user(root, &["user", "revoke-role", "bob", "writer"]));
    s.fails(
        &as_user(root, &["user", "revoke-role", "bob", "writer"]),
        None,
        "role is not granted to the user",
    );
    s.fails(
        &as_user(bob, &["put", "w2", "x"]),
        None,
        "permission denied",
    );
    s.fails(
        &as_user(root, &["user", "delete", "root"]),
        None,
        "invalid auth management",
    );
    s.fails(
        &as_user(root, &["role", "delete", "root"]),
        None,
        "invalid auth management",
    );
    s.fails(
        &as_user(root, &["user", "revoke-role", "root", "root"]),
        None,
        "invalid auth management",
    );
    s.ok(&as_user(root, &["role", "delete", "reader"]));
    s.ok(&as_user(root, &["user", "get", "alice"]));
    s.ok(&as_user(root, &["user", "delete", "alice"]));
    s.fails(
        &as_user("alice:newpw", &["get", "a"]),
        None,
        "authentication failed",
    );
    s.ok(&as_user(root, &["user", "list"]));
    s.ok(&as_user(root, &["role", "list"]));

    // --- disable --------------------------------------------------------------------------
    s.fails(
        &as_user(bob, &["auth", "disable"]),
        None,
        "permission denied",
    );
    s.ok(&as_user(root, &["auth", "disable"]));
    s.ok(&["get", "secret"]);
    s.ok(&["user", "list"]);
    s.finish();
}

#[test]
fn compaction_needs_an_authenticated_user_unlike_etcd() {
    // etcd 3.4 lets anyone compact the whole keyspace's history, even without credentials;
    // cairn asks for a user (any user).
    let mut s = Compat::between(crate::cairn(), crate::etcd());
    s.ok(&["user", "add", "root:rootpw"]);
    s.ok(&["put", "k", "v"]);
    s.ok(&["auth", "enable"]);
    for m in [&s.etcd, &s.cairn] {
        let out = m.etcdctl(&["compaction", "1"]).expect("etcdctl");
        match m.kind() {
            Kind::Etcd => assert_eq!(out.code, 0, "etcd 3.4 compacts without credentials"),
            Kind::Cairn => assert!(
                out.error_lines()
                    .iter()
                    .any(|l| l.contains("user name is empty")),
                "{out:?}"
            ),
        }
        let out = m
            .etcdctl(&["--user", "root:rootpw", "compaction", "1"])
            .expect("etcdctl");
        assert!(
            out.code == 0 || out.stderr.contains("compacted"),
            "{:?}: {out:?}",
            m.kind()
        );
    }
}

/// What etcd-client answers, as one comparable line.
fn outcome<T: std::fmt::Debug>(r: Result<T, etcd_client::Error>) -> String {
    match r {
        Ok(_) => "ok".to_string(),
        Err(etcd_client::Error::GRpcStatus(s)) => format!("{:?}: {}", s.code(), s.message()),
        Err(e) => format!("error: {e}"),
    }
}

async fn as_client(m: &Member, user: &str, password: &str) -> etcd_client::Client {
    let opts = etcd_client::ConnectOptions::new().with_user(user, password);
    etcd_client::Client::connect([m.client_url()], Some(opts))
        .await
        .expect("connect with credentials")
}

/// Watches and leases with and without permission, on one server.
async fn watch_and_lease_steps(m: &Member) -> Vec<String> {
    let ctl = |args: &[&str]| {
        let out = m.etcdctl(args).expect("etcdctl");
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    };
    ctl(&["user", "add", "root:rootpw"]);
    ctl(&["role", "add", "watcher"]);
    ctl(&[
        "role",
        "grant-permission",
        "watcher",
        "--prefix=true",
        "readwrite",
        "mine/",
    ]);
    ctl(&["user", "add", "carol:carolpw"]);
    ctl(&["user", "grant-role", "carol", "watcher"]);
    ctl(&["auth", "enable"]);
    let mut steps = Vec::new();
    let mut root = as_client(m, "root", "rootpw").await;
    let mut carol = as_client(m, "carol", "carolpw").await;

    // A watch outside carol's prefix is cancelled at creation; inside it, events arrive.
    let mut denied = carol
        .watch(
            "other/",
            Some(etcd_client::WatchOptions::new().with_prefix()),
        )
        .await
        .expect("watch stream");
    let first = tokio::time::timeout(Duration::from_secs(10), denied.message())
        .await
        .expect("an answer to the denied watch");
    steps.push(match first {
        Ok(Some(r)) => format!(
            "denied watch: created={} canceled={} reason={}",
            r.created(),
            r.canceled(),
            r.cancel_reason()
        ),
        other => format!("denied watch: {:?}", other.map(|_| ())),
    });
    // The put first, the watch from its revision: the event arrives however the watch's
    // creation and the put interleave.
    let put = root.put("mine/k", "v", None).await.expect("put");
    let from = put.header().expect("header").revision();
    let mut mine = carol
        .watch(
            "mine/",
            Some(
                etcd_client::WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(from),
            ),
        )
        .await
        .expect("watch stream");
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match mine.message().await {
                Ok(Some(r)) if !r.events().is_empty() => {
                    let kv = r.events()[0].kv().expect("kv");
                    break format!(
                        "event {}={}",
                        kv.key_str().unwrap(),
                        kv.value_str().unwrap()
                    );
                }
                Ok(Some(_)) => continue,
                other => break format!("watch ended: {:?}", other.map(|_| ())),
            }
        }
    })
    .await
    .expect("an event on the permitted watch");
    steps.push(event);

    // Leases: carol may grant; a lease holding a key she cannot write is not hers to revoke,
    // nor to attach her keys to.
    let lease = root.lease_grant(100, None).await.expect("grant").id();
    root.put(
        "other/k",
        "v",
        Some(etcd_client::PutOptions::new().with_lease(lease)),
    )
    .await
    .expect("put with lease");
    steps.push(format!(
        "carol revokes root's lease: {}",
        outcome(carol.lease_revoke(lease).await)
    ));
    steps.push(format!(
        "carol attaches a key to it: {}",
        outcome(
            carol
                .put(
                    "mine/l",
                    "v",
                    Some(etcd_client::PutOptions::new().with_lease(lease))
                )
                .await
        )
    ));
    let own = carol.lease_grant(100, None).await.expect("carol grants");
    carol
        .put(
            "mine/own",
            "v",
            Some(etcd_client::PutOptions::new().with_lease(own.id())),
        )
        .await
        .expect("put on own lease");
    steps.push(format!(
        "carol revokes her lease: {}",
        outcome(carol.lease_revoke(own.id()).await)
    ));
    steps.push(format!(
        "root revokes: {}",
        outcome(root.lease_revoke(lease).await)
    ));
    steps.push(format!(
        "carol reads other/: {}",
        outcome(
            carol
                .get("other/", Some(etcd_client::GetOptions::new().with_prefix()))
                .await
        )
    ));
    steps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_and_lease_permissions_match_etcd() {
    let (cairn, etcd) = (crate::cairn(), crate::etcd());
    let on_cairn = watch_and_lease_steps(&cairn).await;
    let on_etcd = watch_and_lease_steps(&etcd).await;
    crate::assert_same("watch and lease permissions", &on_cairn, &on_etcd);
}

/// A raw KV client of `url` that sends `token` as etcd's clients do (the `token` metadata).
async fn range_with_token(url: &str, token: &str, key: &str) -> Result<usize, tonic::Status> {
    use cairn_server::proto::etcdserverpb::{kv_client::KvClient, RangeRequest};
    let mut kv = KvClient::connect(url.to_string())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut req = tonic::Request::new(RangeRequest {
        key: key.as_bytes().to_vec(),
        ..Default::default()
    });
    req.metadata_mut()
        .insert("token", token.parse().expect("ascii token"));
    Ok(kv.range(req).await?.into_inner().kvs.len())
}

#[test]
fn a_token_works_on_every_member_across_a_leader_change_a_restart_and_a_new_member() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut cluster = Cluster::builder(Kind::Cairn)
        .size(3)
        .cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
        .start()
        .expect("3-member cairn-server cluster");
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["put", "k", "v"],
        &["auth", "enable"],
    ] {
        let out = cluster.etcdctl(args).expect("etcdctl");
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    }
    let first = cluster.member(0).client_url();
    let token = rt.block_on(async {
        let c = etcd_client::Client::connect([first.clone()], None)
            .await
            .expect("connect");
        c.auth_client()
            .authenticate("root".into(), "rootpw".into())
            .await
            .expect("authenticate")
            .token()
            .to_string()
    });
    let works = |url: &str| {
        rt.block_on(range_with_token(url, &token, "k"))
            .is_ok_and(|n| n == 1)
    };
    // Issued by one member, good on all of them (etcd keeps simple tokens per member).
    for m in cluster.members() {
        assert!(works(&m.client_url()), "token refused by {}", m.name());
    }
    // A forged token is refused with etcd's error.
    let refused = rt
        .block_on(range_with_token(&first, &format!("{token}x"), "k"))
        .unwrap_err();
    assert_eq!(refused.message(), "etcdserver: invalid auth token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    // The leader goes away: once another is elected, the token still works on the others.
    let leader = cluster
        .wait_leader(Duration::from_secs(10))
        .expect("leader");
    cluster.member_mut(leader).stop().expect("stop the leader");
    for i in (0..3).filter(|i| *i != leader) {
        let url = cluster.member(i).client_url();
        cairn_testkit::wait_until(
            "the token to work after the leader change",
            Duration::from_secs(20),
            || works(&url),
        )
        .expect("token after the leader change");
    }
    // The old leader restarts (its data dir, no memory of the token): still good there.
    cluster.member_mut(leader).restart().expect("restart");
    let url = cluster.member(leader).client_url();
    cairn_testkit::wait_until(
        "the token to work on the restarted member",
        Duration::from_secs(20),
        || works(&url),
    )
    .expect("token on the restarted member");
    // A member added now (it catches up from the others): the token works there too.
    let added = cluster.add_member(false).expect("add a member");
    let url = cluster.member(added).client_url();
    cairn_testkit::wait_until(
        "the token to work on the added member",
        Duration::from_secs(30),
        || works(&url),
    )
    .expect("token on the added member");
}

/// An RS256 or ES256 key pair in PKCS#8 PEM files, made by openssl.
fn key_pair(dir: &Path, algorithm: &str) -> (String, String) {
    let private = dir.join(format!("{algorithm}.key"));
    let public = dir.join(format!("{algorithm}.pub"));
    let opts: &[&str] = match algorithm {
        "RS256" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        _ => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let run = |args: Vec<&str>| {
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl runs (scripts/test installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let mut gen = vec!["genpkey"];
    gen.extend_from_slice(opts);
    gen.extend(["-out", private.to_str().unwrap()]);
    run(gen);
    run(vec![
        "pkey",
        "-in",
        private.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (
        public.to_string_lossy().into_owned(),
        private.to_string_lossy().into_owned(),
    )
}

#[test]
fn jwt_tokens_with_rs256_and_es256_keys_answer_like_etcd() {
    let dir = tempfile::tempdir().expect("temp dir");
    for algorithm in ["RS256", "ES256"] {
        let (public, private) = key_pair(dir.path(), algorithm);
        let flag =
            format!("--auth-token=jwt,pub-key={public},priv-key={private},sign-method={algorithm}");
        let cairn = crate::cairn_builder().arg(&flag).start().expect("cairn");
        let etcd = Member::builder(Kind::Etcd)
            .arg(&flag)
            .start()
            .expect("etcd");
        let mut s = Compat::between(cairn, etcd);
        set_up_users(&mut s);
        s.ok(&["auth", "enable"]);
        s.ok(&as_user("alice:alicepw", &["get", "a"]));
        s.fails(
            &as_user("alice:alicepw", &["put", "a", "x"]),
            None,
            "permission denied",
        );
        s.ok(&as_user("bob:bobpw", &["put", "w1", "x"]));
        s.fails(
            &as_user("bob:wrong", &["get", "w1"]),
            None,
            "authentication failed",
        );
        s.ok(&as_user("root:rootpw", &["user", "list"]));
        s.finish();
    }
}

#[test]
fn the_client_certificates_cn_is_the_user_like_etcd() {
    // The testkit PKI's client certificate says CN=testkit-client; etcdctl presents it.
    let pki = cairn_testkit::Pki::new().expect("pki");
    let cairn = crate::cairn_builder()
        .tls(&pki)
        .start()
        .expect("cairn over mTLS");
    let etcd = Member::builder(Kind::Etcd)
        .tls(&pki)
        .start()
        .expect("etcd over mTLS");
    let mut s = Compat::between(cairn, etcd);
    s.mask(r"127\.0\.0\.1:\d+", "<endpoint>");
    s.ok(&["user", "add", "root:rootpw"]);
    s.ok(&["user", "add", "testkit-client", "--no-password"]);
    s.ok(&["role", "add", "app"]);
    s.ok(&[
        "role",
        "grant-permission",
        "app",
        "--prefix=true",
        "readwrite",
        "app/",
    ]);
    s.ok(&["user", "grant-role", "testkit-client", "app"]);
    s.ok(&["put", "app/k", "v"]);
    s.ok(&["put", "other", "v"]);
    s.ok(&["auth", "enable"]);
    // No --user: the certificate names the user.
    s.ok(&["get", "app/", "--prefix"]);
    s.ok(&["put", "app/k2", "v2"]);
    s.fails(&["get", "other"], None, "permission denied");
    s.fails(&["user", "list"], None, "permission denied");
    // A password-less user cannot log in with one.
    s.fails(
        &as_user("testkit-client:x", &["get", "app/k"]),
        None,
        "password was given",
    );
    // A token wins over the certificate.
    s.ok(&as_user("root:rootpw", &["get", "other"]));
    s.ok(&as_user("root:rootpw", &["auth", "disable"]));
    s.finish();
}
