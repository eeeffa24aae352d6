//! `--format html`: one self-contained file (inline CSS and SVG, no scripts, nothing fetched)
//! with the checks' summary, a bar chart per figure that several subjects share (value sizes
//! by key, keys by prefix, quota used and read latency by member, ...) with its warn and fail
//! limits marked, and every figure in a table.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::format_value;
use crate::{CheckResult, Figure, Report, Status};

/// Bar chart geometry.
const LABEL_WIDTH: f64 = 260.0;
const BAR_WIDTH: f64 = 420.0;
const ROW_HEIGHT: f64 = 22.0;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn color(s: Status) -> &'static str {
    match s {
        Status::Pass => "#2e7d32",
        Status::Warn => "#f9a825",
        Status::Fail => "#c62828",
    }
}

fn badge(s: Status) -> String {
    format!(
        "<span class=\"badge\" style=\"background:{}\">{}</span>",
        color(s),
        s.as_str().to_uppercase()
    )
}

/// One horizontal bar per figure, scaled to the largest of the values and limits.
fn chart(name: &str, figures: &[&Figure]) -> String {
    let limits = figures
        .iter()
        .filter_map(|f| f.limit)
        .flat_map(|l| [l.warn, l.fail])
        .flatten();
    let max = figures
        .iter()
        .map(|f| f.value)
        .chain(limits)
        .fold(0.0f64, f64::max);
    if max <= 0.0 {
        return String::new();
    }
    let scale = |v: f64| (v.max(0.0) / max) * BAR_WIDTH;
    let height = ROW_HEIGHT * figures.len() as f64 + 8.0;
    let width = LABEL_WIDTH + BAR_WIDTH + 120.0;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\">",
        esc(name)
    );
    for (i, f) in figures.iter().enumerate() {
        let y = i as f64 * ROW_HEIGHT + 4.0;
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{LABEL_WIDTH}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL_WIDTH - 6.0,
            y + 14.0,
            esc(&f.subject),
            scale(f.value).max(1.0),
            ROW_HEIGHT - 6.0,
            color(f.status),
            LABEL_WIDTH + scale(f.value).max(1.0) + 6.0,
            y + 14.0,
            esc(&format_value(f.value, f.unit))
        );
        if let Some(l) = f.limit {
            for (limit, stroke) in [(l.warn, "#f9a825"), (l.fail, "#c62828")] {
                if let Some(v) = limit {
                    let x = LABEL_WIDTH + scale(v);
                    let _ = write!(
                        s,
                        "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\" stroke-width=\"2\" stroke-dasharray=\"3,2\"/>",
                        y - 2.0,
                        y + ROW_HEIGHT - 4.0
                    );
                }
            }
        }
    }
    s.push_str("</svg></figure>");
    s
}

/// Charts for the figure names at least two subjects share (hashes excepted).
fn charts(c: &CheckResult) -> String {
    let mut by_name: BTreeMap<&str, Vec<&Figure>> = BTreeMap::new();
    for f in &c.figures {
        // Hashes are compared, not measured: no chart.
        if f.subject != "cluster" && f.unit != crate::Unit::Hash {
            by_name.entry(f.name.as_str()).or_default().push(f);
        }
    }
    by_name
        .into_iter()
        .filter(|(_, fs)| fs.len() >= 2 && fs.iter().all(|f| f.unit == fs[0].unit))
        .map(|(name, fs)| chart(name, &fs))
        .collect()
}

fn limit(f: &Figure, warn: bool) -> String {
    f.limit
        .and_then(|l| if warn { l.warn } else { l.fail })
        .map_or_else(String::new, |v| esc(&format_value(v, f.unit)))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#212121}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.badge{color:#fff;border-radius:3px;padding:.1em .5em;font-size:.85em;font-weight:600}\
figure{margin:.5em 0 1em}figcaption{font-weight:600;margin-bottom:.25em}\
svg text{font-size:12px;font-family:system-ui,sans-serif;fill:#212121}";

/// The report as one HTML page.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let title = format!("Inspection of cluster {}", report.cluster);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let _ = writeln!(
        s,
        "<h1>{} {}</h1>\n<p>Started {}, took {:.1} s.</p>",
        esc(&title),
        badge(report.status),
        super::table::timestamp(report.started_at),
        report.duration_seconds
    );
    s.push_str("<table><tr><th>Check</th><th>Status</th><th>Summary</th></tr>\n");
    for c in &report.checks {
        let _ = writeln!(
            s,
            "<tr><td><a href=\"#{0}\">{0}</a></td><td>{1}</td><td>{2}</td></tr>",
            c.check,
            badge(c.status),
            esc(&c.summary)
        );
    }
    s.push_str("</table>\n");
    for c in &report.checks {
        let _ = writeln!(
            s,
            "<h2 id=\"{0}\">{0} {1}</h2>\n<p>{2}</p>",
            c.check,
            badge(c.status),
            esc(&c.summary)
        );
        s.push_str(&charts(c));
        if c.figures.is_empty() {
            continue;
        }
        s.push_str("<table><tr><th>Subject</th><th>Figure</th><th>Value</th><th>Warn</th><th>Fail</th><th>Status</th></tr>\n");
        for f in &c.figures {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                esc(&f.subject),
                esc(&f.name),
                esc(&format_value(f.value, f.unit)),
                limit(f, true),
                limit(f, false),
                badge(f.status)
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
