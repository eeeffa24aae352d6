//! `cairn backup` as operators run it: an inventory with a `file://` store, against a real
//! cairn-server member.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cairn, BIN};

fn cairn_backup(inventory: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("backup")
        .args(args)
        .arg("-i")
        .arg(inventory)
        .output()
        .expect("run cairn")
}

#[test]
fn backup_now_list_verify_prune_and_restore() {
    let member = cairn();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = member
        .client_url()
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let inventory = dir.path().join("cairn.toml");
    std::fs::write(
        &inventory,
        format!(
            "[cluster]\nname = \"t\"\nbinary = \"{}\"\ntoken = \"t-1\"\nclient_port = {port}\n\n\
             [[hosts]]\nname = \"a\"\naddress = \"127.0.0.1\"\n\n\
             [backup]\nstore = \"file://store\"\n",
            binary.display()
        ),
    )
    .expect("inventory");
    member.etcdctl(&["put", "k", "v"]).expect("put");
    // Inspection's backups check: none in the store yet, then a fresh one.
    let backups_check = || {
        let out = Command::new(BIN)
            .args(["inspect", "--format", "json", "--window", "100ms", "-i"])
            .arg(&inventory)
            // Its state in the test's directory, not the user's.
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .env_remove("STATE_DIRECTORY")
            .output()
            .expect("run cairn inspect");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
        let check = report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["check"] == "backups")
            .cloned()
            .unwrap_or_else(|| panic!("no backups check in {report}"));
        (
            check["status"].as_str().unwrap_or_default().to_string(),
            check,
        )
    };
    let (status, check) = backups_check();
    assert_eq!(status, "fail", "{check}");
    assert!(
        check["summary"]
            .as_str()
            .is_some_and(|s| s.contains("has no backup")),
        "{check}"
    );
    let now = cairn_backup(&inventory, &["now", "--output", "json"]);
    assert!(
        now.status.success(),
        "{}",
        String::from_utf8_lossy(&now.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&now.stdout).expect("manifest");
    let id = manifest["id"].as_str().expect("id").to_string();
    let (status, check) = backups_check();
    assert_eq!(status, "pass", "{check}");
    assert_eq!(check["figures"][0]["subject"], id.as_str(), "{check}");
    let list = cairn_backup(&inventory, &["list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
    let verify = cairn_backup(&inventory, &["verify", &id]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // No ID: the newest backup.
    let newest = cairn_backup(&inventory, &["verify"]);
    assert!(
        newest.status.success(),
        "{}",
        String::from_utf8_lossy(&newest.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&newest.stdout),
        format!("{id}: every hash checks out\n")
    );
    // A backup holds every key: nobody but its owner reads it (they were 0644 in 0755
    // directories), nor a logical export.
    for entry in walkdir(&dir.path().join("store")) {
        let mode = std::fs::metadata(&entry)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        let want = if entry.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}", entry.display());
    }
    let export = dir.path().join("export.jsonl");
    let exported = Command::new(BIN)
        .args(["backup", "export", "--logical"])
        .arg(&export)
        .arg("-i")
        .arg(&inventory)
        .output()
        .expect("run cairn");
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let mode = std::fs::metadata(&export)
        .expect("export")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Values as base64 (etcd's JSON for bytes), not arrays of numbers four times their size.
    let dump = std::fs::read_to_string(&export).expect("export");
    let entry: serde_json::Value =
        serde_json::from_str(dump.lines().nth(1).expect("an entry")).expect("json");
    assert!(entry["value"].is_string(), "{entry}");
    // A second import into a cluster that holds keys asks first; scripts say --yes.
    let import = |extra: &[&str]| {
        Command::new(BIN)
            .args(["backup", "import"])
            .arg(&export)
            .args(extra)
            .arg("-i")
            .arg(&inventory)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run cairn")
    };
    let refused = import(&[]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.starts_with("cairn: cluster ") && err.contains(" keys, and the import overwrites those the file has too; there is no terminal to ask: run with --yes"),
        "{err}"
    );
    let forced = import(&["--yes"]);
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let prune = cairn_backup(&inventory, &["prune", "--dry-run"]);
    assert_eq!(String::from_utf8_lossy(&prune.stdout), "1 kept\n");
    let out = dir.path().join("restored");
    let restore = Command::new(BIN)
        .args(["backup", "restore", &id, "--out-dir"])
        .arg(&out)
        .arg("-i")
        .arg(&inventory)
        .output()
        .expect("run cairn");
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert!(out.join("a").is_dir());
    let missing = cairn_backup(&inventory, &["verify", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "cairn: no backup nope in the store; `cairn backup list` shows the IDs\n"
    );
}

/// `root` and everything below it.
fn walkdir(root: &Path) -> Vec<PathBuf> {
    let mut all = vec![root.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if all[i].is_dir() {
            let children = std::fs::read_dir(&all[i]).expect("read_dir");
            all.extend(children.map(|e| e.expect("entry").path()));
        }
        i += 1;
    }
    all
}

/// `--to-time yesterday` said only "input contains invalid characters".
#[test]
fn a_time_that_is_not_rfc3339_shows_the_format() {
    let out = Command::new(BIN)
        .args(["backup", "restore", "--to-time", "yesterday"])
        .output()
        .expect("run cairn");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"yesterday\" is not an RFC 3339 time; write it like 20"),
        "{err}"
    );
}
