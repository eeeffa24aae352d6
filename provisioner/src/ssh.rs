//! [`Host`] over SSH (russh): agent or key authentication ([`Auth`]), through any bastions
//! the login names (each hop a `direct-tcpip` channel of the one before, its host key checked
//! like the host's), host keys checked against known_hosts, one connection per host reused
//! for every step, each command run through `sh -c` (under `sudo -n` for a non-root user)
//! with a time limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::host::{Exec, Host, ServiceState, Systemctl, WriteFile};
use crate::known_hosts::HostKeyPolicy;
use crate::login::Login;
use crate::ssh_auth::Auth;
use crate::Error;

/// Exit code the read command uses for "no such file".
const ABSENT: u32 = 44;
/// How much of a failed command's stderr goes into its error.
const STDERR_TAIL: usize = 400;

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
    /// The bastions' sessions the connection runs through, first one first.
    via: Vec<Handle<Checker>>,
    timeouts: Timeouts,
}

impl SshHost {
    /// Connects through `login.jumps`, checks every host key and logs in at every hop.
    pub async fn connect(
        login: Login,
        auth: Arc<Auth>,
        policy: HostKeyPolicy,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        let mut target = login.clone();
        let hops = std::mem::take(&mut target.jumps);
        let mut via: Vec<Handle<Checker>> = Vec::new();
        for (i, hop) in hops.iter().enumerate() {
            let handle = reach(before(&via, &hops, i), hop, &auth, &policy, timeouts).await?;
            via.push(handle);
        }
        let bastion = before(&via, &hops, hops.len());
        let handle = reach(bastion, &target, &auth, &policy, timeouts).await?;
        Ok(Self {
            login,
            handle,
            via,
            timeouts,
        })
    }

    /// Closes the connection, then the bastions' in reverse.
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
        for bastion in self.via.into_iter().rev() {
            let _ = bastion
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
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

fn timed_out(login: &Login, what: &str, timeouts: Timeouts) -> Error {
    Error::Timeout {
        host: login.name.clone(),
        what: format!("{what} {}", login.addr()),
        after: timeouts.connect,
    }
}

/// The bastion before hop `i` (`hops.len()`: the target), with its name for messages.
fn before<'a>(
    via: &'a [Handle<Checker>],
    hops: &'a [Login],
    i: usize,
) -> Option<(&'a Handle<Checker>, &'a str)> {
    i.checked_sub(1).map(|p| (&via[p], hops[p].name.as_str()))
}

/// A logged-in session with `hop`: over TCP, or through `bastion`'s tunnel (a direct-tcpip
/// channel) when there is one.
async fn reach(
    bastion: Option<(&Handle<Checker>, &str)>,
    hop: &Login,
    auth: &Auth,
    policy: &HostKeyPolicy,
    timeouts: Timeouts,
) -> Result<Handle<Checker>, Error> {
    let Some((bastion, bastion_name)) = bastion else {
        let addr = hop.addr();
        let tcp = tokio::time::timeout(timeouts.connect, tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| timed_out(hop, "connecting to", timeouts))?
            .map_err(|source| Error::Connect {
                host: hop.name.clone(),
                addr: addr.clone(),
                source,
            })?;
        tcp.set_nodelay(true).map_err(|source| Error::Connect {
            host: hop.name.clone(),
            addr,
            source,
        })?;
        return session(tcp, hop, auth, policy, timeouts).await;
    };
    let channel = tokio::time::timeout(
        timeouts.connect,
        bastion.channel_open_direct_tcpip(hop.address.clone(), u32::from(hop.port), "127.0.0.1", 0),
    )
    .await
    .map_err(|_| timed_out(hop, "opening a tunnel to", timeouts))?
    .map_err(|source| Error::JumpRefused {
        host: bastion_name.to_string(),
        next: hop.addr(),
        source: Box::new(source),
    })?;
    session(channel.into_stream(), hop, auth, policy, timeouts).await
}

/// The SSH handshake over `stream` (a TCP connection or a bastion's tunnel), the host key
/// checked for `login`, then the login.
async fn session<S>(
    stream: S,
    login: &Login,
    auth: &Auth,
    policy: &HostKeyPolicy,
    timeouts: Timeouts,
) -> Result<Handle<Checker>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(timeouts.command),
        keepalive_interval: Some(Duration::from_secs(15)),
        nodelay: true,
        ..client::Config::default()
    });
    let refused = Arc::new(Mutex::new(None));
    let checker = Checker {
        login: login.clone(),
        policy: policy.clone(),
        refused: refused.clone(),
    };
    let session = tokio::time::timeout(
        timeouts.connect,
        client::connect_stream(config, stream, checker),
    )
    .await
    .map_err(|_| timed_out(login, "the SSH handshake with", timeouts))?;
    let mut handle = match session {
        Ok(h) => h,
        Err(source) => {
            let refused = refused
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            return Err(refused.unwrap_or(Error::Ssh {
                host: login.name.clone(),
                source,
            }));
        }
    };
    // Each exchange of the login is timed, not a passphrase being typed.
    auth.authenticate(&mut handle, login, timeouts.connect)
        .await?;
    Ok(handle)
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
