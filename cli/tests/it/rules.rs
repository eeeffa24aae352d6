//! `cairn rules` on the example inventories: the files appear and promtool accepts them;
//! inventory errors are one line with the file position.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::BIN;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn promtool(args: &[&str], dir: &Path) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool (Debian: apt-get install prometheus)");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_writes_files_promtool_accepts() {
    for name in ["cairn.toml", "five-members-etcd.toml"] {
        let out = tempfile::tempdir().expect("tempdir");
        let dir = out.path().join("rules");
        let run = Command::new(BIN)
            .args(["rules", "-i"])
            .arg(example(name))
            .arg("--out")
            .arg(&dir)
            .output()
            .expect("run cairn");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let listed: Vec<PathBuf> = String::from_utf8_lossy(&run.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        let expected = [
            "cairn-rules.yml",
            "cairn-rules.test.yml",
            "prometheus.yml",
            "grafana-dashboard.json",
        ]
        .map(|f| dir.join(f));
        assert_eq!(listed, expected);
        for file in &expected {
            assert!(std::fs::metadata(file).expect("generated").len() > 0);
        }
        promtool(&["check", "rules", "cairn-rules.yml"], &dir);
        promtool(&["test", "rules", "cairn-rules.test.yml"], &dir);
    }
}

#[test]
fn the_inventory_defaults_to_cairn_toml_in_the_current_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(example("cairn.toml"), dir.path().join("cairn.toml")).expect("copy");
    let run = Command::new(BIN)
        .args(["rules", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .expect("run cairn");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(dir.path().join("out/cairn-rules.yml").is_file());
}

#[test]
fn an_invalid_inventory_is_one_line_with_its_position_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(example("cairn.toml"))
        .expect("example")
        .replace("10.0.0.126", "10.0.0.124");
    std::fs::write(dir.path().join("cairn.toml"), text).expect("write");
    let run = Command::new(BIN)
        .args(["rules", "-i", "cairn.toml", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .expect("run cairn");
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(
        err.trim_end(),
        "cairn: cairn.toml:17:11: address \"10.0.0.124\" is already used at line 9; each member needs its own host"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn a_missing_inventory_says_how_to_name_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = Command::new(BIN)
        .args(["rules", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .expect("run cairn");
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        err.trim_end(),
        "cairn: cairn.toml: cannot read the inventory (give another file with -i FILE): No such file or directory (os error 2)"
    );
}

#[test]
fn inventory_warnings_go_to_stderr_and_the_files_are_still_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(example("cairn.toml")).expect("example")
        + "\n[[hosts]]\nname = \"etcd4\"\naddress = \"10.0.0.127\"\n";
    std::fs::write(dir.path().join("cairn.toml"), text).expect("write");
    let run = Command::new(BIN)
        .args(["rules", "--out", "out"])
        .current_dir(dir.path())
        .output()
        .expect("run cairn");
    assert!(run.status.success());
    assert_eq!(
        String::from_utf8_lossy(&run.stderr).trim_end(),
        "cairn: warning: cairn.toml:20:8: 4 members tolerate no more failures than 3 do; add or remove one host"
    );
    assert!(dir.path().join("out/prometheus.yml").is_file());
}

/// An inventory named by a relative path, files written to another directory: the
/// `prometheus.yml` there still names the TLS files where they are (its paths were relative
/// to the inventory's directory, and promtool, like Prometheus, resolved them against the
/// output directory).
#[test]
fn prometheus_yml_names_the_tls_files_wherever_it_is_written() {
    let root = tempfile::tempdir().expect("tempdir");
    let cluster = root.path().join("cluster");
    let pki = cluster.join("pki");
    std::fs::create_dir_all(&pki).expect("pki dir");
    // Metrics on the client port, so Prometheus scrapes them with the client certificate.
    std::fs::write(
        cluster.join("cairn.toml"),
        "[cluster]\nname = \"c\"\nbinary = \"etcd\"\ntoken = \"t-1\"\n\n\
         [tls]\ndir = \"pki\"\n\n\
         [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n",
    )
    .expect("inventory");
    for file in ["ca.pem", "prometheus.pem", "prometheus-key.pem"] {
        std::fs::write(pki.join(file), "").expect("tls file");
    }
    let out = root.path().join("monitoring");
    let run = Command::new(BIN)
        .args(["rules", "-i", "cairn.toml", "--out"])
        .arg(&out)
        .current_dir(&cluster)
        .output()
        .expect("run cairn");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let config = std::fs::read_to_string(out.join("prometheus.yml")).expect("prometheus.yml");
    assert!(
        config.contains(&pki.join("ca.pem").display().to_string()),
        "{config}"
    );
    promtool(&["check", "config", "prometheus.yml"], &out);
}
