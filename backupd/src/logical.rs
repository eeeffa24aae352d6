//! The logical dump: every key, value and lease of a cluster at one revision, as JSON lines
//! (a header, then one line per key), readable by any etcd-v3 server. It moves data between
//! etcd and cairn-server in either direction, where the binary snapshot formats differ.
//! Revisions are not carried over: an import writes the keys as new revisions.

use std::io::{BufRead, Write};

use etcd_client::{GetOptions, LeaseGrantOptions, PutOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

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
}

/// One key of a dump.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its lease (0: none).
    pub lease: i64,
}

/// What an export or import moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The revision read at (export) or reached (import).
    pub revision: i64,
    /// Keys.
    pub keys: u64,
    /// Leases.
    pub leases: u64,
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
    let header = Header { revision, leases };
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
    Ok(Moved {
        revision,
        keys,
        leases: header.leases.len() as u64,
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
    Ok(Moved {
        revision,
        keys,
        leases: header.leases.len() as u64,
    })
}
