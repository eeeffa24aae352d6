//! [`Source`] over etcd's gRPC API through the client crate: one client per member, each
//! question given up after a timeout; `/metrics` over reqwest and the served certificate
//! through [`ServedChainReader`].

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use cairn_client::connect::MemberClients;
use cairn_client::{Connector, Credentials, HttpClient, Metrics, ServedChainReader, TlsFiles};
use etcd_client::{AlarmAction, AlarmType, Client, GetOptions, WatchOptions};

use crate::prefix::prefix_of;
use crate::source::{
    Alarm, Consistency, HashKv, KeyFacts, ListedMember, MemberStatus, Page, Source, Target,
};
use crate::Error;

/// The largest gRPC answer accepted: a scan page holds at most `scan_page_bytes` of values
/// plus one value past it, and values are capped by the members' request limit.
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// The key the latency reads ask for (absent keys cost the same as present ones).
const PROBE_KEY: &str = "cairn-inspector-latency-probe";

/// The members behind etcd's API.
pub struct EtcdSource {
    targets: Vec<Target>,
    clients: MemberClients,
    http: HttpClient,
    reading: ServedChainReader,
}

impl EtcdSource {
    /// A source for `targets`, presenting `tls`'s client certificate when given and logging
    /// in with `credentials` when given; each request is given up after `timeout`.
    pub fn new(
        targets: Vec<Target>,
        tls: Option<&TlsFiles>,
        credentials: Option<&Credentials>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        Ok(Self {
            targets,
            clients: MemberClients::new(Connector::new(tls, credentials, timeout, timeout)?),
            http: HttpClient::new(tls, timeout)?,
            reading: ServedChainReader::new(tls, timeout)?,
        })
    }

    fn endpoint(&self, t: usize) -> &str {
        &self.targets[t].endpoint
    }

    async fn client(&self, t: usize) -> Result<Client, Error> {
        Ok(self.clients.get(self.endpoint(t)).await?)
    }

    async fn timed<T>(
        &self,
        t: usize,
        what: &'static str,
        fut: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, Error> {
        Ok(self
            .clients
            .connector()
            .timed(self.endpoint(t), what, fut)
            .await?)
    }
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
                let (version, mod_revision) = (kv.version(), kv.mod_revision());
                let (key, value) = kv.into_key_value();
                KeyFacts {
                    key,
                    value_size: value.len() as u64,
                    version,
                    mod_revision,
                    value_digest: digest(&value),
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
                    return Err(Error::WatchEnded {
                        endpoint: self.endpoint(t).to_string(),
                    })
                }
                Ok(Err(source)) => {
                    return Err(cairn_client::Error::from_etcd(
                        self.endpoint(t).to_string(),
                        source,
                    )
                    .into())
                }
            }
        }
        Ok(counts)
    }

    async fn metrics(&self, t: usize) -> Option<Metrics> {
        let target = &self.targets[t];
        let url = target.metrics.as_deref().unwrap_or(&target.endpoint);
        // Bounded by the client's timeout: a member that accepts the connection but never
        // answers does not stall the run.
        self.http.metrics(url).await.ok()
    }

    async fn served_certificate(&self, t: usize) -> Result<Option<Vec<u8>>, Error> {
        if !cairn_client::tls::split_url(self.endpoint(t))?.0 {
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

/// A digest of `value`, equal for equal values within one run (the keyspace comparison's
/// only need).
fn digest(value: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}
