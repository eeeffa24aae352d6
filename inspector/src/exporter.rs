//! The latest inspection as Prometheus metrics, named as `cairn rules`' alerts expect them:
//! `cairn_inspection_check_status{check}` (0 pass, 1 warn, 2 fail),
//! `cairn_inspection_last_run_timestamp_seconds`, and
//! `cairn_certificate_expiry_timestamp_seconds{certificate}`; plus graded figures as
//! `cairn_inspection_figure{check,subject,name}` for dashboards (never a key or a prefix as a
//! label value). The cluster label comes from the scrape configuration `cairn rules` writes.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{CheckId, Report};

type FloatGauge = Gauge<f64, AtomicU64>;

/// Series of `cairn_inspection_figure` per check, to bound the cardinality.
const MAX_FIGURES_PER_CHECK: usize = 100;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FigureLabels {
    check: String,
    subject: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    certificate: String,
}

/// Holds the metrics of the latest inspection.
#[derive(Debug)]
pub struct Exporter {
    registry: Registry,
    check_status: Family<CheckLabels, FloatGauge>,
    figure: Family<FigureLabels, FloatGauge>,
    certificate_expiry: Family<CertificateLabels, FloatGauge>,
    last_run: FloatGauge,
    duration: FloatGauge,
    runs: Counter,
    errors: Counter,
}

impl Default for Exporter {
    fn default() -> Self {
        Self::new()
    }
}

impl Exporter {
    /// Metrics with no inspection yet: only the counters, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let check_status = Family::<CheckLabels, FloatGauge>::default();
        registry.register(
            "cairn_inspection_check_status",
            "Latest inspection result per check: 0 pass, 1 warn, 2 fail",
            check_status.clone(),
        );
        let figure = Family::<FigureLabels, FloatGauge>::default();
        registry.register(
            "cairn_inspection_figure",
            "Graded figures of the latest inspection, in the unit of the JSON report",
            figure.clone(),
        );
        let certificate_expiry = Family::<CertificateLabels, FloatGauge>::default();
        registry.register(
            "cairn_certificate_expiry_timestamp_seconds",
            "When each certificate the latest inspection saw expires (Unix seconds)",
            certificate_expiry.clone(),
        );
        let last_run = FloatGauge::default();
        registry.register(
            "cairn_inspection_last_run_timestamp_seconds",
            "When the latest completed inspection started (Unix seconds)",
            last_run.clone(),
        );
        let duration = FloatGauge::default();
        registry.register(
            "cairn_inspection_duration_seconds",
            "How long the latest completed inspection took",
            duration.clone(),
        );
        let runs = Counter::default();
        registry.register(
            "cairn_inspection_runs",
            "Completed inspections",
            runs.clone(),
        );
        let errors = Counter::default();
        registry.register(
            "cairn_inspection_errors",
            "Inspections that could not be made (no member answered, state file unusable)",
            errors.clone(),
        );
        Self {
            registry,
            check_status,
            figure,
            certificate_expiry,
            last_run,
            duration,
            runs,
            errors,
        }
    }

    /// Replaces the metrics with `report`'s.
    pub fn record(&self, report: &Report) {
        self.check_status.clear();
        self.figure.clear();
        self.certificate_expiry.clear();
        for c in &report.checks {
            self.check_status
                .get_or_create(&CheckLabels {
                    check: c.check.as_str().into(),
                })
                .set(c.status.gauge());
            // Keys and prefixes are not label values (unbounded in number, and up to
            // megabytes long): checks whose subjects are keys export only their cluster-wide
            // figures; the others at most MAX_FIGURES_PER_CHECK.
            let keyed = matches!(
                c.check,
                CheckId::LargeValues | CheckId::KeyCountGrowth | CheckId::HotPrefixes
            );
            let figures = c
                .figures
                .iter()
                .filter(|f| f.limit.is_some())
                .filter(|f| !keyed || f.subject == "cluster")
                .take(MAX_FIGURES_PER_CHECK);
            for f in figures {
                self.figure
                    .get_or_create(&FigureLabels {
                        check: c.check.as_str().into(),
                        subject: f.subject.clone(),
                        name: f.name.clone(),
                    })
                    .set(f.value);
                if c.check == CheckId::Certificates && f.name == "days_left" {
                    // Days left are measured at the inspection's start.
                    let expiry = report.started_at as f64 + f.value * 86_400.0;
                    self.certificate_expiry
                        .get_or_create(&CertificateLabels {
                            certificate: f.subject.clone(),
                        })
                        .set(expiry.round());
                }
            }
        }
        self.last_run.set(report.started_at as f64);
        self.duration.set(report.duration_seconds);
        self.runs.inc();
    }

    /// Counts an inspection that could not be made; the previous results stay, and their
    /// age (`cairn_inspection_last_run_timestamp_seconds`) tells the alerts they are stale.
    pub fn record_error(&self) {
        self.errors.inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckResult, Figure, Limit, Status, Unit};

    #[test]
    fn checks_figures_and_certificates_are_exported_under_the_alerts_names() {
        let report = Report::new(
            "main".into(),
            1_000_000,
            2.0,
            vec![
                CheckResult::new(CheckId::Consistency, Status::Fail, "x".into(), vec![]),
                CheckResult::new(
                    CheckId::Certificates,
                    Status::Pass,
                    "y".into(),
                    vec![Figure::graded(
                        "m1-server",
                        "days_left",
                        2.5,
                        Unit::Days,
                        Limit::below(30.0, 7.0),
                    )],
                ),
            ],
        );
        let e = Exporter::new();
        e.record(&report);
        let text = e.encode();
        for line in [
            "cairn_inspection_check_status{check=\"consistency\"} 2.0",
            "cairn_inspection_check_status{check=\"certificates\"} 2.0",
            "cairn_certificate_expiry_timestamp_seconds{certificate=\"m1-server\"} 1216000.0",
            "cairn_inspection_figure{check=\"certificates\",subject=\"m1-server\",name=\"days_left\"} 2.5",
            "cairn_inspection_last_run_timestamp_seconds 1000000.0",
            "cairn_inspection_runs_total 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        e.record_error();
        assert!(e.encode().contains("cairn_inspection_errors_total 1"));
    }

    /// Key names and prefixes are unbounded: never label values.
    #[test]
    fn figures_about_keys_and_prefixes_are_not_exported() {
        let limit = Limit::above(10.0, 20.0);
        let report = Report::new(
            "main".into(),
            1,
            1.0,
            [
                CheckId::KeyCountGrowth,
                CheckId::HotPrefixes,
                CheckId::LargeValues,
            ]
            .into_iter()
            .map(|check| {
                CheckResult::new(
                    check,
                    Status::Pass,
                    "z".into(),
                    vec![
                        Figure::graded("/registry/pods/", "growth", 1.0, Unit::Percent, limit),
                        Figure::graded("cluster", "growth", 2.0, Unit::Percent, limit),
                    ],
                )
            })
            .collect(),
        );
        let e = Exporter::new();
        e.record(&report);
        let text = e.encode();
        assert!(!text.contains("/registry"), "{text}");
        assert!(text.contains(
            "cairn_inspection_figure{check=\"hot_prefixes\",subject=\"cluster\",name=\"growth\"} 2.0"
        ), "{text}");
    }
}
