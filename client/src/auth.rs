//! A cluster's auth state through etcd's Auth API: whether auth is on, the roles with their
//! permissions, the users with their roles (etcd never hands out password hashes). The
//! provisioner converges it, the logical dump carries it.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{Client, PermissionType};
use serde::{Deserialize, Serialize};

use crate::Error;

/// One permission as etcd keeps it: its type (`READ`, `WRITE`, `READWRITE`), key and range
/// end (empty: the key alone; `\0`: every key from it on).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Permission {
    /// etcd's permission type.
    pub perm_type: PermType,
    /// The key, or the range's start.
    #[serde(with = "crate::auth::base64_bytes")]
    pub key: Vec<u8>,
    /// The range's end.
    #[serde(with = "crate::auth::base64_bytes")]
    pub range_end: Vec<u8>,
}

/// etcd's `authpb.Permission.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PermType {
    /// Range and watch.
    Read,
    /// Put and delete.
    Write,
    /// Both.
    Readwrite,
}

impl PermType {
    /// etcd-client's.
    pub fn etcd(self) -> PermissionType {
        match self {
            PermType::Read => PermissionType::Read,
            PermType::Write => PermissionType::Write,
            PermType::Readwrite => PermissionType::Readwrite,
        }
    }
}

/// Whether auth is on, and every role and user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// Auth is enabled.
    pub enabled: bool,
    /// Roles and their permissions.
    pub roles: BTreeMap<String, BTreeSet<Permission>>,
    /// Users and their roles.
    pub users: BTreeMap<String, BTreeSet<String>>,
}

/// Bytes as base64 strings, as etcd's JSON writes them.
pub(crate) mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        STANDARD
            .decode(String::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

/// Whether auth is on: etcd 3.4 has no AuthStatus, but its Authenticate says "not enabled".
pub async fn enabled(client: &mut Client) -> bool {
    match client
        .auth_client()
        .authenticate("root".into(), String::new())
        .await
    {
        Err(etcd_client::Error::GRpcStatus(s)) => {
            !s.message().contains("authentication is not enabled")
        }
        _ => true,
    }
}

/// Reads the auth state of the member `client` talks to (`endpoint`, for errors). With auth
/// on, the client must be an administrator's.
pub async fn read(client: &mut Client, endpoint: &str) -> Result<AuthState, Error> {
    let err = |source| Error::from_etcd(endpoint.to_string(), source);
    let mut state = AuthState {
        enabled: enabled(client).await,
        ..AuthState::default()
    };
    let mut auth = client.auth_client();
    for role in auth.role_list().await.map_err(err)?.roles().to_vec() {
        let perms = auth
            .role_get(role.clone())
            .await
            .map_err(err)?
            .permissions()
            .iter()
            .map(|p| Permission {
                perm_type: match PermissionType::try_from(p.get_type()) {
                    Ok(PermissionType::Write) => PermType::Write,
                    Ok(PermissionType::Readwrite) => PermType::Readwrite,
                    _ => PermType::Read,
                },
                key: p.key().to_vec(),
                range_end: p.range_end().to_vec(),
            })
            .collect();
        state.roles.insert(role, perms);
    }
    for user in auth.user_list().await.map_err(err)?.users().to_vec() {
        let roles = auth
            .user_get(user.clone())
            .await
            .map_err(err)?
            .roles()
            .iter()
            .cloned()
            .collect();
        state.users.insert(user, roles);
    }
    Ok(state)
}
