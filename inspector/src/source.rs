//! The cluster as the checks see it, behind a trait: the real one ([`crate::EtcdSource`])
//! speaks etcd's API to every member; unit tests answer from memory. Members are addressed
//! by their index in [`Source::targets`].

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use crate::Error;

/// One member to inspect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its name: the inventory's host name, or the endpoint itself with `--endpoints`.
    pub name: String,
    /// Its client URL.
    pub endpoint: String,
    /// Its `/metrics` URL when it is not on the client URL (a separate metrics port).
    pub metrics: Option<String>,
}

/// A member's own status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// Its ID.
    pub member_id: u64,
    /// The leader it knows of (0: none).
    pub leader_id: u64,
    /// Its store's revision.
    pub revision: i64,
    /// Raft index (committed).
    pub raft_index: u64,
    /// Raft applied index.
    pub raft_applied_index: u64,
    /// Backend file size in bytes.
    pub db_size: u64,
    /// Bytes of it in use.
    pub db_size_in_use: u64,
    /// The quota it reports (etcd 3.6+; 0 when it does not).
    pub db_size_quota: u64,
    /// Whether it is a learner.
    pub is_learner: bool,
    /// Its error strings (alarms, among others).
    pub errors: Vec<String>,
}

/// A member as the member list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedMember {
    /// ID.
    pub id: u64,
    /// Name (empty before it started).
    pub name: String,
    /// Client URLs.
    pub client_urls: Vec<String>,
    /// Learner flag.
    pub is_learner: bool,
}

/// An active alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    /// The member raising it.
    pub member_id: u64,
    /// `NOSPACE`, `CORRUPT`.
    pub kind: String,
}

/// A member's hash of its keyspace up to a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashKv {
    /// The hash.
    pub hash: u32,
    /// The compaction revision it starts from.
    pub compact_revision: i64,
}

/// One key as the scan sees it; the value itself is dropped right after its size is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFacts {
    /// The key.
    pub key: Vec<u8>,
    /// Its value's size in bytes.
    pub value_size: u64,
    /// Versions since its creation.
    pub version: i64,
    /// The revision of its last change.
    pub mod_revision: i64,
    /// A digest of its value, to compare members' values without keeping them.
    pub value_digest: u64,
}

/// One page of the keyspace scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    /// Keys in order.
    pub keys: Vec<KeyFacts>,
    /// Whether keys follow the last one.
    pub more: bool,
}

/// Read latency kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Answered by the member from its own state.
    Serializable,
    /// Confirmed with the leader first.
    Linearizable,
}

/// Questions the inspector asks.
pub trait Source: Send + Sync {
    /// The members to inspect.
    fn targets(&self) -> &[Target];

    /// Member `t`'s status.
    fn status(&self, t: usize) -> impl Future<Output = Result<MemberStatus, Error>> + Send;

    /// The member list, as member `t` reports it.
    fn member_list(
        &self,
        t: usize,
    ) -> impl Future<Output = Result<Vec<ListedMember>, Error>> + Send;

    /// Active alarms, as member `t` reports them.
    fn alarms(&self, t: usize) -> impl Future<Output = Result<Vec<Alarm>, Error>> + Send;

    /// Member `t`'s hash of its keyspace at `revision`.
    fn hash_kv(
        &self,
        t: usize,
        revision: i64,
    ) -> impl Future<Output = Result<HashKv, Error>> + Send;

    /// How many keys member `t` holds at `revision` (a serializable count: its own data).
    fn count(&self, t: usize, revision: i64) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Up to `limit` keys in `[from, end)` (to the keyspace's end without `end`) at
    /// `revision`, from member `t`.
    fn page(
        &self,
        t: usize,
        from: &[u8],
        end: Option<&[u8]>,
        revision: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Page, Error>> + Send;

    /// How long one read of member `t` takes.
    fn read(
        &self,
        t: usize,
        consistency: Consistency,
    ) -> impl Future<Output = Result<Duration, Error>> + Send;

    /// Writes seen on member `t` during `window`, counted by prefix at `depth`.
    fn writes(
        &self,
        t: usize,
        window: Duration,
        depth: usize,
    ) -> impl Future<Output = Result<HashMap<String, u64>, Error>> + Send;

    /// Member `t`'s `/metrics`; `None` when it is not reachable there.
    fn metrics(&self, t: usize) -> impl Future<Output = Option<crate::Metrics>> + Send;

    /// The DER certificate member `t` serves on its client URL; `None` without TLS.
    fn served_certificate(
        &self,
        t: usize,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;
}
