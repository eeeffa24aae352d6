//! The lifecycle commands on `cairn up`'s local cluster, as on provisioned hosts, under a
//! running writer: a provision with a changed flag (members restarted one at a time), a host
//! added (3 → 4) and removed again (4 → 3), certificate rotation (leaves, then the CA), an
//! upgrade to another build; no acknowledged write is lost and every member is healthy
//! between steps. Then a backup restored onto the members (`backup restore --provision`),
//! and destroy.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cairn_testkit::wait_until;

use crate::up::{etcdctl, healthy_members, inventory, Up, STOP_TIMEOUT, UP_TIMEOUT};
use crate::BIN;

/// Puts `w<i>` one after another until stopped (at most `LIMIT`), keeping the keys whose put
/// was acknowledged.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const LIMIT: usize = 20_000;

impl Writer {
    fn start(dir: &Path, endpoints: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let (dir, endpoints) = (dir.to_path_buf(), endpoints.to_string());
        let thread = std::thread::spawn({
            let (stop, acked) = (stop.clone(), acked.clone());
            move || {
                for i in 0..LIMIT {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("w{i:05}");
                    let put = etcdctl(&dir, &endpoints, &["put", &key, "v"]);
                    if put.success() {
                        acked.lock().expect("acked").push(key);
                    }
                }
            }
        });
        Self {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().expect("acked").len()
    }

    /// Stops it; the acknowledged keys.
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("writer");
        }
        std::mem::take(&mut *self.acked.lock().expect("acked"))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn cairn(args: &[&str], inventory: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("-i")
        .arg(inventory)
        .output()
        .expect("run cairn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn edit(inventory: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    std::fs::write(inventory, f(text)).expect("inventory");
}

/// Waits for `n` healthy members among `endpoints` and for the writer to get on.
fn settled(dir: &Path, endpoints: &str, n: usize, writer: &Writer, up: &Up) {
    wait_until(&format!("{n} healthy members"), UP_TIMEOUT, || {
        healthy_members(dir, endpoints) == n
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
    let before = writer.acked();
    wait_until("the writer to get on", UP_TIMEOUT, || {
        writer.acked() > before
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
}

fn member_names(dir: &Path, endpoints: &str) -> Vec<String> {
    let list = etcdctl(dir, endpoints, &["member", "list", "-w", "json"]);
    assert!(list.success(), "{list:?}");
    let json: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let mut names: Vec<String> = json["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn every_lifecycle_command_works_on_the_local_cluster_under_a_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    let mut up = Up::ready(&inventory);
    let all = up.endpoints();
    let writer = Writer::start(dir.path(), &all);
    settled(dir.path(), &all, 3, &writer, &up);

    // A changed flag: every member restarted, one at a time.
    edit(&inventory, |t| {
        t.replace(
            "transport = \"local\"\n",
            "transport = \"local\"\nextra_flags = [\"--snapshot-count=20000\"]\n",
        )
    });
    let (code, out) = cairn(&["provision", "--yes"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    let restarts = up.output().matches("stopped (").count();
    assert_eq!(restarts, 3, "{}", up.output());
    let unit = std::fs::read_to_string(
        dir.path()
            .join("members/m1/etc/systemd/system/cairn.service"),
    )
    .expect("unit");
    assert!(unit.contains("--snapshot-count=20000"), "{unit}");
    settled(dir.path(), &all, 3, &writer, &up);
    let (code, out) = cairn(&["provision", "--plan"], &inventory);
    assert_eq!(code, 0, "{out}");
    for m in ["m1", "m2", "m3"] {
        assert!(out.contains(&format!("{m}: no changes")), "{out}");
    }

    // 3 → 4: a host added to the inventory joins.
    let port = |_: ()| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port()
    };
    let (client, peer) = (port(()), port(()));
    let four = format!(
        "\n[[hosts]]\nname = \"m4\"\naddress = \"127.0.0.1\"\nclient_port = {client}\npeer_port = {peer}\n"
    );
    edit(&inventory, |t| t + &four);
    let (code, out) = cairn(&["provision", "--yes"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    assert_eq!(member_names(dir.path(), &all), ["m1", "m2", "m3", "m4"]);
    let with_four = format!("{all},https://127.0.0.1:{client}");
    settled(dir.path(), &with_four, 4, &writer, &up);

    // 4 → 3: removed with --allow-remove only.
    edit(&inventory, |t| t.replace(&four, ""));
    let (code, out) = cairn(&["provision", "--yes"], &inventory);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--allow-remove"), "{out}");
    let (code, out) = cairn(&["provision", "--yes", "--allow-remove"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    assert_eq!(member_names(dir.path(), &all), ["m1", "m2", "m3"]);
    settled(dir.path(), &all, 3, &writer, &up);

    // Certificates: new leaves from the same CA, then a new CA, each rolled out.
    let pushed = dir.path().join("members/m2/etc/cairn/pki/member.pem");
    let before = std::fs::read(&pushed).expect("certificate");
    let (code, out) = cairn(&["certs", "rotate", "--yes"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    let rotated = std::fs::read(&pushed).expect("certificate");
    assert_ne!(rotated, before, "the member certificate was not rotated");
    settled(dir.path(), &all, 3, &writer, &up);
    let ca = std::fs::read(dir.path().join("pki/ca.pem")).expect("ca");
    let (code, out) = cairn(&["certs", "rotate", "--ca", "--yes"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    assert_ne!(
        std::fs::read(dir.path().join("pki/ca.pem")).expect("ca"),
        ca,
        "the CA was not replaced"
    );
    assert_eq!(
        std::fs::read(dir.path().join("members/m2/etc/cairn/pki/ca.pem")).expect("pushed ca"),
        std::fs::read(dir.path().join("pki/ca.pem")).expect("ca")
    );
    settled(dir.path(), &all, 3, &writer, &up);

    // An upgrade: another build of the server rolls to every member.
    let other = dir.path().join("cairn-server-next");
    let mut build = std::fs::read(cairn_testkit::cairn_server_binary().expect("binary"))
        .expect("read the binary");
    build.extend_from_slice(b"\0another build");
    std::fs::write(&other, &build).expect("write the other build");
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    edit(&inventory, |t| {
        let start = t.find("binary = \"").expect("binary line");
        let end = start + t[start..].find('\n').expect("end of line");
        format!(
            "{}binary = \"{}\"{}",
            &t[..start],
            other.display(),
            &t[end..]
        )
    });
    let restarts = up.output().matches("for a restart").count();
    let (code, out) = cairn(&["provision", "--yes"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    assert_eq!(up.output().matches("for a restart").count(), restarts + 3);
    for m in ["m1", "m2", "m3"] {
        let pushed = dir
            .path()
            .join(format!("members/{m}/usr/local/bin/cairn-server"));
        assert_eq!(
            std::fs::read(&pushed).expect("pushed").len(),
            build.len(),
            "{m}"
        );
    }
    settled(dir.path(), &all, 3, &writer, &up);

    // Every acknowledged write is there.
    let acked = writer.finish();
    assert!(acked.len() > 10, "only {} writes acknowledged", acked.len());
    let stored = |what: &str| {
        let keys = etcdctl(dir.path(), &all, &["get", "w", "--prefix", "--keys-only"]);
        assert!(keys.success(), "{what}: {keys:?}");
        let stored: std::collections::HashSet<String> = keys
            .stdout
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        let lost: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
        assert!(
            lost.is_empty(),
            "{what}: acknowledged writes lost: {lost:?}"
        );
    };
    stored("after the lifecycle");

    // A backup, a write after it, then the cluster restored from the backup onto the members.
    edit(&inventory, |t| {
        format!(
            "{t}\n[backup]\nstore = \"file://{}\"\n",
            dir.path().join("backups").display()
        )
    });
    let (code, out) = cairn(&["backup", "now"], &inventory);
    assert_eq!(code, 0, "{out}");
    let late = etcdctl(dir.path(), &all, &["put", "after-the-backup", "x"]);
    assert!(late.success(), "{late:?}");
    let restored = dir.path().join("restored");
    let out_dir = restored.display().to_string();
    let (code, out) = cairn(
        &[
            "backup",
            "restore",
            "--provision",
            "--yes",
            "--out-dir",
            &out_dir,
        ],
        &inventory,
    );
    assert_eq!(code, 0, "{out}\n{}", up.output());
    wait_until("3 healthy restored members", UP_TIMEOUT, || {
        healthy_members(dir.path(), &all) == 3
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
    stored("after the restore");
    let late = etcdctl(
        dir.path(),
        &all,
        &["get", "after-the-backup", "--keys-only"],
    );
    assert_eq!(
        late.stdout.trim(),
        "",
        "a write after the backup survived the restore"
    );

    // Destroy: every member stopped and its files gone; cairn up keeps waiting.
    let (code, out) = cairn(&["destroy", "--yes", "--purge"], &inventory);
    assert_eq!(code, 0, "{out}\n{}", up.output());
    assert!(!dir.path().join("members/m1/etc/cairn/cairn.env").exists());
    assert!(
        !dir.path().join("members/m1/data").exists()
            || std::fs::read_dir(dir.path().join("members/m1/data"))
                .expect("data")
                .next()
                .is_none()
    );
    assert_eq!(healthy_members(dir.path(), &all), 0);

    up.signal("-INT");
    let exit = up.wait_exit(STOP_TIMEOUT);
    assert!(exit.success(), "{exit:?}\n{}", up.output());
}
