//! Finding (or building) the `cairn-server` binary for tests of other packages.

use std::time::Duration;

use crate::{run_command, Error};
use std::io;

/// The `cairn-server` binary for tests of other packages (which, unlike the server's own
/// tests, get no `CARGO_BIN_EXE_cairn-server`): `cairn-server` next to the running test
/// binary's profile directory (`target/debug/` for `target/debug/deps/it-...`), built with
/// `cargo build -p cairn-server` (release for a release test binary) once per process if it
/// is missing. `cargo test --workspace` builds it before any test runs; when only one
/// package is tested, an existing binary is used as it is (rebuilding it there could switch
/// the dependencies' feature set and recompile them).
pub fn cairn_server_binary() -> Result<std::path::PathBuf, Error> {
    // Tests run in parallel: one of them builds, the others wait for it.
    static FOUND: std::sync::Mutex<Option<std::path::PathBuf>> = std::sync::Mutex::new(None);
    let mut found = FOUND
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = found.as_ref() {
        return Ok(path.clone());
    }
    let path = locate_or_build_cairn_server()?;
    *found = Some(path.clone());
    Ok(path)
}

/// How long building cairn-server may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

fn locate_or_build_cairn_server() -> Result<std::path::PathBuf, Error> {
    let exe =
        std::env::current_exe().map_err(|e| Error::io("finding the running test binary", e))?;
    // target/<profile>/deps/<test binary>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| {
            Error::io(
                format!("{} has no profile directory", exe.display()),
                io::ErrorKind::NotFound.into(),
            )
        })?
        .to_path_buf();
    let binary = profile_dir.join("cairn-server");
    if binary.is_file() {
        return Ok(binary);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "-p", "cairn-server", "--bin", "cairn-server"]);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    if let Some(target) = profile_dir.parent() {
        cmd.arg("--target-dir").arg(target);
    }
    let command = format!("{cmd:?}");
    let out = run_command(cmd, BUILD_TIMEOUT)?;
    if !out.success() || !binary.is_file() {
        return Err(Error::Build {
            command,
            code: out.code,
            stderr: out.stderr,
        });
    }
    Ok(binary)
}
