//! Who is in the cluster: members with their names, peer and client URLs, learners, and the IDs
//! removed for good. Changed only by committed raft entries (conf changes, published
//! attributes, peer URL updates), so every member agrees; kept beside the raft log.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;
use raft::prelude::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

use crate::config::InitialCluster;
use crate::identity;
use crate::mvcc::{Backend, WriteBatch};
use crate::proto::cairnpb::{self, MemberAttributes};
use crate::proto::etcdserverpb::{Member, MemberUpdateRequest};
use crate::Error;

/// Where the membership is kept in the raft log's backend.
const MEMBERSHIP_KEY: &[u8] = b"r/members";

/// A membership change of one member (`context`: the new member, encoded, for additions).
pub fn conf_change(kind: ConfChangeType, id: u64, context: Vec<u8>) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(kind);
    single.node_id = id;
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![single].into());
    cc.set_context(context.into());
    cc
}

/// The cluster's members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    members: BTreeMap<u64, Member>,
    removed: BTreeSet<u64>,
}

impl Membership {
    /// The members `--initial-cluster` names, with IDs derived from their peer URLs and `token`
    /// exactly as etcd derives them.
    pub fn bootstrap(cluster: &InitialCluster, token: &str) -> Self {
        let members = cluster
            .names()
            .into_iter()
            .map(|name| {
                let peer_urls = cluster.peer_urls_of(name);
                let id = identity::member_id(&peer_urls, token);
                let member = Member {
                    id,
                    name: name.to_string(),
                    peer_ur_ls: peer_urls,
                    client_ur_ls: Vec::new(),
                    is_learner: false,
                };
                (id, member)
            })
            .collect();
        Self {
            members,
            removed: BTreeSet::new(),
        }
    }

    /// The membership stored in `backend`, if any.
    pub fn load(backend: &dyn Backend) -> Result<Option<Self>, Error> {
        let Some(raw) = backend.get(MEMBERSHIP_KEY)? else {
            return Ok(None);
        };
        Ok(Some(Self::from_record(cairnpb::Membership::decode(
            raw.as_slice(),
        )?)))
    }

    /// From its wire/disk form.
    pub fn from_record(record: cairnpb::Membership) -> Self {
        Self {
            members: record.members.into_iter().map(|m| (m.id, m)).collect(),
            removed: record.removed.into_iter().collect(),
        }
    }

    /// Its wire/disk form.
    pub fn to_record(&self) -> cairnpb::Membership {
        cairnpb::Membership {
            members: self.members.values().cloned().collect(),
            removed: self.removed.iter().copied().collect(),
        }
    }

    /// Writes the membership into `backend` (durable with the backend's next flush).
    pub fn save(&self, backend: &dyn Backend) -> Result<(), Error> {
        let mut batch = WriteBatch::new();
        batch.put(MEMBERSHIP_KEY.to_vec(), self.to_record().encode_to_vec());
        backend.write(batch)
    }

    /// Adds (or replaces) a member directly: for a single member's own record, which no
    /// raft entry describes.
    pub fn insert(&mut self, member: Member) {
        self.members.insert(member.id, member);
    }

    /// Every member, ordered by ID.
    pub fn members(&self) -> Vec<Member> {
        self.members.values().cloned().collect()
    }

    /// Member `id`.
    pub fn get(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    /// Whether `id` was removed from the cluster (it may not rejoin under that ID).
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// The member, if any, that has one of `urls` as a peer URL.
    pub fn with_peer_url<'a>(&'a self, urls: &[String]) -> Option<&'a Member> {
        self.members
            .values()
            .find(|m| m.peer_ur_ls.iter().any(|u| urls.contains(u)))
    }

    /// Records a member's published name and client URLs.
    pub fn apply_attributes(&mut self, a: &MemberAttributes) {
        if let Some(m) = self.members.get_mut(&a.id) {
            m.name = a.name.clone();
            m.client_ur_ls = a.client_urls.clone();
        }
    }

    /// Records new peer URLs for a member.
    pub fn apply_update(&mut self, u: &MemberUpdateRequest) {
        if let Some(m) = self.members.get_mut(&u.id) {
            m.peer_ur_ls = u.peer_ur_ls.clone();
        }
    }

    /// Applies a committed membership change. Additions carry the new [`Member`] (encoded) as
    /// the change's context.
    pub fn apply_conf_change(&mut self, change: &ConfChangeV2) {
        for c in change.get_changes() {
            let id = c.node_id;
            match c.get_change_type() {
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                    let learner = c.get_change_type() == ConfChangeType::AddLearnerNode;
                    match self.members.get_mut(&id) {
                        // Promotion of a learner.
                        Some(m) => m.is_learner = learner,
                        None => {
                            let mut m = Member::decode(change.get_context()).unwrap_or_default();
                            m.id = id;
                            m.is_learner = learner;
                            self.members.insert(id, m);
                        }
                    }
                }
                ConfChangeType::RemoveNode => {
                    self.members.remove(&id);
                    self.removed.insert(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::MemBackend;

    #[test]
    fn bootstrap_add_promote_remove_and_reload() {
        let cluster: InitialCluster = "a=http://127.0.0.1:1,b=http://127.0.0.2:1"
            .parse()
            .expect("parse");
        let mut m = Membership::bootstrap(&cluster, "t");
        assert_eq!(m.members().len(), 2);
        let a = identity::member_id(&["http://127.0.0.1:1".to_string()], "t");
        assert_eq!(m.get(a).map(|x| x.name.as_str()), Some("a"));

        m.apply_attributes(&MemberAttributes {
            id: a,
            name: "a".into(),
            client_urls: vec!["http://127.0.0.1:2".into()],
        });
        let new = Member {
            id: 7,
            peer_ur_ls: vec!["http://127.0.0.3:1".into()],
            ..Default::default()
        };
        m.apply_conf_change(&conf_change(
            ConfChangeType::AddLearnerNode,
            7,
            new.encode_to_vec(),
        ));
        assert!(m.get(7).expect("added").is_learner);
        assert_eq!(
            m.with_peer_url(&["http://127.0.0.3:1".into()])
                .map(|x| x.id),
            Some(7)
        );
        m.apply_conf_change(&conf_change(ConfChangeType::AddNode, 7, Vec::new()));
        let promoted = m.get(7).expect("still there");
        assert!(!promoted.is_learner);
        assert_eq!(promoted.peer_ur_ls, new.peer_ur_ls);

        m.apply_conf_change(&conf_change(ConfChangeType::RemoveNode, a, Vec::new()));
        assert!(m.get(a).is_none());
        assert!(m.is_removed(a));

        let backend = MemBackend::new();
        assert_eq!(Membership::load(&backend).expect("load"), None);
        m.save(&backend).expect("save");
        assert_eq!(Membership::load(&backend).expect("load"), Some(m));
    }
}
