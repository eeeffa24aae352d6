//! The write path of a member without replication: one thread takes proposals in arrival
//! order, applies each through [`crate::kv::apply`], and makes a whole batch durable with one
//! backend flush before any of its writers is answered (group commit). Readers only see a
//! revision once it is durable.

use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::kv::{apply, Applied};
use crate::metrics::Metrics;
use crate::mvcc::{CompactionJob, MvccStore};
use crate::node::Shared;
use crate::proto::cairnpb::{internal_request::Request, InternalRequest};
use crate::Error;

/// Most proposals applied under one flush.
const MAX_BATCH: usize = 1024;

struct Proposal {
    request: Request,
    done: oneshot::Sender<Result<Applied, Error>>,
}

/// Handle to the write loop.
pub struct Standalone {
    tx: Mutex<Option<mpsc::Sender<Proposal>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
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
    /// Starts the write loop and the compactor; `pending` is a compaction to finish first.
    pub fn start(shared: Arc<Shared>, pending: Option<CompactionJob>) -> Self {
        let (tx, rx) = mpsc::channel::<Proposal>(4 * MAX_BATCH);
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
        let writer = std::thread::Builder::new()
            .name("apply".into())
            .spawn(move || write_loop(&shared, rx, jobs_tx))
            .expect("spawn writer");
        Self {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(vec![writer, compactor]),
            metrics,
        }
    }

    /// Queues `request` and waits for its durable result.
    pub async fn propose(&self, request: Request) -> Result<Applied, Error> {
        self.metrics.proposal_pending();
        let mut pending = Pending {
            metrics: &self.metrics,
            answered: false,
        };
        let tx = self.tx.lock().clone().ok_or(Error::Stopped)?;
        let (done, rx) = oneshot::channel();
        tx.send(Proposal { request, done })
            .await
            .map_err(|_| Error::Stopped)?;
        let result = rx.await.map_err(|_| Error::Stopped)?;
        pending.answered = true;
        result
    }

    /// Closes the queue, lets queued proposals finish, and joins the threads.
    pub fn shutdown(&self) {
        self.tx.lock().take();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

fn write_loop(
    shared: &Shared,
    mut rx: mpsc::Receiver<Proposal>,
    jobs: std_mpsc::Sender<CompactionJob>,
) {
    let mut batch: Vec<Proposal> = Vec::with_capacity(MAX_BATCH);
    let mut answers = Vec::with_capacity(MAX_BATCH);
    let mut new_jobs = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let applied = batch.len() as u64;
        let (rev, events, commit_started) = {
            let mut store = shared.store.write();
            for p in batch.drain(..) {
                // A compaction must never pass the revision readers see: make what came before
                // it durable and visible first.
                if matches!(p.request, Request::Compaction(_)) && store.has_pending() {
                    durable(&mut store, &shared.metrics);
                    shared.events.push(store.take_events());
                    shared
                        .visible_rev
                        .store(store.revision(), Ordering::Release);
                    shared.revisions.send_replace(store.revision());
                }
                let index = store.applied_index() + 1;
                let cmd = InternalRequest {
                    id: index,
                    request: Some(p.request),
                };
                let result = apply(&mut store, index, &cmd).map(|(applied, job)| {
                    new_jobs.extend(job);
                    applied
                });
                if let Err(e @ (Error::Storage(_) | Error::Decode(_) | Error::CorruptRecord)) =
                    &result
                {
                    fatal(e);
                }
                answers.push((p.done, result));
            }
            let commit_started = Instant::now();
            if let Err(e) = store.persist() {
                fatal(&e);
            }
            (store.revision(), store.take_events(), commit_started)
        };
        // One fsync for the whole group, outside the lock so readers go on meanwhile.
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
        shared.events.push(events);
        shared.visible_rev.store(rev, Ordering::Release);
        shared.revisions.send_replace(rev);
        sync_alarms(shared);
        // Compaction jobs only start once the compaction itself is durable.
        for job in new_jobs.drain(..) {
            let _ = jobs.send(job);
        }
        for (done, result) in answers.drain(..) {
            let _ = done.send(result);
        }
    }
}

/// Publishes the store's alarm set (changed only by applied Alarm commands) to readers of
/// [`Shared::alarms`], once the change is durable.
fn sync_alarms(shared: &Shared) {
    let store = shared.store.read();
    if *shared.alarms.read() != *store.alarms() {
        *shared.alarms.write() = store.alarms().clone();
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

fn compactor(shared: &Shared, jobs: std_mpsc::Receiver<CompactionJob>) {
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

/// The store can no longer be trusted to match what clients were told: stop at once, like etcd.
fn fatal(e: &Error) -> ! {
    tracing::error!(error = %e, "storage failure, stopping");
    std::process::exit(1);
}
