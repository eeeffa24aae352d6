//! Latency: serializable and linearizable read latency per member (median of a few reads),
//! and WAL fsync and backend commit p99 from each member's `/metrics` where it is reachable,
//! graded with the `[alerts]` limits the etcd mixin uses for the same histograms.

use std::time::Duration;

use super::summarize;
use crate::source::Target;
use crate::Error;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};
use cairn_client::chain;

/// One member's measurements.
#[derive(Debug, Default)]
pub struct Measured {
    /// Median serializable read, or why there is none.
    pub serializable: Option<Result<Duration, Error>>,
    /// Median linearizable read, or why there is none.
    pub linearizable: Option<Result<Duration, Error>>,
    /// Its `/metrics`, when reachable.
    pub metrics: Option<crate::Metrics>,
}

/// Grades every member's latencies.
pub fn evaluate(targets: &[Target], measured: &[Measured], limits: &Limits) -> CheckResult {
    let i = &limits.inspection;
    let a = &limits.alerts;
    let read_limit = Limit::above(i.read_latency_warn_ms, i.read_latency_fail_ms);
    let mut figures = Vec::new();
    let mut findings = Vec::new();
    let mut worst = 0.0f64;
    let mut floor = Status::Pass;
    for (t, m) in targets.iter().zip(measured) {
        for (name, read) in [
            ("serializable_read", &m.serializable),
            ("linearizable_read", &m.linearizable),
        ] {
            match read {
                None => {}
                Some(Err(e)) => {
                    floor = Status::Fail;
                    findings.push(format!("{} failed a {name}: {}", t.name, chain(e)));
                }
                Some(Ok(d)) => {
                    let ms = d.as_secs_f64() * 1000.0;
                    worst = worst.max(ms);
                    let f = Figure::graded(&t.name, name, ms, Unit::Milliseconds, read_limit);
                    if f.status != Status::Pass {
                        findings.push(format!("{}: {name} takes {ms:.0} ms", t.name));
                    }
                    figures.push(f);
                }
            }
        }
        let Some(metrics) = &m.metrics else { continue };
        for (name, metric, limit) in [
            (
                "wal_fsync_p99",
                "etcd_disk_wal_fsync_duration_seconds",
                Limit::above(
                    a.fsync_p99_warning_seconds * 1000.0,
                    a.fsync_p99_critical_seconds * 1000.0,
                ),
            ),
            (
                "backend_commit_p99",
                "etcd_disk_backend_commit_duration_seconds",
                Limit::warn_above(a.commit_p99_seconds * 1000.0),
            ),
        ] {
            if let Some(p99) = metrics.quantile(metric, 0.99) {
                let f = Figure::graded(&t.name, name, p99 * 1000.0, Unit::Milliseconds, limit);
                if f.status != Status::Pass {
                    findings.push(format!(
                        "{}: {name} is {:.0} ms: the disk is too slow for etcd",
                        t.name,
                        p99 * 1000.0
                    ));
                }
                figures.push(f);
            }
        }
    }
    let fine = format!("slowest read {worst:.1} ms");
    CheckResult::new(CheckId::Latency, floor, summarize(&findings, fine), figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_reads_and_slow_fsyncs_are_graded() {
        let targets = vec![Target {
            name: "m1".into(),
            endpoint: String::new(),
            metrics: None,
        }];
        let metrics = "# TYPE etcd_disk_wal_fsync_duration_seconds histogram\netcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.5\"} 0\netcd_disk_wal_fsync_duration_seconds_bucket{le=\"2\"} 10\netcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 10\n";
        let m = Measured {
            serializable: Some(Ok(Duration::from_millis(2))),
            linearizable: Some(Ok(Duration::from_millis(150))),
            metrics: Some(crate::Metrics::parse(metrics).expect("metrics")),
        };
        let r = evaluate(&targets, &[m], &Limits::default());
        assert_eq!(r.status, Status::Fail);
        let get = |n: &str| r.figures.iter().find(|f| f.name == n).expect(n).status;
        assert_eq!(get("serializable_read"), Status::Pass);
        assert_eq!(get("linearizable_read"), Status::Warn);
        assert_eq!(get("wal_fsync_p99"), Status::Fail);
    }
}
