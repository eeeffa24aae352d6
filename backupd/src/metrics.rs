//! The daemon's Prometheus metrics, named as `cairn rules`' CairnBackupStale and
//! CairnBackupFailing alerts expect them. The cluster label comes from the scrape
//! configuration.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::Manifest;

type FloatGauge = Gauge<f64, AtomicU64>;

/// The latest run's figures, and whether it failed (for `/healthz`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    last_success: FloatGauge,
    last_duration: FloatGauge,
    last_size: Gauge,
    latest_revision: Gauge,
    failures: Counter,
    last_error: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// No run yet.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let last_success = FloatGauge::default();
        registry.register(
            "cairn_backup_last_success_timestamp_seconds",
            "When the last successful backup finished (Unix seconds)",
            last_success.clone(),
        );
        let last_duration = FloatGauge::default();
        registry.register(
            "cairn_backup_last_duration_seconds",
            "How long the last successful backup took",
            last_duration.clone(),
        );
        let last_size = Gauge::default();
        registry.register(
            "cairn_backup_last_size_bytes",
            "Stored size of the last successful backup",
            last_size.clone(),
        );
        let latest_revision = Gauge::default();
        registry.register(
            "cairn_backup_latest_revision",
            "Revision of the last successful backup",
            latest_revision.clone(),
        );
        let failures = Counter::default();
        registry.register(
            "cairn_backup_failures",
            "Backup runs that failed",
            failures.clone(),
        );
        Self {
            registry,
            last_success,
            last_duration,
            last_size,
            latest_revision,
            failures,
            last_error: Mutex::new(None),
        }
    }

    /// Records a successful backup.
    pub fn success(&self, m: &Manifest) {
        let secs = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
        self.last_success.set(secs(m.finished_at));
        self.last_duration
            .set(secs(m.finished_at) - secs(m.started_at));
        self.last_size
            .set(i64::try_from(m.stored_bytes).unwrap_or(i64::MAX));
        self.latest_revision.set(m.revision);
        *self.lock() = None;
    }

    /// Records a failed run.
    pub fn failure(&self, error: &crate::Error) {
        self.failures.inc();
        *self.lock() = Some(cairn_client::chain(error));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last run's error, if it failed.
    pub fn last_error(&self) -> Option<String> {
        self.lock().clone()
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alerts_series_are_exposed() {
        let m = Metrics::new();
        m.failure(&crate::Error::NoFullBackup);
        let text = m.encode();
        for name in [
            "cairn_backup_last_success_timestamp_seconds",
            "cairn_backup_last_duration_seconds",
            "cairn_backup_last_size_bytes",
            "cairn_backup_latest_revision",
            "cairn_backup_failures_total 1",
        ] {
            assert!(text.contains(name), "{name} in {text}");
        }
        assert!(m.last_error().is_some());
    }
}
