//! `cairn up`: the members of a `transport = "local"` inventory as child processes of this
//! one, from the same certificates, env files, units and binary a provisioned host gets.
//!
//! [`prepare`] issues the PKI into `[tls] dir` (as `cairn provision` does, reusing what is
//! valid) and writes each member's files ([`crate::desired::host_files`]) through its
//! [`LocalHost`], under `data_dir/<name>` standing in for the host's `/`, rewriting only what
//! changed; [`Prepared::start`] runs each member from them ([`crate::supervisor`]), with the
//! control socket through which `cairn provision` and the other lifecycle commands reach the
//! members as systemctl reaches a unit. A second `cairn up` finds the data directories and
//! restarts the same cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_inventory::{Inventory, Transport};

use crate::desired::{host_files, Blob};
use crate::host::{Host, WriteFile};
use crate::local_control::{socket_path, Control};
use crate::local_host::LocalHost;
use crate::render::Bootstrap;
use crate::supervisor::{Console, Running};
use crate::{desired, layout, Clock, Error};
use cairn_pki::local_file::read;
use cairn_pki::Pki;
use cairn_pki::{Client, Issued};

/// One member, ready to run.
#[derive(Clone, Debug)]
pub struct LocalMember {
    /// Its name.
    pub name: String,
    /// The directory standing in for its host's `/`.
    pub root: PathBuf,
    /// Its env file.
    pub env_file: PathBuf,
    /// Its data directory.
    pub data_dir: PathBuf,
}

/// The cluster's files are in place and the control socket listens; nothing runs yet.
pub struct Prepared {
    data_dir: PathBuf,
    members: Vec<LocalMember>,
    pki: Option<Pki>,
    certificates: Vec<Issued>,
    control: Control,
}

/// Takes the control socket (refused while another `cairn up` of the inventory runs), checks
/// that every member's ports are free, issues or reuses the certificates, and writes every
/// member's files and data directory.
pub async fn prepare(inventory: &Inventory, clock: &dyn Clock) -> Result<Prepared, Error> {
    if inventory.cluster.transport != Transport::Local {
        return Err(Error::NotLocal {
            path: inventory.path.clone(),
        });
    }
    inventory.check_local_files()?;
    std::fs::create_dir_all(&inventory.cluster.data_dir).map_err(|source| Error::LocalWrite {
        path: inventory.cluster.data_dir.clone(),
        source,
    })?;
    let control = Control::bind(&socket_path(inventory)).await?;
    ports_free(inventory)?;
    let pki = match &inventory.tls {
        Some(tls) => Some(Pki::ensure(inventory, tls, clock)?),
        None => None,
    };
    let certificates = pki
        .as_ref()
        .map(|p| p.report().to_vec())
        .unwrap_or_default();
    let binary = Blob::new(read(&inventory.cluster.binary)?);
    let mut members = Vec::new();
    for host in &inventory.hosts {
        let local = LocalHost::of(inventory, host);
        let files = host_files(
            inventory,
            host,
            pki.as_ref(),
            &binary,
            &Bootstrap::new_cluster(inventory),
        )?;
        // Only what changed is written (the binary is large). Not through `plan_host`: that
        // asks the services' state of the control socket, which no one serves yet.
        for file in &files {
            if local.file_sha256(&file.path).await?.as_ref() != Some(&file.contents.sha256) {
                local
                    .write_file(WriteFile {
                        path: &file.path,
                        contents: &file.contents.bytes,
                        mode: file.mode,
                        owner: desired::OWNER,
                    })
                    .await?;
            }
        }
        let data_dir = inventory.data_dir(host);
        local.create_dir(&path_text(&data_dir), 0o700).await?;
        members.push(LocalMember {
            name: host.name.clone(),
            env_file: local.resolve(layout::ENV_FILE),
            root: local.root().to_path_buf(),
            data_dir,
        });
    }
    Ok(Prepared {
        data_dir: inventory.cluster.data_dir.clone(),
        members,
        pki,
        certificates,
        control,
    })
}

/// Every member's ports can be bound now, so a port another process holds (a system etcd on
/// 2379) stops `cairn up` before a certificate or file is written or a member bootstraps.
fn ports_free(inventory: &Inventory) -> Result<(), Error> {
    for host in &inventory.hosts {
        let ports = [
            ("client_port", Some(inventory.client_port(host))),
            ("peer_port", Some(inventory.peer_port(host))),
            ("metrics_port", inventory.metrics_port(host)),
        ];
        for (key, port) in ports {
            let Some(port) = port else { continue };
            if let Err(source) = std::net::TcpListener::bind((host.address.as_str(), port)) {
                return Err(Error::PortInUse {
                    member: host.name.clone(),
                    addr: cairn_inventory::host_port(&host.address, port),
                    key,
                    source,
                });
            }
        }
    }
    Ok(())
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

impl Prepared {
    /// The members, in inventory order.
    pub fn members(&self) -> &[LocalMember] {
        &self.members
    }

    /// The certificates and what was done with them.
    pub fn certificates(&self) -> &[Issued] {
        &self.certificates
    }

    /// The PKI, under `[tls]`.
    pub fn pki(&self) -> Option<&Pki> {
        self.pki.as_ref()
    }

    /// The etcdctl command line that reaches the cluster with the admin certificate.
    pub fn etcdctl(&self, inventory: &Inventory) -> String {
        let mut line = format!(
            "ETCDCTL_API=3 etcdctl --endpoints={}",
            inventory.endpoints().join(",")
        );
        if let Some(pki) = &self.pki {
            for (flag, path) in [
                ("cacert", pki.ca_cert()),
                ("cert", pki.client_cert(Client::Admin)),
                ("key", pki.client_key(Client::Admin)),
            ] {
                line.push_str(&format!(" --{flag}={}", path.display()));
            }
        }
        line
    }

    /// Starts every member; their output goes to `console`. A member that cannot be started
    /// stops the ones already running.
    pub async fn start(self, console: Arc<dyn Console>) -> Result<Running, Error> {
        let names: Vec<String> = self.members.iter().map(|m| m.name.clone()).collect();
        Running::start(&self.data_dir, &names, console, self.control).await
    }
}
