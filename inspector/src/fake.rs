//! An in-memory cluster behind [`Source`], for unit tests of the inspection as a whole: each
//! member has its own keyspace (so one can diverge), its own status, and can be silenced.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::prefix::prefix_of;
use crate::source::{
    Alarm, Consistency, HashKv, KeyFacts, ListedMember, MemberStatus, Page, Source, Target,
};
use crate::Error;

/// One fake member.
#[derive(Clone, Debug, Default)]
pub struct FakeMember {
    pub status: MemberStatus,
    /// Key -> (value size, version).
    pub keys: BTreeMap<Vec<u8>, (u64, i64)>,
    /// Answers nothing.
    pub silent: bool,
    /// Keys written during a watch.
    pub writes: Vec<Vec<u8>>,
    /// A served certificate (DER).
    pub certificate: Option<Vec<u8>>,
}

/// The fake cluster.
#[derive(Debug, Default)]
pub struct FakeCluster {
    pub targets: Vec<Target>,
    pub members: Vec<FakeMember>,
    pub alarms: Vec<Alarm>,
    /// Pages served, with their limits (to check the scan's paging).
    pub pages: std::sync::Mutex<Vec<u32>>,
    /// Keys in the ranges of all pages served, whatever their limits: what etcd's index
    /// walks to count them.
    pub walked: std::sync::atomic::AtomicU64,
}

impl FakeCluster {
    /// `n` healthy members `m1..` led by the first, each holding `keys`.
    pub fn healthy(n: usize, keys: &[(&str, u64)]) -> Self {
        let mut c = Self::default();
        for i in 1..=n {
            c.targets.push(Target {
                name: format!("m{i}"),
                endpoint: format!("http://127.0.0.{i}:2379"),
                metrics: None,
            });
            c.members.push(FakeMember {
                status: MemberStatus {
                    member_id: i as u64,
                    leader_id: 1,
                    revision: 100,
                    raft_index: 200,
                    raft_applied_index: 200,
                    db_size: 1 << 20,
                    db_size_in_use: 1 << 20,
                    ..MemberStatus::default()
                },
                keys: keys
                    .iter()
                    .map(|(k, size)| (k.as_bytes().to_vec(), (*size, 1)))
                    .collect(),
                ..FakeMember::default()
            });
        }
        c
    }

    fn member(&self, t: usize) -> Result<&FakeMember, Error> {
        let m = &self.members[t];
        if m.silent {
            return Err(cairn_client::Error::Timeout {
                endpoint: self.targets[t].endpoint.clone(),
                what: "a fake request",
                after: Duration::from_secs(1),
            }
            .into());
        }
        Ok(m)
    }
}

impl Source for FakeCluster {
    fn targets(&self) -> &[Target] {
        &self.targets
    }

    async fn status(&self, t: usize) -> Result<MemberStatus, Error> {
        Ok(self.member(t)?.status.clone())
    }

    async fn member_list(&self, t: usize) -> Result<Vec<ListedMember>, Error> {
        self.member(t)?;
        Ok(self
            .targets
            .iter()
            .zip(&self.members)
            .map(|(t, m)| ListedMember {
                id: m.status.member_id,
                name: t.name.clone(),
                client_urls: vec![t.endpoint.clone()],
                is_learner: m.status.is_learner,
            })
            .collect())
    }

    async fn alarms(&self, t: usize) -> Result<Vec<Alarm>, Error> {
        self.member(t)?;
        Ok(self.alarms.clone())
    }

    async fn hash_kv(&self, t: usize, _revision: i64) -> Result<HashKv, Error> {
        // FNV-1a over keys and sizes: equal keyspaces hash equally.
        let mut h: u32 = 0x811c_9dc5;
        for (k, (size, _)) in &self.member(t)?.keys {
            for b in k.iter().chain(&size.to_be_bytes()) {
                h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
            }
        }
        Ok(HashKv {
            hash: h,
            compact_revision: -1,
        })
    }

    async fn count(&self, t: usize, _revision: i64) -> Result<u64, Error> {
        Ok(self.member(t)?.keys.len() as u64)
    }

    async fn page(
        &self,
        t: usize,
        from: &[u8],
        end: Option<&[u8]>,
        _revision: i64,
        limit: u32,
    ) -> Result<Page, Error> {
        self.pages.lock().expect("pages").push(limit);
        let m = self.member(t)?;
        let in_range = m
            .keys
            .range(from.to_vec()..)
            .take_while(|(k, _)| end.is_none_or(|e| k.as_slice() < e))
            .count();
        self.walked
            .fetch_add(in_range as u64, std::sync::atomic::Ordering::Relaxed);
        let mut keys: Vec<KeyFacts> = m
            .keys
            .range(from.to_vec()..)
            .take_while(|(k, _)| end.is_none_or(|e| k.as_slice() < e))
            .take(limit as usize + 1)
            // The version stands in for the modification revision, the size for the value.
            .map(|(k, (size, version))| KeyFacts {
                key: k.clone(),
                value_size: *size,
                version: *version,
                mod_revision: *version,
                value_digest: *size,
            })
            .collect();
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        Ok(Page { keys, more })
    }

    async fn read(&self, t: usize, _consistency: Consistency) -> Result<Duration, Error> {
        self.member(t)?;
        Ok(Duration::from_millis(1))
    }

    async fn writes(
        &self,
        t: usize,
        _window: Duration,
        depth: usize,
    ) -> Result<HashMap<String, u64>, Error> {
        let mut counts = HashMap::new();
        for k in &self.member(t)?.writes {
            *counts.entry(prefix_of(k, depth)).or_default() += 1;
        }
        Ok(counts)
    }

    async fn metrics(&self, _t: usize) -> Option<crate::Metrics> {
        None
    }

    async fn served_certificate(&self, t: usize) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.member(t)?.certificate.clone())
    }
}
