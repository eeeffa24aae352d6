//! One contract for every [`Host`] with a real file system: a real sshd host in a mount
//! namespace, and a local member's directory. Each write is checked on the disk underneath,
//! through `on_disk`, which says where a host path really is.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cairn_provisioner::converge::Quiet;
use cairn_provisioner::host::{Host, WriteFile};
use cairn_provisioner::local_host::LocalHost;
use cairn_provisioner::ssh::Timeouts;
use cairn_provisioner::transport::connect_all;
use cairn_testkit::hosts::Hosts;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

async fn write<H: Host>(host: &H, path: &str, contents: &[u8], mode: u32) {
    host.write_file(WriteFile {
        path,
        contents,
        mode,
        owner: "root:root",
    })
    .await
    .unwrap_or_else(|e| panic!("{path}: {e}"));
}

async fn contract<H: Host>(host: &H, on_disk: impl Fn(&str) -> PathBuf) {
    let file = "/etc/cairn/contract/member-key.pem";
    assert_eq!(host.file_sha256(file).await.expect("sha"), None);
    assert_eq!(host.read_file(file).await.expect("read"), None);
    write(host, file, b"secret", 0o600).await;
    assert_eq!(std::fs::read(on_disk(file)).expect("on disk"), b"secret");
    assert_eq!(mode(&on_disk(file)), 0o600);
    assert_eq!(
        host.read_file(file).await.expect("read").as_deref(),
        Some(&b"secret"[..])
    );
    assert_eq!(
        host.file_sha256(file).await.expect("sha").as_deref(),
        Some("2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b")
    );
    // Over an existing file: replaced whole, with the new mode, no temporary left.
    write(host, file, b"public", 0o644).await;
    assert_eq!(std::fs::read(on_disk(file)).expect("on disk"), b"public");
    assert_eq!(mode(&on_disk(file)), 0o644);
    let dir = on_disk("/etc/cairn/contract");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["member-key.pem"]);

    let log = "/var/lib/cairn/contract/pieces";
    host.append_file(log, b"one,").await.expect("append");
    host.append_file(log, b"two").await.expect("append");
    assert_eq!(std::fs::read(on_disk(log)).expect("pieces"), b"one,two");
    assert_eq!(mode(&on_disk(log)), 0o600);

    let data = "/var/lib/cairn/contract/data";
    assert!(!host.has_entries(data).await.expect("missing"));
    host.create_dir(data, 0o700).await.expect("mkdir");
    assert_eq!(mode(&on_disk(data)), 0o700);
    assert!(!host.has_entries(data).await.expect("empty"));
    host.create_dir(data, 0o755).await.expect("mkdir again");
    assert_eq!(
        mode(&on_disk(data)),
        0o700,
        "an existing directory keeps its mode"
    );
    write(host, &format!("{data}/member/db"), b"db", 0o600).await;
    assert!(host.has_entries(data).await.expect("has data"));

    host.remove_dir_all(data).await.expect("rm -r");
    assert!(!on_disk(data).exists());
    host.remove_dir_all(data).await.expect("rm -r of nothing");
    host.remove_file(file).await.expect("rm");
    assert!(!on_disk(file).exists());
    host.remove_file(file).await.expect("rm of nothing");

    let out = host
        .run(&["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .expect("run");
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_host_keeps_the_host_contract() {
    let hosts = Hosts::start(1).expect("hosts");
    let path = hosts
        .write_inventory("cairn", Path::new("/bin/true"), "")
        .expect("inventory");
    let inv = cairn_inventory::Inventory::load(&path).expect("inventory");
    let connected = connect_all(&inv, true, Timeouts::default(), 1, &Quiet, "nothing done")
        .await
        .expect("connect");
    let h = &hosts.hosts[0];
    contract(&connected[0], |p| h.path(p)).await;
    for host in connected {
        host.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_host_keeps_the_host_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("m1");
    let host = LocalHost::new("m1", &root, dir.path().join("control.sock"));
    contract(&host, |p| host.resolve(p)).await;
    assert!(host.resolve("/etc/cairn/x").starts_with(&root));
}
