//! `cairn backupd`: full backups on the schedule (each slot at most once, also across
//! restarts and between two daemons, through the slot in the manifest and the store's lock),
//! retention after each success, and `/metrics` and `/healthz`. A stop request lets a
//! running backup finish: cut off, it would leave its lock in the store for hours.

use std::future::Future;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::FutureExt;
use tokio::net::TcpListener;

use crate::manifest::Kind;
use crate::{Backups, Error, Manifest, Metrics, Schedule};

/// The OpenMetrics content type Prometheus negotiates.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How often a scheduled backup that found the store locked tries again.
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// How the daemon runs.
pub struct DaemonOptions {
    /// When full backups run.
    pub schedule: Schedule,
    /// Where `/metrics` and `/healthz` are served.
    pub listener: TcpListener,
    /// Whether retention runs after each successful backup.
    pub prune: bool,
    /// Period of incremental backups between full ones; none when `None`.
    pub incremental: Option<std::time::Duration>,
}

/// Runs the schedule until `shutdown` completes, then returns once the backup running at that
/// moment (if any) has finished; `on_run` sees each run's outcome (for the binary's one log
/// line per run).
pub async fn run(
    backups: &Backups,
    options: DaemonOptions,
    mut on_run: impl FnMut(&Result<Manifest, Error>),
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let address = options
        .listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let (m1, m2) = (metrics.clone(), metrics.clone());
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let m = m1.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], m.encode()).into_response() }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let m = m2.clone();
                async move {
                    match m.last_error() {
                        None => (StatusCode::OK, "ok\n".to_string()),
                        Some(e) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("last backup failed: {e}\n"),
                        ),
                    }
                }
            }),
        );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = options.listener;
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    let on_run = std::cell::RefCell::new(&mut on_run);
    let record = |outcome: &Result<Manifest, Error>| {
        match outcome {
            Ok(m) => metrics.success(m),
            Err(e) => metrics.failure(e),
        }
        (on_run.borrow_mut())(outcome);
    };
    let full = |slot| async move {
        let outcome = backups.full(slot).await;
        if outcome.is_ok() && options.prune {
            if let Err(e) = backups.prune(false).await {
                tracing::warn!("retention failed: {}", cairn_client::chain(&e));
            }
        }
        outcome
    };
    let stop = shutdown.shared();
    let runs = async {
        let mut last_slot = backups.list().await.ok().and_then(|l| {
            l.iter()
                .filter(|m| m.kind == Kind::Full)
                .filter_map(|m| m.slot)
                .max()
        });
        loop {
            let now = backups.clock.now_utc();
            let from = last_slot.map_or(now, |s| s.max(now));
            let Some(slot) = options.schedule.next_after(from) else {
                return;
            };
            let wait = (slot - backups.clock.now_utc())
                .to_std()
                .unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.clone() => return,
            }
            // A lock held by someone else (an operator's `cairn backup now`, the provisioner's
            // backup before an upgrade) delays the slot rather than failing it: tried again
            // until the holder is done, or the next slot is due.
            let outcome = loop {
                let outcome = full(Some(slot)).await;
                if !matches!(outcome, Err(Error::Locked { .. })) {
                    break outcome;
                }
                let next = options.schedule.next_after(slot);
                let left = next.map_or(chrono::Duration::zero(), |n| n - backups.clock.now_utc());
                let Some(left) = left.to_std().ok().filter(|l| !l.is_zero()) else {
                    break outcome;
                };
                tokio::select! {
                    () = tokio::time::sleep(LOCK_RETRY.min(left)) => {}
                    () = stop.clone() => break outcome,
                }
                if backups.clock.now_utc() >= next.unwrap_or(slot) {
                    break outcome;
                }
            };
            record(&outcome);
            last_slot = Some(slot);
        }
    };
    let increments = async {
        let Some(period) = options.incremental else {
            return;
        };
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.clone() => return,
            }
            match backups.incremental().await {
                Ok(None) | Err(Error::NoFullBackup) | Err(Error::Locked { .. }) => {}
                Ok(Some(m)) => record(&Ok(m)),
                Err(gap @ (Error::Compacted { .. } | Error::Diverged { .. })) => {
                    // The watch cannot continue: reported, and a new chain starts with a full
                    // backup.
                    record(&Err(gap));
                    record(&full(None).await);
                }
                Err(e) => record(&Err(e)),
            }
        }
    };
    // Each loop ends at the stop request, after the run it is in; the two share the store's
    // lock, so neither is cut off while the other finishes.
    futures::join!(runs, increments);
    let _ = stop_tx.send(());
    match server.await {
        Ok(result) => result.map_err(|source| Error::Serve { address, source }),
        Err(join) => Err(Error::Serve {
            address,
            source: std::io::Error::other(join.to_string()),
        }),
    }
}
