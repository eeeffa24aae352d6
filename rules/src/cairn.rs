//! Alerts on the metrics cairn's own tools export: inspection check results, certificate
//! expiry, backup freshness and failures, and whether inspection runs at all.

use cairn_inventory::Inventory;

use crate::alert::{Alert, Probe, Scenario, Series, Severity, Template, Threshold, ValueFormat};
use crate::context::{eval_minutes, with, Ctx, Labels};
use crate::series;

/// `cairn_inspection_check_status` values.
const PASS: f64 = 0.0;
const WARN: f64 = 1.0;
const FAIL: f64 = 2.0;

/// Every cairn alert.
pub(crate) fn alerts(c: &Ctx<'_>) -> Vec<Alert> {
    let i = &c.inv.inspection;
    let mut v = vec![
        check(
            c,
            "CairnConsistencyMismatch",
            Severity::Critical,
            "consistency",
            FAIL,
            "members disagree on the keyspace.",
            Template::text("inspection of cluster \"")
                .label(c.cluster_label)
                .t("\" found members whose hashes of the same revision differ: their data has diverged."),
        ),
        check(
            c,
            "CairnLargeValues",
            Severity::Warning,
            "large_values",
            FAIL,
            "values larger than the inspection's fail limit are stored.",
            Template::text("inspection of cluster \"")
                .label(c.cluster_label)
                .t(format!(
                    "\" found values of at least {} bytes (large_value_fail_bytes); large values slow every member and its snapshots.",
                    i.large_value_fail_bytes
                )),
        ),
        check(
            c,
            "CairnKeyCountGrowth",
            Severity::Warning,
            "key_count_growth",
            WARN,
            "the key count is growing fast.",
            Template::text("inspection of cluster \"")
                .label(c.cluster_label)
                .t(format!(
                    "\" found the key count grew by at least {}% between two runs (key_growth_warn_percent).",
                    crate::humanize::g4(i.key_growth_warn_percent)
                )),
        ),
    ];
    v.extend(certificates(c));
    v.push(stale(
        c,
        "CairnBackupStale",
        "cairn_backup_last_success_timestamp_seconds",
        c.inv.schedule.backup_stale_after.as_secs_f64(),
        "no recent successful backup.",
        "the last successful backup is ",
    ));
    v.push(backup_failures(c));
    v.push(stale(
        c,
        "CairnInspectionNotRunning",
        "cairn_inspection_last_run_timestamp_seconds",
        c.inv.schedule.inspection_stale_after.as_secs_f64(),
        "inspection is not running.",
        "the last inspection run is ",
    ));
    v
}

fn scenario(series: Vec<Series>, value: f64, labels: Labels) -> Scenario {
    Scenario {
        series,
        value,
        labels,
    }
}

/// An inspection check at or above `level` (1 warn, 2 fail).
fn check(
    c: &Ctx<'_>,
    name: &'static str,
    severity: Severity,
    check: &str,
    level: f64,
    summary: &str,
    description: Template,
) -> Alert {
    let eval = eval_minutes(0, &[]);
    let labels = with(c.cairn_labels(), &[("check", check)]);
    let s = |status: f64| {
        scenario(
            vec![series::gauge(
                "cairn_inspection_check_status",
                &labels,
                status,
                eval + 5,
            )],
            status,
            labels.clone(),
        )
    };
    Alert {
        name,
        severity,
        expr: format!(
            "cairn_inspection_check_status{{{}, check=\"{check}\"}} >= {level}",
            c.cairn_sel
        ),
        for_ms: 0,
        threshold: None,
        summary: summary.into(),
        description,
        probe: Probe {
            eval_minutes: eval,
            fire: s(level),
            quiet: s(if level == FAIL { WARN } else { PASS }),
        },
    }
}

fn certificates(c: &Ctx<'_>) -> [Alert; 2] {
    let (warn, crit) = (
        c.inv.alerts.cert_expiry_warning_days,
        c.inv.alerts.cert_expiry_critical_days,
    );
    let eval = eval_minutes(0, &[]);
    let labels = with(c.cairn_labels(), &[("certificate", &member_cert(c.inv))]);
    // Expiry such that `days` are left at the evaluation time.
    let s = |days: f64| {
        let expiry = (eval * 60) as f64 + days * 86_400.0;
        scenario(
            vec![series::gauge(
                "cairn_certificate_expiry_timestamp_seconds",
                &labels,
                expiry,
                eval + 5,
            )],
            days,
            labels.clone(),
        )
    };
    let alert = |severity, days: f64, fire, quiet| Alert {
        name: "CairnCertificateExpiry",
        severity,
        expr: format!(
            "(cairn_certificate_expiry_timestamp_seconds{{{}}} - time()) / 86400 < {days}",
            c.cairn_sel
        ),
        for_ms: 0,
        threshold: Some(Threshold::Below(days)),
        summary: "a cluster certificate expires soon.".into(),
        description: Template::text("certificate ")
            .label("certificate")
            .t(" of cluster \"")
            .label(c.cluster_label)
            .t("\" expires in ")
            .value(ValueFormat::Number)
            .t(" days; reissue it and roll it out before then."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(fire),
            quiet: s(quiet),
        },
    };
    let mid = (warn + crit) / 2.0;
    [
        alert(Severity::Warning, warn, mid, warn * 2.0),
        alert(Severity::Critical, crit, crit / 2.0, mid),
    ]
}

/// The certificate named in the tests: the first member's server certificate.
fn member_cert(inv: &Inventory) -> String {
    format!("{}-server", inv.hosts[0].name)
}

/// A "last success" timestamp older than `limit` seconds.
fn stale(
    c: &Ctx<'_>,
    name: &'static str,
    metric: &str,
    limit: f64,
    summary: &str,
    description: &str,
) -> Alert {
    let eval = eval_minutes(0, &[]);
    let eval_s = (eval * 60) as f64;
    let labels = c.cairn_labels();
    let s = |age: f64| {
        scenario(
            vec![series::gauge(metric, &labels, eval_s - age, eval + 5)],
            age,
            labels.clone(),
        )
    };
    Alert {
        name,
        severity: Severity::Warning,
        expr: format!("time() - {metric}{{{}}} > {limit}", c.cairn_sel),
        for_ms: 0,
        threshold: Some(Threshold::Above(limit)),
        summary: summary.into(),
        description: Template::text("cluster \"")
            .label(c.cluster_label)
            .t(format!("\": {description}"))
            .value(ValueFormat::Duration)
            .t(format!(
                " old (limit {}); check the tool's logs and schedule.",
                crate::humanize::humanize_duration(limit)
            )),
        probe: Probe {
            eval_minutes: eval,
            // Stale already at the first sample, fresh until the evaluation.
            fire: s(2.0 * limit + eval_s),
            quiet: s(limit / 2.0),
        },
    }
}

fn backup_failures(c: &Ctx<'_>) -> Alert {
    let eval = eval_minutes(1, &[]);
    let labels = c.cairn_labels();
    let s = |per_minute: f64| {
        scenario(
            vec![series::counter(
                "cairn_backup_failures_total",
                &labels,
                per_minute,
                eval + 5,
            )],
            per_minute,
            labels.clone(),
        )
    };
    Alert {
        name: "CairnBackupFailing",
        severity: Severity::Warning,
        expr: format!(
            "increase(cairn_backup_failures_total{{{}}}[1h]) > 0",
            c.cairn_sel
        ),
        for_ms: 0,
        threshold: None,
        summary: "backups are failing.".into(),
        description: Template::text("cluster \"")
            .label(c.cluster_label)
            .t("\": backups failed within the last hour; check the backup tool's logs."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(1.0),
            quiet: s(0.0),
        },
    }
}
