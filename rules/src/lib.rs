//! Alerting for a cluster described by a `cairn.toml` inventory: a Prometheus rule file with
//! etcd's mixin alerts and alerts on cairn's own metrics, a `promtool test rules` file that
//! makes every alert fire once and stay quiet once, a `prometheus.yml` scraping the members,
//! and a Grafana dashboard. Each alert is one value ([`alert::Alert`]) from which both its
//! rule and its test are written.
//!
//! ```no_run
//! let inv = cairn_inventory::Inventory::load("cairn.toml".as_ref())?;
//! let files = cairn_rules::generate(&inv, &cairn_rules::Options::default(), "out".as_ref())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alert;
mod cairn;
mod context;
mod dashboard;
mod error;
mod etcd;
mod humanize;
mod options;
pub mod prometheus_config;
pub mod rule_file;
pub mod rule_test;
mod series;

use std::path::{Path, PathBuf};

use cairn_inventory::Inventory;

pub use error::Error;

pub use options::Options;

use alert::Alert;
use context::Ctx;
use prometheus_config::PrometheusConfig;
use rule_file::RuleFile;
use rule_test::TestFile;

/// The rule file's name in the output directory.
pub const RULES_FILE: &str = "cairn-rules.yml";
/// The promtool test file's name.
pub const TESTS_FILE: &str = "cairn-rules.test.yml";
/// The Prometheus configuration's name.
pub const PROMETHEUS_FILE: &str = "prometheus.yml";
/// The Grafana dashboard's name.
pub const DASHBOARD_FILE: &str = "grafana-dashboard.json";

/// Every alert for `inv`: etcd's, then cairn's.
pub fn alerts(inv: &Inventory, options: &Options) -> (Vec<Alert>, Vec<Alert>) {
    let c = Ctx::new(inv, options);
    (etcd::alerts(&c), cairn::alerts(&c))
}

/// The generated files' contents, by file name.
pub fn render(inv: &Inventory, options: &Options) -> Result<Vec<(&'static str, String)>, Error> {
    let (etcd, cairn) = alerts(inv, options);
    let rules = RuleFile::new(&[("etcd", &etcd), ("cairn", &cairn)], &inv.alerts);
    let all: Vec<Alert> = etcd.into_iter().chain(cairn).collect();
    let tests = TestFile::new(RULES_FILE, &all, &inv.alerts);
    let config = PrometheusConfig::new(inv, RULES_FILE);
    let dashboard = dashboard::dashboard(&Ctx::new(inv, options));
    Ok(vec![
        (RULES_FILE, serde_norway::to_string(&rules)?),
        (TESTS_FILE, serde_norway::to_string(&tests)?),
        (PROMETHEUS_FILE, serde_norway::to_string(&config)?),
        (
            DASHBOARD_FILE,
            serde_json::to_string_pretty(&dashboard)? + "\n",
        ),
    ])
}

/// Writes the files into `out` (created if missing) and returns their paths.
pub fn generate(inv: &Inventory, options: &Options, out: &Path) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(out).map_err(|source| Error::Write {
        path: out.to_path_buf(),
        source,
    })?;
    render(inv, options)?
        .into_iter()
        .map(|(name, text)| {
            let path = out.join(name);
            std::fs::write(&path, text).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inventory() -> Inventory {
        let text = "[cluster]\nname = \"main\"\nbinary = \"b\"\ntoken = \"t\"\n\
                    [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n";
        Inventory::parse(Path::new("cairn.toml"), text.into()).expect("inventory")
    }

    #[test]
    fn every_mixin_alert_with_its_severities() {
        let (etcd, _) = alerts(&inventory(), &Options::default());
        let got: Vec<(&str, &str)> = etcd.iter().map(|a| (a.name, a.severity.as_str())).collect();
        assert_eq!(
            got,
            [
                ("etcdMembersDown", "warning"),
                ("etcdInsufficientMembers", "critical"),
                ("etcdNoLeader", "critical"),
                ("etcdHighNumberOfLeaderChanges", "warning"),
                ("etcdHighNumberOfFailedGRPCRequests", "warning"),
                ("etcdHighNumberOfFailedGRPCRequests", "critical"),
                ("etcdGRPCRequestsSlow", "critical"),
                ("etcdMemberCommunicationSlow", "warning"),
                ("etcdHighNumberOfFailedProposals", "warning"),
                ("etcdHighFsyncDurations", "warning"),
                ("etcdHighFsyncDurations", "critical"),
                ("etcdHighCommitDurations", "warning"),
                ("etcdDatabaseQuotaLowSpace", "critical"),
                ("etcdExcessiveDatabaseGrowth", "warning"),
                ("etcdDatabaseHighFragmentationRatio", "warning"),
            ]
        );
    }

    #[test]
    fn default_thresholds_are_the_mixins() {
        let (etcd, _) = alerts(&inventory(), &Options::default());
        let expr_end = |name: &str, severity: &str| {
            let a = etcd
                .iter()
                .find(|a| a.name == name && a.severity.as_str() == severity)
                .expect("alert");
            a.expr.rsplit(' ').next().expect("threshold").to_string()
        };
        assert_eq!(
            expr_end("etcdHighNumberOfFailedGRPCRequests", "warning"),
            "1"
        );
        assert_eq!(
            expr_end("etcdHighNumberOfFailedGRPCRequests", "critical"),
            "5"
        );
        assert_eq!(expr_end("etcdHighFsyncDurations", "warning"), "0.5");
        assert_eq!(expr_end("etcdHighFsyncDurations", "critical"), "1");
        assert_eq!(expr_end("etcdHighCommitDurations", "warning"), "0.25");
        assert_eq!(expr_end("etcdGRPCRequestsSlow", "critical"), "0.15");
        assert_eq!(expr_end("etcdDatabaseQuotaLowSpace", "critical"), "95");
    }

    #[test]
    fn name_and_severity_identify_an_alert() {
        let (etcd, cairn) = alerts(&inventory(), &Options::default());
        let mut ids: Vec<(&str, &str)> = etcd
            .iter()
            .chain(&cairn)
            .map(|a| (a.name, a.severity.as_str()))
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn for_scale_scales_every_for() {
        let inv = inventory();
        let (normal, _) = alerts(&inv, &Options::default());
        let (fast, _) = alerts(&inv, &Options { for_scale: 0.01 });
        for (n, f) in normal.iter().zip(&fast) {
            assert_eq!(f.for_ms, n.for_ms / 100, "{}", n.name);
        }
        assert_eq!(normal[0].for_ms, 20 * 60_000);
    }
}
