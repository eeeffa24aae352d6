//! Member and cluster IDs, derived the way etcd derives them: a member ID from its sorted peer
//! URLs and the cluster token, the cluster ID from the sorted member IDs. The same flags give
//! the same IDs on every start and on etcd itself.

use sha1::{Digest, Sha1};

use crate::config::InitialCluster;

fn first_u64(hash: &[u8]) -> u64 {
    u64::from_be_bytes(hash[..8].try_into().expect("sha1 is 20 bytes"))
}

/// etcd's member ID: sha1 of the sorted peer URLs followed by the cluster token.
pub fn member_id(sorted_peer_urls: &[String], token: &str) -> u64 {
    let mut h = Sha1::new();
    for u in sorted_peer_urls {
        h.update(u.as_bytes());
    }
    h.update(token.as_bytes());
    first_u64(&h.finalize())
}

/// etcd's cluster ID: sha1 of the sorted member IDs (big-endian).
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    first_u64(&h.finalize())
}

/// Who answers: the IDs every response header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The cluster.
    pub cluster_id: u64,
    /// This member.
    pub member_id: u64,
}

impl Identity {
    /// IDs for member `name` of `cluster`, bootstrapped with `token`.
    pub fn derive(cluster: &InitialCluster, name: &str, token: &str) -> Self {
        let ids: Vec<u64> = cluster
            .names()
            .iter()
            .map(|n| member_id(&cluster.peer_urls_of(n), token))
            .collect();
        Self {
            cluster_id: cluster_id(&ids),
            member_id: member_id(&cluster.peer_urls_of(name), token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_etcds_default_single_member() {
        // etcd 3.4 started with all defaults reports member 8e9e05c52164694d, cluster cdf818194e3a8c32.
        let c: InitialCluster = "default=http://localhost:2380".parse().unwrap();
        let id = Identity::derive(&c, "default", "etcd-cluster");
        assert_eq!(format!("{:x}", id.member_id), "8e9e05c52164694d");
        assert_eq!(format!("{:x}", id.cluster_id), "cdf818194e3a8c32");
    }
}
