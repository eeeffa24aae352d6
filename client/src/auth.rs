//! A cluster's auth state through etcd's Auth API: whether auth is on, the roles with their
//! permissions, the users with their roles (etcd never hands out password hashes), and the
//! changes made to it. The provisioner converges it, the logical dump carries it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

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

/// A permission for people: `readwrite ["/app/", "/app0")`.
struct Shown<'a>(&'a Permission);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let access = match self.0.perm_type {
            PermType::Read => "read",
            PermType::Write => "write",
            PermType::Readwrite => "readwrite",
        };
        let key = String::from_utf8_lossy(&self.0.key);
        match self.0.range_end.as_slice() {
            [] => write!(f, "{access} {key:?}"),
            [0] => write!(f, "{access} from {key:?}"),
            end => write!(f, "{access} [{key:?}, {:?})", String::from_utf8_lossy(end)),
        }
    }
}

/// One change to a cluster's auth; its text (for plans and logs) never holds a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new role.
    AddRole(String),
    /// A permission for a role.
    Grant(String, Permission),
    /// A permission taken from a role.
    Revoke(String, Permission),
    /// A new user (with its password, if any).
    AddUser(String, Option<String>),
    /// A new password for a user.
    SetPassword(String, String),
    /// A role for a user.
    GrantRole(String, String),
    /// A role taken from a user.
    RevokeRole(String, String),
    /// Auth on.
    Enable,
    /// Auth off.
    Disable,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddRole(r) => write!(f, "auth: add role {r}"),
            Change::Grant(r, p) => write!(f, "auth: grant {} to role {r}", Shown(p)),
            Change::Revoke(r, p) => write!(f, "auth: revoke {} from role {r}", Shown(p)),
            Change::AddUser(u, Some(_)) => write!(f, "auth: add user {u}"),
            Change::AddUser(u, None) => write!(f, "auth: add user {u} (no password)"),
            Change::SetPassword(u, _) => write!(f, "auth: set the password of user {u}"),
            Change::GrantRole(u, r) => write!(f, "auth: grant role {r} to user {u}"),
            Change::RevokeRole(u, r) => write!(f, "auth: revoke role {r} from user {u}"),
            Change::Enable => write!(f, "auth: enable"),
            Change::Disable => write!(f, "auth: disable"),
        }
    }
}

/// Carries out `changes` in order on the member `client` talks to (`endpoint`, for errors).
pub async fn apply(client: &mut Client, endpoint: &str, changes: &[Change]) -> Result<(), Error> {
    let err = |source| Error::from_etcd(endpoint.to_string(), source);
    let mut auth = client.auth_client();
    for change in changes {
        match change {
            Change::AddRole(r) => {
                auth.role_add(r.clone()).await.map_err(&err)?;
            }
            Change::Grant(r, p) => {
                let perm = etcd_client::Permission::new(p.perm_type.etcd(), p.key.clone())
                    .with_range_end(p.range_end.clone());
                auth.role_grant_permission(r.clone(), perm)
                    .await
                    .map_err(&err)?;
            }
            Change::Revoke(r, p) => {
                let options = etcd_client::RoleRevokePermissionOptions::new()
                    .with_range_end(p.range_end.clone());
                auth.role_revoke_permission(r.clone(), p.key.clone(), Some(options))
                    .await
                    .map_err(&err)?;
            }
            Change::AddUser(u, Some(password)) => {
                auth.user_add(u.clone(), password.clone(), None)
                    .await
                    .map_err(&err)?;
            }
            Change::AddUser(u, None) => {
                auth.user_add(
                    u.clone(),
                    String::new(),
                    Some(etcd_client::UserAddOptions::new().with_no_pwd()),
                )
                .await
                .map_err(&err)?;
            }
            Change::SetPassword(u, password) => {
                auth.user_change_password(u.clone(), password.clone())
                    .await
                    .map_err(&err)?;
            }
            Change::GrantRole(u, r) => {
                auth.user_grant_role(u.clone(), r.clone())
                    .await
                    .map_err(&err)?;
            }
            Change::RevokeRole(u, r) => {
                auth.user_revoke_role(u.clone(), r.clone())
                    .await
                    .map_err(&err)?;
            }
            Change::Enable => {
                auth.auth_enable().await.map_err(&err)?;
            }
            Change::Disable => {
                auth.auth_disable().await.map_err(&err)?;
            }
        }
    }
    Ok(())
}
