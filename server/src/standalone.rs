//! The write path of a member without replication: proposals queue in arrival order; the
//! proposer that finds no write in progress becomes the writer for everything queued, applies
//! each command through [`crate::kv::apply`], makes the whole group durable with one backend
//! flush, and answers every proposer of the group (group commit). A lone writer thus pays no
//! thread hand-off, and concurrent ones share a flush. Readers only see a revision once it is
//! durable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::auth::Caller;
use crate::fatal::fatal;
use crate::kv::{apply, Applied};
use crate::metrics::Metrics;
use crate::mvcc::{CompactionJob, MvccStore};
use crate::proto::cairnpb::{internal_request::Request, InternalRequest};
use crate::shared::Shared;
use crate::{Error, EtcdError};

/// Most proposals applied under one flush.
const MAX_BATCH: usize = 1024;

struct Proposal {
    request: Request,
    caller: Caller,
    done: oneshot::Sender<Result<Applied, Error>>,
}

/// A proposer's answer, once its command is applied and durable.
type Answer = (
    oneshot::Sender<Result<Applied, Error>>,
    Result<Applied, Error>,
);

/// What only the current writer touches.
struct Writer {
    /// Hands compaction jobs to the compactor thread; `None` once stopped.
    jobs: Option<std_mpsc::Sender<CompactionJob>>,
    answers: Vec<Answer>,
    new_jobs: Vec<CompactionJob>,
}

/// Handle to the write path.
pub struct Standalone {
    inner: Arc<Inner>,
    compactor: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    shared: Arc<Shared>,
    queue: Mutex<Vec<Proposal>>,
    writer: Mutex<Writer>,
    closed: AtomicBool,
    metrics: Arc<Metrics>,
}

/// One proposal counted as pending until it is answered; dropped unanswered (the caller went
/// away, or the member stopped) it counts as failed.
struct Pending<'a> {
    metrics: &'a Metrics,
    answered: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.metrics.proposal_done(self.answered);
    }
}

impl Standalone {
    /// Starts the write path and the compactor; `pending` is a compaction to finish first.
    pub fn start(shared: Arc<Shared>, pending: Option<CompactionJob>) -> Self {
        let (jobs_tx, jobs_rx) = std_mpsc::channel::<CompactionJob>();
        if let Some(job) = pending {
            jobs_tx.send(job).expect("compactor not started yet");
        }
        let compactor = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("compactor".into())
                .spawn(move || compactor(&shared, jobs_rx))
                .expect("spawn compactor")
        };
        let metrics = shared.metrics.clone();
        let inner = Inner {
            shared,
            queue: Mutex::new(Vec::new()),
            writer: Mutex::new(Writer {
                jobs: Some(jobs_tx),
                answers: Vec::with_capacity(MAX_BATCH),
                new_jobs: Vec::new(),
            }),
            closed: AtomicBool::new(false),
            metrics,
        };
        Self {
            inner: Arc::new(inner),
            compactor: Mutex::new(Some(compactor)),
        }
    }

    /// Queues `request` and waits for its durable result, writing the queued group itself
    /// when no other write is in progress.
    pub async fn propose(&self, request: Request, caller: Caller) -> Result<Applied, Error> {
        let inner = &self.inner;
        let (done, rx) = oneshot::channel();
        {
            // Checked under the queue lock: once shutdown closes the queue nothing more enters.
            let mut queue = inner.queue.lock();
            if inner.closed.load(Ordering::Acquire) {
                return Err(Error::Etcd(EtcdError::Stopped));
            }
            queue.push(Proposal {
                request,
                caller,
                done,
            });
        }
        inner.metrics.proposal_pending();
        let mut pending = Pending {
            metrics: &inner.metrics,
            answered: false,
        };
        // Written inline on this worker: only one proposer writes at a time and only one group
        // (about one fsync, 0.1-0.3 ms here), the rest goes to the blocking pool. Handing the
        // worker off first (block_in_place) costs a thread switch per write, which measurably
        // slowed single-client writes, for little: at most one worker is ever held this way.
        Inner::write_one_group(inner);
        let result = rx.await.map_err(|_| Error::Etcd(EtcdError::Stopped))?;
        pending.answered = true;
        result
    }

    /// Refuses new proposals, writes the queued ones, stops the compactor once it is done.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        {
            let _queue = inner.queue.lock();
            inner.closed.store(true, Ordering::Release);
        }
        // Whatever was queued before is written; nothing can be queued after.
        let mut writer = inner.writer.lock();
        loop {
            let batch: Vec<Proposal> = std::mem::take(&mut *inner.queue.lock());
            if batch.is_empty() {
                break;
            }
            write_group(&inner.shared, &mut writer, batch);
        }
        writer.jobs.take();
        drop(writer);
        if let Some(t) = self.compactor.lock().take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn take_group(&self) -> Vec<Proposal> {
        let mut queue = self.queue.lock();
        let n = queue.len().min(MAX_BATCH);
        queue.drain(..n).collect()
    }

    /// Called by a proposer after queueing: unless another write is in progress (it picks up
    /// what is queued before it lets go), write one group, then hand whatever queued up
    /// meanwhile to a blocking-pool thread, so this proposer can answer its own client.
    fn write_one_group(this: &Arc<Self>) {
        let Some(mut writer) = this.writer.try_lock() else {
            return;
        };
        let batch = this.take_group();
        if !batch.is_empty() {
            write_group(&this.shared, &mut writer, batch);
        }
        drop(writer);
        if !this.queue.lock().is_empty() {
            let inner = this.clone();
            tokio::task::spawn_blocking(move || inner.write_all());
        }
    }

    /// Writes groups until the queue is empty (or another writer took over).
    fn write_all(&self) {
        loop {
            let Some(mut writer) = self.writer.try_lock() else {
                return;
            };
            loop {
                let batch = self.take_group();
                if batch.is_empty() {
                    break;
                }
                write_group(&self.shared, &mut writer, batch);
            }
            drop(writer);
            // A proposal queued after our last look but before we let go would wait forever.
            if self.queue.lock().is_empty() {
                return;
            }
        }
    }
}

fn write_group(shared: &Shared, writer: &mut Writer, mut batch: Vec<Proposal>) {
    let applied = batch.len() as u64;
    let (rev, events, commit_started) = {
        let mut store = shared.store.write();
        for p in batch.drain(..) {
            // A compaction must never pass the revision readers see: make what came before
            // it durable and visible first.
            if matches!(p.request, Request::Compaction(_)) && store.has_pending() {
                durable(&mut store, &shared.metrics);
                shared.publish(store.revision(), store.take_events());
            }
            let revoked = match &p.request {
                Request::LeaseRevoke(r) => Some(r.id),
                _ => None,
            };
            let index = store.applied_index() + 1;
            let cmd = InternalRequest {
                id: index,
                request: Some(p.request),
                auth_user: p.caller.user.unwrap_or_default(),
                auth_revision: p.caller.revision,
            };
            let result = apply(&mut store, index, &cmd).map(|(applied, job)| {
                writer.new_jobs.extend(job);
                applied
            });
            if let Err(e @ (Error::Storage(_) | Error::Decode(_) | Error::CorruptRecord)) = &result
            {
                fatal(e);
            }
            // Lease deadlines follow the applied commands, whoever is waiting for them.
            match (&result, revoked) {
                (Ok(Applied::LeaseGrant(g)), _) => shared.lessor.start(g.id, g.ttl),
                (Ok(_), Some(id)) => shared.lessor.stop(id),
                _ => {}
            }
            writer.answers.push((p.done, result));
        }
        let commit_started = Instant::now();
        if let Err(e) = store.persist() {
            fatal(&e);
        }
        (store.revision(), store.take_events(), commit_started)
    };
    // One fsync for the whole group, outside the store lock so readers go on meanwhile.
    let backend = shared.store.read().backend().clone();
    let fsync_started = Instant::now();
    if let Err(e) = backend.flush() {
        fatal(&e);
    }
    shared.metrics.observe_fsync(fsync_started.elapsed());
    shared
        .metrics
        .observe_backend_commit(commit_started.elapsed());
    shared.metrics.proposals_applied(applied);
    shared.publish(rev, events);
    shared.sync_alarms(shared.store.read().alarms());
    // Compaction jobs only start once the compaction itself is durable.
    for job in writer.new_jobs.drain(..) {
        if let Some(jobs) = &writer.jobs {
            let _ = jobs.send(job);
        }
    }
    for (done, result) in writer.answers.drain(..) {
        let _ = done.send(result);
    }
}

/// Persists and flushes what the store has applied so far.
fn durable(store: &mut MvccStore, metrics: &Metrics) {
    let commit_started = Instant::now();
    if let Err(e) = store.persist() {
        fatal(&e);
    }
    let fsync_started = Instant::now();
    if let Err(e) = store.backend().flush() {
        fatal(&e);
    }
    metrics.observe_fsync(fsync_started.elapsed());
    metrics.observe_backend_commit(commit_started.elapsed());
}

/// Runs compaction jobs, one at a time, off the write path; `compacted` announces each.
pub(crate) fn compactor(shared: &Shared, jobs: std_mpsc::Receiver<CompactionJob>) {
    for job in jobs {
        let rev = job.rev;
        let backend = shared.store.read().backend().clone();
        let started = std::time::Instant::now();
        if let Err(e) = job.run_gated(&*backend, || shared.compaction_gate.blocking_write()) {
            fatal(&e);
        }
        tracing::info!(rev, took = ?started.elapsed(), "finished compaction");
        shared.compacted.send_replace(rev);
    }
}
