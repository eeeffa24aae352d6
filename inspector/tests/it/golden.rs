//! The JSON and Markdown renderings of a fixed report, compared with files under
//! `tests/golden/`. `UPDATE_GOLDEN=1` rewrites them after an intended change.

use std::path::PathBuf;

use cairn_inspector::{render, CheckId, CheckResult, Figure, Limit, Report, Status, Unit};

/// A report with a figure of every unit and a check of every status.
pub fn fixed_report() -> Report {
    let checks = vec![
        CheckResult::new(
            CheckId::Membership,
            Status::Pass,
            "3 members, all healthy, leader m1, no alarms".into(),
            vec![
                Figure::judged("m1", "healthy", 1.0, Unit::Count, Status::Pass),
                Figure::judged("cluster", "leaders", 1.0, Unit::Count, Status::Pass),
            ],
        ),
        CheckResult::new(
            CheckId::Consistency,
            Status::Pass,
            "members disagree at revision 42: m1, m2 hash 0000beef vs m3 hash 0000f00d".into(),
            vec![
                Figure::judged("m1", "hash", 48879.0, Unit::Hash, Status::Pass),
                Figure::judged("m3", "hash", 61453.0, Unit::Hash, Status::Fail),
            ],
        ),
        CheckResult::new(
            CheckId::Database,
            Status::Pass,
            "m1 uses 85.0% of its 2.0 GiB quota".into(),
            vec![
                Figure::graded(
                    "m1",
                    "quota_used",
                    85.0,
                    Unit::Percent,
                    Limit::above(80.0, 95.0),
                ),
                Figure::graded(
                    "m2",
                    "quota_used",
                    40.0,
                    Unit::Percent,
                    Limit::above(80.0, 95.0),
                ),
                Figure::info("m1", "in_use_ratio", 0.75, Unit::Ratio),
            ],
        ),
        CheckResult::new(
            CheckId::LargeValues,
            Status::Pass,
            "1 value(s) of at least 1.0 MiB: /big|key (1.2 MiB)".into(),
            vec![Figure::graded(
                "/big|key",
                "value_size",
                1_258_291.0,
                Unit::Bytes,
                Limit::above(102_400.0, 1_048_576.0),
            )],
        ),
        CheckResult::new(
            CheckId::HotPrefixes,
            Status::Pass,
            "0.5 writes/s over 1s across 1 prefixes".into(),
            vec![Figure::graded(
                "/a/",
                "writes_per_second",
                0.5,
                Unit::PerSecond,
                Limit::above(100.0, 1000.0),
            )],
        ),
        CheckResult::new(
            CheckId::Latency,
            Status::Pass,
            "slowest read 1.5 ms".into(),
            vec![Figure::graded(
                "m1",
                "linearizable_read",
                1.5,
                Unit::Milliseconds,
                Limit::above(100.0, 500.0),
            )],
        ),
        CheckResult::new(
            CheckId::Certificates,
            Status::Pass,
            "m1-server expires in 3.0 days".into(),
            vec![Figure::graded(
                "m1-server",
                "days_left",
                3.0,
                Unit::Days,
                Limit::below(30.0, 7.0),
            )],
        ),
    ];
    Report::new("main".into(), 1_700_000_000, 2.5, checks)
}

fn compare(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from {}; run with UPDATE_GOLDEN=1 if the change is intended:\n{actual}",
        path.display()
    );
}

#[test]
fn json_rendering_matches_the_golden_file() {
    let report = fixed_report();
    assert_eq!(report.status, Status::Fail);
    let json = render::json::render(&report).expect("json");
    compare("report.json", &json);
    // The schema round-trips.
    let back: Report = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, report);
}

#[test]
fn markdown_rendering_matches_the_golden_file() {
    compare("report.md", &render::markdown::render(&fixed_report()));
}

#[test]
fn html_rendering_matches_the_golden_file() {
    let html = render::html::render(&fixed_report(), &[]);
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("src=\"http"), "nothing fetched");
    compare("report.html", &html);
}

#[test]
fn table_rendering_matches_the_golden_file() {
    let style = render::table::Style {
        color: false,
        verbose: false,
    };
    compare("report.txt", &render::table::render(&fixed_report(), style));
}
