//! Every file under `examples/` (found by listing the directory, so new ones are covered).

use std::path::PathBuf;

use cairn_inventory::Inventory;

/// The example inventories, sorted.
fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_parses_without_warnings() {
    let files = examples();
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let inv = Inventory::load(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            inv.warnings().is_empty(),
            "{}: {:?}",
            file.display(),
            inv.warnings()
        );
        assert!(inv.hosts.len() >= 3, "{}", file.display());
        assert_eq!(inv.endpoints().len(), inv.hosts.len());
    }
}

#[test]
fn full_example_sets_every_option() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/full.toml");
    let text = std::fs::read_to_string(&file).expect("full.toml");
    let table: toml::Table = text.parse().expect("toml");
    // Serialising the defaults lists every key the inventory knows; full.toml must show each.
    let inv = Inventory::load(&file).expect("valid");
    let mut missing = Vec::new();
    let sections: [(&str, toml::Value); 6] = [
        (
            "cluster",
            toml::Value::try_from(&inv.cluster).expect("cluster"),
        ),
        ("ssh", toml::Value::try_from(&inv.ssh).expect("ssh")),
        (
            "tls",
            toml::Value::try_from(inv.tls.as_ref().expect("tls")).expect("tls"),
        ),
        (
            "alerts",
            toml::Value::try_from(&inv.alerts).expect("alerts"),
        ),
        (
            "backup",
            toml::Value::try_from(inv.backup.as_ref().expect("backup")).expect("backup"),
        ),
        (
            "inspection",
            toml::Value::try_from(&inv.inspection).expect("inspection"),
        ),
    ];
    for (name, value) in sections {
        for key in value.as_table().expect("table").keys() {
            if table[name].get(key).is_none() {
                missing.push(format!("{name}.{key}"));
            }
        }
    }
    let host = toml::Value::try_from(&inv.hosts[0]).expect("host");
    for key in host.as_table().expect("table").keys() {
        if table["hosts"][0].get(key).is_none() {
            missing.push(format!("hosts.{key}"));
        }
    }
    assert!(missing.is_empty(), "full.toml lacks {missing:?}");
}
