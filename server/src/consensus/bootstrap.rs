//! How a replicated member finds its place, as etcd does: a member with a raft log restarts
//! from it and ignores the `--initial-*` flags (except a token that contradicts its data); a
//! new cluster's members each write the same first entries (one membership change per member
//! of `--initial-cluster`, IDs derived from the token and peer URLs); a member joining with
//! `--initial-cluster-state existing` asks a running peer for the cluster and its own ID.
//! Every path refuses to join the wrong cluster, or to rejoin silently with lost data.

use std::time::Duration;

use prost::Message as _;
use raft::prelude::{ConfChangeType, Entry, EntryType, HardState};

use crate::config::{ClusterState, Config, ConfigError};
use crate::consensus::membership::{conf_change, Membership};
use crate::consensus::transport::{self, TransportConfig};
use crate::consensus::RaftLogStore;
use crate::identity::Identity;
use crate::mvcc::store::{meta, read_u64};
use crate::mvcc::{Backend, WriteBatch};
use crate::proto::cairnpb::MembersRequest;
use crate::Error;

/// Where the token the cluster was bootstrapped with is kept (raft log backend).
const TOKEN_KEY: &[u8] = b"r/token";
/// This member's IDs in the raft log backend; written last while bootstrapping, so its
/// presence means the member has its place (a crash before it bootstraps again).
const IDENTITY_KEY: &[u8] = b"r/identity";
/// How long one peer gets to answer while bootstrapping.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a joining member keeps asking its peers.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// This member's place in the cluster.
#[derive(Debug)]
pub struct Place {
    /// Cluster and member IDs.
    pub identity: Identity,
    /// The membership as known before raft starts (complete after the log is replayed).
    pub membership: Membership,
}

/// Fixes `id` in the MVCC backend's metadata (what Status and snapshots report).
pub(crate) fn write_identity(backend: &dyn Backend, id: Identity) -> Result<(), Error> {
    let mut b = WriteBatch::new();
    b.put(
        meta::CLUSTER_ID.to_vec(),
        id.cluster_id.to_be_bytes().to_vec(),
    );
    b.put(
        meta::MEMBER_ID.to_vec(),
        id.member_id.to_be_bytes().to_vec(),
    );
    backend.write(b)?;
    backend.flush()
}

fn stored_identity(backend: &dyn Backend) -> Result<Option<Identity>, Error> {
    Ok(
        match (
            read_u64(backend, meta::CLUSTER_ID)?,
            read_u64(backend, meta::MEMBER_ID)?,
        ) {
            (Some(cluster_id), Some(member_id)) => Some(Identity {
                cluster_id,
                member_id,
            }),
            _ => None,
        },
    )
}

/// What a peer says about the cluster.
struct Answer {
    url: String,
    cluster_id: u64,
    membership: Membership,
}

/// Asks every peer URL in `urls` at once; the ones that answer in time.
async fn ask_peers(transport: &TransportConfig, urls: &[String]) -> Vec<Answer> {
    let asks = urls.iter().map(|url| async move {
        let ask = async {
            let mut client = transport::connect(transport, url).await?;
            let resp = client.members(MembersRequest {}).await?.into_inner();
            let membership = Membership::from_record(resp.membership.unwrap_or_default());
            Ok::<_, Error>(Answer {
                url: url.clone(),
                cluster_id: resp.cluster_id,
                membership,
            })
        };
        match tokio::time::timeout(ASK_TIMEOUT, ask).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(e)) => {
                tracing::debug!(peer = %url, error = %crate::error::chain(&e), "peer did not answer");
                None
            }
            Err(_) => None,
        }
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The peer URLs of `--initial-cluster` that are not this member's.
fn other_peer_urls(config: &Config) -> Vec<String> {
    let mine = config.initial_cluster.peer_urls_of(&config.name);
    config
        .initial_cluster
        .0
        .iter()
        .filter(|m| !mine.contains(&m.peer_url))
        .map(|m| m.peer_url.clone())
        .collect()
}

/// Finds this member's place, writing the first raft entries or the identity as needed.
pub async fn bootstrap(
    config: &Config,
    mvcc: &dyn Backend,
    log: &RaftLogStore,
    raft_backend: &dyn Backend,
    transport: &TransportConfig,
) -> Result<Place, Error> {
    let token = &config.initial_cluster_token;
    if let Some(raw) = raft_backend.get(IDENTITY_KEY)? {
        let raw: [u8; 16] = raw.try_into().map_err(|_| Error::CorruptRecord)?;
        let (c, m) = raw.split_at(8);
        let identity = Identity {
            cluster_id: u64::from_be_bytes(c.try_into().expect("8 bytes")),
            member_id: u64::from_be_bytes(m.try_into().expect("8 bytes")),
        };
        if stored_identity(mvcc)? != Some(identity) {
            write_identity(mvcc, identity)?;
        }
        if let Some(stored) = raft_backend.get(TOKEN_KEY)? {
            let stored = String::from_utf8_lossy(&stored).into_owned();
            if &stored != token {
                return Err(ConfigError::TokenMismatch {
                    stored,
                    flag: token.clone(),
                }
                .into());
            }
        }
        let membership = Membership::load(raft_backend)?.unwrap_or_default();
        if membership.is_removed(identity.member_id) {
            return Err(Error::Removed);
        }
        return Ok(Place {
            identity,
            membership,
        });
    }
    if stored_identity(mvcc)?.is_some() {
        return Err(ConfigError::SingleMemberData(config.initial_cluster.names().len()).into());
    }
    let place = match config.initial_cluster_state {
        ClusterState::New => bootstrap_new(config, log, transport).await?,
        ClusterState::Existing => join_existing(config, transport).await?,
    };
    place.membership.save(raft_backend)?;
    let mut b = WriteBatch::new();
    b.put(TOKEN_KEY.to_vec(), token.as_bytes().to_vec());
    let mut id = place.identity.cluster_id.to_be_bytes().to_vec();
    id.extend_from_slice(&place.identity.member_id.to_be_bytes());
    b.put(IDENTITY_KEY.to_vec(), id);
    raft_backend.write(b)?;
    raft_backend.flush()?;
    write_identity(mvcc, place.identity)?;
    Ok(place)
}

async fn bootstrap_new(
    config: &Config,
    log: &RaftLogStore,
    transport: &TransportConfig,
) -> Result<Place, Error> {
    let token = &config.initial_cluster_token;
    let identity = Identity::derive(&config.initial_cluster, &config.name, token);
    let membership = Membership::bootstrap(&config.initial_cluster, token);
    // A member whose data dir was lost must not slip back in as if new: the others know it
    // ran (it published its client URLs).
    for answer in ask_peers(transport, &other_peer_urls(config)).await {
        if answer.cluster_id != identity.cluster_id {
            return Err(ConfigError::ClusterMismatch {
                url: answer.url,
                theirs: answer.cluster_id,
                ours: identity.cluster_id,
            }
            .into());
        }
        let published = answer
            .membership
            .get(identity.member_id)
            .is_some_and(|m| !m.client_ur_ls.is_empty());
        if published || answer.membership.is_removed(identity.member_id) {
            return Err(ConfigError::AlreadyBootstrapped(identity.member_id).into());
        }
    }
    // Every member writes the same first entries: one addition per member, in ID order,
    // committed at term 1. Replaying them builds the configuration and the membership, and a
    // member added later learns the initial members from them too.
    let members = membership.members();
    let entries: Vec<Entry> = members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let cc = conf_change(ConfChangeType::AddNode, m.id, m.encode_to_vec());
            let mut e = Entry::default();
            e.set_entry_type(EntryType::EntryConfChangeV2);
            e.term = 1;
            e.index = i as u64 + 1;
            e.data = protobuf::Message::write_to_bytes(&cc)
                .expect("conf changes encode")
                .into();
            e
        })
        .collect();
    let hard = HardState {
        term: 1,
        commit: entries.len() as u64,
        ..Default::default()
    };
    log.append(&entries, Some(&hard))?;
    log.flush()?;
    tracing::info!(
        members = members.len(),
        cluster_id = %format!("{:x}", identity.cluster_id),
        "bootstrapped a new cluster"
    );
    Ok(Place {
        identity,
        // Filled as the first entries are applied.
        membership: Membership::default(),
    })
}

async fn join_existing(config: &Config, transport: &TransportConfig) -> Result<Place, Error> {
    let mine: Vec<String> = config
        .initial_advertise_peer_urls
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .collect();
    let others = other_peer_urls(config);
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        if let Some(answer) = ask_peers(transport, &others).await.into_iter().next() {
            let me = answer
                .membership
                .with_peer_url(&mine)
                .map(|m| m.id)
                .ok_or_else(|| ConfigError::NotAdded(mine.join(",")))?;
            if answer.membership.is_removed(me) {
                return Err(Error::Removed);
            }
            tracing::info!(
                member_id = %format!("{me:x}"),
                cluster_id = %format!("{:x}", answer.cluster_id),
                peer = %answer.url,
                "joining an existing cluster"
            );
            return Ok(Place {
                identity: Identity {
                    cluster_id: answer.cluster_id,
                    member_id: me,
                },
                membership: answer.membership,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ConfigError::NoPeerAnswered(others.join(",")).into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
