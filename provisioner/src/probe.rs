//! Asking the members how they are, behind a trait: the real one speaks etcd's API with the
//! admin client certificate; unit tests answer from an in-memory cluster.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use cairn_inventory::Inventory;
use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};
use serde::Serialize;

use crate::pki::{self, Pki};
use crate::Error;

/// One member's answer to a status request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MemberStatus {
    /// The member's ID.
    pub member_id: u64,
    /// The leader it knows of; 0 when it knows none.
    pub leader_id: u64,
    /// The store's revision as of the answer.
    pub revision: i64,
    /// Backend size in bytes.
    pub db_size: i64,
    /// Server version.
    pub version: String,
    /// Raft term.
    pub raft_term: u64,
}

impl MemberStatus {
    /// The member knows a leader: it can serve linearizable requests.
    pub fn has_leader(&self) -> bool {
        self.leader_id != 0
    }

    /// The member is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader_id != 0 && self.leader_id == self.member_id
    }
}

/// One entry of the cluster's member list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterMember {
    /// The member's ID.
    pub id: u64,
    /// Its name; empty until the member has started and published itself (an added member
    /// whose start never happened or failed).
    pub name: String,
    /// Its peer URLs, as MemberAdd was given them.
    pub peer_urls: Vec<String>,
    /// Its client URLs; empty until it has started.
    pub client_urls: Vec<String>,
}

impl ClusterMember {
    /// Whether the member has started at least once (it published its name).
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }

    /// Whether `peer_url` is one of the member's peer URLs (trailing slashes aside).
    pub fn has_peer_url(&self, peer_url: &str) -> bool {
        let want = peer_url.trim_end_matches('/');
        self.peer_urls
            .iter()
            .any(|u| u.trim_end_matches('/') == want)
    }
}

/// Questions the provisioner asks the cluster, and the membership changes it makes.
pub trait Probe: Send + Sync {
    /// The status of the member named `member` (its own answer, from its own endpoint).
    fn status(&self, member: &str) -> impl Future<Output = Result<MemberStatus, Error>> + Send;

    /// The names in the cluster's member list, as `member`'s endpoint reports it (members
    /// that have not started yet have an empty name).
    fn member_names(&self, member: &str)
        -> impl Future<Output = Result<Vec<String>, Error>> + Send;

    /// The cluster's member list as `member` reports it.
    fn member_list(
        &self,
        member: &str,
    ) -> impl Future<Output = Result<Vec<ClusterMember>, Error>> + Send;

    /// Adds a (voting) member with `peer_url` through `via` (etcd's MemberAdd); the new
    /// member's entry, unnamed until it starts.
    fn member_add(
        &self,
        via: &str,
        peer_url: &str,
    ) -> impl Future<Output = Result<ClusterMember, Error>> + Send;

    /// Removes the member with ID `id` through `via` (etcd's MemberRemove).
    fn member_remove(&self, via: &str, id: u64) -> impl Future<Output = Result<(), Error>> + Send;

    /// Asks `leader` to hand leadership to the member with ID `to` (etcd's MoveLeader), so
    /// restarting it costs no election.
    fn move_leader(&self, leader: &str, to: u64) -> impl Future<Output = Result<(), Error>> + Send;
}

/// [`Probe`] over etcd's gRPC API, one connection per member, kept between questions.
pub struct EtcdProbe {
    endpoints: HashMap<String, String>,
    options: ConnectOptions,
    timeout: Duration,
    clients: tokio::sync::Mutex<HashMap<String, etcd_client::Client>>,
}

impl EtcdProbe {
    /// A probe for the inventory's members; with TLS it presents the admin certificate of
    /// `pki`. Each question is given up after `timeout`.
    pub fn new(inventory: &Inventory, pki: Option<&Pki>, timeout: Duration) -> Result<Self, Error> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout);
        if let Some(pki) = pki {
            let read = |path: std::path::PathBuf| {
                std::fs::read(&path).map_err(|source| Error::NoClientCertificate { path, source })
            };
            let ca = read(pki.ca_cert())?;
            let cert = read(pki.client_cert(pki::Client::Admin))?;
            let key = read(pki.client_key(pki::Client::Admin))?;
            options = options.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .identity(Identity::from_pem(cert, key)),
            );
        }
        Ok(Self {
            endpoints: inventory
                .hosts
                .iter()
                .map(|h| (h.name.clone(), inventory.client_url(h)))
                .collect(),
            options,
            timeout,
            clients: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The member's client URL.
    pub fn endpoint(&self, member: &str) -> &str {
        self.endpoints
            .get(member)
            .map(String::as_str)
            .unwrap_or_default()
    }

    async fn client(&self, member: &str) -> Result<etcd_client::Client, Error> {
        let endpoint = self.endpoint(member).to_string();
        if let Some(c) = self.clients.lock().await.get(member) {
            return Ok(c.clone());
        }
        let connect = etcd_client::Client::connect([endpoint.as_str()], Some(self.options.clone()));
        let client = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(source)) => return Err(Error::Etcd { endpoint, source }),
            Err(_) => return Err(self.timed_out(member, "connecting")),
        };
        self.clients
            .lock()
            .await
            .insert(member.to_string(), client.clone());
        Ok(client)
    }

    fn timed_out(&self, member: &str, what: &str) -> Error {
        Error::Timeout {
            host: member.to_string(),
            what: format!("{what} to {}", self.endpoint(member)),
            after: self.timeout,
        }
    }
}

impl Probe for EtcdProbe {
    async fn status(&self, member: &str) -> Result<MemberStatus, Error> {
        let mut client = self.client(member).await?;
        let answer = match tokio::time::timeout(self.timeout, client.status()).await {
            Ok(Ok(a)) => a,
            Ok(Err(source)) => {
                return Err(Error::Etcd {
                    endpoint: self.endpoint(member).to_string(),
                    source,
                })
            }
            Err(_) => return Err(self.timed_out(member, "a status request")),
        };
        let header = answer.header();
        Ok(MemberStatus {
            member_id: header.map(|h| h.member_id()).unwrap_or_default(),
            leader_id: answer.leader(),
            revision: header.map(|h| h.revision()).unwrap_or_default(),
            db_size: answer.db_size(),
            version: answer.version().to_string(),
            raft_term: answer.raft_term(),
        })
    }

    async fn member_names(&self, member: &str) -> Result<Vec<String>, Error> {
        let mut client = self.client(member).await?;
        match tokio::time::timeout(self.timeout, client.member_list()).await {
            Ok(Ok(list)) => Ok(list
                .members()
                .iter()
                .map(|m| m.name().to_string())
                .collect()),
            Ok(Err(source)) => Err(Error::Etcd {
                endpoint: self.endpoint(member).to_string(),
                source,
            }),
            Err(_) => Err(self.timed_out(member, "a member list request")),
        }
    }

    async fn member_list(&self, member: &str) -> Result<Vec<ClusterMember>, Error> {
        let mut client = self.client(member).await?;
        match tokio::time::timeout(self.timeout, client.member_list()).await {
            Ok(Ok(list)) => Ok(list.members().iter().map(cluster_member).collect()),
            Ok(Err(source)) => Err(Error::Etcd {
                endpoint: self.endpoint(member).to_string(),
                source,
            }),
            Err(_) => Err(self.timed_out(member, "a member list request")),
        }
    }

    async fn member_add(&self, via: &str, peer_url: &str) -> Result<ClusterMember, Error> {
        let mut client = self.client(via).await?;
        let add = client.member_add([peer_url], None);
        let answer = match tokio::time::timeout(self.timeout, add).await {
            Ok(Ok(a)) => a,
            Ok(Err(source)) => {
                return Err(Error::Etcd {
                    endpoint: self.endpoint(via).to_string(),
                    source,
                })
            }
            Err(_) => return Err(self.timed_out(via, "a member add request")),
        };
        answer
            .member()
            .map(cluster_member)
            .ok_or_else(|| Error::UnexpectedOutput {
                host: via.to_string(),
                command: "MemberAdd".into(),
                output: "an answer without the new member".into(),
            })
    }

    async fn member_remove(&self, via: &str, id: u64) -> Result<(), Error> {
        let mut client = self.client(via).await?;
        match tokio::time::timeout(self.timeout, client.member_remove(id)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(Error::Etcd {
                endpoint: self.endpoint(via).to_string(),
                source,
            }),
            Err(_) => Err(self.timed_out(via, "a member remove request")),
        }
    }

    async fn move_leader(&self, leader: &str, to: u64) -> Result<(), Error> {
        let mut client = self.client(leader).await?;
        match tokio::time::timeout(self.timeout, client.move_leader(to)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(Error::Etcd {
                endpoint: self.endpoint(leader).to_string(),
                source,
            }),
            Err(_) => Err(self.timed_out(leader, "a move-leader request")),
        }
    }
}

fn cluster_member(m: &etcd_client::Member) -> ClusterMember {
    ClusterMember {
        id: m.id(),
        name: m.name().to_string(),
        peer_urls: m.peer_urls().to_vec(),
        client_urls: m.client_urls().to_vec(),
    }
}
