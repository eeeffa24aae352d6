//! `docs/runbooks.md` has a section for every alert the rules link to, and nothing else.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cairn_rules::Options;

use crate::inventories;

#[test]
fn every_alert_has_a_runbook_section() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/runbooks.md");
    let text = std::fs::read_to_string(&path).expect("docs/runbooks.md");
    let sections: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let (_, inv) = inventories().remove(0);
    let (etcd, cairn) = cairn_rules::alerts(&inv, &Options::default());
    let alerts: BTreeSet<&str> = etcd.iter().chain(&cairn).map(|a| a.name).collect();
    assert_eq!(sections, alerts, "sections of {}", path.display());
}
