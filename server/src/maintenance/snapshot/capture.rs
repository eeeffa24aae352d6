//! Live capture: a consistent snapshot of a running member's store, streamed in chunks.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::format::*;
use crate::mvcc::backend::scan_chunks;
use crate::mvcc::revision::Revision;
use crate::mvcc::store::{kv_key, KV_PREFIX};
use crate::mvcc::Backend;
use crate::shared::Shared;
use crate::Error;

/// The captured point a snapshot stream is taken at.
struct Capture {
    meta: Meta,
    auth: Vec<AuthRecord>,
    leases: Vec<LeaseRecord>,
    backend: Arc<dyn Backend>,
    estimate: u64,
    _gate: tokio::sync::OwnedRwLockReadGuard<()>,
}

/// Takes the gate, then reads the revision, compaction point, applied index and leases under
/// one store read lock. They are the store's own, and everything applied is written to the
/// backend first ([`Shared::read_persisted`]), so all of them are in the backend the stream reads
/// (`produce` flushes it before the first record, so the file never holds what a crash could
/// still take back). The revision readers see (`visible_rev`) may lag the store's by the group
/// whose fsync is under way; capturing at it instead would pair that revision with a lease
/// table a later group already changed (a revoke in it would leave its keys' lease missing).
async fn capture(shared: &Shared, secrets: Secrets) -> Capture {
    let gate = shared.compaction_gate.clone().read_owned().await;
    let store = shared.read_persisted();
    let auth = store
        .auth()
        .records(secrets == Secrets::Include)
        .into_iter()
        .map(|(key, value)| AuthRecord { key, value })
        .collect();
    let leases = store
        .leases()
        .iter()
        .map(|(id, lease)| LeaseRecord { id, ttl: lease.ttl })
        .collect();
    Capture {
        meta: Meta {
            revision: store.revision(),
            compact_revision: store.compact_revision(),
            applied_index: store.applied_index(),
        },
        auth,
        leases,
        backend: store.backend().clone(),
        estimate: u64::try_from(store.in_use_bytes()).unwrap_or(0),
        _gate: gate,
    }
}

/// Whether a snapshot carries the key simple tokens are signed with: a member catching up
/// needs it; a snapshot file must not have it (whoever reads a backup could forge tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    /// For a peer.
    Include,
    /// For a file.
    Exclude,
}

/// One streamed piece: bytes, and how many are (estimated to be) still to come; or why the
/// stream ended early (the last item then).
pub type Chunk = Result<(Vec<u8>, u64), tonic::Status>;

/// Streams a consistent snapshot of `shared` as chunks of about [`CHUNK_BYTES`] into a
/// channel of a few chunks, so at most those are in memory however large the keyspace.
/// `remaining` is exact for the last chunk (0); before that it is estimated from the bytes
/// in use (each record's framing adds a few bytes, revisions after the capture are skipped).
/// A client that takes no chunk for [`SEND_STALL_LIMIT`] gets an error after the chunks
/// already queued, and the snapshot's hold on compaction ends.
pub async fn stream(shared: Arc<Shared>, secrets: Secrets) -> mpsc::Receiver<Chunk> {
    stream_with(shared, SEND_STALL_LIMIT, secrets).await
}

/// [`stream`] with the stall bound as a parameter.
pub(crate) async fn stream_with(
    shared: Arc<Shared>,
    stall_limit: Duration,
    secrets: Secrets,
) -> mpsc::Receiver<Chunk> {
    // One slot more than the chunks allowed ahead stays reserved for the error that ends a
    // failed stream, so it is queued even when the client has stopped reading.
    let (tx, rx) = mpsc::channel::<Chunk>(CHUNKS_AHEAD + 1);
    let error_slot = tx
        .clone()
        .try_reserve_owned()
        .expect("a new channel has room");
    let cap = capture(&shared, secrets).await;
    let out = ChunkSender {
        tx,
        runtime: tokio::runtime::Handle::current(),
        stall_limit,
    };
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let result = produce(&cap, &out);
        let revision = cap.meta.revision;
        // Let compaction go on before anything else.
        drop(cap);
        match result {
            Ok(Sent::Taken) => shared.metrics.observe_snapshot(started.elapsed()),
            Ok(Sent::Gone) => {
                tracing::debug!(revision, "snapshot client went away before the end");
            }
            Ok(Sent::Stalled) => {
                tracing::warn!(
                    revision,
                    limit_secs = stall_limit.as_secs_f64(),
                    "snapshot client took no data within the limit; snapshot abandoned so \
                     compaction can go on"
                );
                let _ = error_slot.send(Err(tonic::Status::aborted(format!(
                    "snapshot abandoned: the client took no data for {:?}",
                    stall_limit
                ))));
            }
            Err(e) => {
                tracing::warn!(revision, error = %e, "snapshot failed");
                let _ = error_slot.send(Err(e.into()));
            }
        }
    });
    rx
}

/// What became of a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// Queued for the client.
    Taken,
    /// The client went away.
    Gone,
    /// The client took nothing for the stall limit.
    Stalled,
}

/// The producing (blocking) thread's end of the channel, with the bounded wait.
struct ChunkSender {
    tx: mpsc::Sender<Chunk>,
    runtime: tokio::runtime::Handle,
    stall_limit: Duration,
}

impl ChunkSender {
    /// Waits up to the stall limit for room for `chunk`.
    fn send(&self, chunk: Vec<u8>, remaining: u64) -> Sent {
        let send = tokio::time::timeout(self.stall_limit, self.tx.send(Ok((chunk, remaining))));
        match self.runtime.block_on(send) {
            Ok(Ok(())) => Sent::Taken,
            Ok(Err(_)) => Sent::Gone,
            Err(_) => Sent::Stalled,
        }
    }
}

/// Writes the snapshot of `cap` into `out`; `Taken` once the last chunk is queued.
fn produce(cap: &Capture, out: &ChunkSender) -> Result<Sent, Error> {
    // Everything at or below the captured revision was written to the backend before the
    // capture; make it durable, so the file holds nothing a crash could still undo.
    cap.backend.flush()?;
    let mut enc = Encoder::new();
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    enc.header(&mut buf, &cap.meta);
    let remaining = |enc: &Encoder| cap.estimate.saturating_sub(enc.written()).max(1);
    let full = |buf: &mut Vec<u8>, enc: &Encoder| {
        if buf.len() < CHUNK_BYTES {
            return Sent::Taken;
        }
        let chunk = std::mem::replace(buf, Vec::with_capacity(CHUNK_BYTES + 64 * 1024));
        out.send(chunk, remaining(enc))
    };
    for record in &cap.auth {
        enc.auth(&mut buf, record);
        match full(&mut buf, &enc) {
            Sent::Taken => {}
            stopped => return Ok(stopped),
        }
    }
    for lease in &cap.leases {
        enc.lease(&mut buf, *lease);
        match full(&mut buf, &enc) {
            Sent::Taken => {}
            stopped => return Ok(stopped),
        }
    }
    let end = kv_key(Revision::new(cap.meta.revision + 1, 0));
    let stopped = scan_chunks(&*cap.backend, &[KV_PREFIX], &end, SCAN_BATCH, |entries| {
        for (k, v) in entries {
            let rev = Revision::from_bytes(&k[1..]).ok_or(Error::CorruptRecord)?;
            enc.kv(&mut buf, rev, v);
            match full(&mut buf, &enc) {
                Sent::Taken => {}
                stopped => return Ok(ControlFlow::Break(stopped)),
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if let Some(stopped) = stopped {
        return Ok(stopped);
    }
    enc.finish(&mut buf);
    Ok(out.send(buf, 0))
}
