//! `--format markdown`: a summary table of the checks, then each check's figures, for
//! tickets and wikis.

use std::fmt::Write;

use super::format_value;
use crate::{Figure, Report};

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn limit(f: &Figure, warn: bool) -> String {
    let v = f.limit.and_then(|l| if warn { l.warn } else { l.fail });
    v.map_or_else(String::new, |v| format_value(v, f.unit))
}

/// The report as Markdown.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Inspection of cluster `{}`: {}\n",
        report.cluster,
        report.status.as_str().to_uppercase()
    );
    let _ = writeln!(
        s,
        "Started {}, took {:.1} s.\n",
        super::table::timestamp(report.started_at),
        report.duration_seconds
    );
    s.push_str("| Check | Status | Summary |\n|---|---|---|\n");
    for c in &report.checks {
        let _ = writeln!(s, "| {} | {} | {} |", c.check, c.status, cell(&c.summary));
    }
    for c in &report.checks {
        let _ = writeln!(s, "\n## {}: {}\n\n{}", c.check, c.status, c.summary);
        if let Some(url) = &c.runbook {
            let _ = writeln!(s, "\nRunbook: <{url}>");
        }
        if c.figures.is_empty() {
            continue;
        }
        s.push_str(
            "\n| Subject | Figure | Value | Warn | Fail | Status |\n|---|---|---|---|---|---|\n",
        );
        for f in &c.figures {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                cell(&f.subject),
                f.name,
                format_value(f.value, f.unit),
                limit(f, true),
                limit(f, false),
                f.status
            );
        }
    }
    s
}
