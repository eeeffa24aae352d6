//! Generated files for the example inventories and other shapes, checked by the real
//! promtool, against golden copies, and against the runbooks.

mod golden;
mod live;
mod promtool;
mod runbooks;

use std::path::PathBuf;

use cairn_inventory::Inventory;

/// Every `.toml` in `dir` (relative to this crate), sorted.
fn toml_files(dir: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .canonicalize()
        .expect("inventory dir");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// The checkout's root, as resolved paths in generated files start with it.
pub(crate) fn checkout() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("checkout")
}

/// The inventories under test: every example, and this crate's own shapes.
pub(crate) fn inventories() -> Vec<(String, Inventory)> {
    let files: Vec<PathBuf> = toml_files("../examples")
        .into_iter()
        .chain(toml_files("tests/inventories"))
        .collect();
    assert!(files.len() >= 5, "{files:?}");
    files
        .into_iter()
        .map(|f| {
            let stem = f.file_stem().expect("stem").to_string_lossy().into_owned();
            (stem, Inventory::load(&f).unwrap_or_else(|e| panic!("{e}")))
        })
        .collect()
}
