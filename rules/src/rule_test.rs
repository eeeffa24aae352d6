//! The `promtool test rules` file: for every alert, a group where it fires and one where it
//! does not, each checking every alert of that name (other severities fire or not by their
//! own threshold) with exact labels and expanded annotations.

use std::collections::BTreeMap;

use cairn_inventory::Alerts;
use serde::Serialize;

use crate::alert::{Alert, Scenario};
use crate::rule_file::Rule;

/// A promtool unit test file.
#[derive(Debug, Serialize)]
pub struct TestFile {
    /// The rule files under test (relative to this file).
    pub rule_files: Vec<String>,
    /// How often rules are evaluated.
    pub evaluation_interval: String,
    /// The test groups.
    pub tests: Vec<TestGroup>,
}

/// Series and the alerts expected on them.
#[derive(Debug, Serialize)]
pub struct TestGroup {
    /// Names the group in promtool's output.
    pub name: String,
    /// Sample spacing.
    pub interval: String,
    /// The series.
    pub input_series: Vec<InputSeries>,
    /// The expectations.
    pub alert_rule_test: Vec<AlertTest>,
}

/// One input series.
#[derive(Debug, Serialize)]
pub struct InputSeries {
    /// `name{labels}`.
    pub series: String,
    /// Expanding notation.
    pub values: String,
}

/// The alerts of one name firing at one time.
#[derive(Debug, Serialize)]
pub struct AlertTest {
    /// When.
    pub eval_time: String,
    /// Which name.
    pub alertname: String,
    /// Exactly these alerts fire (none when empty).
    pub exp_alerts: Vec<ExpAlert>,
}

/// An expected alert.
#[derive(Debug, Serialize)]
pub struct ExpAlert {
    /// All its labels.
    pub exp_labels: BTreeMap<String, String>,
    /// All its annotations, expanded.
    pub exp_annotations: BTreeMap<String, String>,
}

impl TestFile {
    /// Tests of `alerts` against the rule file `rules` (a path relative to the test file).
    /// Each alert's `runbook_url` is under `runbooks`' `runbook_url`.
    pub fn new(rules: &str, alerts: &[Alert], runbooks: &Alerts) -> Self {
        let mut tests = Vec::new();
        for alert in alerts {
            for (firing, scenario) in [(true, &alert.probe.fire), (false, &alert.probe.quiet)] {
                tests.push(group(alert, alerts, firing, scenario, runbooks));
            }
        }
        Self {
            rule_files: vec![rules.into()],
            evaluation_interval: "1m".into(),
            tests,
        }
    }
}

fn group(
    owner: &Alert,
    alerts: &[Alert],
    firing: bool,
    scenario: &Scenario,
    runbooks: &Alerts,
) -> TestGroup {
    let exp_alerts = alerts
        .iter()
        .filter(|a| a.name == owner.name && a.fires_in(owner, scenario, firing))
        .map(|a| expected(a, scenario, runbooks))
        .collect();
    TestGroup {
        name: format!(
            "{} ({}) {}",
            owner.name,
            owner.severity.as_str(),
            if firing { "fires" } else { "does not fire" }
        ),
        interval: "1m".into(),
        input_series: scenario
            .series
            .iter()
            .map(|s| InputSeries {
                series: s.series.clone(),
                values: s.values.clone(),
            })
            .collect(),
        alert_rule_test: vec![AlertTest {
            eval_time: format!("{}m", owner.probe.eval_minutes),
            alertname: owner.name.into(),
            exp_alerts,
        }],
    }
}

fn expected(alert: &Alert, scenario: &Scenario, runbooks: &Alerts) -> ExpAlert {
    let rule = Rule::of(alert, runbooks);
    let mut exp_labels = scenario.labels.clone();
    exp_labels.extend(rule.labels);
    ExpAlert {
        exp_annotations: BTreeMap::from([
            ("summary".into(), alert.summary.clone()),
            (
                "description".into(),
                alert.description.expand(&exp_labels, scenario.value),
            ),
            ("runbook_url".into(), runbooks.runbook(alert.name)),
        ]),
        exp_labels,
    }
}
