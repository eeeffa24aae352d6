//! etcd's authentication and role-based access: who a request comes from (a token, or the
//! client certificate's CN), what that user may do ([`perm`]), the auth changes applied
//! through the write path ([`apply`]) and the tokens ([`token`]). The data itself is the
//! store's ([`crate::mvcc::auth`]), so it is replicated, persisted and snapshotted with the
//! keyspace.

pub mod apply;
pub mod perm;
pub mod token;

use crate::mvcc::auth::AuthTable;
use crate::EtcdError;

/// Who made a request, for the permission checks, and the auth revision they were made at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The user; `None` without credentials, or while auth is off.
    pub user: Option<String>,
    /// The auth revision the caller was resolved at (0: the member itself).
    pub revision: u64,
}

impl Caller {
    /// The user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}

/// The credentials a request carries.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The `token` (gRPC) or `authorization` (JSON gateway) metadata.
    pub token: Option<String>,
    /// The verified client certificate's common name, when `--client-cert-auth` is on.
    pub common_name: Option<String>,
}

/// How this member authenticates: its tokens, the bcrypt cost of new passwords, and whether
/// a client certificate's CN names the user.
pub struct AuthSettings {
    /// `--auth-token`.
    pub tokens: token::Tokens,
    /// `--bcrypt-cost`.
    pub bcrypt_cost: u32,
    /// `--client-cert-auth`.
    pub cert_cn: bool,
}

/// The caller behind `creds`, as etcd decides it: with auth off, nobody (credentials are
/// ignored); with a token, its holder, or an error when it is not valid; else the
/// certificate's CN, when there is one.
pub fn resolve(
    table: &AuthTable,
    tokens: &token::Tokens,
    creds: &Credentials,
) -> Result<Caller, EtcdError> {
    let revision = table.revision();
    if !table.enabled() {
        return Ok(Caller {
            user: None,
            revision,
        });
    }
    if let Some(token) = &creds.token {
        let holder = tokens.verify(table, token)?;
        return Ok(Caller {
            user: Some(holder.user),
            revision,
        });
    }
    Ok(Caller {
        user: creds.common_name.clone().filter(|cn| !cn.is_empty()),
        revision,
    })
}

/// A bcrypt hash of `password`, in the `$2a$` form etcd writes.
pub fn hash_password(password: &str, cost: u32) -> Result<String, EtcdError> {
    bcrypt::hash_with_result(password, cost)
        .map(|h| h.format_for_version(bcrypt::Version::TwoA))
        .map_err(|_| EtcdError::AuthFailed)
}

/// Whether `password` matches the stored bcrypt `hash` (a user without a password matches
/// nothing).
pub fn password_matches(hash: &[u8], password: &str) -> bool {
    let Ok(hash) = std::str::from_utf8(hash) else {
        return false;
    };
    !hash.is_empty() && bcrypt::verify(password, hash).unwrap_or(false)
}

/// The common name of a DER certificate.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_etcds_bcrypt_and_verify() {
        let h = hash_password("pw", 4).unwrap();
        assert!(h.starts_with("$2a$04$"), "{h}");
        assert!(password_matches(h.as_bytes(), "pw"));
        assert!(!password_matches(h.as_bytes(), "other"));
        assert!(!password_matches(b"", ""));
    }

    #[test]
    fn with_auth_off_credentials_are_ignored() {
        let t = AuthTable::default();
        let tokens = token::Tokens::from_flags("simple", 300).unwrap();
        let caller = resolve(
            &t,
            &tokens,
            &Credentials {
                token: Some("garbage".into()),
                common_name: Some("cn".into()),
            },
        )
        .unwrap();
        assert_eq!(caller.user, None);
    }
}
