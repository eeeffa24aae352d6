//! `prometheus.yml`: the members (and cairn's exporters, when listed) as static targets with
//! the cluster label, TLS client material from the inventory, and the generated rules.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cairn_inventory::Inventory;
use serde::Serialize;

/// The parts of Prometheus' configuration cairn writes.
#[derive(Debug, Serialize)]
pub struct PrometheusConfig {
    /// Scrape and evaluation intervals.
    pub global: Global,
    /// Rule files, relative to the configuration file.
    pub rule_files: Vec<String>,
    /// The jobs.
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `global:`.
#[derive(Debug, Serialize)]
pub struct Global {
    /// How often targets are scraped.
    pub scrape_interval: String,
    /// How often rules are evaluated.
    pub evaluation_interval: String,
}

/// One job.
#[derive(Debug, Serialize)]
pub struct ScrapeConfig {
    /// The `job` label.
    pub job_name: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Client certificate and CA for https targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    /// The targets.
    pub static_configs: Vec<StaticConfig>,
}

/// `tls_config:`.
#[derive(Debug, Serialize)]
pub struct TlsConfig {
    /// The cluster's CA.
    pub ca_file: PathBuf,
    /// Prometheus' client certificate.
    pub cert_file: PathBuf,
    /// Its key.
    pub key_file: PathBuf,
}

/// `static_configs:` entry.
#[derive(Debug, Serialize)]
pub struct StaticConfig {
    /// `host:port`.
    pub targets: Vec<String>,
    /// Labels on every target (the cluster label).
    pub labels: BTreeMap<String, String>,
}

/// The TLS files Prometheus needs, in `[alerts] prometheus_tls_dir` or `[tls] dir`.
pub const CA_FILE: &str = "ca.pem";
/// Prometheus' client certificate.
pub const CERT_FILE: &str = "prometheus.pem";
/// Its key.
pub const KEY_FILE: &str = "prometheus-key.pem";

impl PrometheusConfig {
    /// The configuration for `inv`, loading the rule file `rules`.
    pub fn new(inv: &Inventory, rules: &str) -> Self {
        let a = &inv.alerts;
        let labels = BTreeMap::from([(a.cluster_label.clone(), inv.cluster.name.clone())]);
        let tls_dir = a
            .prometheus_tls_dir
            .clone()
            .or_else(|| inv.tls.as_ref().map(|t| t.dir.clone()));
        let tls_config = tls_dir.filter(|_| inv.metrics_tls()).map(|dir| TlsConfig {
            ca_file: dir.join(CA_FILE),
            cert_file: dir.join(CERT_FILE),
            key_file: dir.join(KEY_FILE),
        });
        let mut scrape_configs = vec![ScrapeConfig {
            job_name: a.job.clone(),
            scheme: if inv.metrics_tls() { "https" } else { "http" }.into(),
            tls_config,
            static_configs: vec![StaticConfig {
                targets: inv.hosts.iter().map(|h| inv.metrics_target(h)).collect(),
                labels: labels.clone(),
            }],
        }];
        if !a.cairn_targets.is_empty() {
            scrape_configs.push(ScrapeConfig {
                job_name: a.cairn_job.clone(),
                scheme: "http".into(),
                tls_config: None,
                static_configs: vec![StaticConfig {
                    targets: a.cairn_targets.clone(),
                    labels,
                }],
            });
        }
        let interval = format!("{}s", a.scrape_interval_seconds);
        Self {
            global: Global {
                scrape_interval: interval.clone(),
                evaluation_interval: interval,
            },
            rule_files: vec![rules.into()],
            scrape_configs,
        }
    }
}
