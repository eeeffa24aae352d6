//! The env files and units compared with the copies under `tests/golden/<inventory>/`; run
//! with `UPDATE_GOLDEN=1` to rewrite the copies after an intended change, then review the diff.

use std::path::PathBuf;

use cairn_provisioner::render;

use crate::inventories;

#[test]
fn rendered_files_match_the_golden_copies() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (name, inv) in inventories() {
        let dir = root.join(&name);
        for host in &inv.hosts {
            let files = [
                (
                    format!("{}.env", host.name),
                    render::env_file(&inv, host, &render::Bootstrap::new_cluster(&inv)),
                ),
                (
                    format!("{}.service", host.name),
                    render::unit_file(&inv, host),
                ),
            ];
            for (file, text) in files {
                let path = dir.join(file);
                compared += 1;
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
    }
    assert!(compared >= 20, "only {compared} files rendered");
    assert!(
        mismatches.is_empty(),
        "{mismatches:#?}\nif the change is intended: UPDATE_GOLDEN=1 cargo test -p cairn-provisioner --test it golden, then review git diff"
    );
}
