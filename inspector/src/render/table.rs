//! The terminal table: one line per check, then every figure of the checks that are not a
//! pass (all figures with `verbose`), statuses colored when the output is a terminal.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use super::format_value;
use crate::{Report, Status};

/// How the table is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// ANSI colors for the statuses.
    pub color: bool,
    /// Every figure, not only those of checks that are not a pass.
    pub verbose: bool,
}

/// RFC 3339 UTC time of Unix `seconds`.
pub fn timestamp(seconds: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .to_string()
}

fn status(s: Status, color: bool) -> String {
    let word = format!("{:<4}", s.as_str().to_uppercase());
    if !color {
        return word;
    }
    let code = match s {
        Status::Pass => "32",
        Status::Warn => "33",
        Status::Fail => "1;31",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

/// The report as a table.
pub fn render(report: &Report, style: Style) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "cluster {}  {}  took {:.1}s  {}\n",
        report.cluster,
        timestamp(report.started_at),
        report.duration_seconds,
        status(report.status, style.color)
    );
    let width = report
        .checks
        .iter()
        .map(|c| c.check.as_str().len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(s, "{:<width$}  STATUS  SUMMARY", "CHECK");
    for c in &report.checks {
        let _ = writeln!(
            s,
            "{:<width$}  {}    {}",
            c.check.as_str(),
            status(c.status, style.color),
            c.summary
        );
    }
    for c in &report.checks {
        if (c.figures.is_empty() && c.runbook.is_none())
            || (c.status == Status::Pass && !style.verbose)
        {
            continue;
        }
        let _ = writeln!(s, "\n{}:", c.check);
        if let Some(url) = &c.runbook {
            let _ = writeln!(s, "  runbook: {url}");
        }
        let rows: Vec<[String; 4]> = c
            .figures
            .iter()
            .filter(|f| style.verbose || f.limit.is_some() || f.status != Status::Pass)
            .map(|f| {
                let limits = f
                    .limit
                    .map(|l| {
                        let mut parts = Vec::new();
                        if let Some(w) = l.warn {
                            parts.push(format!("warn {}", format_value(w, f.unit)));
                        }
                        if let Some(x) = l.fail {
                            parts.push(format!("fail {}", format_value(x, f.unit)));
                        }
                        parts.join(", ")
                    })
                    .unwrap_or_default();
                [
                    f.subject.clone(),
                    f.name.clone(),
                    format_value(f.value, f.unit),
                    limits,
                ]
            })
            .collect();
        let w: Vec<usize> = (0..4)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for (r, f) in rows.iter().zip(
            c.figures
                .iter()
                .filter(|f| style.verbose || f.limit.is_some() || f.status != Status::Pass),
        ) {
            let _ = writeln!(
                s,
                "  {:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                status(f.status, style.color),
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            );
        }
    }
    s
}
