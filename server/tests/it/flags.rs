//! etcd's flags and `ETCD_*` variables: bad input is one clear line and exit code 2; an etcd
//! env file alone configures a member.

use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_testkit::{free_port, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_cairn-server");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("run cairn-server");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_flags_and_bad_values_exit_2_with_one_line() {
    for args in [
        &["--no-such-flag"][..],
        &["--max-request-bytes", "lots"],
        &["--initial-cluster-state", "maybe"],
        &["--initial-cluster", "default"],
        &["--log-level", "loud"],
    ] {
        let (code, stderr) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?} gave: {stderr}"
        );
        assert!(stderr.starts_with("cairn-server: "), "{stderr}");
    }
}

#[test]
fn contradictory_flags_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("d");
    let data = data.to_str().expect("utf-8 path");
    let (code, stderr) = run(&["--name", "x", "--data-dir", data]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("--initial-cluster has no member named \"x\""),
        "{stderr}"
    );
    let (code, stderr) = run(&[
        "--data-dir",
        data,
        "--listen-client-urls",
        "https://127.0.0.1:1",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("--cert-file"), "{stderr}");
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "--version"] {
        let out = Command::new(BIN).arg(flag).output().expect("run");
        assert!(out.status.success());
        assert!(!out.stdout.is_empty());
    }
}

/// Kills the child when the test ends, passing or failing.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_etcd_env_file_alone_configures_the_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = std::net::Ipv4Addr::LOCALHOST;
    let (cp, pp) = (free_port(ip).expect("port"), free_port(ip).expect("port"));
    let log = std::fs::File::create(dir.path().join("log")).expect("log file");
    let client = format!("http://127.0.0.1:{cp}");
    let peer = format!("http://127.0.0.1:{pp}");
    let child = Command::new(BIN)
        .env_clear()
        .env("ETCD_NAME", "envnode")
        .env("ETCD_DATA_DIR", dir.path().join("data"))
        .env("ETCD_LISTEN_CLIENT_URLS", &client)
        .env("ETCD_ADVERTISE_CLIENT_URLS", &client)
        .env("ETCD_LISTEN_PEER_URLS", &peer)
        .env("ETCD_INITIAL_ADVERTISE_PEER_URLS", &peer)
        .env("ETCD_INITIAL_CLUSTER", format!("envnode={peer}"))
        .env("ETCD_INITIAL_CLUSTER_TOKEN", "env-token")
        .env("ETCD_INITIAL_CLUSTER_STATE", "new")
        .env("ETCD_CLIENT_CERT_AUTH", "false")
        .env("ETCD_LOG_LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    let _guard = Child(child);
    let log_path = dir.path().join("log");
    wait_until(
        "cairn-server ready from env",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log_path)
                .is_ok_and(|l| l.contains("ready to serve client requests"))
        },
    )
    .expect("ready");
    let mut c = etcd_client::Client::connect([client.as_str()], None)
        .await
        .expect("connect");
    c.put("from", "env", None).await.expect("put");
    let got = c.get("from", None).await.expect("get");
    assert_eq!(got.kvs()[0].value(), b"env");
    // The IDs are etcd's derivation from these variables, not defaults.
    let header = got.header().expect("header");
    let want = cairn_server::member_id(std::slice::from_ref(&peer), "env-token");
    assert_eq!(header.member_id(), want);
    assert!(dir.path().join("data/member").is_dir());
}
