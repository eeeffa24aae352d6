//! `cairn inspect --serve ADDR --every 5m`: inspects on a schedule and serves the latest
//! results at `/metrics` for Prometheus and the latest HTML report (with its trends) at `/`,
//! until shut down.

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::exporter::Exporter;
use crate::{inspect, Clock, Error, Options, Report, Source, StateStore};

/// The OpenMetrics content type Prometheus negotiates.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What each scheduled run inspects, and with what.
pub struct Job<'a, S> {
    /// The cluster.
    pub source: &'a S,
    /// The clock.
    pub clock: &'a dyn Clock,
    /// Where growth is measured from.
    pub store: &'a dyn StateStore,
    /// The limits and expected members.
    pub options: &'a Options,
}

/// Inspects every `every` (the first run at once) and serves the metrics on `listener`
/// until `shutdown` completes; `on_run` sees each run's outcome (for the binary to log).
pub async fn serve<S: Source>(
    listener: TcpListener,
    every: Duration,
    job: Job<'_, S>,
    mut on_run: impl FnMut(&Result<Report, Error>),
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let exporter = Arc::new(Exporter::new());
    let served = exporter.clone();
    let page: Arc<RwLock<Option<String>>> = Arc::new(RwLock::new(None));
    let shown = page.clone();
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let e = served.clone();
                async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], e.encode()).into_response() }
            }),
        )
        .route(
            "/",
            get(move || {
                let latest = shown
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                async move {
                    match latest {
                        Some(html) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html)
                            .into_response(),
                        None => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the first inspection has not finished yet\n",
                        )
                            .into_response(),
                    }
                }
            }),
        );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    let inspections = async {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = inspect(job.source, job.clock, job.store, job.options).await;
            match &outcome {
                Ok(report) => {
                    exporter.record(report);
                    let history = job
                        .store
                        .load()
                        .ok()
                        .flatten()
                        .map(|s| s.history)
                        .unwrap_or_default();
                    *page
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(crate::render::html::render(report, &history));
                }
                Err(_) => exporter.record_error(),
            }
            on_run(&outcome);
        }
    };
    tokio::select! {
        () = inspections => {}
        () = shutdown => {}
    }
    let _ = stop_tx.send(());
    match server.await {
        Ok(result) => result.map_err(|source| Error::Serve { source }),
        Err(join) => Err(Error::Serve {
            source: std::io::Error::other(join.to_string()),
        }),
    }
}
