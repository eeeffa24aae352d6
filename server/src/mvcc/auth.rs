//! Users, roles and the auth switch as the store keeps them: changed only by applied commands,
//! persisted in the same batch as the keyspace (so every member and every restart agree) and
//! carried in snapshots. The rules (who may change what, permission checks, tokens) live in
//! [`crate::auth`]; this is only the data and its records.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message as _;

use crate::mvcc::Backend;
use crate::proto::authpb::{Role, User};
use crate::Error;

/// Backend key prefix of every auth record.
pub const AUTH_PREFIX: &[u8] = b"a/";
/// End of the auth record range.
pub const AUTH_END: &[u8] = b"a0";
const ENABLED: &[u8] = b"a/enabled";
const REVISION: &[u8] = b"a/revision";
const TOKEN_KEY: &[u8] = b"a/token_key";
const USER_PREFIX: &[u8] = b"a/user/";
const ROLE_PREFIX: &[u8] = b"a/role/";

/// A user and the auth revision of its creation or last password change: tokens issued
/// before it are no longer honoured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuthUser {
    /// etcd's record: name, bcrypt hash, roles (sorted), options.
    pub user: User,
    /// Auth revision of the last change of credentials.
    pub changed: u64,
}

/// The auth store's state.
#[derive(Debug)]
pub struct AuthTable {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, AuthUser>,
    roles: BTreeMap<String, Role>,
    token_key: Option<Vec<u8>>,
    /// Backend keys changed since the last [`AuthTable::take_changes`].
    dirty: BTreeSet<Vec<u8>>,
}

impl Default for AuthTable {
    fn default() -> Self {
        // etcd's auth store starts at revision 1: 0 means "no auth information".
        Self {
            enabled: false,
            revision: 1,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            token_key: None,
            dirty: BTreeSet::new(),
        }
    }
}

fn user_key(name: &str) -> Vec<u8> {
    [USER_PREFIX, name.as_bytes()].concat()
}

fn role_key(name: &str) -> Vec<u8> {
    [ROLE_PREFIX, name.as_bytes()].concat()
}

impl AuthTable {
    /// A table with auth `enabled` at `revision` and no users or roles yet (an etcd
    /// snapshot's, being read).
    pub fn restored(enabled: bool, revision: u64) -> Self {
        Self {
            enabled,
            revision: revision.max(1),
            ..Self::default()
        }
    }

    /// Reads the records of `backend`.
    pub fn load(backend: &dyn Backend) -> Result<Self, Error> {
        let mut table = Self::default();
        for (k, v) in backend.scan(AUTH_PREFIX, AUTH_END, None)? {
            table.restore(&k, &v)?;
        }
        Ok(table)
    }

    /// Applies one record as [`AuthTable::records`] produced it.
    pub fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        if key == ENABLED {
            self.enabled = value == [1];
        } else if key == REVISION {
            self.revision = u64::from_be_bytes(value.try_into().map_err(|_| Error::CorruptRecord)?);
        } else if key == TOKEN_KEY {
            self.token_key = Some(value.to_vec());
        } else if let Some(name) = key.strip_prefix(USER_PREFIX) {
            let name = String::from_utf8(name.to_vec()).map_err(|_| Error::CorruptRecord)?;
            if value.len() < 8 {
                return Err(Error::CorruptRecord);
            }
            let changed = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
            let user = User::decode(&value[8..])?;
            self.users.insert(name, AuthUser { user, changed });
        } else if let Some(name) = key.strip_prefix(ROLE_PREFIX) {
            let name = String::from_utf8(name.to_vec()).map_err(|_| Error::CorruptRecord)?;
            self.roles.insert(name, Role::decode(value)?);
        } else {
            return Err(Error::CorruptRecord);
        }
        Ok(())
    }

    fn encoded(&self, key: &[u8]) -> Option<Vec<u8>> {
        if key == ENABLED {
            Some(vec![u8::from(self.enabled)])
        } else if key == REVISION {
            Some(self.revision.to_be_bytes().to_vec())
        } else if key == TOKEN_KEY {
            self.token_key.clone()
        } else if let Some(name) = key.strip_prefix(USER_PREFIX) {
            let u = self.users.get(std::str::from_utf8(name).ok()?)?;
            let mut v = u.changed.to_be_bytes().to_vec();
            v.extend(u.user.encode_to_vec());
            Some(v)
        } else if let Some(name) = key.strip_prefix(ROLE_PREFIX) {
            Some(
                self.roles
                    .get(std::str::from_utf8(name).ok()?)?
                    .encode_to_vec(),
            )
        } else {
            None
        }
    }

    /// Every record, as backend key and value; without the token key unless `secrets`
    /// (snapshot files leave it out: a backup must not let its reader forge tokens).
    pub fn records(&self, secrets: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut keys = vec![ENABLED.to_vec(), REVISION.to_vec()];
        if secrets && self.token_key.is_some() {
            keys.push(TOKEN_KEY.to_vec());
        }
        keys.extend(self.users.keys().map(|n| user_key(n)));
        keys.extend(self.roles.keys().map(|n| role_key(n)));
        keys.into_iter()
            .filter_map(|k| self.encoded(&k).map(|v| (k, v)))
            .collect()
    }

    /// The records changed since the last call: `None` deletes. The store writes them with
    /// the batch of the command that changed them.
    pub fn take_changes(&mut self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|k| {
                let v = self.encoded(&k);
                (k, v)
            })
            .collect()
    }

    /// Whether auth is enabled.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision: advances on every change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// User `name`.
    pub fn user(&self, name: &str) -> Option<&AuthUser> {
        self.users.get(name)
    }

    /// Every user, by name.
    pub fn users(&self) -> impl Iterator<Item = (&String, &AuthUser)> {
        self.users.iter()
    }

    /// Role `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Every role name, sorted.
    pub fn role_names(&self) -> impl Iterator<Item = &String> {
        self.roles.keys()
    }

    /// The key simple tokens are signed with, once one was committed.
    pub fn token_key(&self) -> Option<&[u8]> {
        self.token_key.as_deref()
    }

    /// Turns auth on or off.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        self.dirty.insert(ENABLED.to_vec());
    }

    /// Advances the revision; returns the new one.
    pub fn bump_revision(&mut self) -> u64 {
        self.revision += 1;
        self.dirty.insert(REVISION.to_vec());
        self.revision
    }

    /// Adds or replaces user `name`.
    pub fn put_user(&mut self, name: &str, user: AuthUser) {
        self.users.insert(name.to_string(), user);
        self.dirty.insert(user_key(name));
    }

    /// Removes user `name`.
    pub fn remove_user(&mut self, name: &str) -> Option<AuthUser> {
        self.dirty.insert(user_key(name));
        self.users.remove(name)
    }

    /// Adds or replaces role `name`.
    pub fn put_role(&mut self, name: &str, role: Role) {
        self.roles.insert(name.to_string(), role);
        self.dirty.insert(role_key(name));
    }

    /// Removes role `name`.
    pub fn remove_role(&mut self, name: &str) -> Option<Role> {
        self.dirty.insert(role_key(name));
        self.roles.remove(name)
    }

    /// Sets the token key; the first one committed stays (every member applies the same).
    pub fn set_token_key(&mut self, key: &[u8]) {
        if self.token_key.is_none() {
            self.token_key = Some(key.to_vec());
            self.dirty.insert(TOKEN_KEY.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::{MemBackend, WriteBatch};
    use crate::proto::authpb::{Permission, UserAddOptions};
    use proptest::prelude::*;

    fn persist(table: &mut AuthTable, backend: &dyn Backend) {
        let mut b = WriteBatch::new();
        for (k, v) in table.take_changes() {
            match v {
                Some(v) => b.put(k, v),
                None => b.delete(k),
            }
        }
        backend.write(b).unwrap();
    }

    fn same(a: &AuthTable, b: &AuthTable) {
        assert_eq!(a.enabled, b.enabled);
        assert_eq!(a.revision, b.revision);
        assert_eq!(a.users, b.users);
        assert_eq!(a.roles, b.roles);
        assert_eq!(a.token_key, b.token_key);
    }

    proptest! {
        /// Whatever sequence of changes, what is persisted reads back as the same table, and
        /// so do its snapshot records.
        #[test]
        fn changes_persist_and_snapshot_records_round_trip(
            ops in proptest::collection::vec((0u8..6, "[a-c]{1,2}", any::<bool>()), 1..40)
        ) {
            let backend = MemBackend::default();
            let mut table = AuthTable::default();
            for (op, name, flag) in ops {
                match op {
                    0 => table.put_user(&name, AuthUser {
                        user: User {
                            name: name.clone().into_bytes(),
                            password: b"$2a$10$hash".to_vec(),
                            roles: vec!["r".into()],
                            options: Some(UserAddOptions { no_password: flag }),
                        },
                        changed: table.revision(),
                    }),
                    1 => { table.remove_user(&name); }
                    2 => table.put_role(&name, Role {
                        name: name.clone().into_bytes(),
                        key_permission: vec![Permission { perm_type: 2, key: b"k".to_vec(), range_end: vec![] }],
                    }),
                    3 => { table.remove_role(&name); }
                    4 => table.set_enabled(flag),
                    _ => { table.bump_revision(); table.set_token_key(name.as_bytes()); }
                }
                if flag {
                    persist(&mut table, &backend);
                }
            }
            persist(&mut table, &backend);
            same(&AuthTable::load(&backend).unwrap(), &table);
            let mut copy = AuthTable::default();
            for (k, v) in table.records(true) {
                copy.restore(&k, &v).unwrap();
            }
            same(&copy, &table);
            prop_assert!(table.records(false).iter().all(|(k, _)| k != TOKEN_KEY));
        }
    }
}
