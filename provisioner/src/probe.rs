//! Asking the members how they are, behind a trait: the real one speaks etcd's API with the
//! admin client certificate; unit tests answer from an in-memory cluster.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use cairn_client::connect::MemberClients;
use cairn_client::Connector;
use cairn_inventory::Inventory;
use serde::Serialize;

use crate::Error;
use cairn_pki::{self as pki, Pki};

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

/// [`Probe`] over etcd's gRPC API through the client crate, one connection per member, kept
/// between questions.
pub struct EtcdProbe {
    endpoints: HashMap<String, String>,
    clients: MemberClients,
}

impl EtcdProbe {
    /// A probe for the inventory's members; with TLS it presents the admin certificate of
    /// `pki`, and logs in as root when `[auth]` gives its password. Each question is given up
    /// after `timeout`.
    pub fn new(inventory: &Inventory, pki: Option<&Pki>, timeout: Duration) -> Result<Self, Error> {
        let files = pki.map(|p| p.client_files(pki::Client::Admin));
        let login = inventory.root_login()?.map(cairn_client::Credentials::from);
        let connector = Connector::new(files.as_ref(), login.as_ref(), timeout, timeout)?;
        Ok(Self {
            endpoints: inventory
                .hosts
                .iter()
                .map(|h| (h.name.clone(), inventory.client_url(h)))
                .collect(),
            clients: MemberClients::new(connector),
        })
    }

    /// The member's client URL.
    pub fn endpoint(&self, member: &str) -> &str {
        self.endpoints
            .get(member)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Asks `member` one question, bounded by the timeout.
    async fn ask<T, F, Fut>(
        &self,
        member: &str,
        what: &'static str,
        question: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(etcd_client::Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let endpoint = self.endpoint(member);
        let client = self.clients.get(endpoint).await?;
        Ok(self
            .clients
            .connector()
            .timed(endpoint, what, question(client))
            .await?)
    }
}

impl Probe for EtcdProbe {
    async fn status(&self, member: &str) -> Result<MemberStatus, Error> {
        let answer = self
            .ask(member, "a status request", |mut c| async move {
                c.status().await
            })
            .await?;
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

    async fn member_list(&self, member: &str) -> Result<Vec<ClusterMember>, Error> {
        let list = self
            .ask(member, "a member list request", |mut c| async move {
                c.member_list().await
            })
            .await?;
        Ok(list.members().iter().map(cluster_member).collect())
    }

    async fn member_add(&self, via: &str, peer_url: &str) -> Result<ClusterMember, Error> {
        let peer = peer_url.to_string();
        let answer = self
            .ask(via, "a member add request", |mut c| async move {
                c.member_add([peer], None).await
            })
            .await?;
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
        self.ask(via, "a member remove request", |mut c| async move {
            c.member_remove(id).await
        })
        .await?;
        Ok(())
    }

    async fn move_leader(&self, leader: &str, to: u64) -> Result<(), Error> {
        self.ask(leader, "a move-leader request", |mut c| async move {
            c.move_leader(to).await
        })
        .await?;
        Ok(())
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
