//! [`Host`] over SSH (russh): key authentication, host keys checked against known_hosts, one
//! connection per host reused for every step, each command run through `sh -c` (under
//! `sudo -n` for a non-root user) with a time limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;

use crate::host::{Exec, Host, ServiceState, Systemctl, WriteFile};
use crate::known_hosts::HostKeyPolicy;
use crate::Error;

/// Exit code the read command uses for "no such file".
const ABSENT: u32 = 44;
/// How much of a failed command's stderr goes into its error.
const STDERR_TAIL: usize = 400;

/// Where and how to log in to one host.
#[derive(Clone, Debug)]
pub struct Login {
    /// Member name, for messages.
    pub name: String,
    /// Address to connect to.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user; anything but root runs commands through `sudo -n`.
    pub user: String,
}

impl Login {
    /// How the inventory says to log in to `host`.
    pub fn of(inventory: &cairn_inventory::Inventory, host: &cairn_inventory::Host) -> Self {
        Self {
            name: host.name.clone(),
            address: host.address.clone(),
            port: inventory.ssh_port(host),
            user: inventory.ssh_user(host).to_string(),
        }
    }
}

/// The inventory's `[ssh] identity_file`, loaded once for every connection of a run.
pub fn load_key(inventory: &cairn_inventory::Inventory) -> Result<Arc<PrivateKey>, Error> {
    russh::keys::load_secret_key(&inventory.ssh.identity_file, None)
        .map(Arc::new)
        .map_err(|source| Error::SshKey {
            path: inventory.ssh.identity_file.clone(),
            source,
        })
}

/// Time limits of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP connect, key exchange and authentication.
    pub connect: Duration,
    /// One command, including uploading a file.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(15),
            command: Duration::from_secs(300),
        }
    }
}

/// The client side of one connection: checks the server's key and remembers why it refused.
struct Checker {
    login: Login,
    policy: HostKeyPolicy,
    refused: Arc<Mutex<Option<Error>>>,
}

impl client::Handler for Checker {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        match self
            .policy
            .check(&self.login.name, &self.login.address, self.login.port, key)
        {
            Ok(()) => Ok(true),
            Err(e) => {
                *self
                    .refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                Ok(false)
            }
        }
    }
}

/// A logged-in SSH connection to one host.
pub struct SshHost {
    login: Login,
    handle: Handle<Checker>,
    timeouts: Timeouts,
}

impl SshHost {
    /// Connects, checks the host key and authenticates with `key`.
    pub async fn connect(
        login: Login,
        key: Arc<PrivateKey>,
        identity: &std::path::Path,
        policy: HostKeyPolicy,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        let addr = format!("{}:{}", login.address, login.port);
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(timeouts.command),
            keepalive_interval: Some(Duration::from_secs(15)),
            nodelay: true,
            ..client::Config::default()
        });
        let refused = Arc::new(Mutex::new(None));
        let checker = Checker {
            login: login.clone(),
            policy,
            refused: refused.clone(),
        };
        let name = login.name.clone();
        let timed_out = |what: &str| Error::Timeout {
            host: name.clone(),
            what: format!("{what} {addr}"),
            after: timeouts.connect,
        };
        let tcp = tokio::time::timeout(timeouts.connect, tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| timed_out("connecting to"))?
            .map_err(|source| Error::Connect {
                host: name.clone(),
                addr: addr.clone(),
                source,
            })?;
        tcp.set_nodelay(true).map_err(|source| Error::Connect {
            host: name.clone(),
            addr: addr.clone(),
            source,
        })?;
        let session = tokio::time::timeout(
            timeouts.connect,
            client::connect_stream(config, tcp, checker),
        )
        .await
        .map_err(|_| timed_out("the SSH handshake with"))?;
        let mut handle = match session {
            Ok(h) => h,
            Err(source) => {
                let refused = refused
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                return Err(refused.unwrap_or(Error::Ssh {
                    host: name.clone(),
                    source,
                }));
            }
        };
        let ssh = |source| Error::Ssh {
            host: name.clone(),
            source,
        };
        let auth = async {
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(ssh)?
                .flatten();
            handle
                .authenticate_publickey(&login.user, PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(ssh)
        };
        let result = tokio::time::timeout(timeouts.connect, auth)
            .await
            .map_err(|_| timed_out("authenticating to"))??;
        if !result.success() {
            return Err(Error::AuthRejected {
                host: name.clone(),
                user: login.user.clone(),
                addr,
                identity: identity.to_path_buf(),
            });
        }
        Ok(Self {
            login,
            handle,
            timeouts,
        })
    }

    /// Closes the connection.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// `script` as the command line the server runs: through sh, with sudo unless root.
    fn command_line(&self, script: &str) -> String {
        let quoted = quote(script);
        if self.login.user == "root" {
            format!("sh -c {quoted}")
        } else {
            format!("sudo -n sh -c {quoted}")
        }
    }

    /// Runs `script`, feeding it `stdin`; any exit code is returned.
    async fn exec(&self, script: &str, stdin: &[u8]) -> Result<Exec, Error> {
        let ssh = |source| Error::Ssh {
            host: self.login.name.clone(),
            source,
        };
        let run = async {
            let mut channel = self.handle.channel_open_session().await.map_err(ssh)?;
            channel
                .exec(true, self.command_line(script))
                .await
                .map_err(ssh)?;
            if !stdin.is_empty() {
                channel.data(stdin).await.map_err(ssh)?;
            }
            channel.eof().await.map_err(ssh)?;
            let mut out = Exec::default();
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.code = Some(exit_status),
                    _ => {}
                }
            }
            Ok(out)
        };
        tokio::time::timeout(self.timeouts.command, run)
            .await
            .map_err(|_| Error::Timeout {
                host: self.login.name.clone(),
                what: format!("`{}`", first_line(script)),
                after: self.timeouts.command,
            })?
    }

    /// Runs `script` and wants exit code 0 (or `also_ok`).
    async fn run(&self, script: &str, stdin: &[u8], also_ok: Option<u32>) -> Result<Exec, Error> {
        let out = self.exec(script, stdin).await?;
        match out.code {
            Some(0) => Ok(out),
            Some(c) if Some(c) == also_ok => Ok(out),
            code => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let stderr = stderr.trim();
                let start = stderr.len().saturating_sub(STDERR_TAIL);
                let start = (start..stderr.len())
                    .find(|i| stderr.is_char_boundary(*i))
                    .unwrap_or(stderr.len());
                Err(Error::Command {
                    host: self.login.name.clone(),
                    command: first_line(script).to_string(),
                    code: code.map_or(-1, |c| i32::try_from(c).unwrap_or(-1)),
                    stderr: stderr[start..].to_string(),
                })
            }
        }
    }
}

fn first_line(script: &str) -> &str {
    script.lines().next().unwrap_or(script)
}

/// `s` in single quotes for sh.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Host for SshHost {
    fn name(&self) -> &str {
        &self.login.name
    }

    async fn file_sha256(&self, path: &str) -> Result<Option<String>, Error> {
        let p = quote(path);
        let script = format!("if [ -e {p} ]; then sha256sum < {p}; else echo absent; fi");
        let out = self.run(&script, &[], None).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let word = text.split_whitespace().next().unwrap_or_default();
        if word == "absent" {
            return Ok(None);
        }
        if word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Some(word.to_ascii_lowercase()));
        }
        Err(Error::UnexpectedOutput {
            host: self.login.name.clone(),
            command: script,
            output: text.into_owned(),
        })
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        let p = quote(path);
        let script = format!("[ -e {p} ] || exit {ABSENT}; cat -- {p}");
        let out = self.run(&script, &[], Some(ABSENT)).await?;
        Ok((out.code != Some(ABSENT)).then_some(out.stdout))
    }

    async fn write_file(&self, file: WriteFile<'_>) -> Result<(), Error> {
        let (dir, base) = match file.path.rsplit_once('/') {
            Some((d, b)) if !d.is_empty() => (d, b),
            _ => ("/", file.path.trim_start_matches('/')),
        };
        let (p, d) = (quote(file.path), quote(dir));
        let tmp = quote(&format!("{dir}/.{base}.cairn-tmp"));
        let script = format!(
            "set -e; umask 077; mkdir -p -- {d}; cat > {tmp}; chmod {mode:o} {tmp}; chown {owner} {tmp}; sync {tmp}; mv -f -- {tmp} {p}",
            mode = file.mode,
            owner = quote(file.owner),
        );
        self.run(&script, file.contents, None).await.map(drop)
    }

    async fn append_file(&self, path: &str, contents: &[u8]) -> Result<(), Error> {
        let dir = path
            .rsplit_once('/')
            .map_or("/", |(d, _)| if d.is_empty() { "/" } else { d });
        let script = format!(
            "set -e; umask 077; mkdir -p -- {d}; cat >> {p}",
            d = quote(dir),
            p = quote(path)
        );
        self.run(&script, contents, None).await.map(drop)
    }

    async fn create_dir(&self, path: &str, mode: u32) -> Result<(), Error> {
        let script = format!("[ -d {p} ] || mkdir -p -m {mode:o} -- {p}", p = quote(path));
        self.run(&script, &[], None).await.map(drop)
    }

    async fn has_entries(&self, path: &str) -> Result<bool, Error> {
        let p = quote(path);
        let script =
            format!("if [ -d {p} ] && [ -n \"$(ls -A -- {p})\" ]; then echo yes; else echo no; fi");
        let out = self.run(&script, &[], None).await?;
        Ok(String::from_utf8_lossy(&out.stdout).trim() == "yes")
    }

    async fn remove_file(&self, path: &str) -> Result<(), Error> {
        self.run(&format!("rm -f -- {}", quote(path)), &[], None)
            .await
            .map(drop)
    }

    async fn remove_dir_all(&self, path: &str) -> Result<(), Error> {
        // Everything in it, then the directory itself unless it cannot go (a mount point).
        let p = quote(path);
        let script = format!(
            "if [ -d {p} ]; then find {p} -mindepth 1 -delete && {{ rmdir -- {p} 2>/dev/null || true; }}; else rm -f -- {p}; fi"
        );
        self.run(&script, &[], None).await.map(drop)
    }

    async fn service_state(&self, unit: &str) -> Result<ServiceState, Error> {
        let u = quote(unit);
        let script = format!(
            "echo \"$(systemctl is-active {u} 2>/dev/null)\"; echo \"$(systemctl is-enabled {u} 2>/dev/null)\""
        );
        let out = self.run(&script, &[], None).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines().map(str::trim);
        Ok(ServiceState {
            active: lines.next() == Some("active"),
            enabled: lines.next() == Some("enabled"),
        })
    }

    async fn systemctl(&self, action: Systemctl, unit: &str) -> Result<(), Error> {
        let script = match action {
            Systemctl::DaemonReload => "systemctl daemon-reload".to_string(),
            _ => format!("systemctl {} {}", action.verb(), quote(unit)),
        };
        self.run(&script, &[], None).await.map(drop)
    }

    async fn run(&self, argv: &[&str]) -> Result<Exec, Error> {
        let script: Vec<String> = argv.iter().map(|a| quote(a)).collect();
        self.exec(&script.join(" "), &[]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
