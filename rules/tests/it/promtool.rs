//! `promtool check rules`, `promtool test rules` and `promtool check config` on everything
//! generated, for every inventory and with `for` scaled down.

use std::path::Path;
use std::process::Command;

use cairn_rules::prometheus_config::{CA_FILE, CERT_FILE, KEY_FILE};
use cairn_rules::{generate, Options, PROMETHEUS_FILE, RULES_FILE, TESTS_FILE};

use crate::inventories;

/// Runs promtool in `dir`; its output on failure.
fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool (Debian: apt-get install prometheus)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} in {}:\n{text}",
        dir.display()
    );
    text
}

fn check_all(options: &Options) {
    for (name, mut inv) in inventories() {
        let out = tempfile::tempdir().expect("tempdir");
        // `check config` wants the client certificate files to exist; their content is not
        // read.
        let pki = out.path().join("pki");
        std::fs::create_dir(&pki).expect("pki dir");
        for file in [CA_FILE, CERT_FILE, KEY_FILE] {
            std::fs::write(pki.join(file), "").expect("placeholder");
        }
        inv.alerts.prometheus_tls_dir = Some(pki);
        generate(&inv, options, out.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (etcd, cairn) = cairn_rules::alerts(&inv, options);
        let rules = promtool(&["check", "rules", RULES_FILE], out.path());
        assert!(
            rules.contains(&format!(
                "SUCCESS: {} rules found",
                etcd.len() + cairn.len()
            )),
            "{name}: {rules}"
        );
        let tests = promtool(&["test", "rules", TESTS_FILE], out.path());
        assert!(tests.contains("SUCCESS"), "{name}: {tests}");
        let config = promtool(&["check", "config", PROMETHEUS_FILE], out.path());
        assert!(
            config.contains("SUCCESS: 1 rule files found"),
            "{name}: {config}"
        );
    }
}

#[test]
fn every_inventory_passes_promtool() {
    check_all(&Options::default());
}

/// Scaled `for`s (as a live test uses them) keep every rule's test passing: test times
/// follow the scaled durations.
#[test]
fn scaled_for_durations_pass_promtool() {
    check_all(&Options { for_scale: 0.01 });
}

/// The tests are not vacuous: a wrong expectation fails them.
#[test]
fn a_wrong_expectation_fails_promtool() {
    let (_, inv) = inventories().remove(0);
    let out = tempfile::tempdir().expect("tempdir");
    generate(&inv, &Options::default(), out.path()).expect("generate");
    let tests = out.path().join(TESTS_FILE);
    let text = std::fs::read_to_string(&tests).expect("tests");
    let broken = text.replacen("members are down (1)", "members are down (2)", 1);
    assert_ne!(broken, text);
    std::fs::write(&tests, broken).expect("write");
    let status = Command::new("promtool")
        .args(["test", "rules", TESTS_FILE])
        .current_dir(out.path())
        .output()
        .expect("promtool");
    assert!(!status.status.success());
}

/// Every alert has its firing and its quiet group in the test file.
#[test]
fn every_alert_is_tested_firing_and_quiet() {
    for (name, inv) in inventories() {
        let out = tempfile::tempdir().expect("tempdir");
        generate(&inv, &Options::default(), out.path()).expect("generate");
        let tests: serde_norway::Value = serde_norway::from_str(
            &std::fs::read_to_string(out.path().join(TESTS_FILE)).expect("tests"),
        )
        .expect("yaml");
        let groups: Vec<&str> = tests["tests"]
            .as_sequence()
            .expect("tests")
            .iter()
            .map(|g| g["name"].as_str().expect("name"))
            .collect();
        let (etcd, cairn) = cairn_rules::alerts(&inv, &Options::default());
        for a in etcd.iter().chain(&cairn) {
            for outcome in ["fires", "does not fire"] {
                let group = format!("{} ({}) {outcome}", a.name, a.severity.as_str());
                assert!(groups.contains(&group.as_str()), "{name}: {group}");
            }
        }
        assert_eq!(groups.len(), 2 * (etcd.len() + cairn.len()), "{name}");
    }
}
