//! Every rendered unit through `systemd-analyze verify`, which also checks that ExecStart is
//! an executable: it runs in a mount namespace whose /usr/local/bin holds stand-ins for the
//! pushed binaries. Any output counts as a failure (the tool exits 0 on unknown keys).

use std::process::Command;
use std::time::Duration;

use cairn_provisioner::render;

use crate::inventories;

#[test]
fn systemd_analyze_verify_accepts_every_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    for name in ["cairn-server", "etcd", "cairn"] {
        std::fs::copy("/bin/true", bin.join(name)).expect("stand-in binary");
    }
    let mut verified = 0;
    for (name, inv) in inventories() {
        for host in &inv.hosts {
            let unit = dir
                .path()
                .join(format!("{name}-{}", host.name))
                .join("cairn.service");
            std::fs::create_dir_all(unit.parent().expect("parent")).expect("unit dir");
            std::fs::write(&unit, render::unit_file(&inv, host)).expect("write unit");
            let mut units = vec![unit];
            if inv.backup_host().map(|h| &h.name) == Some(&host.name) {
                let daemon = dir
                    .path()
                    .join(format!("{name}-{}", host.name))
                    .join("cairn-backupd.service");
                std::fs::write(&daemon, render::backupd_unit(&inv)).expect("write unit");
                units.push(daemon);
            }
            for unit in units {
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount --bind "$1" /usr/local/bin && exec systemd-analyze verify "$2""#)
                    .arg("sh")
                    .arg(&bin)
                    .arg(&unit);
                let out = cairn_testkit::run_command(cmd, Duration::from_secs(60)).expect("verify");
                assert!(
                    out.success() && out.stderr.is_empty() && out.stdout.is_empty(),
                    "{}: exit {}\n{}{}",
                    unit.display(),
                    out.code,
                    out.stdout,
                    out.stderr
                );
                verified += 1;
            }
        }
    }
    assert!(verified >= 10, "only {verified} units verified");
}
