//! `-o html`: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) for a
//! person to look at rather than read. Top to bottom: the verdict; what needs attention
//! (failing checks, then warnings, each with its runbook link); every member at a glance
//! (health, role, revision, database size and use, read latency); trends over the last runs
//! the state file remembers (keys, database size, fragmentation, largest value, the largest
//! prefixes); keys by prefix, ranked; then every check, failing ones first, with charts of
//! its measurements against their limits (the dashed lines, named in a legend) and its
//! figures in a table.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::format_value;
use super::table::timestamp;
use crate::state::Sample;
use crate::{CheckId, CheckResult, Figure, MemberView, Report, Status, Unit};

/// Bar chart geometry.
const LABEL_WIDTH: f64 = 240.0;
const BAR_WIDTH: f64 = 440.0;
const ROW_HEIGHT: f64 = 22.0;
/// Line chart geometry.
const TREND_WIDTH: f64 = 560.0;
const TREND_HEIGHT: f64 = 150.0;
const TREND_MARGIN: f64 = 70.0;
/// Prefixes in the ranked bar.
const RANKED: usize = 20;
/// Series colours of the trend charts, then again.
const PALETTE: [&str; 6] = [
    "#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#5d4037", "#ad1457",
];

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
        "<span class=\"badge {}\">{}</span>",
        s.as_str(),
        s.as_str().to_uppercase()
    )
}

fn runbook(c: &CheckResult) -> String {
    c.runbook.as_deref().map_or_else(String::new, |url| {
        format!(" <a class=\"runbook\" href=\"{}\">runbook</a>", esc(url))
    })
}

/// Checks, failing first, then warnings, then passes; report order within each.
fn by_urgency(report: &Report) -> Vec<&CheckResult> {
    let mut checks: Vec<&CheckResult> = report.checks.iter().collect();
    checks.sort_by_key(|c| std::cmp::Reverse(c.status));
    checks
}

/// One horizontal bar per figure, scaled to the largest of the values and limits, with the
/// limits as dashed lines and a legend naming them.
fn bar_chart(title: &str, figures: &[&Figure]) -> String {
    let limits: Vec<(f64, Status)> = figures
        .iter()
        .filter_map(|f| f.limit)
        .flat_map(|l| [(l.warn, Status::Warn), (l.fail, Status::Fail)])
        .filter_map(|(v, s)| Some((v?, s)))
        .collect();
    let max = figures
        .iter()
        .map(|f| f.value)
        .chain(limits.iter().map(|(v, _)| *v))
        .fold(0.0f64, f64::max);
    if max <= 0.0 {
        return String::new();
    }
    let scale = |v: f64| (v.max(0.0) / max) * BAR_WIDTH;
    let height = ROW_HEIGHT * figures.len() as f64 + 8.0;
    let width = LABEL_WIDTH + BAR_WIDTH + 110.0;
    let mut s = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    for (i, f) in figures.iter().enumerate() {
        let y = i as f64 * ROW_HEIGHT + 4.0;
        let w = scale(f.value);
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect x=\"{LABEL_WIDTH}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL_WIDTH - 6.0,
            y + 14.0,
            esc(&short(&f.subject, 36)),
            ROW_HEIGHT - 6.0,
            color(f.status),
            LABEL_WIDTH + w + 6.0,
            y + 14.0,
            esc(&format_value(f.value, f.unit))
        );
    }
    let mut drawn: Vec<(f64, Status)> = Vec::new();
    for (v, status) in &limits {
        if drawn.iter().any(|(d, s)| d == v && s == status) {
            continue;
        }
        drawn.push((*v, *status));
        let x = LABEL_WIDTH + scale(*v);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"0\" y2=\"{height:.1}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"4,3\"/>",
            color(*status)
        );
    }
    s.push_str("</svg>");
    if !drawn.is_empty() {
        let unit = figures[0].unit;
        s.push_str("<div class=\"legend\">");
        for (v, status) in &drawn {
            let _ = write!(
                s,
                "<span><i class=\"dash {}\"></i>{} at {}</span>",
                status.as_str(),
                if *status == Status::Fail {
                    "fail"
                } else {
                    "warn"
                },
                esc(&format_value(*v, unit))
            );
        }
        s.push_str("</div>");
    }
    s.push_str("</figure>");
    s
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max - 1).collect();
    format!("{head}…")
}

/// Charts for a check's measurements: figures of one name shared by several subjects or
/// graded against limits. Hashes are compared, not measured; membership's yes/no figures
/// are in the members table; a group whose values are all equal and all pass says nothing
/// a table does not.
fn charts(c: &CheckResult) -> String {
    if c.check == CheckId::Membership {
        return String::new();
    }
    let mut by_name: BTreeMap<&str, Vec<&Figure>> = BTreeMap::new();
    for f in &c.figures {
        if f.subject != "cluster" && f.unit != Unit::Hash {
            by_name.entry(f.name.as_str()).or_default().push(f);
        }
    }
    by_name
        .into_iter()
        .filter(|(_, fs)| fs.iter().all(|f| f.unit == fs[0].unit))
        .filter(|(_, fs)| fs.len() >= 2 || fs.iter().any(|f| f.limit.is_some()))
        .filter(|(_, fs)| {
            let all_equal = fs.iter().all(|f| f.value == fs[0].value);
            !all_equal || fs.iter().any(|f| f.status != Status::Pass)
        })
        .map(|(name, fs)| bar_chart(&name.replace('_', " "), &fs))
        .collect()
}

fn limit(f: &Figure, warn: bool) -> String {
    f.limit
        .and_then(|l| if warn { l.warn } else { l.fail })
        .map_or_else(String::new, |v| esc(&format_value(v, f.unit)))
}

fn figures_table(c: &CheckResult) -> String {
    let mut s = String::from("<table class=\"figures\"><tr><th>Subject</th><th>Figure</th><th>Value</th><th>Warn</th><th>Fail</th><th>Status</th></tr>\n");
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
    s
}

/// The latency check's linearizable read time of `member`, as shown.
fn read_latency(report: &Report, member: &str) -> String {
    report
        .check(CheckId::Latency)
        .and_then(|c| {
            c.figures
                .iter()
                .find(|f| f.subject == member && f.name == "linearizable_read")
                .or_else(|| {
                    c.figures
                        .iter()
                        .find(|f| f.subject == member && f.name == "serializable_read")
                })
        })
        .map_or_else(
            || "-".to_string(),
            |f| {
                format!(
                    "<span class=\"{}\">{}</span>",
                    f.status.as_str(),
                    esc(&format_value(f.value, f.unit))
                )
            },
        )
}

fn members_table(report: &Report) -> String {
    if report.members.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<section id=\"members\"><h2>Members</h2><table class=\"members\"><tr><th>Member</th><th>Health</th><th>Role</th><th>Revision</th><th>DB size</th><th>In use</th><th>Read latency</th></tr>\n",
    );
    let fmt_bytes =
        |b: Option<u64>| b.map_or_else(|| "-".into(), |b| format_value(b as f64, Unit::Bytes));
    for m in &report.members {
        let MemberView {
            name,
            endpoint,
            answered,
            leader,
            learner,
            revision,
            db_size,
            db_size_in_use,
            error,
        } = m;
        let health = if *answered {
            "<span class=\"pass\">up</span>".to_string()
        } else {
            format!(
                "<span class=\"fail\">down</span> <small>{}</small>",
                esc(error.as_deref().unwrap_or("no answer"))
            )
        };
        let role = match (answered, leader, learner) {
            (false, _, _) => "-",
            (true, true, _) => "leader",
            (true, false, true) => "learner",
            (true, false, false) => "follower",
        };
        // A member that does not report its use (0) shows none.
        let in_use = match (db_size, db_size_in_use) {
            (Some(size), Some(used)) if *size > 0 && *used > 0 => {
                format!("{:.0}%", *used as f64 * 100.0 / *size as f64)
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "<tr class=\"{}\"><td><b>{}</b><br><small>{}</small></td><td>{health}</td><td>{role}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{in_use}</td><td class=\"num\">{}</td></tr>",
            if *answered { "up" } else { "down" },
            esc(name),
            esc(endpoint),
            revision.map_or_else(|| "-".into(), |r| r.to_string()),
            esc(&fmt_bytes(*db_size)),
            read_latency(report, name)
        );
    }
    s.push_str("</table></section>\n");
    s
}

/// A line per series over the runs, evenly spaced in run order (two runs may share a
/// second); `times` label the first and last run, `series` are (name, (run, value) points).
fn line_chart(
    title: &str,
    unit: Unit,
    times: &[u64],
    series: &[(String, Vec<(usize, f64)>)],
) -> String {
    let runs = times.len();
    if runs < 2 || series.iter().all(|(_, p)| p.is_empty()) {
        return String::new();
    }
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(0.0f64, f64::max);
    // A flat zero still draws, along the axis.
    let top = if max > 0.0 { max } else { 1.0 };
    let x = |run: usize| TREND_MARGIN + run as f64 / (runs - 1) as f64 * TREND_WIDTH;
    let y = |v: f64| 10.0 + TREND_HEIGHT - v / top * TREND_HEIGHT;
    let width = TREND_MARGIN + TREND_WIDTH + 20.0;
    let height = TREND_HEIGHT + 40.0;
    let mut s = format!(
        "<figure class=\"trend\"><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    let _ = write!(
        s,
        "<line class=\"axis\" x1=\"{TREND_MARGIN}\" x2=\"{TREND_MARGIN}\" y1=\"10\" y2=\"{:.1}\"/><line class=\"axis\" x1=\"{TREND_MARGIN}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        y(0.0),
        TREND_MARGIN + TREND_WIDTH,
        y(0.0),
        y(0.0)
    );
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"14\" text-anchor=\"end\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
        TREND_MARGIN - 4.0,
        esc(&format_value(max, unit)),
        TREND_MARGIN - 4.0,
        y(0.0)
    );
    let _ = write!(
        s,
        "<text x=\"{TREND_MARGIN}\" y=\"{:.1}\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
        y(0.0) + 16.0,
        esc(&timestamp(times[0])),
        TREND_MARGIN + TREND_WIDTH,
        y(0.0) + 16.0,
        esc(&timestamp(times[runs - 1]))
    );
    for (i, (_, points)) in series.iter().enumerate() {
        let line: Vec<String> = points
            .iter()
            .map(|(run, v)| format!("{:.1},{:.1}", x(*run), y(*v)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            PALETTE[i % PALETTE.len()],
            line.join(" ")
        );
    }
    s.push_str("</svg><div class=\"legend\">");
    for (i, (name, points)) in series.iter().enumerate() {
        let last = points.last().map_or(0.0, |(_, v)| *v);
        let _ = write!(
            s,
            "<span><i class=\"swatch\" style=\"background:{}\"></i>{} ({})</span>",
            PALETTE[i % PALETTE.len()],
            esc(name),
            esc(&format_value(last, unit))
        );
    }
    s.push_str("</div></figure>");
    s
}

/// Per-name series of a map-valued sample field, as (run, value) points.
fn series_of(
    history: &[Sample],
    field: impl Fn(&Sample) -> BTreeMap<String, f64>,
) -> Vec<(String, Vec<(usize, f64)>)> {
    let mut by_name: BTreeMap<String, Vec<(usize, f64)>> = BTreeMap::new();
    for (run, s) in history.iter().enumerate() {
        for (name, v) in field(s) {
            by_name.entry(name).or_default().push((run, v));
        }
    }
    by_name.into_iter().collect()
}

fn as_f64(map: &BTreeMap<String, u64>) -> BTreeMap<String, f64> {
    map.iter().map(|(k, v)| (k.clone(), *v as f64)).collect()
}

fn trends(history: &[Sample]) -> String {
    let mut s = String::from("<section id=\"trends\"><h2>Trends</h2>\n");
    if history.len() < 2 {
        let _ = writeln!(
            s,
            "<p class=\"note\">Trends need two inspections that keep a state file; {} so far.</p></section>",
            history.len()
        );
        return s;
    }
    let times: Vec<u64> = history.iter().map(|s| s.inspected_at).collect();
    let _ = write!(
        s,
        "<p class=\"note\">The last {} inspections, {} to {}.</p><div class=\"grid\">",
        history.len(),
        esc(&timestamp(times[0])),
        esc(&timestamp(times[times.len() - 1]))
    );
    let single = |name: &str, f: &dyn Fn(&Sample) -> f64| {
        vec![(
            name.to_string(),
            history
                .iter()
                .enumerate()
                .map(|(run, s)| (run, f(s)))
                .collect(),
        )]
    };
    s.push_str(&line_chart(
        "Keys",
        Unit::Count,
        &times,
        &single("all keys", &|s| s.total_keys as f64),
    ));
    s.push_str(&line_chart(
        "Database size",
        Unit::Bytes,
        &times,
        &series_of(history, |s| as_f64(&s.db_size)),
    ));
    let fragmentation = series_of(history, |s| {
        s.in_use_ratio
            .iter()
            .map(|(m, used)| (m.clone(), (1.0 - used).max(0.0) * 100.0))
            .collect()
    });
    s.push_str(&line_chart(
        "Fragmentation (share of the file not in use)",
        Unit::Percent,
        &times,
        &fragmentation,
    ));
    s.push_str(&line_chart(
        "Largest value",
        Unit::Bytes,
        &times,
        &single("largest value", &|s| s.largest_value as f64),
    ));
    // The prefixes largest at the last run, five of them.
    let last = &history[history.len() - 1];
    let mut top: Vec<(&String, &u64)> = last.prefixes.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<&String> = top.into_iter().take(5).map(|(p, _)| p).collect();
    let prefixes = series_of(history, |s| {
        as_f64(&s.prefixes)
            .into_iter()
            .filter(|(p, _)| top.contains(&p))
            .collect()
    });
    s.push_str(&line_chart(
        "Keys of the largest prefixes",
        Unit::Count,
        &times,
        &prefixes,
    ));
    s.push_str("</div></section>\n");
    s
}

/// Keys by prefix, largest first, as a ranked bar.
fn prefixes(report: &Report) -> String {
    let Some(c) = report.check(CheckId::KeyCountGrowth) else {
        return String::new();
    };
    let mut ranked: Vec<&Figure> = c
        .figures
        .iter()
        .filter(|f| f.name == "keys" && f.subject != "cluster")
        .collect();
    if ranked.is_empty() {
        return String::new();
    }
    ranked.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.subject.cmp(&b.subject)));
    ranked.truncate(RANKED);
    format!(
        "<section id=\"prefixes\"><h2>Keys by prefix</h2>{}</section>\n",
        bar_chart("keys, largest prefixes first", &ranked)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#212121;background:#fafafa}\
main{max-width:1100px;margin:0 auto;padding:0 1.5em 2em}\
header.verdict{color:#fff;padding:1em 1.5em;margin-bottom:1em}\
header.verdict h1{margin:0;font-size:1.5em}header.verdict p{margin:.3em 0 0}\
header.pass{background:#2e7d32}header.warn{background:#f9a825;color:#212121}header.fail{background:#c62828}\
h2{margin:1.2em 0 .5em}\
.card{background:#fff;border:1px solid #e0e0e0;border-left:8px solid #2e7d32;border-radius:4px;padding:.6em 1em;margin:.6em 0}\
.card.warn{border-left-color:#f9a825}.card.fail{border-left-color:#c62828}\
.card h3{margin:.1em 0 .3em;font-size:1.1em}.card p{margin:.2em 0}\
table{border-collapse:collapse;margin:.5em 0 1em;background:#fff}\
td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}\
tr.down td{background:#ffebee}\
.badge{color:#fff;border-radius:3px;padding:.1em .5em;font-size:.8em;font-weight:600}\
.badge.pass{background:#2e7d32}.badge.warn{background:#f9a825;color:#212121}.badge.fail{background:#c62828}\
span.pass{color:#2e7d32;font-weight:600}span.warn{color:#9a6b00;font-weight:600}span.fail{color:#c62828;font-weight:600}\
a.runbook{font-size:.9em}\
figure{margin:.5em 0 1em}figcaption{font-weight:600;margin-bottom:.25em}\
.grid{display:flex;flex-wrap:wrap;gap:0 1.5em}\
.legend{font-size:12px;color:#555}.legend span{margin-right:1.2em}\
.legend i{display:inline-block;width:14px;margin-right:.3em;vertical-align:middle}\
.legend i.swatch{height:10px}.legend i.dash{height:0;border-top:2px dashed}\
.legend i.dash.warn{border-color:#f9a825}.legend i.dash.fail{border-color:#c62828}\
svg text{font-size:12px;font-family:system-ui,sans-serif;fill:#212121}svg .axis{stroke:#9e9e9e}\
.note{color:#616161}details summary{cursor:pointer;color:#424242}";

/// The report as one HTML page; `history` (oldest first) feeds the trends.
pub fn render(report: &Report, history: &[Sample]) -> String {
    let mut s = String::new();
    let title = format!("Inspection of cluster {}", report.cluster);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(&title)
    );
    let count = |st: Status| report.checks.iter().filter(|c| c.status == st).count();
    let _ = writeln!(
        s,
        "<header class=\"verdict {}\"><h1>{} — {}</h1><p>{} failing, {} warning, {} passing; started {}, took {:.1} s.</p></header>\n<main>",
        report.status.as_str(),
        esc(&title),
        report.status.as_str().to_uppercase(),
        count(Status::Fail),
        count(Status::Warn),
        count(Status::Pass),
        esc(&timestamp(report.started_at)),
        report.duration_seconds
    );
    let urgent: Vec<&CheckResult> = by_urgency(report)
        .into_iter()
        .filter(|c| c.status != Status::Pass)
        .collect();
    s.push_str("<section id=\"attention\"><h2>Needs attention</h2>\n");
    if urgent.is_empty() {
        s.push_str("<p class=\"note\">Every check passes.</p>\n");
    }
    for c in &urgent {
        let _ = writeln!(
            s,
            "<div class=\"card {}\"><h3><a href=\"#{}\">{}</a> {}</h3><p>{}{}</p></div>",
            c.status.as_str(),
            c.check,
            c.check,
            badge(c.status),
            esc(&c.summary),
            runbook(c)
        );
    }
    s.push_str("</section>\n");
    s.push_str(&members_table(report));
    s.push_str(&trends(history));
    s.push_str(&prefixes(report));
    s.push_str("<section id=\"checks\"><h2>Checks</h2>\n");
    for c in by_urgency(report) {
        let _ = writeln!(
            s,
            "<div class=\"card {0}\" id=\"{1}\"><h3>{1} {2}</h3><p>{3}{4}</p>",
            c.status.as_str(),
            c.check,
            badge(c.status),
            esc(&c.summary),
            runbook(c)
        );
        s.push_str(&charts(c));
        if !c.figures.is_empty() {
            // Passing checks keep their figures folded away.
            let open = if c.status == Status::Pass {
                ""
            } else {
                " open"
            };
            let _ = write!(
                s,
                "<details{open}><summary>{} figures</summary>{}</details>",
                c.figures.len(),
                figures_table(c)
            );
        }
        s.push_str("</div>\n");
    }
    s.push_str("</section></main></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limit;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    fn report() -> Report {
        let latency = CheckResult::new(
            CheckId::Latency,
            Status::Pass,
            "reads are fast".into(),
            vec![Figure::graded(
                "m1",
                "linearizable_read",
                1.5,
                Unit::Milliseconds,
                Limit::above(50.0, 200.0),
            )],
        );
        let mut large = CheckResult::new(
            CheckId::LargeValues,
            Status::Fail,
            "1 value of at least 1.0 MiB".into(),
            vec![Figure::graded(
                "/big",
                "value_size",
                2e6,
                Unit::Bytes,
                Limit::above(1e5, 1e6),
            )],
        );
        large.runbook = Some("https://wiki.example.com/runbooks#CairnLargeValues".into());
        let quota = |m: &str| Figure::info(m, "quota", 2e9, Unit::Bytes);
        let database = CheckResult::new(
            CheckId::Database,
            Status::Warn,
            "m2 is fragmented".into(),
            vec![quota("m1"), quota("m2"), quota("m3")],
        );
        Report::new(
            "main".into(),
            1_700_000_000,
            1.0,
            vec![latency, large, database],
        )
        .with_members(vec![
            MemberView {
                name: "m1".into(),
                endpoint: "https://10.0.0.1:2379".into(),
                answered: true,
                leader: true,
                revision: Some(42),
                db_size: Some(4 << 20),
                db_size_in_use: Some(3 << 20),
                ..MemberView::default()
            },
            MemberView {
                name: "m2".into(),
                endpoint: "https://10.0.0.2:2379".into(),
                error: Some("connection refused".into()),
                ..MemberView::default()
            },
        ])
    }

    #[test]
    fn failing_checks_come_first_with_their_runbook() {
        let html = render(&report(), &[]);
        let at = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("no {needle}"));
        // Needs attention: the failure, then the warning; the pass is not there.
        let attention = &html[at("id=\"attention\"")..at("id=\"members\"")];
        assert!(attention.find("large_values") < attention.find("database"));
        assert!(!attention.contains("latency"));
        assert!(attention.contains(
            "<a class=\"runbook\" href=\"https://wiki.example.com/runbooks#CairnLargeValues\">runbook</a>"
        ));
        // The checks: fail, warn, pass.
        assert!(at("id=\"large_values\"") < at("id=\"database\""));
        assert!(at("id=\"database\"") < at("id=\"latency\""));
        // Identical info bars (the quota of every member) make no chart.
        assert!(!html.contains("aria-label=\"quota\""), "{html}");
        // The limits are named in a legend.
        assert!(html.contains("fail at 976.6 KiB"), "{html}");
    }

    #[test]
    fn the_members_table_shows_who_is_down() {
        let html = render(&report(), &[]);
        assert!(html.contains("<tr class=\"up\"><td><b>m1</b>"));
        assert!(html.contains("<td>leader</td><td class=\"num\">42</td><td class=\"num\">4.0 MiB</td><td class=\"num\">75%</td>"), "{html}");
        assert!(html.contains("<tr class=\"down\"><td><b>m2</b>"));
        assert!(html.contains("<span class=\"fail\">down</span> <small>connection refused</small>"));
    }

    #[test]
    fn trends_need_two_runs_and_then_draw_a_line_per_member() {
        let html = render(&report(), &[Sample::default()]);
        assert!(html.contains("Trends need two inspections that keep a state file; 1 so far."));
        let sample = |at: u64, size: u64| Sample {
            inspected_at: at,
            total_keys: at,
            db_size: [("m1".to_string(), size), ("m2".to_string(), size / 2)].into(),
            in_use_ratio: [("m1".to_string(), 0.5)].into(),
            prefixes: [("/a/".to_string(), at)].into(),
            largest_value: 10,
            ..Sample::default()
        };
        let history = [
            sample(100, 1 << 20),
            sample(200, 2 << 20),
            sample(300, 3 << 20),
        ];
        let html = render(&report(), &history);
        let trends = &html[html.find("id=\"trends\"").expect("trends")..];
        for title in [
            "aria-label=\"Keys\"",
            "aria-label=\"Database size\"",
            "aria-label=\"Fragmentation (share of the file not in use)\"",
            "aria-label=\"Largest value\"",
            "aria-label=\"Keys of the largest prefixes\"",
        ] {
            assert!(trends.contains(title), "{title}");
        }
        let db = &trends[trends.find("aria-label=\"Database size\"").expect("db")..];
        let db = &db[..db.find("</figure>").expect("end")];
        assert_eq!(db.matches("<polyline").count(), 2, "one line per member");
        assert!(
            db.contains("m1 (3.0 MiB)") && db.contains("m2 (1.5 MiB)"),
            "{db}"
        );
    }
}
