//! The [`Host`] of a `transport = "local"` inventory: this machine, with the member's own
//! directory (`data_dir/<name>`, [`Inventory::local_dir`]) standing in for `/`.
//!
//! Every absolute path the provisioner names is taken relative to that root, unless it already
//! lies under it (the member's data directory does): `/etc/cairn/cairn.env` of member `m1` is
//! `data_dir/m1/etc/cairn/cairn.env`. Files belong to whoever runs cairn; the owner a write
//! names is not applied, as nothing here runs as another user. The "services" are the members
//! `cairn up` runs, started, stopped and asked about over its control socket
//! ([`crate::local_control`]); with no `cairn up` running, every service is inactive and
//! changing one is an error that says to start it.
//!
//! [`Inventory::local_dir`]: cairn_inventory::Inventory::local_dir

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cairn_inventory::{Host as InventoryHost, Inventory};

use crate::desired::sha256_hex;
use crate::host::{Exec, Host, ServiceState, Systemctl, WriteFile};
use crate::local_control::{self, Request};
use crate::Error;
use cairn_pki::local_file::write_atomic;

/// One member's directory on this machine, as a host.
#[derive(Clone, Debug)]
pub struct LocalHost {
    name: String,
    root: PathBuf,
    control: PathBuf,
}

impl LocalHost {
    /// The host of member `host` of a local `inventory`.
    pub fn of(inventory: &Inventory, host: &InventoryHost) -> Self {
        Self::new(
            &host.name,
            inventory.local_dir(host),
            local_control::socket_path(inventory),
        )
    }

    /// Member `name` rooted at `root`, its services behind the control socket `control`.
    pub fn new(name: &str, root: impl Into<PathBuf>, control: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            name: name.to_string(),
            root: std::path::absolute(&root).unwrap_or(root),
            control: control.into(),
        }
    }

    /// The hosts of every member of `inventory`, in inventory order.
    pub fn all(inventory: &Inventory) -> Vec<Self> {
        inventory
            .hosts
            .iter()
            .map(|h| Self::of(inventory, h))
            .collect()
    }

    /// The directory standing in for `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the host path `path` is on this machine.
    pub fn resolve(&self, path: &str) -> PathBuf {
        resolve(&self.root, path)
    }

    fn write_err(&self, path: &Path, source: std::io::Error) -> Error {
        Error::LocalWrite {
            path: path.to_path_buf(),
            source,
        }
    }

    async fn control(&self, request: Request) -> Result<ServiceState, Error> {
        local_control::ask(&self.control, &self.name, request).await
    }
}

/// `path` under `root`, unless it is there already (see the module docs). A relative path is
/// the operator's (a local inventory's, against the working directory), made absolute first.
pub fn resolve(root: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    let p = match p.is_relative() {
        true => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        false => p.to_path_buf(),
    };
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    if p.starts_with(&root) {
        return p;
    }
    root.join(p.strip_prefix("/").unwrap_or(&p))
}

/// The file's bytes, `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::LocalRead {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// `dir` and its parents, `mode` on what is created.
fn create_dirs(dir: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
}

fn ignore_missing(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

impl Host for LocalHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn file_sha256(&self, path: &str) -> Result<Option<String>, Error> {
        Ok(read_optional(&self.resolve(path))?.map(|b| sha256_hex(&b)))
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        read_optional(&self.resolve(path))
    }

    async fn write_file(&self, file: WriteFile<'_>) -> Result<(), Error> {
        let path = self.resolve(file.path);
        if let Some(dir) = path.parent() {
            create_dirs(dir, 0o755).map_err(|e| self.write_err(dir, e))?;
        }
        Ok(write_atomic(&path, file.contents, file.mode)?)
    }

    async fn append_file(&self, path: &str, contents: &[u8]) -> Result<(), Error> {
        let path = self.resolve(path);
        if let Some(dir) = path.parent() {
            create_dirs(dir, 0o700).map_err(|e| self.write_err(dir, e))?;
        }
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(contents))
            .map_err(|e| self.write_err(&path, e))
    }

    async fn create_dir(&self, path: &str, mode: u32) -> Result<(), Error> {
        let path = self.resolve(path);
        create_dirs(&path, mode).map_err(|e| self.write_err(&path, e))
    }

    async fn has_entries(&self, path: &str) -> Result<bool, Error> {
        let path = self.resolve(path);
        match std::fs::read_dir(&path) {
            Ok(mut entries) => Ok(entries.next().is_some()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(false)
            }
            Err(source) => Err(Error::LocalRead { path, source }),
        }
    }

    async fn remove_file(&self, path: &str) -> Result<(), Error> {
        let path = self.resolve(path);
        ignore_missing(std::fs::remove_file(&path)).map_err(|e| self.write_err(&path, e))
    }

    async fn remove_dir_all(&self, path: &str) -> Result<(), Error> {
        let path = self.resolve(path);
        let removed = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
            Ok(m) if m.is_dir() => ignore_missing(std::fs::remove_dir_all(&path)),
            Ok(_) => ignore_missing(std::fs::remove_file(&path)),
        };
        removed.map_err(|e| self.write_err(&path, e))
    }

    async fn service_state(&self, unit: &str) -> Result<ServiceState, Error> {
        self.control(Request::new(unit, None)).await
    }

    async fn systemctl(&self, action: Systemctl, unit: &str) -> Result<(), Error> {
        self.control(Request::new(unit, Some(action)))
            .await
            .map(drop)
    }

    async fn run(&self, argv: &[&str]) -> Result<Exec, Error> {
        let Some((program, args)) = argv.split_first() else {
            return Ok(Exec::default());
        };
        // Run from the operator's working directory: its paths are this machine's (the
        // provisioner runs programs only on data directories, which are the inventory's own
        // paths here). A program installed on the host (an absolute path the member's
        // directory holds, like the `cairn` that `cairn check disk` pushes) runs from there.
        let installed = Path::new(program)
            .is_absolute()
            .then(|| self.resolve(program))
            .filter(|p| p.is_file());
        let out = tokio::process::Command::new(installed.as_deref().unwrap_or(Path::new(program)))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| Error::LocalRun {
                host: self.name.clone(),
                program: (*program).to_string(),
                source,
            })?;
        Ok(Exec {
            code: out.status.code().and_then(|c| u32::try_from(c).ok()),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_land_under_the_root_unless_already_there() {
        let root = Path::new("/tmp/c/m1");
        assert_eq!(
            resolve(root, "/etc/cairn/cairn.env"),
            Path::new("/tmp/c/m1/etc/cairn/cairn.env")
        );
        assert_eq!(resolve(root, "/tmp/c/m1/data"), Path::new("/tmp/c/m1/data"));
        assert_eq!(
            resolve(root, "/tmp/c/m10/data"),
            Path::new("/tmp/c/m1/tmp/c/m10/data")
        );
    }
}
