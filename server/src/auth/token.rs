//! Auth tokens: what `Authenticate` hands out and every later request carries.
//!
//! - **simple** (etcd's default): opaque to clients. etcd keeps them in each member's memory,
//!   so a token dies with a leader change or on a member that never saw it (etcd issues
//!   #9629, #13134). cairn's are signed instead (HMAC-SHA256 with a key committed through
//!   raft and carried in peer snapshots): every member, present or future, can check them.
//!   A token lives `--auth-token-ttl` after it was issued, and on each member as long again
//!   after its last use there, as etcd's do.
//! - **jwt**, with etcd's flag format (`jwt,pub-key=…,priv-key=…,sign-method=RS256,ttl=5m`)
//!   and etcd's claims (`username`, `revision`, `exp`), so tokens of either server verify on
//!   the other with the same keys.
//!
//! Both carry the auth revision they were issued at: a token issued before its user was
//! re-created or changed password is refused.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use parking_lot::Mutex;
use ring::hmac;

pub use crate::error::TokenConfigError;
use crate::mvcc::auth::AuthTable;
use crate::EtcdError;

/// etcd's JWT claims.
#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

struct Jwt {
    algorithm: Algorithm,
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    ttl: Duration,
}

enum Kind {
    Simple,
    Jwt(Box<Jwt>),
}

/// A token's user, as far as the token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Who the token was issued to.
    pub user: String,
    /// The auth revision it was issued at.
    pub revision: u64,
}

/// Bound on the tokens a member remembers (simple tokens' last use, verified JWTs).
const REMEMBERED: usize = 65_536;

/// Issues and checks tokens as `--auth-token` says.
pub struct Tokens {
    kind: Kind,
    ttl: Duration,
    /// Simple tokens' last use on this member.
    last_used: Mutex<HashMap<String, Instant>>,
    /// JWTs whose signature was checked, with their expiry (Unix seconds): a signature is
    /// verified once per token, not once per request.
    verified: Mutex<HashMap<String, (Holder, u64)>>,
}

fn read(path: &str) -> Result<Vec<u8>, TokenConfigError> {
    std::fs::read(path).map_err(|source| TokenConfigError::Read {
        path: path.into(),
        source,
    })
}

fn algorithm(name: &str) -> Result<Algorithm, TokenConfigError> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        other => return Err(TokenConfigError::Method(other.to_string())),
    })
}

impl Tokens {
    /// From etcd's `--auth-token` and `--auth-token-ttl` (seconds, simple tokens only).
    pub fn from_flags(spec: &str, ttl_secs: u64) -> Result<Self, TokenConfigError> {
        let mut parts = spec.split(',');
        let kind = match parts.next().unwrap_or_default() {
            "simple" | "" => Kind::Simple,
            "jwt" => Kind::Jwt(Box::new(Self::jwt(parts)?)),
            other => return Err(TokenConfigError::Kind(other.to_string())),
        };
        Ok(Self {
            kind,
            ttl: Duration::from_secs(ttl_secs.max(1)),
            last_used: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        })
    }

    fn jwt<'a>(options: impl Iterator<Item = &'a str>) -> Result<Jwt, TokenConfigError> {
        let (mut public, mut private, mut method, mut ttl) =
            (None, None, "RS256".to_string(), Duration::from_secs(300));
        for option in options {
            match option.split_once('=') {
                Some(("pub-key", v)) => public = Some(v.to_string()),
                Some(("priv-key", v)) => private = Some(v.to_string()),
                Some(("sign-method", v)) => method = v.to_string(),
                Some(("ttl", v)) => {
                    ttl = humantime::parse_duration(v)
                        .map_err(|_| TokenConfigError::Ttl(v.to_string()))?;
                }
                _ => return Err(TokenConfigError::Option(option.to_string())),
            }
        }
        let algorithm = algorithm(&method)?;
        let key_error = |path: &str| {
            let path = PathBuf::from(path);
            move |source| TokenConfigError::Key { path, source }
        };
        let hmac = matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        );
        let decoding = match (&public, &private) {
            (Some(p), _) if !hmac => {
                let pem = read(p)?;
                match algorithm {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                }
                .map_err(key_error(p))?
            }
            (_, Some(secret)) if hmac => {
                DecodingKey::from_secret(&read(secret)?).map_err(key_error(secret))?
            }
            _ => return Err(TokenConfigError::NoKey),
        };
        let encoding = match &private {
            None => None,
            Some(p) => {
                let pem = read(p)?;
                Some(
                    match algorithm {
                        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&pem),
                        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                            EncodingKey::from_secret(&pem)
                        }
                        _ => EncodingKey::from_rsa_pem(&pem),
                    }
                    .map_err(key_error(p))?,
                )
            }
        };
        Ok(Jwt {
            algorithm,
            encoding,
            decoding,
            ttl,
        })
    }

    /// Whether issuing needs a signing key committed first (simple tokens).
    pub fn needs_cluster_key(&self) -> bool {
        matches!(self.kind, Kind::Simple)
    }

    /// A token for `user` at the current auth revision.
    pub fn issue(&self, table: &AuthTable, user: &str) -> Result<String, EtcdError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match &self.kind {
            Kind::Simple => {
                let key = table.token_key().ok_or(EtcdError::InvalidAuthToken)?;
                let body = format!(
                    "{}.{}.{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user),
                    table.revision(),
                    now.as_millis()
                );
                Ok(format!("{body}.{}", mac(key, &body)))
            }
            Kind::Jwt(jwt) => {
                let key = jwt.encoding.as_ref().ok_or(EtcdError::AuthFailed)?;
                let claims = Claims {
                    username: user.to_string(),
                    revision: table.revision(),
                    exp: (now + jwt.ttl).as_secs(),
                };
                jsonwebtoken::encode(&jsonwebtoken::Header::new(jwt.algorithm), &claims, key)
                    .map_err(|_| EtcdError::AuthFailed)
            }
        }
    }

    /// The holder of `token`, if it is genuine, unexpired and its user's credentials have not
    /// changed since.
    pub fn verify(&self, table: &AuthTable, token: &str) -> Result<Holder, EtcdError> {
        let holder = match &self.kind {
            Kind::Simple => self.verify_simple(table, token)?,
            Kind::Jwt(jwt) => self.verify_jwt(jwt, token)?,
        };
        match table.user(&holder.user) {
            Some(u) if u.changed <= holder.revision => Ok(holder),
            _ => Err(EtcdError::InvalidAuthToken),
        }
    }

    fn verify_jwt(&self, jwt: &Jwt, token: &str) -> Result<Holder, EtcdError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        if let Some((holder, exp)) = self.verified.lock().get(token) {
            if *exp > now {
                return Ok(holder.clone());
            }
        }
        let data = jsonwebtoken::decode::<Claims>(
            token,
            &jwt.decoding,
            &jsonwebtoken::Validation::new(jwt.algorithm),
        )
        .map_err(|_| EtcdError::InvalidAuthToken)?;
        let holder = Holder {
            user: data.claims.username,
            revision: data.claims.revision,
        };
        remember(
            &mut self.verified.lock(),
            token,
            (holder.clone(), data.claims.exp),
            |(_, exp)| *exp > now,
        );
        Ok(holder)
    }

    fn verify_simple(&self, table: &AuthTable, token: &str) -> Result<Holder, EtcdError> {
        let invalid = EtcdError::InvalidAuthToken;
        let key = table.token_key().ok_or(invalid)?;
        let (body, tag) = token.rsplit_once('.').ok_or(invalid)?;
        let expected = mac(key, body);
        if !constant_time_eq(expected.as_bytes(), tag.as_bytes()) {
            return Err(invalid);
        }
        let mut fields = body.split('.');
        let (Some(user), Some(revision), Some(issued), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(invalid);
        };
        let user = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(user)
            .ok()
            .and_then(|u| String::from_utf8(u).ok())
            .ok_or(invalid)?;
        let revision = revision.parse().map_err(|_| invalid)?;
        let issued = UNIX_EPOCH + Duration::from_millis(issued.parse().map_err(|_| invalid)?);
        let fresh = SystemTime::now()
            .duration_since(issued)
            .map_or(true, |age| age <= self.ttl);
        let now = Instant::now();
        let mut used = self.last_used.lock();
        let recently = used
            .get(token)
            .is_some_and(|at| now.duration_since(*at) <= self.ttl);
        if !fresh && !recently {
            used.remove(token);
            return Err(invalid);
        }
        let ttl = self.ttl;
        remember(&mut used, token, now, |at| now.duration_since(*at) <= ttl);
        Ok(Holder { user, revision })
    }
}

/// Records `value` for `token` in a map of at most [`REMEMBERED`] entries: when full, the
/// entries `live` rejects go first, and everything if that is not enough.
fn remember<V>(map: &mut HashMap<String, V>, token: &str, value: V, live: impl Fn(&V) -> bool) {
    if map.len() >= REMEMBERED {
        map.retain(|_, v| live(v));
        if map.len() >= REMEMBERED {
            map.clear();
        }
    }
    map.insert(token.to_string(), value);
}

fn mac(key: &[u8], body: &str) -> String {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), body.as_bytes());
    tag.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random key for simple tokens.
pub fn new_cluster_key() -> Vec<u8> {
    let mut key = vec![0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .expect("the OS random source works");
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::auth::AuthUser;
    use crate::proto::authpb::User;

    fn table() -> AuthTable {
        let mut t = AuthTable::default();
        t.set_token_key(&new_cluster_key());
        t.put_user(
            "u",
            AuthUser {
                user: User::default(),
                changed: t.revision(),
            },
        );
        t
    }

    #[test]
    fn simple_tokens_verify_on_any_member_with_the_key_and_not_after_a_change() {
        let mut t = table();
        let tokens = Tokens::from_flags("simple", 300).unwrap();
        let token = tokens.issue(&t, "u").unwrap();
        // Another member: its own Tokens, the same committed state.
        let other = Tokens::from_flags("simple", 300).unwrap();
        assert_eq!(other.verify(&t, &token).unwrap().user, "u");
        let mut forged = token.clone();
        forged.replace_range(0..1, "x");
        assert_eq!(other.verify(&t, &forged), Err(EtcdError::InvalidAuthToken));
        // The password changes: the token goes.
        let changed = t.bump_revision();
        let mut u = t.user("u").unwrap().clone();
        u.changed = changed;
        t.put_user("u", u);
        assert_eq!(other.verify(&t, &token), Err(EtcdError::InvalidAuthToken));
        assert!(other.verify(&t, &tokens.issue(&t, "u").unwrap()).is_ok());
    }

    #[test]
    fn jwt_flags_are_etcds() {
        assert!(matches!(
            Tokens::from_flags("jwt,sign-method=RS256", 300),
            Err(TokenConfigError::NoKey)
        ));
        assert!(matches!(
            Tokens::from_flags("jwt,pub-key=x,bogus=1", 300),
            Err(TokenConfigError::Option(_))
        ));
        assert!(matches!(
            Tokens::from_flags("jwt,pub-key=x,sign-method=XX1", 300),
            Err(TokenConfigError::Method(_))
        ));
        assert!(matches!(
            Tokens::from_flags("kerberos", 300),
            Err(TokenConfigError::Kind(_))
        ));
    }
}
