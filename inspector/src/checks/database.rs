//! Database: each member's backend size against its quota, its fragmentation (bytes in use
//! over bytes allocated: low means space a defragmentation would return), and its growth
//! since the previous inspection.

use super::{bytes, summarize, Statuses};
use crate::source::Target;
use crate::state::State;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};

/// Grades every answering member's database; `quotas` are per target, in bytes.
pub fn evaluate(
    targets: &[Target],
    statuses: &Statuses,
    quotas: &[u64],
    previous: Option<&State>,
    limits: &Limits,
) -> CheckResult {
    let a = &limits.alerts;
    let quota_limit = Limit::above(limits.inspection.quota_warn_percent, a.quota_used_percent);
    let mut figures = Vec::new();
    let mut findings = Vec::new();
    let mut largest = 0;
    for ((t, s), quota) in targets.iter().zip(statuses).zip(quotas) {
        let Ok(s) = s else { continue };
        largest = largest.max(s.db_size);
        figures.push(Figure::info(
            &t.name,
            "db_size",
            s.db_size as f64,
            Unit::Bytes,
        ));
        figures.push(Figure::info(&t.name, "quota", *quota as f64, Unit::Bytes));
        let percent = if *quota == 0 {
            0.0
        } else {
            s.db_size as f64 * 100.0 / *quota as f64
        };
        let f = Figure::graded(&t.name, "quota_used", percent, Unit::Percent, quota_limit);
        if f.status != Status::Pass {
            findings.push(format!(
                "{} uses {percent:.1}% of its {} quota: compact and defragment, or raise --quota-backend-bytes",
                t.name,
                bytes(*quota)
            ));
        }
        figures.push(f);
        let ratio = if s.db_size == 0 {
            1.0
        } else {
            s.db_size_in_use as f64 / s.db_size as f64
        };
        let f = if s.db_size_in_use > a.fragmentation_min_bytes {
            Figure::graded(
                &t.name,
                "in_use_ratio",
                ratio,
                Unit::Ratio,
                Limit::warn_below(a.fragmentation_ratio),
            )
        } else {
            Figure::info(&t.name, "in_use_ratio", ratio, Unit::Ratio)
        };
        if f.status != Status::Pass {
            findings.push(format!(
                "{} uses only {:.0}% of its {} file: defragment it",
                t.name,
                ratio * 100.0,
                bytes(s.db_size)
            ));
        }
        figures.push(f);
        if let Some(before) = previous
            .and_then(|p| p.db_size.get(&t.name))
            .filter(|&&b| b > 0)
        {
            let growth = (s.db_size as f64 - *before as f64) * 100.0 / *before as f64;
            figures.push(Figure::info(&t.name, "db_growth", growth, Unit::Percent));
        }
    }
    let fine = format!("largest database {}, within quota", bytes(largest));
    CheckResult::new(
        CheckId::Database,
        Status::Pass,
        summarize(&findings, fine),
        figures,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemberStatus;

    #[test]
    fn quota_and_fragmentation_are_graded_and_growth_reported() {
        let targets = vec![Target {
            name: "m1".into(),
            endpoint: String::new(),
            metrics: None,
        }];
        let statuses = vec![Ok(MemberStatus {
            db_size: 900 << 20,
            db_size_in_use: 300 << 20,
            ..MemberStatus::default()
        })];
        let previous = State {
            db_size: [("m1".to_string(), 600 << 20)].into(),
            ..State::default()
        };
        let r = evaluate(
            &targets,
            &statuses,
            &[1000 << 20],
            Some(&previous),
            &Limits::default(),
        );
        assert_eq!(r.status, Status::Warn, "{r:?}");
        let get = |n: &str| r.figures.iter().find(|f| f.name == n).expect(n).clone();
        assert_eq!(get("quota_used").value, 90.0);
        assert_eq!(get("quota_used").status, Status::Warn);
        assert_eq!(get("in_use_ratio").status, Status::Warn);
        assert_eq!(get("db_growth").value, 50.0);
        assert!(
            r.summary
                .starts_with("m1 uses 90.0% of its 1000.0 MiB quota"),
            "{}",
            r.summary
        );
    }
}
