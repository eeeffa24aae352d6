//! What every alert definition reads from the inventory: selectors, label sets, the scaled
//! `for` durations, and helpers that write test series in promtool's notation.

use std::collections::BTreeMap;

use cairn_inventory::Inventory;

use crate::options::Options;

/// Label set of a series or an alert.
pub(crate) type Labels = BTreeMap<String, String>;

/// The inventory as the alert definitions need it.
pub(crate) struct Ctx<'a> {
    pub(crate) inv: &'a Inventory,
    pub(crate) options: &'a Options,
    /// `job="etcd",cluster="main"`.
    pub(crate) etcd_sel: String,
    /// `job="cairn",cluster="main"`.
    pub(crate) cairn_sel: String,
    /// The cluster label's name.
    pub(crate) cluster_label: &'a str,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(inv: &'a Inventory, options: &'a Options) -> Self {
        let a = &inv.alerts;
        let sel = |job: &str| format!("job=\"{job}\",{}=\"{}\"", a.cluster_label, inv.cluster.name);
        Self {
            inv,
            options,
            etcd_sel: sel(&a.job),
            cairn_sel: sel(&a.cairn_job),
            cluster_label: &a.cluster_label,
        }
    }

    /// A mixin `for` of `minutes`, scaled by [`Options::for_scale`].
    pub(crate) fn for_ms(&self, minutes: u64) -> u64 {
        // Rounded to whole milliseconds, Prometheus' duration resolution.
        (minutes as f64 * 60_000.0 * self.options.for_scale).round() as u64
    }

    /// `job` and the cluster label of the members' targets.
    pub(crate) fn etcd_labels(&self) -> Labels {
        self.labels(&self.inv.alerts.job)
    }

    /// ... plus `instance` of the `i`-th member.
    pub(crate) fn member_labels(&self, i: usize) -> Labels {
        let mut l = self.etcd_labels();
        l.insert(
            "instance".into(),
            self.inv
                .metrics_target(&self.inv.hosts[i % self.inv.hosts.len()]),
        );
        l
    }

    /// `job`, the cluster label and `instance` of cairn's exporter.
    pub(crate) fn cairn_labels(&self) -> Labels {
        let mut l = self.labels(&self.inv.alerts.cairn_job);
        let instance = self
            .inv
            .alerts
            .cairn_targets
            .first()
            .cloned()
            .unwrap_or_else(|| "cairn:9469".into());
        l.insert("instance".into(), instance);
        l
    }

    fn labels(&self, job: &str) -> Labels {
        Labels::from([
            ("job".to_string(), job.to_string()),
            (
                self.cluster_label.to_string(),
                self.inv.cluster.name.clone(),
            ),
        ])
    }
}

/// Adds `extra` to `labels`.
pub(crate) fn with(mut labels: Labels, extra: &[(&str, &str)]) -> Labels {
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    labels
}

/// The minute at which a probe checks its alerts: the expression holds from `settle`, and
/// every alert of the name (with `for`s `for_ms`) has had its `for` plus one evaluation.
pub(crate) fn eval_minutes(settle: u64, for_ms: &[u64]) -> u64 {
    let longest = for_ms.iter().copied().max().unwrap_or(0);
    settle + longest.div_ceil(60_000) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eval_waits_for_the_longest_for_rounded_up_to_minutes() {
        assert_eq!(eval_minutes(5, &[600_000, 300_000]), 16);
        assert_eq!(eval_minutes(1, &[1_800]), 3);
        assert_eq!(eval_minutes(0, &[]), 1);
    }
}
