//! The generated files compared with the copies under `tests/golden/<inventory>/`; run with
//! `UPDATE_GOLDEN=1` to rewrite the copies after an intended change, then review the diff.

use std::path::PathBuf;

use cairn_rules::{render, Options};

use crate::inventories;

#[test]
fn generated_files_match_the_golden_copies() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Resolved local paths (TLS directories) start with the checkout's location.
    let checkout = crate::checkout().display().to_string();
    let mut mismatches = Vec::new();
    for (name, inv) in inventories() {
        let dir = root.join("tests/golden").join(&name);
        for (file, text) in render(&inv, &Options::default()).expect("render") {
            let text = text.replace(&checkout, "$CHECKOUT");
            let path = dir.join(file);
            if update {
                std::fs::create_dir_all(&dir).expect("golden dir");
                std::fs::write(&path, &text).expect("write golden");
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(golden) if golden == text => {}
                Ok(_) => mismatches.push(format!("{} differs", path.display())),
                Err(e) => mismatches.push(format!("{}: {e}", path.display())),
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{mismatches:#?}\nif the change is intended: UPDATE_GOLDEN=1 cargo test -p cairn-rules --test it golden, then review git diff"
    );
}
