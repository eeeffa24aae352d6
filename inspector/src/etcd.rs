//! [`Source`] over etcd's gRPC API: one client per member, each question given up after a
//! timeout; plus plain HTTP(S) for `/metrics` and a TLS handshake to read served
//! certificates.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    AlarmAction, AlarmType, Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions,
    WatchOptions,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

use crate::prefix::prefix_of;
use crate::source::{
    Alarm, Consistency, HashKv, KeyFacts, ListedMember, MemberStatus, Page, Source, Target,
};
use crate::tls::{self, TlsFiles};
use crate::Error;

/// The largest gRPC answer accepted: a scan page holds at most `scan_page_bytes` of values
/// plus one value past it, and values are capped by the members' request limit.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// The largest `/metrics` answer read.
const MAX_METRICS_BYTES: u64 = 16 * 1024 * 1024;
/// The key the latency reads ask for (absent keys cost the same as present ones).
const PROBE_KEY: &str = "cairn-inspector-latency-probe";

/// The members behind etcd's API.
pub struct EtcdSource {
    targets: Vec<Target>,
    options: ConnectOptions,
    timeout: Duration,
    verified: Option<Arc<ClientConfig>>,
    reading: tls::ServedChainReader,
    clients: tokio::sync::Mutex<HashMap<usize, Client>>,
}

impl EtcdSource {
    /// A source for `targets`, presenting `tls`'s client certificate when given; each
    /// request is given up after `timeout`.
    pub fn new(
        targets: Vec<Target>,
        tls: Option<&TlsFiles>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout(timeout);
        let mut verified = None;
        if let Some(files) = tls {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| Error::TlsFile {
                    path: path.to_path_buf(),
                    source,
                })
            };
            options = options.with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(read(&files.ca)?))
                    .identity(Identity::from_pem(read(&files.cert)?, read(&files.key)?)),
            );
            verified = Some(tls::verified_config(files)?);
        }
        Ok(Self {
            targets,
            options,
            timeout,
            verified,
            reading: tls::ServedChainReader::new(tls, timeout)?,
            clients: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    fn endpoint(&self, t: usize) -> &str {
        &self.targets[t].endpoint
    }

    async fn client(&self, t: usize) -> Result<Client, Error> {
        if let Some(c) = self.clients.lock().await.get(&t) {
            return Ok(c.clone());
        }
        let connect = Client::connect([self.endpoint(t)], Some(self.options.clone()));
        let client = self.timed(t, "connecting", connect).await?;
        self.clients.lock().await.insert(t, client.clone());
        Ok(client)
    }

    async fn timed<T>(
        &self,
        t: usize,
        what: &'static str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(Error::Etcd {
                endpoint: self.endpoint(t).to_string(),
                source,
            }),
            Err(_) => Err(Error::Timeout {
                endpoint: self.endpoint(t).to_string(),
                what,
                after: self.timeout,
            }),
        }
    }

    fn connect_error(&self, t: usize, source: std::io::Error) -> Error {
        Error::Connect {
            endpoint: self.endpoint(t).to_string(),
            source,
        }
    }

    async fn tcp(&self, t: usize, url: &str) -> Result<(bool, String, TcpStream), Error> {
        let (https, host, port) = tls::split_url(url)?;
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| self.connect_error(t, std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| self.connect_error(t, e))?;
        Ok((https, host, stream))
    }

    async fn get_metrics(&self, t: usize) -> Result<String, Error> {
        let target = &self.targets[t];
        let url = target
            .metrics
            .as_deref()
            .map_or(target.endpoint.as_str(), |m| m.trim_end_matches("/metrics"));
        let (https, host, stream) = self.tcp(t, url).await?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n");
        let answer = if https {
            let config = self.verified.clone().ok_or_else(|| {
                self.connect_error(
                    t,
                    std::io::Error::other("https without a client certificate"),
                )
            })?;
            let name = server_name(&host).map_err(|e| self.connect_error(t, e))?;
            let tls = TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| self.connect_error(t, e))?;
            exchange(tls, &request).await
        } else {
            exchange(stream, &request).await
        };
        let answer = answer.map_err(|e| self.connect_error(t, e))?;
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| self.connect_error(t, std::io::Error::other("no HTTP answer")))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            let line = head.lines().next().unwrap_or_default().to_string();
            return Err(self.connect_error(t, std::io::Error::other(line)));
        }
        Ok(body.to_string())
    }
}

fn server_name(host: &str) -> std::io::Result<rustls_pki_types::ServerName<'static>> {
    rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
) -> std::io::Result<String> {
    s.write_all(request.as_bytes()).await?;
    s.flush().await?;
    let mut out = Vec::new();
    let read = (&mut s).take(MAX_METRICS_BYTES).read_to_end(&mut out).await;
    // A TLS peer that closes without close_notify still delivered everything it sent.
    if let Err(e) = read {
        if e.kind() != std::io::ErrorKind::UnexpectedEof || out.is_empty() {
            return Err(e);
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl Source for EtcdSource {
    fn targets(&self) -> &[Target] {
        &self.targets
    }

    async fn status(&self, t: usize) -> Result<MemberStatus, Error> {
        let mut c = self.client(t).await?;
        let s = self.timed(t, "a status request", c.status()).await?;
        let header = s.header();
        Ok(MemberStatus {
            member_id: header.map(|h| h.member_id()).unwrap_or_default(),
            leader_id: s.leader(),
            revision: header.map(|h| h.revision()).unwrap_or_default(),
            raft_index: s.raft_index(),
            raft_applied_index: s.raft_applied_index(),
            db_size: s.db_size().max(0) as u64,
            db_size_in_use: s.raft_used_db_size().max(0) as u64,
            db_size_quota: s.db_size_quota().max(0) as u64,
            is_learner: s.is_learner(),
            errors: s.errors().to_vec(),
        })
    }

    async fn member_list(&self, t: usize) -> Result<Vec<ListedMember>, Error> {
        let mut c = self.client(t).await?;
        let list = self
            .timed(t, "a member list request", c.member_list())
            .await?;
        Ok(list
            .members()
            .iter()
            .map(|m| ListedMember {
                id: m.id(),
                name: m.name().to_string(),
                client_urls: m.client_urls().to_vec(),
                is_learner: m.is_learner(),
            })
            .collect())
    }

    async fn alarms(&self, t: usize) -> Result<Vec<Alarm>, Error> {
        let mut c = self.client(t).await?;
        let answer = self
            .timed(
                t,
                "an alarm list request",
                c.alarm(AlarmAction::Get, AlarmType::None, None),
            )
            .await?;
        Ok(answer
            .alarms()
            .iter()
            .map(|a| Alarm {
                member_id: a.member_id(),
                kind: a.alarm().as_str_name().to_string(),
            })
            .collect())
    }

    async fn hash_kv(&self, t: usize, revision: i64) -> Result<HashKv, Error> {
        let mut c = self.client(t).await?;
        let h = self
            .timed(t, "a HashKV request", c.hash_kv(revision))
            .await?;
        Ok(HashKv {
            hash: h.hash(),
            compact_revision: h.compact_version(),
        })
    }

    async fn count(&self, t: usize, revision: i64) -> Result<u64, Error> {
        let mut kv = self.client(t).await?.kv_client();
        let options = GetOptions::new()
            .with_all_keys()
            .with_count_only()
            .with_serializable()
            .with_revision(revision);
        let answer = self
            .timed(t, "a key count", kv.get("", Some(options)))
            .await?;
        Ok(answer.count().max(0) as u64)
    }

    async fn page(
        &self,
        t: usize,
        from: &[u8],
        end: Option<&[u8]>,
        revision: i64,
        limit: u32,
    ) -> Result<Page, Error> {
        let mut kv = self
            .client(t)
            .await?
            .kv_client()
            .max_decoding_message_size(MAX_ANSWER_BYTES);
        let options = match end {
            Some(end) => GetOptions::new().with_range(end.to_vec()),
            None => GetOptions::new().with_from_key(),
        }
        .with_serializable()
        .with_revision(revision)
        .with_limit(i64::from(limit));
        let mut answer = self
            .timed(
                t,
                "a page of the keyspace scan",
                kv.get(from.to_vec(), Some(options)),
            )
            .await?;
        let more = answer.more();
        let keys = answer
            .take_kvs()
            .into_iter()
            .map(|kv| {
                let version = kv.version();
                let (key, value) = kv.into_key_value();
                KeyFacts {
                    key,
                    value_size: value.len() as u64,
                    version,
                }
            })
            .collect();
        Ok(Page { keys, more })
    }

    async fn read(&self, t: usize, consistency: Consistency) -> Result<Duration, Error> {
        let mut kv = self.client(t).await?.kv_client();
        let mut options = GetOptions::new();
        if consistency == Consistency::Serializable {
            options = options.with_serializable();
        }
        let started = Instant::now();
        self.timed(t, "a read", kv.get(PROBE_KEY, Some(options)))
            .await?;
        Ok(started.elapsed())
    }

    async fn writes(
        &self,
        t: usize,
        window: Duration,
        depth: usize,
    ) -> Result<HashMap<String, u64>, Error> {
        let mut w = self.client(t).await?.watch_client();
        let mut stream = self
            .timed(
                t,
                "a watch",
                w.watch("", Some(WatchOptions::new().with_all_keys())),
            )
            .await?;
        let deadline = tokio::time::Instant::now() + window;
        let mut counts: HashMap<String, u64> = HashMap::new();
        loop {
            match tokio::time::timeout_at(deadline, stream.message()).await {
                Err(_) => break,
                Ok(Ok(Some(answer))) => {
                    for e in answer.events() {
                        if let Some(kv) = e.kv() {
                            *counts.entry(prefix_of(kv.key(), depth)).or_default() += 1;
                        }
                    }
                }
                Ok(Ok(None)) => {
                    return Err(Error::Connect {
                        endpoint: self.endpoint(t).to_string(),
                        source: std::io::Error::other("the watch ended early"),
                    })
                }
                Ok(Err(source)) => {
                    return Err(Error::Etcd {
                        endpoint: self.endpoint(t).to_string(),
                        source,
                    })
                }
            }
        }
        Ok(counts)
    }

    async fn metrics(&self, t: usize) -> Option<String> {
        // A member that accepts the connection but never answers must not stall the run.
        tokio::time::timeout(self.timeout, self.get_metrics(t))
            .await
            .ok()?
            .ok()
    }

    async fn served_certificate(&self, t: usize) -> Result<Option<Vec<u8>>, Error> {
        if !tls::split_url(self.endpoint(t))?.0 {
            return Ok(None);
        }
        Ok(self
            .reading
            .chain(self.endpoint(t))
            .await?
            .into_iter()
            .next())
    }
}
