//! Committed auth changes applied to the store's [`AuthTable`], with etcd 3.4's rules and
//! errors. Every change that does something advances the auth revision; one that changes
//! nothing (enabling what is on, granting a role held) answers success and leaves it.

use crate::mvcc::auth::{AuthTable, AuthUser};
use crate::proto::authpb::{Permission, Role, User, UserAddOptions};
use crate::proto::cairnpb::internal_request::Request;
use crate::proto::etcdserverpb as pb;
use crate::EtcdError;

use super::perm::ROOT;

/// Applies auth change `request`; other requests are left alone.
pub fn apply(t: &mut AuthTable, request: &Request) -> Result<(), EtcdError> {
    match request {
        Request::AuthEnable(_) => enable(t),
        Request::AuthDisable(_) => {
            if t.enabled() {
                t.set_enabled(false);
                t.bump_revision();
            }
            Ok(())
        }
        Request::UserAdd(r) => user_add(t, r),
        Request::UserDelete(r) => {
            if t.enabled() && r.name == ROOT {
                return Err(EtcdError::InvalidAuthMgmt);
            }
            t.remove_user(&r.name).ok_or(EtcdError::UserNotFound)?;
            t.bump_revision();
            Ok(())
        }
        Request::UserChangePassword(r) => {
            let mut u = t.user(&r.name).cloned().ok_or(EtcdError::UserNotFound)?;
            u.user.password = r.hashed_password.clone().into_bytes();
            u.changed = t.bump_revision();
            t.put_user(&r.name, u);
            Ok(())
        }
        Request::UserGrantRole(r) => {
            let mut u = t.user(&r.user).cloned().ok_or(EtcdError::UserNotFound)?;
            if r.role != ROOT && t.role(&r.role).is_none() {
                return Err(EtcdError::RoleNotFound);
            }
            match u.user.roles.binary_search(&r.role) {
                Ok(_) => return Ok(()),
                Err(at) => u.user.roles.insert(at, r.role.clone()),
            }
            t.put_user(&r.user, u);
            t.bump_revision();
            Ok(())
        }
        Request::UserRevokeRole(r) => {
            if t.enabled() && r.name == ROOT && r.role == ROOT {
                return Err(EtcdError::InvalidAuthMgmt);
            }
            let mut u = t.user(&r.name).cloned().ok_or(EtcdError::UserNotFound)?;
            let at = u
                .user
                .roles
                .iter()
                .position(|x| *x == r.role)
                .ok_or(EtcdError::RoleNotGranted)?;
            u.user.roles.remove(at);
            t.put_user(&r.name, u);
            t.bump_revision();
            Ok(())
        }
        Request::RoleAdd(r) => {
            if r.name.is_empty() {
                return Err(EtcdError::RoleEmpty);
            }
            if t.role(&r.name).is_some() {
                return Err(EtcdError::RoleExists);
            }
            t.put_role(
                &r.name,
                Role {
                    name: r.name.clone().into_bytes(),
                    key_permission: Vec::new(),
                },
            );
            t.bump_revision();
            Ok(())
        }
        Request::RoleDelete(r) => {
            if t.enabled() && r.role == ROOT {
                return Err(EtcdError::InvalidAuthMgmt);
            }
            t.remove_role(&r.role).ok_or(EtcdError::RoleNotFound)?;
            // Users lose the role too.
            let holders: Vec<(String, AuthUser)> = t
                .users()
                .filter(|(_, u)| u.user.roles.contains(&r.role))
                .map(|(n, u)| (n.clone(), u.clone()))
                .collect();
            for (name, mut u) in holders {
                u.user.roles.retain(|x| *x != r.role);
                t.put_user(&name, u);
            }
            t.bump_revision();
            Ok(())
        }
        Request::RoleGrantPermission(r) => {
            let mut role = t.role(&r.name).cloned().ok_or(EtcdError::RoleNotFound)?;
            let perm = r.perm.clone().unwrap_or_default();
            match role
                .key_permission
                .iter_mut()
                .find(|p| p.key == perm.key && p.range_end == perm.range_end)
            {
                Some(existing) => existing.perm_type = perm.perm_type,
                None => {
                    role.key_permission.push(Permission {
                        perm_type: perm.perm_type,
                        key: perm.key,
                        range_end: perm.range_end,
                    });
                    role.key_permission.sort_by(|a, b| a.key.cmp(&b.key));
                }
            }
            t.put_role(&r.name, role);
            t.bump_revision();
            Ok(())
        }
        Request::RoleRevokePermission(r) => {
            let mut role = t.role(&r.role).cloned().ok_or(EtcdError::RoleNotFound)?;
            let at = role
                .key_permission
                .iter()
                .position(|p| p.key == r.key && p.range_end == r.range_end)
                .ok_or(EtcdError::PermissionNotGranted)?;
            role.key_permission.remove(at);
            t.put_role(&r.role, role);
            t.bump_revision();
            Ok(())
        }
        Request::TokenKey(k) => {
            t.set_token_key(&k.key);
            Ok(())
        }
        _ => Ok(()),
    }
}

fn enable(t: &mut AuthTable) -> Result<(), EtcdError> {
    if t.enabled() {
        return Ok(());
    }
    let root = t.user(ROOT).ok_or(EtcdError::RootUserNotExist)?;
    if !root.user.roles.iter().any(|r| r == ROOT) {
        return Err(EtcdError::RootRoleNotExist);
    }
    t.set_enabled(true);
    t.bump_revision();
    Ok(())
}

fn user_add(t: &mut AuthTable, r: &pb::AuthUserAddRequest) -> Result<(), EtcdError> {
    if r.name.is_empty() {
        return Err(EtcdError::UserEmpty);
    }
    if t.user(&r.name).is_some() {
        return Err(EtcdError::UserExists);
    }
    let options = r.options.unwrap_or(UserAddOptions { no_password: false });
    let password = if options.no_password {
        Vec::new()
    } else {
        r.hashed_password.clone().into_bytes()
    };
    let changed = t.bump_revision();
    t.put_user(
        &r.name,
        AuthUser {
            user: User {
                name: r.name.clone().into_bytes(),
                password,
                roles: Vec::new(),
                options: Some(options),
            },
            changed,
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_user(t: &mut AuthTable, name: &str) -> Result<(), EtcdError> {
        apply(
            t,
            &Request::UserAdd(pb::AuthUserAddRequest {
                name: name.into(),
                hashed_password: "$2a$04$x".into(),
                ..Default::default()
            }),
        )
    }

    fn grant(t: &mut AuthTable, user: &str, role: &str) -> Result<(), EtcdError> {
        apply(
            t,
            &Request::UserGrantRole(pb::AuthUserGrantRoleRequest {
                user: user.into(),
                role: role.into(),
            }),
        )
    }

    #[test]
    fn enabling_needs_root_with_the_root_role_and_protects_it() {
        let mut t = AuthTable::default();
        let enable = Request::AuthEnable(pb::AuthEnableRequest {});
        assert_eq!(apply(&mut t, &enable), Err(EtcdError::RootUserNotExist));
        add_user(&mut t, ROOT).unwrap();
        assert_eq!(apply(&mut t, &enable), Err(EtcdError::RootRoleNotExist));
        grant(&mut t, ROOT, ROOT).unwrap();
        let before = t.revision();
        apply(&mut t, &enable).unwrap();
        assert!(t.enabled());
        assert_eq!(t.revision(), before + 1);
        apply(&mut t, &enable).unwrap();
        assert_eq!(t.revision(), before + 1, "enabling twice changes nothing");
        assert_eq!(
            apply(
                &mut t,
                &Request::UserDelete(pb::AuthUserDeleteRequest { name: ROOT.into() })
            ),
            Err(EtcdError::InvalidAuthMgmt)
        );
        assert_eq!(
            apply(
                &mut t,
                &Request::UserRevokeRole(pb::AuthUserRevokeRoleRequest {
                    name: ROOT.into(),
                    role: ROOT.into()
                })
            ),
            Err(EtcdError::InvalidAuthMgmt)
        );
    }

    #[test]
    fn deleting_a_role_takes_it_from_its_users() {
        let mut t = AuthTable::default();
        add_user(&mut t, "u").unwrap();
        assert_eq!(add_user(&mut t, "u"), Err(EtcdError::UserExists));
        assert_eq!(grant(&mut t, "u", "r"), Err(EtcdError::RoleNotFound));
        apply(
            &mut t,
            &Request::RoleAdd(pb::AuthRoleAddRequest { name: "r".into() }),
        )
        .unwrap();
        grant(&mut t, "u", "r").unwrap();
        let rev = t.revision();
        grant(&mut t, "u", "r").unwrap();
        assert_eq!(t.revision(), rev, "granting a held role changes nothing");
        apply(
            &mut t,
            &Request::RoleDelete(pb::AuthRoleDeleteRequest { role: "r".into() }),
        )
        .unwrap();
        assert!(t.user("u").unwrap().user.roles.is_empty());
    }

    #[test]
    fn a_password_change_marks_the_user_changed() {
        let mut t = AuthTable::default();
        add_user(&mut t, "u").unwrap();
        let created = t.user("u").unwrap().changed;
        apply(
            &mut t,
            &Request::UserChangePassword(pb::AuthUserChangePasswordRequest {
                name: "u".into(),
                hashed_password: "$2a$04$y".into(),
                ..Default::default()
            }),
        )
        .unwrap();
        let u = t.user("u").unwrap();
        assert!(u.changed > created);
        assert_eq!(u.user.password, b"$2a$04$y");
    }
}
