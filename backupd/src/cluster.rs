//! The cluster to back up: its members' endpoints and TLS files, and the pick of the member
//! a snapshot comes from (the reachable one with the highest revision).

use std::path::PathBuf;
use std::time::Duration;

use cairn_client::{ClientIdentity, Connector, Credentials, TlsFiles};
use cairn_inventory::{Inventory, ServerKind};
use etcd_client::Client;

use crate::Error;

/// How long connecting and a status request may take per member.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What backups need to know about the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// `[cluster] name`: the key prefix of its backups.
    pub name: String,
    /// Which server the members run.
    pub server: ServerKind,
    /// Client URLs.
    pub endpoints: Vec<String>,
    /// TLS, when the cluster uses it.
    pub tls: Option<TlsFiles>,
    /// A login, when the cluster has auth enabled and the certificate's CN is not enough.
    pub credentials: Option<Credentials>,
    /// The server binary (cairn-server or etcd): opens snapshots and runs the replay server.
    pub binary: PathBuf,
}

impl ClusterSpec {
    /// The cluster an inventory describes, with the backup client certificate of `[tls] dir`
    /// and, when `[auth]` gives root's password, root's login.
    pub fn from_inventory(inv: &Inventory) -> Result<Self, Error> {
        // Each member's own client URL: a local cluster gives every member its own port.
        let endpoints = inv.endpoints();
        Ok(Self {
            credentials: inv.root_login()?.map(Credentials::from),
            name: inv.cluster.name.clone(),
            server: inv.cluster.server,
            endpoints,
            tls: inv
                .tls
                .as_ref()
                .map(|t| TlsFiles::in_dir(&t.dir, ClientIdentity::Backup)),
            binary: inv.cluster.binary.clone(),
        })
    }

    /// How backups reach members: the backup certificate; a snapshot stream may take an
    /// hour.
    fn connector(&self) -> Result<Connector, Error> {
        Ok(Connector::new(
            self.tls.as_ref(),
            self.credentials.as_ref(),
            CONNECT_TIMEOUT,
            Duration::from_secs(3600),
        )?)
    }

    /// A client of one member.
    pub async fn connect(&self, endpoint: &str) -> Result<Client, Error> {
        Ok(self.connector()?.connect(endpoint).await?)
    }

    /// The reachable member with the highest revision.
    pub async fn best_member(&self) -> Result<Member, Error> {
        let connector = self.connector()?;
        let mut best: Option<Member> = None;
        for endpoint in &self.endpoints {
            let Ok(mut client) = connector.connect(endpoint).await else {
                continue;
            };
            let Ok(Ok(status)) = tokio::time::timeout(CONNECT_TIMEOUT, client.status()).await
            else {
                continue;
            };
            let Some(header) = status.header() else {
                continue;
            };
            let m = Member {
                endpoint: endpoint.clone(),
                client,
                revision: header.revision(),
                cluster_id: header.cluster_id(),
                member_id: header.member_id(),
                version: status.version().to_string(),
            };
            if best.as_ref().is_none_or(|b| m.revision > b.revision) {
                best = Some(m);
            }
        }
        best.ok_or(Error::NoHealthyMember {
            tried: self.endpoints.len(),
        })
    }
}

/// A member picked for a backup.
pub struct Member {
    /// Its client URL.
    pub endpoint: String,
    /// A client of it alone.
    pub client: Client,
    /// Its revision at the status request.
    pub revision: i64,
    /// The cluster ID.
    pub cluster_id: u64,
    /// The member ID.
    pub member_id: u64,
    /// The server version it reports.
    pub version: String,
}
