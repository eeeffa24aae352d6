//! etcd-client connections: the TLS files read once, a connect timeout, a request timeout,
//! credentials when the cluster has auth enabled, and the leader found by asking each member.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::tls::read_pem;
use crate::{Error, TlsFiles};

/// A user and password for a cluster with etcd's auth enabled (with client certificates and no
/// credentials, etcd takes the certificate's common name as the user). Read from a file or
/// the environment by the caller, never from the inventory text.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl From<(String, String)> for Credentials {
    /// A `(user, password)` pair, as the inventory's `root_login` gives it.
    fn from((user, password): (String, String)) -> Self {
        Self { user, password }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How to reach members: shared by every tool, so TLS and timeouts behave the same.
#[derive(Clone, Debug)]
pub struct Connector {
    options: ConnectOptions,
    /// The same without credentials, for a cluster whose auth is off (etcd refuses to
    /// authenticate then, and etcd-client gives up connecting).
    anonymous: Option<ConnectOptions>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Connector {
    /// Connections presenting `tls`'s client certificate (when given) and `credentials` (when
    /// given); connecting is given up after `connect_timeout`, each request after
    /// `request_timeout`.
    pub fn new(
        tls: Option<&TlsFiles>,
        credentials: Option<&Credentials>,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, Error> {
        let identity = tls.map(|t| (t.cert.as_path(), t.key.as_path()));
        Self::from_parts(
            tls.map(|t| t.ca.as_path()),
            identity,
            credentials,
            connect_timeout,
            request_timeout,
        )
    }

    /// [`Connector::new`] from loose parts, for command lines that take a CA alone, or a
    /// certificate and key alone (etcdctl's `--cacert`, `--cert`, `--key`): TLS when either
    /// is given.
    pub fn from_parts(
        ca: Option<&Path>,
        identity: Option<(&Path, &Path)>,
        credentials: Option<&Credentials>,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Self, Error> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(connect_timeout)
            .with_timeout(request_timeout);
        if ca.is_some() || identity.is_some() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = ca {
                tls = tls.ca_certificate(Certificate::from_pem(read_pem(ca)?));
            }
            if let Some((cert, key)) = identity {
                tls = tls.identity(Identity::from_pem(read_pem(cert)?, read_pem(key)?));
            }
            options = options.with_tls(tls);
        }
        let mut anonymous = None;
        if let Some(c) = credentials {
            anonymous = Some(options.clone());
            options = options.with_user(c.user.clone(), c.password.clone());
        }
        Ok(Self {
            options,
            anonymous,
            connect_timeout,
            request_timeout,
        })
    }

    /// Plain-text connections without credentials.
    pub fn plain(timeout: Duration) -> Self {
        Self {
            options: ConnectOptions::new()
                .with_connect_timeout(timeout)
                .with_timeout(timeout),
            anonymous: None,
            connect_timeout: timeout,
            request_timeout: timeout,
        }
    }

    /// How long a request may take.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// How long connecting may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The options etcd-client is given (for callers that build clients themselves, such as
    /// the benchmark's many connections).
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// A client of the member at `endpoint` alone.
    pub async fn connect(&self, endpoint: &str) -> Result<Client, Error> {
        self.connect_to(&[endpoint.to_string()]).await
    }

    /// A client that spreads its requests over every endpoint (and fails over).
    pub async fn connect_to(&self, endpoints: &[String]) -> Result<Client, Error> {
        let name = endpoints.join(",");
        let connect = async {
            match Client::connect(endpoints, Some(self.options.clone())).await {
                // Credentials for a cluster whose auth is off: etcd ignores them, so do we.
                Err(etcd_client::Error::GRpcStatus(s))
                    if s.message().contains("authentication is not enabled") =>
                {
                    let options = self
                        .anonymous
                        .clone()
                        .unwrap_or_else(|| self.options.clone());
                    Client::connect(endpoints, Some(options)).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(source)) => Err(Error::from_etcd(name, source)),
            Err(_) => Err(Error::Timeout {
                endpoint: name,
                what: "connecting",
                after: self.connect_timeout,
            }),
        }
    }

    /// Runs one request against `endpoint`, given up after the request timeout.
    pub async fn timed<T>(
        &self,
        endpoint: &str,
        what: &'static str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(Error::from_etcd(endpoint.to_string(), source)),
            Err(_) => Err(Error::Timeout {
                endpoint: endpoint.to_string(),
                what,
                after: self.request_timeout,
            }),
        }
    }

    /// The status of the member at `endpoint`, asked of it alone.
    pub async fn status(
        &self,
        endpoint: &str,
    ) -> Result<(Client, etcd_client::StatusResponse), Error> {
        let mut client = self.connect(endpoint).await?;
        let status = self
            .timed(endpoint, "a status request", client.status())
            .await?;
        Ok((client, status))
    }

    /// The endpoint, among `endpoints`, of the member that says it leads.
    pub async fn leader(&self, endpoints: &[String]) -> Result<String, Error> {
        for e in endpoints {
            if let Ok((_, s)) = self.status(e).await {
                let me = s.header().map_or(0, |h| h.member_id());
                if me != 0 && s.leader() == me {
                    return Ok(e.clone());
                }
            }
        }
        Err(Error::NoLeader {
            endpoints: endpoints.join(","),
        })
    }
}

/// One client per member, made on first use and kept: for tools that ask each member in
/// turn (the inspector, the provisioner's probe).
pub struct MemberClients {
    connector: Connector,
    clients: tokio::sync::Mutex<HashMap<String, Client>>,
}

impl MemberClients {
    /// Clients made with `connector`.
    pub fn new(connector: Connector) -> Self {
        Self {
            connector,
            clients: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The connector (timeouts, [`Connector::timed`]).
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// The client of the member at `endpoint`.
    pub async fn get(&self, endpoint: &str) -> Result<Client, Error> {
        if let Some(c) = self.clients.lock().await.get(endpoint) {
            return Ok(c.clone());
        }
        let client = self.connector.connect(endpoint).await?;
        self.clients
            .lock()
            .await
            .insert(endpoint.to_string(), client.clone());
        Ok(client)
    }
}
