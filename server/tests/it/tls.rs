//! Client TLS with etcd's flags: https listeners, client certificates required with
//! `--client-cert-auth`; etcdctl over TLS answers the same as against etcd.

use cairn_testkit::{Kind, Member, Pki};

use super::{assert_same, cairn_builder};

fn transcript(m: &Member) -> Vec<String> {
    let steps: [&[&str]; 4] = [
        &["put", "tls-key", "secret"],
        &["get", "tls-key"],
        &["get", "tls-key", "-w", "json"],
        &["del", "tls-key"],
    ];
    steps
        .iter()
        .map(|args| {
            let out = m.etcdctl(args).expect("etcdctl");
            let masked = regex::Regex::new(r#""(cluster_id|member_id|raft_term)":\d+"#)
                .expect("regex")
                .replace_all(&out.stdout, "\"$1\":X")
                .into_owned();
            format!("{args:?} -> {} {masked} {:?}", out.code, out.error_lines())
        })
        .collect()
}

#[test]
fn mutual_tls_like_etcd() {
    let pki = Pki::new().expect("pki");
    let cairn = cairn_builder().tls(&pki).start().expect("cairn over TLS");
    let etcd = Member::builder(Kind::Etcd)
        .tls(&pki)
        .start()
        .expect("etcd over TLS");
    assert!(cairn.client_url().starts_with("https://"));
    assert_same("etcdctl over mTLS", &transcript(&cairn), &transcript(&etcd));

    // Without a client certificate the server refuses the connection.
    let out = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &cairn.client_url(), "--cacert"])
        .arg(pki.ca_file())
        .args([
            "--dial-timeout",
            "2s",
            "--command-timeout",
            "3s",
            "get",
            "x",
        ])
        .output()
        .expect("etcdctl");
    assert!(
        !out.status.success(),
        "a client without a certificate was served"
    );
}
