//! Key counts by prefix and their growth since the previous inspection. Growth is graded
//! only for counts that were at least `key_growth_min_keys`, so small prefixes doubling is
//! not an alarm; the total is graded the same way.

use std::collections::BTreeMap;

use super::summarize;
use crate::state::State;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};

/// Grades growth of `total` and `prefixes` against `previous`.
pub fn evaluate(
    total: u64,
    prefixes: &BTreeMap<String, u64>,
    previous: Option<&State>,
    limits: &Limits,
) -> CheckResult {
    let i = &limits.inspection;
    let limit = Limit::above(i.key_growth_warn_percent, i.key_growth_fail_percent);
    let mut figures = vec![Figure::info("cluster", "keys", total as f64, Unit::Count)];
    let mut findings = Vec::new();
    let growth = |name: &str, before: u64, now: u64| -> Option<Figure> {
        if before < i.key_growth_min_keys || before == 0 {
            return None;
        }
        let percent = (now as f64 - before as f64) * 100.0 / before as f64;
        Some(Figure::graded(
            name,
            "key_growth",
            percent,
            Unit::Percent,
            limit,
        ))
    };
    let mut grow = |subject: &str, before: u64, now: u64, figures: &mut Vec<Figure>| {
        if let Some(f) = growth(subject, before, now) {
            if f.status != Status::Pass {
                findings.push(format!(
                    "{} grew from {before} to {now} keys (+{:.0}%)",
                    if subject.is_empty() {
                        "(no prefix)"
                    } else {
                        subject
                    },
                    f.value
                ));
            }
            figures.push(f);
        }
    };
    if let Some(p) = previous {
        grow("cluster", p.total_keys, total, &mut figures);
    }
    // The biggest prefixes, plus every prefix whose growth is not a pass.
    let mut by_size: Vec<(&String, &u64)> = prefixes.iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (rank, (prefix, n)) in by_size.iter().enumerate() {
        let mut own = Vec::new();
        if let Some(before) = previous.and_then(|p| p.prefixes.get(*prefix)) {
            grow(prefix, *before, **n, &mut own);
        }
        let notable = own.iter().any(|f| f.status != Status::Pass);
        if rank < i.top || notable {
            figures.push(Figure::info(*prefix, "keys", **n as f64, Unit::Count));
            figures.extend(own);
        }
    }
    let fine = match previous {
        None => format!(
            "{total} keys in {} prefixes; first inspection, growth is measured from the next",
            prefixes.len()
        ),
        Some(p) => format!(
            "{total} keys in {} prefixes (was {})",
            prefixes.len(),
            p.total_keys
        ),
    };
    let mut summary = summarize(&findings, fine);
    if !findings.is_empty() {
        summary.push_str("; find the writer");
    }
    CheckResult::new(CheckId::KeyCountGrowth, Status::Pass, summary, figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jump_in_one_prefix_fails_and_small_prefixes_are_not_graded() {
        let previous = State {
            total_keys: 300,
            prefixes: [
                ("/a/".to_string(), 200),
                ("/b/".to_string(), 100),
                ("/c/".to_string(), 2),
            ]
            .into(),
            ..State::default()
        };
        let now: BTreeMap<String, u64> = [
            ("/a/".to_string(), 200),
            ("/b/".to_string(), 400),
            ("/c/".to_string(), 40),
        ]
        .into();
        let r = evaluate(640, &now, Some(&previous), &Limits::default());
        assert_eq!(r.status, Status::Fail, "{r:?}");
        assert_eq!(
            r.summary,
            "cluster grew from 300 to 640 keys (+113%); /b/ grew from 100 to 400 keys (+300%); find the writer"
        );
        assert!(!r
            .figures
            .iter()
            .any(|f| f.subject == "/c/" && f.name == "key_growth"));
    }

    #[test]
    fn the_first_run_only_counts() {
        let now: BTreeMap<String, u64> = [("/a/".to_string(), 5)].into();
        let r = evaluate(5, &now, None, &Limits::default());
        assert_eq!(r.status, Status::Pass);
        assert!(
            r.summary
                .starts_with("5 keys in 1 prefixes; first inspection"),
            "{}",
            r.summary
        );
    }
}
