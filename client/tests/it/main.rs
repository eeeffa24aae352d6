//! The client crate against real servers: cairn-server and etcd 3.4, each with TLS and
//! client-certificate auth on its client port, asked the same questions.

use std::time::Duration;

use cairn_client::{Connector, HttpClient, ServedChainReader, TlsFiles};
use cairn_testkit::{Kind, Member, Pki};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

const TIMEOUT: Duration = Duration::from_secs(10);

fn member(kind: Kind, pki: &Pki) -> Member {
    let mut b = Member::builder(kind).tls(pki);
    if kind == Kind::Cairn {
        b = b.cairn_binary(cairn_testkit::cairn_server_binary().expect("cairn-server binary"));
    }
    b.start().expect("start member")
}

fn files(pki: &Pki) -> TlsFiles {
    TlsFiles {
        ca: pki.ca_file(),
        cert: pki.client_cert_file(),
        key: pki.client_key_file(),
    }
}

/// What the crate learns about one member, comparable across servers.
#[derive(Debug, PartialEq)]
struct Facts {
    leader_found: bool,
    put_and_got: bool,
    healthy: bool,
    has_resident_memory: bool,
    fsync_p99_known: bool,
    served_leaf_is_the_members: bool,
    https_without_a_client_certificate_refused: bool,
}

async fn facts(m: &Member, pki: &Pki) -> Facts {
    let tls = files(pki);
    let connector = Connector::new(Some(&tls), None, TIMEOUT, TIMEOUT).expect("connector");
    let endpoint = m.client_url();
    let leader = connector
        .leader(std::slice::from_ref(&endpoint))
        .await
        .expect("leader");
    let mut c = connector.connect(&endpoint).await.expect("connect");
    connector
        .timed(&endpoint, "a put", c.put("k", "v", None))
        .await
        .expect("put");
    let got = connector
        .timed(&endpoint, "a get", c.get("k", None))
        .await
        .expect("get");

    let http = HttpClient::new(Some(&tls), TIMEOUT).expect("http client");
    let health = http.health(&endpoint).await.expect("health");
    let metrics = http.metrics(&endpoint).await.expect("metrics");

    let served = ServedChainReader::new(Some(&tls), TIMEOUT)
        .expect("reader")
        .chain(&endpoint)
        .await
        .expect("served chain");
    let leaf = CertificateDer::pem_file_iter(pki.server_cert_file())
        .expect("server cert")
        .next()
        .expect("a certificate")
        .expect("pem");

    let anonymous = HttpClient::new(None, TIMEOUT).expect("http client");
    let refused = anonymous.metrics(&endpoint).await.is_err();

    Facts {
        leader_found: leader == endpoint,
        put_and_got: got.kvs().first().map(|kv| kv.value()) == Some(b"v".as_slice()),
        healthy: health.healthy,
        has_resident_memory: metrics
            .gauge("process_resident_memory_bytes")
            .is_some_and(|b| b > 0.0),
        fsync_p99_known: metrics
            .quantile("etcd_disk_wal_fsync_duration_seconds", 0.99)
            .is_some(),
        served_leaf_is_the_members: served.first().map(Vec::as_slice) == Some(leaf.as_ref()),
        https_without_a_client_certificate_refused: refused,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cairn_server_and_etcd_are_reached_alike_over_tls() {
    let pki = Pki::new().expect("pki");
    let cairn = member(Kind::Cairn, &pki);
    let etcd = member(Kind::Etcd, &pki);
    let ours = facts(&cairn, &pki).await;
    let theirs = facts(&etcd, &pki).await;
    assert_eq!(ours, theirs, "cairn-server and etcd 3.4 differ");
    assert!(
        ours.leader_found && ours.put_and_got && ours.healthy,
        "{ours:?}"
    );
    assert!(ours.has_resident_memory && ours.fsync_p99_known, "{ours:?}");
    assert!(ours.served_leaf_is_the_members, "{ours:?}");
    assert!(ours.https_without_a_client_certificate_refused, "{ours:?}");
}

#[tokio::test]
async fn an_unreachable_member_is_one_error_naming_it() {
    // A port nothing listens on (bound, then released).
    let port = cairn_testkit::free_port(std::net::Ipv4Addr::LOCALHOST).expect("port");
    let endpoint = format!("http://127.0.0.1:{port}");
    let connector = Connector::plain(Duration::from_secs(2));
    let err = connector
        .leader(std::slice::from_ref(&endpoint))
        .await
        .expect_err("no leader");
    assert!(err.to_string().contains(&endpoint), "{err}");
    let http = HttpClient::new(None, Duration::from_secs(2)).expect("http");
    let err = http.metrics(&endpoint).await.expect_err("nothing listens");
    assert!(err.to_string().contains(&endpoint), "{err}");
}
