//! The provisioner against real things: golden copies of the rendered files, systemd's own
//! unit checker, Debian's etcd 3.4 reading the env file, and (`provision`, `lifecycle`,
//! `upgrade`, `destroy`, certificate rotation in `rotate`, `certs status` in `cert_status`,
//! restored data in `restore`)
//! real sshd hosts in mount namespaces on 127.0.0.11 onwards.

mod cert_status;
mod destroy;
mod etcd_env;
mod golden;
mod host_contract;
mod lifecycle;
mod live_client;
mod provision;
mod restore;
mod rotate;
mod unit_verify;
mod upgrade;

use std::path::{Path, PathBuf};

use cairn_inventory::Inventory;

/// The workspace root.
pub(crate) fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Every inventory the rendered files are kept for: the examples and this crate's own.
pub(crate) fn inventories() -> Vec<(String, Inventory)> {
    let mut paths: Vec<PathBuf> = ["examples", "provisioner/tests/inventories"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(checkout().join(dir)).expect("inventory dir"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            let inv = Inventory::load(&p).unwrap_or_else(|e| panic!("{e}"));
            (name, inv)
        })
        .collect()
}

/// Every file directly in `dir` with its contents, sorted.
pub(crate) fn dir_snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The `cairn` binary next to this test binary's profile directory (`target/debug/cairn`),
/// built with `cargo build -p cairn-cli` once per process when missing. `cargo test
/// --workspace` builds it before any test runs; with `-p cairn-provisioner` alone an existing
/// binary is used as it is.
pub(crate) fn cairn_cli_binary() -> PathBuf {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary");
            let profile = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>/deps");
            let binary = profile.join("cairn");
            if !binary.is_file() {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let mut cmd = std::process::Command::new(cargo);
                cmd.args(["build", "-p", "cairn-cli", "--bin", "cairn"]);
                if profile.file_name().is_some_and(|p| p == "release") {
                    cmd.arg("--release");
                }
                if let Some(target) = profile.parent() {
                    cmd.arg("--target-dir").arg(target);
                }
                let out = cairn_testkit::run_command(cmd, std::time::Duration::from_secs(1800))
                    .expect("cargo build");
                assert!(out.success() && binary.is_file(), "{}", out.stderr);
            }
            binary
        })
        .clone()
}
