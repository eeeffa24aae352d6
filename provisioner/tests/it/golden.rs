//! The env files (and one joining member's), units and the backup daemon's unit and inventory
//! compared with the copies under
//! `tests/golden/<inventory>/`; run with `UPDATE_GOLDEN=1` to rewrite the copies after an
//! intended change, then review the diff.

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
        // `cairn up` runs those members here; `cairn provision` refuses them.
        if inv.cluster.transport == cairn_inventory::Transport::Local {
            continue;
        }
        let dir = root.join(&name);
        // The last host also as it joins the running cluster of the others (MemberAdd, then
        // `existing` with every member listed).
        let peers: Vec<(String, String)> = inv
            .hosts
            .iter()
            .map(|h| (h.name.clone(), inv.peer_url(h)))
            .collect();
        let join = render::Bootstrap::join(peers.iter().map(|(n, u)| (n.as_str(), u.as_str())));
        for (i, host) in inv.hosts.iter().enumerate() {
            let mut files = vec![
                (
                    format!("{}.env", host.name),
                    render::env_file(&inv, host, &render::Bootstrap::new_cluster(&inv)),
                ),
                (
                    format!("{}.service", host.name),
                    render::unit_file(&inv, host),
                ),
            ];
            if i + 1 == inv.hosts.len() {
                files.push((
                    format!("{}.join.env", host.name),
                    render::env_file(&inv, host, &join),
                ));
            }
            // The backup daemon's unit and inventory, on the [backup] host.
            if inv.backup_host().map(|h| &h.name) == Some(&host.name) {
                files.push(("cairn-backupd.service".into(), render::backupd_unit(&inv)));
                files.push((
                    "backupd.toml".into(),
                    render::backupd_inventory(&inv).expect("daemon inventory"),
                ));
            }
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
