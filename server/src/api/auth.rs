//! etcd's `Auth` service: enabling auth, authenticating, users and roles. Changes go through
//! the write path as commands (passwords hashed here first, so no password is ever logged or
//! replicated); reads of users and roles are linearizable, as etcd's go through raft.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::auth::{self, perm, token, Caller};
use crate::kv::Applied;
use crate::node::Node;
use crate::proto::cairnpb::internal_request::Request as Cmd;
use crate::proto::cairnpb::TokenKey;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::*;
use crate::{Error, EtcdError};

/// The Auth service over one member.
#[derive(Clone)]
pub struct AuthService {
    node: Arc<Node>,
}

impl AuthService {
    /// Serves `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn header(&self) -> Option<ResponseHeader> {
        Some(self.node.header(self.node.visible_revision()))
    }

    /// The caller of `req`, once it is known to be an administrator.
    fn admin<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        Ok(self
            .node
            .authorize(req, |t, user, _| perm::admin(t, user))?)
    }

    /// Checks that the caller of `req` is an administrator, then applies `cmd` as them.
    async fn change<T>(
        &self,
        req: &Request<T>,
        cmd: Cmd,
    ) -> Result<Option<ResponseHeader>, Status> {
        let caller = self.admin(req)?;
        self.apply(cmd, caller).await
    }

    /// Applies `cmd` as `caller`, an administrator.
    async fn apply(&self, cmd: Cmd, caller: Caller) -> Result<Option<ResponseHeader>, Status> {
        match self.node.propose_as(cmd, caller).await? {
            Applied::Auth => Ok(self.header()),
            other => Err(Status::internal(format!(
                "write path returned {other:?} for an auth change"
            ))),
        }
    }

    /// `password` hashed at the member's bcrypt cost, off the async threads (bcrypt is slow on
    /// purpose).
    async fn hash(&self, password: String) -> Result<String, Status> {
        let cost = self.node.auth_settings().bcrypt_cost;
        let hashed = tokio::task::spawn_blocking(move || auth::hash_password(&password, cost))
            .await
            .map_err(|e| Status::internal(format!("hashing a password failed: {e}")))??;
        Ok(hashed)
    }
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn auth_enable(
        &self,
        req: Request<AuthEnableRequest>,
    ) -> Result<Response<AuthEnableResponse>, Status> {
        let header = self
            .change(&req, Cmd::AuthEnable(AuthEnableRequest {}))
            .await?;
        Ok(Response::new(AuthEnableResponse { header }))
    }

    async fn auth_disable(
        &self,
        req: Request<AuthDisableRequest>,
    ) -> Result<Response<AuthDisableResponse>, Status> {
        let header = self
            .change(&req, Cmd::AuthDisable(AuthDisableRequest {}))
            .await?;
        Ok(Response::new(AuthDisableResponse { header }))
    }

    async fn auth_status(
        &self,
        _req: Request<AuthStatusRequest>,
    ) -> Result<Response<AuthStatusResponse>, Status> {
        self.node.read_barrier().await?;
        let (enabled, auth_revision) = self
            .node
            .read(|s| (s.store.auth().enabled(), s.store.auth().revision()));
        Ok(Response::new(AuthStatusResponse {
            header: self.header(),
            enabled,
            auth_revision,
        }))
    }

    async fn authenticate(
        &self,
        req: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        let r = req.into_inner();
        self.node.read_barrier().await?;
        let (enabled, user, has_key) = self.node.read(|s| {
            let t = s.store.auth();
            (
                t.enabled(),
                t.user(&r.name).map(|u| u.user.clone()),
                t.token_key().is_some(),
            )
        });
        if !enabled {
            return Err(EtcdError::AuthNotEnabled.into());
        }
        let user = user.ok_or(EtcdError::AuthFailed)?;
        if user.options.is_some_and(|o| o.no_password) {
            return Err(EtcdError::NoPasswordUser.into());
        }
        let hash = user.password;
        let password = r.password;
        let matches = tokio::task::spawn_blocking(move || auth::password_matches(&hash, &password))
            .await
            .unwrap_or(false);
        if !matches {
            return Err(EtcdError::AuthFailed.into());
        }
        let tokens = &self.node.auth_settings().tokens;
        if tokens.needs_cluster_key() && !has_key {
            // The first simple token: commit the key every member signs and checks with.
            self.node
                .propose(Cmd::TokenKey(TokenKey {
                    key: token::new_cluster_key(),
                }))
                .await?;
        }
        let token = self
            .node
            .read(|s| tokens.issue(s.store.auth(), &r.name))
            .map_err(Error::Etcd)?;
        Ok(Response::new(AuthenticateResponse {
            header: self.header(),
            token,
        }))
    }

    async fn user_add(
        &self,
        req: Request<AuthUserAddRequest>,
    ) -> Result<Response<AuthUserAddResponse>, Status> {
        let caller = self.admin(&req)?;
        let mut r = req.into_inner();
        if r.name.is_empty() {
            return Err(EtcdError::UserEmpty.into());
        }
        let no_password = r.options.is_some_and(|o| o.no_password);
        if !no_password && r.hashed_password.is_empty() {
            r.hashed_password = self.hash(std::mem::take(&mut r.password)).await?;
        }
        r.password.clear();
        let header = self.apply(Cmd::UserAdd(r), caller).await?;
        Ok(Response::new(AuthUserAddResponse { header }))
    }

    async fn user_get(
        &self,
        req: Request<AuthUserGetRequest>,
    ) -> Result<Response<AuthUserGetResponse>, Status> {
        self.node.read_barrier().await?;
        let name = req.get_ref().name.clone();
        self.node.authorize(&req, |t, user, _| {
            // Users may look at themselves.
            perm::admin(t, user).or_else(|e| if user == Some(&name) { Ok(()) } else { Err(e) })
        })?;
        let roles = self
            .node
            .read(|s| s.store.auth().user(&name).map(|u| u.user.roles.clone()))
            .ok_or(EtcdError::UserNotFound)?;
        Ok(Response::new(AuthUserGetResponse {
            header: self.header(),
            roles,
        }))
    }

    async fn user_list(
        &self,
        req: Request<AuthUserListRequest>,
    ) -> Result<Response<AuthUserListResponse>, Status> {
        self.node.read_barrier().await?;
        self.admin(&req)?;
        let users = self
            .node
            .read(|s| s.store.auth().users().map(|(n, _)| n.clone()).collect());
        Ok(Response::new(AuthUserListResponse {
            header: self.header(),
            users,
        }))
    }

    async fn user_delete(
        &self,
        req: Request<AuthUserDeleteRequest>,
    ) -> Result<Response<AuthUserDeleteResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self
            .apply(Cmd::UserDelete(req.into_inner()), caller)
            .await?;
        Ok(Response::new(AuthUserDeleteResponse { header }))
    }

    async fn user_change_password(
        &self,
        req: Request<AuthUserChangePasswordRequest>,
    ) -> Result<Response<AuthUserChangePasswordResponse>, Status> {
        let caller = self.admin(&req)?;
        let mut r = req.into_inner();
        if r.hashed_password.is_empty() {
            r.hashed_password = self.hash(std::mem::take(&mut r.password)).await?;
        }
        r.password.clear();
        let header = self.apply(Cmd::UserChangePassword(r), caller).await?;
        Ok(Response::new(AuthUserChangePasswordResponse { header }))
    }

    async fn user_grant_role(
        &self,
        req: Request<AuthUserGrantRoleRequest>,
    ) -> Result<Response<AuthUserGrantRoleResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self
            .apply(Cmd::UserGrantRole(req.into_inner()), caller)
            .await?;
        Ok(Response::new(AuthUserGrantRoleResponse { header }))
    }

    async fn user_revoke_role(
        &self,
        req: Request<AuthUserRevokeRoleRequest>,
    ) -> Result<Response<AuthUserRevokeRoleResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self
            .apply(Cmd::UserRevokeRole(req.into_inner()), caller)
            .await?;
        Ok(Response::new(AuthUserRevokeRoleResponse { header }))
    }

    async fn role_add(
        &self,
        req: Request<AuthRoleAddRequest>,
    ) -> Result<Response<AuthRoleAddResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self.apply(Cmd::RoleAdd(req.into_inner()), caller).await?;
        Ok(Response::new(AuthRoleAddResponse { header }))
    }

    async fn role_get(
        &self,
        req: Request<AuthRoleGetRequest>,
    ) -> Result<Response<AuthRoleGetResponse>, Status> {
        self.node.read_barrier().await?;
        let role = req.get_ref().role.clone();
        self.node.authorize(&req, |t, user, _| {
            // Users may look at their own roles.
            perm::admin(t, user).or_else(|e| {
                let holds = user
                    .and_then(|u| t.user(u))
                    .is_some_and(|u| u.user.roles.contains(&role));
                if holds {
                    Ok(())
                } else {
                    Err(e)
                }
            })
        })?;
        let perm = self
            .node
            .read(|s| s.store.auth().role(&role).map(|r| r.key_permission.clone()))
            .ok_or(EtcdError::RoleNotFound)?;
        Ok(Response::new(AuthRoleGetResponse {
            header: self.header(),
            perm,
        }))
    }

    async fn role_list(
        &self,
        req: Request<AuthRoleListRequest>,
    ) -> Result<Response<AuthRoleListResponse>, Status> {
        self.node.read_barrier().await?;
        self.admin(&req)?;
        let roles = self
            .node
            .read(|s| s.store.auth().role_names().cloned().collect());
        Ok(Response::new(AuthRoleListResponse {
            header: self.header(),
            roles,
        }))
    }

    async fn role_delete(
        &self,
        req: Request<AuthRoleDeleteRequest>,
    ) -> Result<Response<AuthRoleDeleteResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self
            .apply(Cmd::RoleDelete(req.into_inner()), caller)
            .await?;
        Ok(Response::new(AuthRoleDeleteResponse { header }))
    }

    async fn role_grant_permission(
        &self,
        req: Request<AuthRoleGrantPermissionRequest>,
    ) -> Result<Response<AuthRoleGrantPermissionResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self
            .apply(Cmd::RoleGrantPermission(req.into_inner()), caller)
            .await?;
        Ok(Response::new(AuthRoleGrantPermissionResponse { header }))
    }

    async fn role_revoke_permission(
        &self,
        req: Request<AuthRoleRevokePermissionRequest>,
    ) -> Result<Response<AuthRoleRevokePermissionResponse>, Status> {
        let caller = self.admin(&req)?;
        let header = self
            .apply(Cmd::RoleRevokePermission(req.into_inner()), caller)
            .await?;
        Ok(Response::new(AuthRoleRevokePermissionResponse { header }))
    }
}
