//! Hot prefixes: writes per second by prefix, watched over a window; the busiest are listed
//! and graded.

use std::collections::HashMap;
use std::time::Duration;

use super::summarize;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};

/// Grades `writes` (by prefix) seen during `window`.
pub fn evaluate(writes: &HashMap<String, u64>, window: Duration, limits: &Limits) -> CheckResult {
    let i = &limits.inspection;
    let limit = Limit::above(i.hot_prefix_warn_per_second, i.hot_prefix_fail_per_second);
    let seconds = window.as_secs_f64().max(0.001);
    let mut busiest: Vec<(&String, &u64)> = writes.iter().collect();
    busiest.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let total: u64 = writes.values().sum();
    let mut figures = vec![Figure::info(
        "cluster",
        "writes_per_second",
        total as f64 / seconds,
        Unit::PerSecond,
    )];
    let mut findings = Vec::new();
    for (prefix, n) in busiest.into_iter().take(i.top) {
        let rate = *n as f64 / seconds;
        let shown = if prefix.is_empty() {
            "(no prefix)"
        } else {
            prefix.as_str()
        };
        let f = Figure::graded(shown, "writes_per_second", rate, Unit::PerSecond, limit);
        if f.status != Status::Pass {
            findings.push(format!("{shown} takes {rate:.0} writes/s"));
        }
        figures.push(f);
    }
    let fine = format!(
        "{:.1} writes/s over {:.0?} across {} prefixes",
        total as f64 / seconds,
        window,
        writes.len()
    );
    let mut summary = summarize(&findings, fine);
    if !findings.is_empty() {
        summary.push_str("; find the writer and batch or slow it");
    }
    CheckResult::new(CheckId::HotPrefixes, Status::Pass, summary, figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_prefix_is_graded_per_second() {
        let writes: HashMap<String, u64> =
            [("/hot/".to_string(), 3000), ("/cold/".to_string(), 10)].into();
        let r = evaluate(&writes, Duration::from_secs(2), &Limits::default());
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.figures[1].subject, "/hot/");
        assert_eq!(r.figures[1].value, 1500.0);
        assert!(
            r.summary.starts_with("/hot/ takes 1500 writes/s"),
            "{}",
            r.summary
        );
    }
}
