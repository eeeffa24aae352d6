//! How a connection proves who it is, as OpenSSH does: the keys of the operator's ssh-agent
//! first (a passphrase-protected key added there needs nothing more), then the login's key
//! files. A key file is read and decrypted once a run; an encrypted one is opened with
//! `[ssh] passphrase_file`, else with what the operator types at the binary's prompt
//! ([`set_passphrase_prompt`]), asked once for every host.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use russh::client::{Handle, Handler};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use tokio::time::timeout;

use crate::login::Login;
use crate::Error;

/// Asks the operator for a key's passphrase; the binary provides it (a library has no
/// terminal of its own).
pub trait PassphrasePrompt: Send + Sync {
    /// The passphrase of the key in `path`, or `None` when nobody can be asked.
    fn passphrase(&self, path: &Path) -> Option<String>;
}

static PROMPT: OnceLock<Box<dyn PassphrasePrompt>> = OnceLock::new();

/// Sets the prompt for encrypted keys, once per process; later calls are ignored.
pub fn set_passphrase_prompt(prompt: Box<dyn PassphrasePrompt>) {
    let _ = PROMPT.set(prompt);
}

/// The credentials of one run, shared by its connections.
#[derive(Debug)]
pub struct Auth {
    agent: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    /// Key files read so far; `None` for one that does not exist.
    keys: Mutex<HashMap<PathBuf, Option<Arc<PrivateKey>>>>,
}

impl Auth {
    /// From `[ssh]`: the agent at `$SSH_AUTH_SOCK` unless `agent = false`.
    pub fn new(inventory: &cairn_inventory::Inventory) -> Self {
        let agent = inventory
            .ssh
            .agent
            .then(|| std::env::var_os("SSH_AUTH_SOCK"))
            .flatten()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        Self {
            agent,
            passphrase_file: inventory.ssh.passphrase_file.clone(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Logs the session in as `login.user`: every agent key, then every key file that exists;
    /// each exchange with the server or the agent within `limit`.
    pub async fn authenticate<H: Handler>(
        &self,
        handle: &mut Handle<H>,
        login: &Login,
        limit: Duration,
    ) -> Result<(), Error> {
        let ssh = |source| Error::Ssh {
            host: login.name.clone(),
            source,
        };
        let timed = || Error::Timeout {
            host: login.name.clone(),
            what: format!("logging in to {}", login.addr()),
            after: limit,
        };
        let rsa_hash = timeout(limit, handle.best_supported_rsa_hash())
            .await
            .map_err(|_| timed())?
            .map_err(ssh)?
            .flatten();
        let mut tried = Vec::new();
        if let Some(socket) = &self.agent {
            match timeout(limit, AgentClient::connect_uds(socket)).await {
                Ok(Ok(mut agent)) => {
                    let identities = timeout(limit, agent.request_identities())
                        .await
                        .map_err(|_| timed())?
                        .map_err(|source| Error::Agent {
                            socket: socket.clone(),
                            source,
                        })?;
                    for identity in identities {
                        let AgentIdentity::PublicKey { key, comment } = identity else {
                            continue;
                        };
                        let hash = key.algorithm().is_rsa().then_some(rsa_hash).flatten();
                        let result = timeout(
                            limit,
                            handle.authenticate_publickey_with(&login.user, key, hash, &mut agent),
                        )
                        .await
                        .map_err(|_| timed())?
                        .map_err(|source| Error::AgentSign {
                            host: login.name.clone(),
                            source,
                        })?;
                        if result.success() {
                            return Ok(());
                        }
                        tried.push(format!("agent key {comment}"));
                    }
                }
                // A stale $SSH_AUTH_SOCK (an agent of a closed session): the files remain.
                Ok(Err(_)) | Err(_) => tried.push(format!("no agent at {}", socket.display())),
            }
        }
        let mut files = 0;
        for path in &login.identities {
            let Some(key) = self.key(path)? else {
                continue;
            };
            files += 1;
            let result = timeout(
                limit,
                handle
                    .authenticate_publickey(&login.user, PrivateKeyWithHashAlg::new(key, rsa_hash)),
            )
            .await
            .map_err(|_| timed())?
            .map_err(ssh)?;
            if result.success() {
                return Ok(());
            }
            tried.push(path.display().to_string());
        }
        if files == 0 && tried.iter().all(|t| t.starts_with("no agent")) {
            return Err(Error::NoSshKey {
                host: login.name.clone(),
                looked: login
                    .identities
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Err(Error::AuthRejected {
            host: login.name.clone(),
            target: login.target(),
            tried: tried.join(", "),
        })
    }

    /// Reads the key in `path` now, so a file that is no key fails before any host is
    /// contacted; an encrypted one is left to be opened when a login needs it (the agent may
    /// hold it).
    pub fn check_identity(&self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::SshKeyRead {
            path: path.to_path_buf(),
            source,
        })?;
        match russh::keys::decode_secret_key(&text, None) {
            Ok(key) => {
                self.keys
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(path.to_path_buf(), Some(Arc::new(key)));
                Ok(())
            }
            Err(russh::keys::Error::KeyIsEncrypted) => Ok(()),
            Err(source) => Err(Error::SshKey {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The key in `path`, decrypted; `None` when there is no such file.
    fn key(&self, path: &Path) -> Result<Option<Arc<PrivateKey>>, Error> {
        // Held while a passphrase is asked, so parallel connections ask once.
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = keys.get(path) {
            return Ok(key.clone());
        }
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                keys.insert(path.to_path_buf(), None);
                return Ok(None);
            }
            Err(source) => {
                return Err(Error::SshKeyRead {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let bad = |source| Error::SshKey {
            path: path.to_path_buf(),
            source,
        };
        let key = match russh::keys::decode_secret_key(&text, None) {
            Ok(key) => key,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                let passphrase = self.passphrase(path)?.ok_or_else(|| Error::KeyEncrypted {
                    path: path.to_path_buf(),
                })?;
                russh::keys::decode_secret_key(&text, Some(&passphrase)).map_err(bad)?
            }
            Err(source) => return Err(bad(source)),
        };
        let key = Arc::new(key);
        keys.insert(path.to_path_buf(), Some(key.clone()));
        Ok(Some(key))
    }

    /// `passphrase_file`'s first line, else the prompt's answer.
    fn passphrase(&self, key: &Path) -> Result<Option<String>, Error> {
        if let Some(file) = &self.passphrase_file {
            let text = std::fs::read_to_string(file).map_err(|source| Error::SshKeyRead {
                path: file.clone(),
                source,
            })?;
            return Ok(Some(text.lines().next().unwrap_or_default().to_string()));
        }
        Ok(PROMPT.get().and_then(|p| p.passphrase(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(passphrase_file: Option<PathBuf>) -> Auth {
        Auth {
            agent: None,
            passphrase_file,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// A key as operators make them, with OpenSSH's ssh-keygen.
    fn encrypted_key(dir: &Path, passphrase: &str) -> PathBuf {
        let path = dir.join("id_enc");
        let status = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen (openssh-client) runs");
        assert!(status.success());
        path
    }

    #[test]
    fn an_encrypted_key_opens_with_the_passphrase_file_and_is_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = encrypted_key(dir.path(), "s3cret");
        let pass = dir.path().join("pass");
        std::fs::write(&pass, "s3cret\n").expect("pass");
        let a = auth(Some(pass));
        let first = a.key(&key).expect("decrypts").expect("exists");
        std::fs::remove_file(&key).expect("rm");
        let again = a.key(&key).expect("cached").expect("cached");
        assert!(Arc::ptr_eq(&first, &again));
        assert!(a.key(&dir.path().join("none")).expect("fine").is_none());
    }

    #[test]
    fn an_encrypted_key_without_a_passphrase_says_how_to_give_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = encrypted_key(dir.path(), "s3cret");
        let err = auth(None).key(&key).expect_err("no passphrase");
        assert!(matches!(err, Error::KeyEncrypted { .. }), "{err:?}");
        assert!(err.to_string().contains("ssh-add"), "{err}");
        let wrong = dir.path().join("wrong");
        std::fs::write(&wrong, "nope").expect("pass");
        let err = auth(Some(wrong)).key(&key).expect_err("wrong passphrase");
        assert!(matches!(err, Error::SshKey { .. }), "{err:?}");
    }
}
