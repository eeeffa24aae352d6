//! The Prometheus rule file: two groups (`etcd`, `cairn`), each alert with `severity`,
//! `summary`, `description` and `runbook_url`.

use std::collections::BTreeMap;

use cairn_inventory::Alerts;
use serde::Serialize;

use crate::alert::Alert;

/// A Prometheus rule file.
#[derive(Debug, Serialize)]
pub struct RuleFile {
    /// The rule groups.
    pub groups: Vec<Group>,
}

/// A rule group.
#[derive(Debug, Serialize)]
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<Rule>,
}

/// An alerting rule.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Alert name.
    pub alert: String,
    /// PromQL.
    pub expr: String,
    /// How long the expression must hold (absent: fire at once).
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels added to the alert.
    pub labels: BTreeMap<String, String>,
    /// Annotations (templates).
    pub annotations: BTreeMap<String, String>,
}

/// A duration in Prometheus' notation (`20m`, `90s`, `1500ms`).
pub fn duration(ms: u64) -> String {
    match ms {
        ms if ms % 3_600_000 == 0 && ms > 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 && ms > 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

impl Rule {
    /// The rule of `alert`, its runbook under `[alerts] runbook_url`.
    pub fn of(alert: &Alert, runbooks: &Alerts) -> Self {
        Self {
            alert: alert.name.into(),
            expr: alert.expr.clone(),
            for_: (alert.for_ms > 0).then(|| duration(alert.for_ms)),
            labels: BTreeMap::from([("severity".into(), alert.severity.as_str().into())]),
            annotations: BTreeMap::from([
                ("summary".into(), alert.summary.clone()),
                ("description".into(), alert.description.template()),
                ("runbook_url".into(), runbooks.runbook(alert.name)),
            ]),
        }
    }
}

impl RuleFile {
    /// One group per `(name, alerts)`.
    pub fn new(groups: &[(&str, &[Alert])], runbooks: &Alerts) -> Self {
        Self {
            groups: groups
                .iter()
                .map(|(name, alerts)| Group {
                    name: (*name).into(),
                    rules: alerts.iter().map(|a| Rule::of(a, runbooks)).collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(duration(1_200_000), "20m");
        assert_eq!(duration(3_600_000), "1h");
        assert_eq!(duration(1_800), "1800ms");
        assert_eq!(duration(90_000), "90s");
    }
}
