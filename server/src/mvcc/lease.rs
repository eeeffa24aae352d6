//! Leases as the store keeps them: which leases exist, their granted TTL, and which keys are
//! attached. Changed only by applied commands (grant, revoke, put, delete), persisted in the same
//! batch as the keyspace, so every member and every restart agree. Expiry deadlines are runtime
//! state of the leader and live elsewhere ([`crate::lessor`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Backend key prefix of lease records: `l/` + big-endian ID → big-endian TTL.
pub const LEASE_PREFIX: &[u8] = b"l/";
/// End of the lease record range.
pub const LEASE_END: &[u8] = b"l0";

/// Backend key of lease `id`.
pub fn lease_key(id: i64) -> Vec<u8> {
    let mut k = LEASE_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// One granted lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lease {
    /// TTL in seconds as granted.
    pub ttl: i64,
    /// Keys attached to it.
    pub keys: BTreeSet<Vec<u8>>,
}

/// All leases and key attachments.
#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: BTreeMap<i64, Lease>,
    key_lease: HashMap<Vec<u8>, i64>,
}

impl LeaseTable {
    /// Whether lease `id` exists.
    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    /// Lease `id`, if it exists.
    pub fn get(&self, id: i64) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Every lease ID, ascending.
    pub fn ids(&self) -> Vec<i64> {
        self.leases.keys().copied().collect()
    }

    /// Every lease with its TTL.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &Lease)> {
        self.leases.iter().map(|(id, l)| (*id, l))
    }

    /// Adds lease `id` with `ttl` and no keys.
    pub fn grant(&mut self, id: i64, ttl: i64) {
        self.leases.insert(
            id,
            Lease {
                ttl,
                keys: BTreeSet::new(),
            },
        );
    }

    /// Removes lease `id`; returns the keys that were attached.
    pub fn revoke(&mut self, id: i64) -> Option<BTreeSet<Vec<u8>>> {
        let lease = self.leases.remove(&id)?;
        for k in &lease.keys {
            self.key_lease.remove(k);
        }
        Some(lease.keys)
    }

    /// Records that `key` now belongs to `lease` (0: none), detaching it from any other.
    pub fn attach(&mut self, key: &[u8], lease: i64) {
        if self.key_lease.get(key) == Some(&lease) {
            return;
        }
        self.detach(key);
        if lease != 0 {
            if let Some(l) = self.leases.get_mut(&lease) {
                l.keys.insert(key.to_vec());
                self.key_lease.insert(key.to_vec(), lease);
            }
        }
    }

    /// Records that `key` was deleted (or lost its lease).
    pub fn detach(&mut self, key: &[u8]) {
        if let Some(old) = self.key_lease.remove(key) {
            if let Some(l) = self.leases.get_mut(&old) {
                l.keys.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_moves_keys_between_leases_and_revoke_returns_them() {
        let mut t = LeaseTable::default();
        t.grant(1, 10);
        t.grant(2, 20);
        t.attach(b"a", 1);
        t.attach(b"b", 1);
        t.attach(b"a", 2);
        assert_eq!(t.get(1).unwrap().keys, BTreeSet::from([b"b".to_vec()]));
        t.attach(b"b", 0);
        t.detach(b"nothing");
        assert!(t.get(1).unwrap().keys.is_empty());
        assert_eq!(t.revoke(2), Some(BTreeSet::from([b"a".to_vec()])));
        assert_eq!(t.revoke(2), None);
        t.attach(b"c", 99);
        assert_eq!(t.ids(), vec![1]);
    }
}
