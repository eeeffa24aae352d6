//! How the lifecycle commands reach an inventory's hosts, whatever its `transport`: over SSH
//! ([`SshHost`]), or on this machine ([`LocalHost`], the members of a running `cairn up`).
//! Every command that connects to hosts goes through [`Connector`], so each works on both.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_inventory::{Host as InventoryHost, Inventory, Transport};
use futures::StreamExt;

use crate::converge::Progress;
use crate::host::{Exec, Host, ServiceState, Systemctl, WriteFile};
use crate::known_hosts::HostKeyPolicy;
use crate::local_control::socket_path;
use crate::local_host::LocalHost;
use crate::login::{Login, Logins};
use crate::ssh::{SshHost, Timeouts};
use crate::ssh_auth::Auth;
use crate::Error;

/// A connected host of either transport.
pub enum AnyHost {
    /// A machine over SSH.
    Ssh(SshHost),
    /// A member directory on this machine.
    Local(LocalHost),
}

impl AnyHost {
    /// Ends the session (nothing to end for a local host).
    pub async fn close(self) {
        if let Self::Ssh(h) = self {
            h.close().await;
        }
    }
}

impl Host for AnyHost {
    fn name(&self) -> &str {
        match self {
            Self::Ssh(h) => h.name(),
            Self::Local(h) => h.name(),
        }
    }

    async fn file_sha256(&self, path: &str) -> Result<Option<String>, Error> {
        match self {
            Self::Ssh(h) => h.file_sha256(path).await,
            Self::Local(h) => h.file_sha256(path).await,
        }
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Self::Ssh(h) => h.read_file(path).await,
            Self::Local(h) => h.read_file(path).await,
        }
    }

    async fn write_file(&self, file: WriteFile<'_>) -> Result<(), Error> {
        match self {
            Self::Ssh(h) => h.write_file(file).await,
            Self::Local(h) => h.write_file(file).await,
        }
    }

    async fn append_file(&self, path: &str, contents: &[u8]) -> Result<(), Error> {
        match self {
            Self::Ssh(h) => h.append_file(path, contents).await,
            Self::Local(h) => h.append_file(path, contents).await,
        }
    }

    async fn create_dir(&self, path: &str, mode: u32) -> Result<(), Error> {
        match self {
            Self::Ssh(h) => h.create_dir(path, mode).await,
            Self::Local(h) => h.create_dir(path, mode).await,
        }
    }

    async fn has_entries(&self, path: &str) -> Result<bool, Error> {
        match self {
            Self::Ssh(h) => h.has_entries(path).await,
            Self::Local(h) => h.has_entries(path).await,
        }
    }

    async fn remove_file(&self, path: &str) -> Result<(), Error> {
        match self {
            Self::Ssh(h) => h.remove_file(path).await,
            Self::Local(h) => h.remove_file(path).await,
        }
    }

    async fn remove_dir_all(&self, path: &str) -> Result<(), Error> {
        match self {
            Self::Ssh(h) => h.remove_dir_all(path).await,
            Self::Local(h) => h.remove_dir_all(path).await,
        }
    }

    async fn service_state(&self, unit: &str) -> Result<ServiceState, Error> {
        match self {
            Self::Ssh(h) => h.service_state(unit).await,
            Self::Local(h) => h.service_state(unit).await,
        }
    }

    async fn systemctl(&self, action: Systemctl, unit: &str) -> Result<(), Error> {
        match self {
            Self::Ssh(h) => h.systemctl(action, unit).await,
            Self::Local(h) => h.systemctl(action, unit).await,
        }
    }

    async fn run(&self, argv: &[&str]) -> Result<Exec, Error> {
        match self {
            Self::Ssh(h) => h.run(argv).await,
            Self::Local(h) => h.run(argv).await,
        }
    }
}

/// What connecting to one of the inventory's hosts takes.
pub enum Connector {
    /// The credentials, the logins, the host-key policy and the timeouts.
    Ssh {
        /// The agent and key files, shared by the connections.
        auth: Arc<Auth>,
        /// `[ssh]` and `~/.ssh/config`, for each host's login.
        logins: Box<Logins>,
        /// known_hosts and whether new keys are accepted.
        policy: HostKeyPolicy,
        /// Connect and command timeouts.
        timeouts: Timeouts,
    },
    /// Where the members' directories and `cairn up`'s control socket are.
    Local {
        /// `[cluster] data_dir`: `<name>` under it is member `name`'s `/`.
        data_dir: PathBuf,
        /// The control socket.
        socket: PathBuf,
    },
}

impl Connector {
    /// For `inventory`'s transport; over SSH `~/.ssh/config` and `[ssh] identity_file` are
    /// read now, so a broken one fails before any host is contacted.
    pub fn new(
        inventory: &Inventory,
        accept_new_host_keys: bool,
        timeouts: Timeouts,
    ) -> Result<Self, Error> {
        Ok(match inventory.cluster.transport {
            Transport::Ssh => Self::Ssh {
                auth: {
                    let auth = Auth::new(inventory);
                    if let Some(identity) = &inventory.ssh.identity_file {
                        auth.check_identity(identity)?;
                    }
                    Arc::new(auth)
                },
                logins: Box::new(Logins::new(inventory)?),
                policy: HostKeyPolicy {
                    known_hosts: inventory.ssh.known_hosts.clone(),
                    accept_new: accept_new_host_keys,
                },
                timeouts,
            },
            Transport::Local => Self::Local {
                data_dir: inventory.cluster.data_dir.clone(),
                socket: socket_path(inventory),
            },
        })
    }

    /// How to log in to an inventory host.
    pub fn login(&self, inventory: &Inventory, host: &InventoryHost) -> Result<Login, Error> {
        match self {
            Self::Ssh { logins, .. } => logins.of(inventory, host),
            Self::Local { .. } => Ok(Login::local(&host.name)),
        }
    }

    /// How to log in to a member the inventory no longer lists, by its address.
    pub fn login_at(&self, name: &str, address: &str) -> Result<Login, Error> {
        match self {
            Self::Ssh { logins, .. } => logins.of_address(name, address),
            Self::Local { .. } => Ok(Login::local(name)),
        }
    }

    /// Connects to the host `login` names (a local host is its member directory).
    pub async fn connect(&self, login: Login) -> Result<AnyHost, Error> {
        match self {
            Self::Ssh {
                auth,
                policy,
                timeouts,
                ..
            } => SshHost::connect(login, auth.clone(), policy.clone(), *timeouts)
                .await
                .map(AnyHost::Ssh),
            Self::Local { data_dir, socket } => Ok(AnyHost::Local(LocalHost::new(
                &login.name,
                data_dir.join(&login.name),
                socket,
            ))),
        }
    }
}

/// Connects to every host of `inventory`, `parallel` at a time, in inventory order. Any host
/// that cannot be reached fails the whole call (after the others are closed again) with
/// `consequence` saying what that left undone.
pub async fn connect_all(
    inventory: &Inventory,
    accept_new_host_keys: bool,
    timeouts: Timeouts,
    parallel: usize,
    progress: &dyn Progress,
    consequence: &'static str,
) -> Result<Vec<AnyHost>, Error> {
    let connector = Connector::new(inventory, accept_new_host_keys, timeouts)?;
    let connections: Vec<Result<AnyHost, Error>> =
        futures::stream::iter(inventory.hosts.iter().map(|h| {
            progress.step(&h.name, "connecting");
            let login = connector.login(inventory, h);
            let connector = &connector;
            async move { connector.connect(login?).await }
        }))
        .buffered(parallel.max(1))
        .collect()
        .await;
    let mut hosts = Vec::new();
    let mut failed = Vec::new();
    let mut first = None;
    for (h, conn) in inventory.hosts.iter().zip(connections) {
        match conn {
            Ok(host) => hosts.push(host),
            Err(e) => {
                progress.done(&h.name, false, &cairn_client::chain(&e));
                failed.push(h.name.clone());
                first.get_or_insert(e);
            }
        }
    }
    match first {
        None => Ok(hosts),
        Some(first) => {
            for host in hosts {
                host.close().await;
            }
            Err(Error::HostsFailed {
                failed,
                total: inventory.hosts.len(),
                consequence,
                first: Box::new(first),
            })
        }
    }
}
