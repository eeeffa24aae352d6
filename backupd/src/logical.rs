//! The logical dump: every key, value and lease of a cluster at one revision, as JSON lines
//! (a header, then one line per key), readable by any etcd-v3 server. It moves data between
//! etcd and cairn-server in either direction, where the binary snapshot formats differ.
//! Revisions are not carried over: an import writes the keys as new revisions. Keys and values
//! are base64 strings, as etcd's own JSON (`etcdctl -w json`, the gateway) writes bytes; dumps
//! of earlier versions, with arrays of numbers, still import. The header carries the auth
//! state too (roles with their permissions, users with their roles, the switch): etcd never
//! hands out password hashes, so an import creates missing users without a password and
//! leaves auth off for the operator to turn on once passwords are set ([`Moved::passwordless`]).

use std::io::{BufRead, Write};

use etcd_client::{GetOptions, LeaseGrantOptions, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use cairn_client::auth::{AuthState, Change};

use crate::{ClusterSpec, Error};

/// Keys per range request on export.
const PAGE: i64 = 1000;
/// Puts per transaction on import.
const BATCH: usize = 100;

/// The first line of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The revision the keys were read at.
    pub revision: i64,
    /// Leases alive at export: (ID, remaining TTL in seconds).
    pub leases: Vec<(i64, i64)>,
    /// Users, roles and whether auth was on (absent in dumps of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthState>,
}

/// One key of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key.
    #[serde(with = "base64_bytes")]
    pub key: Vec<u8>,
    /// Its value.
    #[serde(with = "base64_bytes")]
    pub value: Vec<u8>,
    /// Its lease (0: none).
    pub lease: i64,
}

/// Bytes as a base64 string; read back from one, or from the arrays of numbers older dumps
/// hold (four times the size of the value).
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Base64(String),
        Numbers(Vec<u8>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Written::deserialize(d)? {
            Written::Base64(text) => STANDARD.decode(text).map_err(serde::de::Error::custom),
            Written::Numbers(bytes) => Ok(bytes),
        }
    }
}

/// How many keys `cluster` holds now: an import into a cluster that is not empty overwrites
/// the keys both have, so the caller asks first.
pub async fn keys_present(cluster: &ClusterSpec) -> Result<i64, Error> {
    let member = cluster.best_member().await?;
    let endpoint = member.endpoint.clone();
    let mut client = member.client;
    let r = client
        .get(
            vec![0u8],
            Some(GetOptions::new().with_from_key().with_count_only()),
        )
        .await
        .map_err(|e| Error::etcd(&endpoint, e))?;
    Ok(r.count())
}

/// What an export or import moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The revision read at (export) or reached (import).
    pub revision: i64,
    /// Keys.
    pub keys: u64,
    /// Leases.
    pub leases: u64,
    /// Roles.
    pub roles: u64,
    /// Users.
    pub users: u64,
    /// Users an import created without a password (etcd exports no hashes): they need one
    /// before auth goes on.
    pub passwordless: Vec<String>,
    /// The dump's cluster had auth on (an import leaves it off).
    pub auth_was_enabled: bool,
}

/// Writes every key, value and lease of `cluster` (the member with the highest revision).
pub async fn export(cluster: &ClusterSpec, out: &mut dyn Write) -> Result<Moved, Error> {
    let member = cluster.best_member().await?;
    let endpoint = member.endpoint.clone();
    let mut client = member.client;
    let revision = member.revision;
    let mut leases = Vec::new();
    for l in client
        .leases()
        .await
        .map_err(|e| Error::etcd(&endpoint, e))?
        .leases()
    {
        let ttl = client
            .lease_time_to_live(l.id(), None)
            .await
            .map_err(|e| Error::etcd(&endpoint, e))?
            .ttl();
        if ttl > 0 {
            leases.push((l.id(), ttl));
        }
    }
    let auth = cairn_client::auth::read(&mut client, &endpoint).await?;
    let header = Header {
        revision,
        leases,
        auth: Some(auth),
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    let mut from = vec![0u8];
    let mut keys = 0u64;
    loop {
        let page = client
            .get(
                from.clone(),
                Some(
                    GetOptions::new()
                        .with_from_key()
                        .with_revision(revision)
                        .with_limit(PAGE),
                ),
            )
            .await
            .map_err(|e| Error::etcd(&endpoint, e))?;
        for kv in page.kvs() {
            let entry = Entry {
                key: kv.key().to_vec(),
                value: kv.value().to_vec(),
                lease: kv.lease(),
            };
            serde_json::to_writer(&mut *out, &entry)?;
            out.write_all(b"\n")?;
            keys += 1;
        }
        match page.kvs().last() {
            Some(last) if page.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
    }
    out.flush()?;
    let auth = header.auth.as_ref();
    Ok(Moved {
        revision,
        keys,
        leases: header.leases.len() as u64,
        roles: auth.map_or(0, |a| a.roles.len() as u64),
        users: auth.map_or(0, |a| a.users.len() as u64),
        passwordless: Vec::new(),
        auth_was_enabled: auth.is_some_and(|a| a.enabled),
    })
}

/// Writes a dump into `cluster`: leases granted with their IDs first, then the keys.
pub async fn import(cluster: &ClusterSpec, input: &mut dyn BufRead) -> Result<Moved, Error> {
    let member = cluster.best_member().await?;
    let endpoint = member.endpoint.clone();
    let mut client = member.client;
    let mut lines = input.lines();
    let Some(first) = lines.next() else {
        return Ok(Moved {
            revision: member.revision,
            keys: 0,
            leases: 0,
            roles: 0,
            users: 0,
            passwordless: Vec::new(),
            auth_was_enabled: false,
        });
    };
    let header: Header = serde_json::from_str(&first?)?;
    for (id, ttl) in &header.leases {
        client
            .lease_grant(*ttl, Some(LeaseGrantOptions::new().with_id(*id)))
            .await
            .map_err(|e| Error::etcd(&endpoint, e))?;
    }
    let mut revision = member.revision;
    let mut keys = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    let flush = |batch: &mut Vec<TxnOp>| {
        let ops = std::mem::take(batch);
        let mut client = client.clone();
        let endpoint = endpoint.clone();
        async move {
            let r = client
                .txn(Txn::new().and_then(ops))
                .await
                .map_err(|e| Error::etcd(&endpoint, e))?;
            Ok::<i64, Error>(r.header().map_or(0, |h| h.revision()))
        }
    };
    for line in lines {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(&line)?;
        let options = (e.lease != 0).then(|| PutOptions::new().with_lease(e.lease));
        batch.push(TxnOp::put(e.key, e.value, options));
        keys += 1;
        if batch.len() == BATCH {
            revision = flush(&mut batch).await?;
        }
    }
    if !batch.is_empty() {
        revision = flush(&mut batch).await?;
    }
    let passwordless = match &header.auth {
        Some(auth) => import_auth(&mut client, &endpoint, auth).await?,
        None => Vec::new(),
    };
    let auth = header.auth.as_ref();
    Ok(Moved {
        revision,
        keys,
        leases: header.leases.len() as u64,
        roles: auth.map_or(0, |a| a.roles.len() as u64),
        users: auth.map_or(0, |a| a.users.len() as u64),
        passwordless,
        auth_was_enabled: auth.is_some_and(|a| a.enabled),
    })
}

/// Creates the dump's roles (with their permissions) and users (with their roles) where the
/// cluster lacks them; users it creates have no password. Auth is left as it is.
async fn import_auth(
    client: &mut etcd_client::Client,
    endpoint: &str,
    dump: &AuthState,
) -> Result<Vec<String>, Error> {
    let here = cairn_client::auth::read(client, endpoint).await?;
    let mut changes = Vec::new();
    let mut passwordless = Vec::new();
    for (role, perms) in &dump.roles {
        let had = here.roles.get(role);
        if had.is_none() {
            changes.push(Change::AddRole(role.clone()));
        }
        for p in perms.iter().filter(|p| !had.is_some_and(|h| h.contains(p))) {
            changes.push(Change::Grant(role.clone(), p.clone()));
        }
    }
    for (user, roles) in &dump.users {
        let had = here.users.get(user);
        if had.is_none() {
            changes.push(Change::AddUser(user.clone(), None));
            passwordless.push(user.clone());
        }
        for role in roles
            .iter()
            .filter(|r| !had.is_some_and(|h| h.contains(*r)))
        {
            changes.push(Change::GrantRole(user.clone(), role.clone()));
        }
    }
    cairn_client::auth::apply(client, endpoint, &changes).await?;
    Ok(passwordless)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn entries_read_back_as_written(
            key in proptest::collection::vec(any::<u8>(), 1..64),
            value in proptest::collection::vec(any::<u8>(), 0..512),
            lease in any::<i64>(),
        ) {
            let e = Entry { key, value, lease };
            let line = serde_json::to_string(&e).unwrap();
            prop_assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), e);
        }
    }

    #[test]
    fn values_are_base64_and_old_number_arrays_still_read() {
        let e = Entry {
            key: b"/k".to_vec(),
            value: vec![0xff; 150_000],
            lease: 0,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(
            line.starts_with(r#"{"key":"L2s=","value":"////"#),
            "{}",
            &line[..40]
        );
        // 4/3 of the value, not the four-fold of an array of numbers.
        assert!(line.len() < 150_000 * 4 / 3 + 100, "{}", line.len());
        let old = r#"{"key":[47,107],"value":[1,2,3],"lease":7}"#;
        assert_eq!(
            serde_json::from_str::<Entry>(old).unwrap(),
            Entry {
                key: b"/k".to_vec(),
                value: vec![1, 2, 3],
                lease: 7
            }
        );
    }
}
