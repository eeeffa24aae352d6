//! One alert as data: the rule Prometheus evaluates and the two scenarios (firing, quiet) its
//! promtool test replays. Rules and tests come from the same value, so they cannot drift.

use std::collections::BTreeMap;

use crate::humanize;

/// How urgent an alert is (the `severity` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Needs attention within working hours.
    Warning,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// How `{{ $value }}` is printed in an annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFormat {
    /// `humanize` (SI prefixes).
    Number,
    /// `humanizeDuration` (seconds).
    Duration,
    /// `humanizePercentage` (a ratio).
    Percentage,
}

/// A piece of an annotation template.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// `{{ $labels.NAME }}`.
    Label(String),
    /// `{{ $value | ... }}`.
    Value(ValueFormat),
}

/// An annotation as parts, rendered as a Prometheus template for the rule and as the expanded
/// text for the test.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Template(pub Vec<Part>);

impl Template {
    /// Starts with literal text.
    pub fn text(s: impl Into<String>) -> Self {
        Self(vec![Part::Text(s.into())])
    }

    /// Appends literal text.
    pub fn t(mut self, s: impl Into<String>) -> Self {
        self.0.push(Part::Text(s.into()));
        self
    }

    /// Appends a label's value.
    pub fn label(mut self, name: impl Into<String>) -> Self {
        self.0.push(Part::Label(name.into()));
        self
    }

    /// Appends the alert's value.
    pub fn value(mut self, format: ValueFormat) -> Self {
        self.0.push(Part::Value(format));
        self
    }

    /// The Prometheus template text.
    pub fn template(&self) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(s) => s.clone(),
                Part::Label(l) => format!("{{{{ $labels.{l} }}}}"),
                Part::Value(ValueFormat::Number) => "{{ $value | humanize }}".into(),
                Part::Value(ValueFormat::Duration) => "{{ $value | humanizeDuration }}".into(),
                Part::Value(ValueFormat::Percentage) => "{{ $value | humanizePercentage }}".into(),
            })
            .collect()
    }

    /// What Prometheus expands the template to for an alert with `labels` and `value`.
    pub fn expand(&self, labels: &BTreeMap<String, String>, value: f64) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(s) => s.clone(),
                Part::Label(l) => labels.get(l).cloned().unwrap_or_default(),
                Part::Value(ValueFormat::Number) => humanize::humanize(value),
                Part::Value(ValueFormat::Duration) => humanize::humanize_duration(value),
                Part::Value(ValueFormat::Percentage) => humanize::humanize_percentage(value),
            })
            .collect()
    }
}

/// When an alert with a threshold fires, relative to its value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// The value is above this.
    Above(f64),
    /// The value is at least this.
    AtLeast(f64),
    /// The value is below this.
    Below(f64),
}

impl Threshold {
    /// Whether an alert with `value` fires.
    pub fn fires(self, value: f64) -> bool {
        match self {
            Self::Above(t) => value > t,
            Self::AtLeast(t) => value >= t,
            Self::Below(t) => value < t,
        }
    }
}

/// One input series of a promtool test, in promtool's notation.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// `name{label="value",...}`.
    pub series: String,
    /// Expanding notation, one sample per test interval (`0+60x30`).
    pub values: String,
}

/// Input series and what the alert's expression evaluates to on them.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The series.
    pub series: Vec<Series>,
    /// The expression's value at the evaluation time (for thresholds and annotations).
    pub value: f64,
    /// The labels of the expression's result (the alert's labels, without rule labels).
    pub labels: BTreeMap<String, String>,
}

/// The promtool test of one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    /// Minute (from the first sample) at which the expectations are checked.
    pub eval_minutes: u64,
    /// The alert fires.
    pub fire: Scenario,
    /// The alert does not fire (alerts of the same name with a lower bar may).
    pub quiet: Scenario,
}

/// An alerting rule and its test.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Alert name (etcd's mixin names for etcd's alerts).
    pub name: &'static str,
    /// The `severity` label.
    pub severity: Severity,
    /// The PromQL expression.
    pub expr: String,
    /// How long the expression must hold, in milliseconds (0: fire at once).
    pub for_ms: u64,
    /// With a threshold, alerts of the same name and other severities fire by their own
    /// threshold in this alert's scenarios; without, the alert fires exactly in `fire`.
    pub threshold: Option<Threshold>,
    /// The `summary` annotation.
    pub summary: String,
    /// The `description` annotation.
    pub description: Template,
    /// The promtool test.
    pub probe: Probe,
}

impl Alert {
    /// Whether this alert fires in a scenario written for `owner` (an alert of the same name;
    /// name and severity identify an alert).
    pub fn fires_in(&self, owner: &Alert, scenario: &Scenario, firing: bool) -> bool {
        match self.threshold {
            Some(t) => t.fires(scenario.value),
            None => firing && self.severity == owner.severity,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_for_prometheus_and_expand_like_it() {
        let t = Template::text("member ")
            .label("instance")
            .t(" fsync p99 is ")
            .value(ValueFormat::Duration)
            .t(", ")
            .value(ValueFormat::Percentage);
        assert_eq!(
            t.template(),
            "member {{ $labels.instance }} fsync p99 is {{ $value | humanizeDuration }}, {{ $value | humanizePercentage }}"
        );
        let labels = BTreeMap::from([("instance".to_string(), "m1:2379".to_string())]);
        assert_eq!(
            t.expand(&labels, 0.75),
            "member m1:2379 fsync p99 is 750ms, 75%"
        );
    }

    #[test]
    fn thresholds_compare_as_their_operators() {
        assert!(Threshold::Above(1.0).fires(1.5) && !Threshold::Above(1.0).fires(1.0));
        assert!(Threshold::AtLeast(4.0).fires(4.0) && !Threshold::AtLeast(4.0).fires(3.0));
        assert!(Threshold::Below(7.0).fires(3.5) && !Threshold::Below(7.0).fires(7.0));
    }
}
