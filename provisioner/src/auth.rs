//! etcd's auth as `[auth]` declares it: read from the cluster, compared ([`changes`], a pure
//! function) and changed through etcd's Auth API. Declared roles get exactly their
//! permissions; declared users exactly their roles; root (whose certificate is the admin
//! one), and with TLS the tools' certificate users (`cairn-backup`, `cairn-inspector`: root
//! role, no password), are made sure of; users and
//! roles the inventory does not name are left alone. Passwords never appear in a change's
//! text, a plan or a log.

use std::collections::{BTreeMap, BTreeSet};

pub use cairn_client::auth::Change;
use cairn_client::auth::{apply, AuthState, PermType, Permission};
use cairn_client::{Connector, Credentials};
use cairn_inventory::{Access, Inventory};
use etcd_client::Client;

use crate::Error;

/// The role etcd treats as the administrator's.
const ROOT: &str = "root";

fn perm_type(access: Access) -> PermType {
    match access {
        Access::Read => PermType::Read,
        Access::Write => PermType::Write,
        Access::Readwrite => PermType::Readwrite,
    }
}

/// A user as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WantedUser {
    /// Its name.
    pub name: String,
    /// Its password; `None`: no password (certificate CN logins only).
    pub password: Option<String>,
    /// Every role it holds.
    pub roles: BTreeSet<String>,
}

/// What `[auth]` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Whether auth is on.
    pub enabled: bool,
    /// Roles with every permission they have.
    pub roles: BTreeMap<String, BTreeSet<Permission>>,
    /// Users, root first.
    pub users: Vec<WantedUser>,
}

/// What the cluster has: its auth state, and the users whose declared password did not
/// log in (checked only while auth is on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Current {
    /// Roles, users, the switch.
    pub state: AuthState,
    /// Users whose declared password is not theirs.
    pub stale_passwords: BTreeSet<String>,
}

/// What `inventory`'s `[auth]` asks for; `None` without one.
pub fn wanted(inventory: &Inventory) -> Result<Option<Wanted>, Error> {
    let Some(auth) = &inventory.auth else {
        return Ok(None);
    };
    let mut roles: BTreeMap<String, BTreeSet<Permission>> = auth
        .roles
        .iter()
        .map(|r| {
            let perms = r
                .permissions
                .iter()
                .map(|p| Permission {
                    perm_type: perm_type(p.access),
                    key: p.key.clone().into_bytes(),
                    range_end: p.etcd_range_end(),
                })
                .collect();
            (r.name.clone(), perms)
        })
        .collect();
    roles.entry(ROOT.to_string()).or_default();
    let root = |name: &str, password| WantedUser {
        name: name.to_string(),
        password,
        roles: BTreeSet::from([ROOT.to_string()]),
    };
    let mut users = vec![root(ROOT, inventory.root_login()?.map(|(_, p)| p))];
    if inventory.tls.is_some() {
        // The admin certificate's CN is root itself.
        for tool in [
            cairn_client::ClientIdentity::Backup,
            cairn_client::ClientIdentity::Inspector,
        ] {
            users.push(root(tool.common_name(), None));
        }
    }
    for u in &auth.users {
        users.push(WantedUser {
            name: u.name.clone(),
            password: inventory.user_password(u)?,
            roles: u.roles.iter().cloned().collect(),
        });
    }
    Ok(Some(Wanted {
        enabled: auth.enabled,
        roles,
        users,
    }))
}

/// The changes that take `current` to `wanted`, in an order etcd accepts: roles before the
/// users that hold them, root's role before auth goes on.
pub fn changes(wanted: &Wanted, current: &Current) -> Vec<Change> {
    let mut out = Vec::new();
    // The root role is etcd's by name: a permission list on it means nothing, so it is only
    // created (as etcdctl's auth enable does).
    for (role, perms) in &wanted.roles {
        let had = current.state.roles.get(role);
        if had.is_none() {
            out.push(Change::AddRole(role.clone()));
        }
        if role == ROOT {
            continue;
        }
        let had = had.cloned().unwrap_or_default();
        for p in perms.difference(&had) {
            out.push(Change::Grant(role.clone(), p.clone()));
        }
        for p in had.difference(perms) {
            // A grant of the same key and range replaces the access: nothing to revoke.
            if !perms
                .iter()
                .any(|w| w.key == p.key && w.range_end == p.range_end)
            {
                out.push(Change::Revoke(role.clone(), p.clone()));
            }
        }
    }
    for user in &wanted.users {
        match current.state.users.get(&user.name) {
            None => {
                out.push(Change::AddUser(user.name.clone(), user.password.clone()));
                for r in &user.roles {
                    out.push(Change::GrantRole(user.name.clone(), r.clone()));
                }
            }
            Some(had) => {
                if let Some(password) = &user.password {
                    if current.stale_passwords.contains(&user.name) {
                        out.push(Change::SetPassword(user.name.clone(), password.clone()));
                    }
                }
                for r in user.roles.difference(had) {
                    out.push(Change::GrantRole(user.name.clone(), r.clone()));
                }
                for r in had.difference(&user.roles) {
                    out.push(Change::RevokeRole(user.name.clone(), r.clone()));
                }
            }
        }
    }
    match (wanted.enabled, current.state.enabled) {
        (true, false) => out.push(Change::Enable),
        (false, true) => out.push(Change::Disable),
        _ => {}
    }
    out
}

/// How the provisioner reaches the cluster for auth: the admin certificate with TLS, and
/// root's password when there is one.
pub fn connector(
    inventory: &Inventory,
    tls: Option<&cairn_client::TlsFiles>,
) -> Result<Connector, Error> {
    let login = inventory.root_login()?.map(Credentials::from);
    let timeout = std::time::Duration::from_secs(10);
    Ok(Connector::new(tls, login.as_ref(), timeout, timeout)?)
}

/// Reads the cluster's auth; `wanted` says which passwords to check.
pub async fn current(
    client: &mut Client,
    endpoint: &str,
    wanted: &Wanted,
) -> Result<Current, Error> {
    let state = cairn_client::auth::read(client, endpoint).await?;
    let mut stale_passwords = BTreeSet::new();
    if state.enabled {
        let mut auth = client.auth_client();
        for u in &wanted.users {
            let (Some(password), true) = (&u.password, state.users.contains_key(&u.name)) else {
                continue;
            };
            if auth
                .authenticate(u.name.clone(), password.clone())
                .await
                .is_err()
            {
                stale_passwords.insert(u.name.clone());
            }
        }
    }
    Ok(Current {
        state,
        stale_passwords,
    })
}

/// Makes the cluster's auth what `inventory` declares (or, with `plan_only`, only says how);
/// the changes, nothing without `[auth]`. A cluster that cannot be reached yet (a plan before
/// the first start) is taken as having no auth at all.
pub async fn converge(
    inventory: &Inventory,
    tls: Option<&cairn_client::TlsFiles>,
    plan_only: bool,
) -> Result<Vec<Change>, Error> {
    let Some(wanted) = wanted(inventory)? else {
        return Ok(Vec::new());
    };
    let connector = connector(inventory, tls)?;
    let endpoints = inventory.endpoints();
    let endpoint = endpoints.join(",");
    let mut client = match connector.connect_to(&endpoints).await {
        Ok(c) => c,
        Err(_) if plan_only => return Ok(changes(&wanted, &Current::default())),
        Err(e) => return Err(e.into()),
    };
    let current = match current(&mut client, &endpoint, &wanted).await {
        Ok(c) => c,
        Err(_) if plan_only => Current::default(),
        Err(e) => return Err(e),
    };
    let todo = changes(&wanted, &current);
    if !plan_only {
        apply(&mut client, &endpoint, &todo).await?;
    }
    Ok(todo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(access: Access, key: &str, end: &str) -> Permission {
        Permission {
            perm_type: perm_type(access),
            key: key.into(),
            range_end: end.into(),
        }
    }

    fn wanted() -> Wanted {
        Wanted {
            enabled: true,
            roles: BTreeMap::from([
                (ROOT.to_string(), BTreeSet::new()),
                (
                    "app".to_string(),
                    BTreeSet::from([perm(Access::Readwrite, "/app/", "/app0")]),
                ),
            ]),
            users: vec![
                WantedUser {
                    name: ROOT.into(),
                    password: Some("pw".into()),
                    roles: BTreeSet::from([ROOT.to_string()]),
                },
                WantedUser {
                    name: "app".into(),
                    password: None,
                    roles: BTreeSet::from(["app".to_string()]),
                },
            ],
        }
    }

    #[test]
    fn an_empty_cluster_gets_roles_then_users_then_auth_on() {
        let c = changes(&wanted(), &Current::default());
        let text: Vec<String> = c.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "auth: add role app",
                "auth: grant readwrite [\"/app/\", \"/app0\") to role app",
                "auth: add role root",
                "auth: add user root",
                "auth: grant role root to user root",
                "auth: add user app (no password)",
                "auth: grant role app to user app",
                "auth: enable",
            ]
        );
        assert!(
            text.iter().all(|t| !t.contains("pw")),
            "no password in a change's text"
        );
    }

    #[test]
    fn a_converged_cluster_needs_nothing_and_drift_is_undone() {
        let w = wanted();
        let mut current = Current {
            state: AuthState {
                enabled: true,
                roles: w.roles.clone(),
                users: w
                    .users
                    .iter()
                    .map(|u| (u.name.clone(), u.roles.clone()))
                    .collect(),
            },
            stale_passwords: BTreeSet::new(),
        };
        assert!(changes(&w, &current).is_empty());
        // Drift: an extra permission, a changed access, an extra role, a stale password.
        current
            .state
            .roles
            .get_mut("app")
            .unwrap()
            .insert(perm(Access::Read, "/other", ""));
        current
            .state
            .users
            .get_mut("app")
            .unwrap()
            .insert(ROOT.to_string());
        current.stale_passwords.insert(ROOT.into());
        let c = changes(&w, &current);
        assert_eq!(
            c,
            [
                Change::Revoke("app".into(), perm(Access::Read, "/other", "")),
                Change::SetPassword(ROOT.into(), "pw".into()),
                Change::RevokeRole("app".into(), ROOT.into()),
            ]
        );
        // A changed access on the same range is one grant, no revoke.
        let mut current2 = current.clone();
        current2.state.roles.insert(
            "app".into(),
            BTreeSet::from([perm(Access::Read, "/app/", "/app0")]),
        );
        assert!(changes(&w, &current2)
            .iter()
            .all(|c| !matches!(c, Change::Revoke(..))));
    }
}
