//! Large values: the scan's largest values, every value past the warn and fail limits, and
//! keys rewritten unusually often.

use super::{bytes, summarize};
use crate::scan::ScanSummary;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};

/// Grades the scan's values.
pub fn evaluate(scan: &ScanSummary, limits: &Limits) -> CheckResult {
    let i = &limits.inspection;
    let size_limit = Limit::above(
        i.large_value_warn_bytes as f64,
        i.large_value_fail_bytes as f64,
    );
    let mut figures = vec![
        Figure::info("cluster", "keys_scanned", scan.keys as f64, Unit::Count),
        Figure::info(
            "cluster",
            "value_bytes",
            scan.value_bytes as f64,
            Unit::Bytes,
        ),
    ];
    for (key, size) in &scan.large {
        figures.push(Figure::graded(
            key,
            "value_size",
            *size as f64,
            Unit::Bytes,
            size_limit,
        ));
    }
    for (key, size) in &scan.top {
        if !scan.large.iter().any(|(k, _)| k == key) {
            figures.push(Figure::graded(
                key,
                "value_size",
                *size as f64,
                Unit::Bytes,
                size_limit,
            ));
        }
    }
    for (key, versions) in &scan.many_versions {
        figures.push(Figure::graded(
            key,
            "versions",
            *versions as f64,
            Unit::Count,
            Limit::warn_above(i.versions_warn as f64),
        ));
    }
    let mut findings = Vec::new();
    let failing: Vec<String> = scan
        .large
        .iter()
        .filter(|(_, s)| *s >= i.large_value_fail_bytes)
        .map(|(k, s)| format!("{k} ({})", bytes(*s)))
        .collect();
    let warning = scan.large_count - failing.len() as u64;
    let listed = |v: &[String]| {
        let mut s = v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 5 {
            s.push_str(&format!(" and {} more", v.len() - 5));
        }
        s
    };
    if !failing.is_empty() {
        findings.push(format!(
            "{} value(s) of at least {}: {}; find their writers and shrink them",
            failing.len(),
            bytes(i.large_value_fail_bytes),
            listed(&failing)
        ));
    }
    if warning > 0 {
        findings.push(format!(
            "{warning} value(s) of at least {}",
            bytes(i.large_value_warn_bytes)
        ));
    }
    if scan.many_versions_count > 0 {
        let keys: Vec<String> = scan
            .many_versions
            .iter()
            .map(|(k, v)| format!("{k} ({v})"))
            .collect();
        findings.push(format!(
            "{} key(s) with at least {} versions: {}; something rewrites them in a loop",
            scan.many_versions_count,
            i.versions_warn,
            listed(&keys)
        ));
    }
    let fine = format!(
        "{} keys, largest value {}",
        scan.keys,
        bytes(scan.top.first().map_or(0, |(_, s)| *s))
    );
    CheckResult::new(
        CheckId::LargeValues,
        Status::Pass,
        summarize(&findings, fine),
        figures,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_past_the_fail_limit_fails_naming_key_and_size() {
        let scan = ScanSummary {
            keys: 3,
            value_bytes: 1_258_291 + 200_000 + 10,
            top: vec![
                ("/big".into(), 1_258_291),
                ("/mid".into(), 200_000),
                ("/a".into(), 10),
            ],
            large: vec![("/big".into(), 1_258_291), ("/mid".into(), 200_000)],
            large_count: 2,
            ..ScanSummary::default()
        };
        let r = evaluate(&scan, &Limits::default());
        assert_eq!(r.status, Status::Fail);
        assert_eq!(
            r.summary,
            "1 value(s) of at least 1.0 MiB: /big (1.2 MiB); find their writers and shrink them; 1 value(s) of at least 100.0 KiB"
        );
        let statuses: Vec<_> = r
            .findings()
            .map(|f| (f.subject.as_str(), f.status))
            .collect();
        assert_eq!(statuses, [("/big", Status::Fail), ("/mid", Status::Warn)]);
    }
}
