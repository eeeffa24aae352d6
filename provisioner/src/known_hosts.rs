//! Host keys checked against the inventory's known_hosts file, as OpenSSH does: a recorded key
//! must match; an unrecorded host is refused unless new keys are to be trusted, in which case
//! its key is recorded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use russh::keys::{HashAlg, PublicKey};

use crate::Error;

/// Serialises appends to known_hosts: hosts connect in parallel.
static LEARNING: Mutex<()> = Mutex::new(());

/// What to do with a host that known_hosts does not list.
#[derive(Clone, Debug)]
pub struct HostKeyPolicy {
    /// The known_hosts file.
    pub known_hosts: PathBuf,
    /// Record keys of hosts seen for the first time (`--accept-new-host-keys`).
    pub accept_new: bool,
}

impl HostKeyPolicy {
    /// Accepts `key` for `address:port` or says why not; `host` names the member in errors.
    pub fn check(
        &self,
        host: &str,
        address: &str,
        port: u16,
        key: &PublicKey,
    ) -> Result<(), Error> {
        let addr = known_hosts_name(address, port);
        match russh::keys::check_known_hosts_path(address, port, key, &self.known_hosts) {
            Ok(true) => Ok(()),
            Err(russh::keys::Error::KeyChanged { line }) => Err(Error::HostKeyMismatch {
                host: host.to_string(),
                addr,
                known_hosts: self.known_hosts.clone(),
                line,
            }),
            Err(source) => Err(Error::KnownHosts {
                known_hosts: self.known_hosts.clone(),
                source,
            }),
            Ok(false) if self.accept_new => self.record(&addr, key),
            Ok(false) => Err(Error::UnknownHostKey {
                host: host.to_string(),
                addr,
                known_hosts: self.known_hosts.clone(),
                fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
            }),
        }
    }

    /// Appends `name key` as OpenSSH writes it (the file and its directory are created).
    fn record(&self, name: &str, key: &PublicKey) -> Result<(), Error> {
        let err = |source: std::io::Error| Error::KnownHosts {
            known_hosts: self.known_hosts.clone(),
            source: source.into(),
        };
        let line = key.to_openssh().map_err(|e| Error::KnownHosts {
            known_hosts: self.known_hosts.clone(),
            source: e.into(),
        })?;
        let _guard = LEARNING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = self.known_hosts.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let existing = match std::fs::read(&self.known_hosts) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(err(e)),
        };
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.known_hosts)
            .map_err(err)?;
        let separator = if existing.is_empty() || existing.ends_with(b"\n") {
            ""
        } else {
            "\n"
        };
        file.write_all(format!("{separator}{name} {line}\n").as_bytes())
            .map_err(err)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.known_hosts
    }
}

/// How known_hosts names a host: `address` on port 22, `[address]:port` otherwise.
fn known_hosts_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_string()
    } else {
        format!("[{address}]:{port}")
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// A fresh ed25519 public key, made by ssh-keygen.
    fn key(dir: &Path, name: &str) -> PublicKey {
        let path = dir.join(name);
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success(), "{out:?}");
        russh::keys::load_public_key(path.with_extension("pub")).expect("public key")
    }

    #[test]
    fn unknown_hosts_are_refused_or_learned_and_changed_keys_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let strict = HostKeyPolicy {
            known_hosts: dir.path().join("known_hosts"),
            accept_new: false,
        };
        let (k1, k2) = (key(dir.path(), "k1"), key(dir.path(), "k2"));
        let err = strict
            .check("m1", "127.0.0.11", 2222, &k1)
            .expect_err("unknown");
        assert!(
            err.to_string().starts_with(&format!(
                "m1: [127.0.0.11]:2222 is not in {}; check its key fingerprint (SHA256:",
                strict.path().display()
            )),
            "{err}"
        );
        let learning = HostKeyPolicy {
            accept_new: true,
            ..strict.clone()
        };
        learning
            .check("m1", "127.0.0.11", 2222, &k1)
            .expect("learned");
        strict
            .check("m1", "127.0.0.11", 2222, &k1)
            .expect("now known");
        let err = learning
            .check("m1", "127.0.0.11", 2222, &k2)
            .expect_err("changed");
        let text = std::fs::read_to_string(strict.path()).expect("known_hosts");
        let recorded = 1 + text
            .lines()
            .position(|l| l.starts_with("[127.0.0.11]:2222 ssh-ed25519 "))
            .expect("recorded line");
        assert!(
            matches!(err, Error::HostKeyMismatch { line, .. } if line == recorded),
            "{err}\n{text}"
        );
        // Another port is another host.
        strict
            .check("m1", "127.0.0.11", 22, &k2)
            .expect_err("unknown on 22");
    }
}
