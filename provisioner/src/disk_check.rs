//! `cairn check disk` on every host of the inventory: the operator's own `cairn` binary is
//! pushed to each host (through the inventory's transport: over SSH with host keys checked as
//! `cairn provision` checks them, or into a local member's directory), run there as `cairn check disk DIR --output json`, and its
//! report read back. Hosts are checked in parallel with a bound; a host that cannot be reached
//! or checked is reported by name and does not stop the others.
//!
//! The binary stays at [`REMOTE_BINARY`], like the server binary the provisioner pushes: a
//! later check (or an operator on the host) finds it there, and it is uploaded again only when
//! its SHA-256 differs from the local one.

use std::path::Path;

use cairn_bench::disk::DiskReport;
use cairn_inventory::Inventory;
use futures::StreamExt;
use serde::ser::SerializeStruct;
use serde::Serialize;

use crate::desired::{Blob, OWNER};
use crate::host::{Host, WriteFile};
use crate::ssh::Timeouts;
use crate::transport::Connector;
use crate::Error;
use cairn_pki::local_file;

/// Where the `cairn` binary is put on each host.
pub const REMOTE_BINARY: &str = "/usr/local/bin/cairn";

/// What to check and how to reach the hosts.
#[derive(Clone, Debug)]
pub struct Options {
    /// The directory to check on every host; by default each host's data dir when it
    /// exists there, else its parent (before provisioning, the data dir's disk is the one
    /// its parent is on).
    pub dir: Option<String>,
    /// MiB written on each host.
    pub size_mib: u64,
    /// Record host keys of hosts known_hosts does not list yet.
    pub accept_new_host_keys: bool,
    /// Hosts checked at once.
    pub parallel: usize,
    /// SSH time limits (the command limit covers the upload and the check).
    pub timeouts: Timeouts,
}

/// One host's outcome.
#[derive(Debug)]
pub struct HostDisk {
    /// Member name.
    pub host: String,
    /// Its report, or why there is none.
    pub result: Result<DiskReport, Error>,
}

impl Serialize for HostDisk {
    /// `{"host", "report"}`, or `{"host", "error"}` with the error's text.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("HostDisk", 2)?;
        s.serialize_field("host", &self.host)?;
        match &self.result {
            Ok(report) => s.serialize_field("report", report)?,
            Err(e) => s.serialize_field("error", &cairn_client::chain(e))?,
        }
        s.end()
    }
}

/// Checks every host of the inventory, in inventory order. Errors that concern the whole run
/// (the local binary or the SSH key unreadable) are returned; a host's own failure is in its
/// [`HostDisk`].
pub async fn check_all(
    inventory: &Inventory,
    cairn: &Path,
    options: &Options,
) -> Result<Vec<HostDisk>, Error> {
    let binary = Blob::new(local_file::read(cairn)?);
    let connector = Connector::new(inventory, options.accept_new_host_keys, options.timeouts)?;
    let results = futures::stream::iter(inventory.hosts.iter().map(|h| {
        let (connector, binary) = (&connector, &binary);
        async move {
            let result = async {
                let host = connector.connect(connector.login(inventory, h)?).await?;
                let data_dir = inventory.data_dir(h).display().to_string();
                let result = check_host(&host, binary, options, &data_dir).await;
                host.close().await;
                result
            }
            .await;
            HostDisk {
                host: h.name.clone(),
                result,
            }
        }
    }))
    .buffered(options.parallel.max(1))
    .collect()
    .await;
    Ok(results)
}

/// Pushes the binary unless the host has it, runs the check and reads its report.
async fn check_host<H: Host>(
    host: &H,
    binary: &Blob,
    options: &Options,
    data_dir: &str,
) -> Result<DiskReport, Error> {
    if host.file_sha256(REMOTE_BINARY).await?.as_deref() != Some(binary.sha256.as_str()) {
        host.write_file(WriteFile {
            path: REMOTE_BINARY,
            contents: &binary.bytes,
            mode: 0o755,
            owner: OWNER,
        })
        .await?;
    }
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => default_dir(host, data_dir).await?,
    };
    let size = options.size_mib.to_string();
    let argv = [
        REMOTE_BINARY,
        "check",
        "disk",
        &dir,
        "--size-mib",
        &size,
        "--output",
        "json",
    ];
    let command = argv.join(" ");
    let out = host.run(&argv).await?;
    // 0: passed, 1: failed; both print the report. 2: the check could not run.
    if !matches!(out.code, Some(0 | 1)) {
        return Err(Error::Command {
            host: host.name().to_string(),
            command,
            code: out.code.map_or(-1, |c| i32::try_from(c).unwrap_or(-1)),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    serde_json::from_slice(&out.stdout).map_err(|source| Error::Report {
        host: host.name().to_string(),
        command,
        source,
    })
}

/// The data dir when it is a directory on the host, else its parent.
async fn default_dir<H: Host>(host: &H, data_dir: &str) -> Result<String, Error> {
    let exists = host.run(&["test", "-d", data_dir]).await?.code == Some(0);
    if exists {
        return Ok(data_dir.to_string());
    }
    Ok(Path::new(data_dir)
        .parent()
        .map_or_else(|| "/".to_string(), |p| p.display().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::{Event, Fake};
    use crate::host::Exec;

    fn options() -> Options {
        Options {
            dir: None,
            size_mib: 1,
            accept_new_host_keys: false,
            parallel: 2,
            timeouts: Timeouts::default(),
        }
    }

    const REPORT: &str = r#"{"dir":"/var/lib/cairn","writes":455,"block_size":2300,
        "fdatasync_ms":{"p50":0.5,"p90":0.8,"p99":1.2,"p999":2.0,"max":3.5},
        "threshold_ms":10.0,"passed":true}"#;

    #[tokio::test]
    async fn the_binary_is_pushed_once_and_the_report_read_back() {
        let fake = Fake::new(&["m1"], 0);
        {
            let mut world = fake.world();
            let m = world.machines.get_mut("m1").expect("m1");
            m.dirs.push("/var/lib/cairn".into());
            m.exec_reply = Exec {
                code: Some(0),
                stdout: REPORT.as_bytes().to_vec(),
                stderr: Vec::new(),
            };
        }
        let host = fake.host("m1");
        let binary = Blob::new(b"cairn binary".to_vec());
        for _ in 0..2 {
            let report = check_host(&host, &binary, &options(), "/var/lib/cairn")
                .await
                .expect("report");
            assert_eq!(report.writes, 455);
            assert_eq!(report.fdatasync_ms.p99, 1.2);
        }
        let world = fake.world();
        let writes: Vec<&Event> = world
            .events
            .iter()
            .filter(|e| matches!(e, Event::Write(..)))
            .collect();
        assert_eq!(
            writes,
            [&Event::Write("m1".into(), REMOTE_BINARY.into())],
            "pushed once"
        );
        let runs: Vec<&Vec<String>> = world
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Run(_, argv) if argv[0] == REMOTE_BINARY => Some(argv),
                _ => None,
            })
            .collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(
            runs[0].join(" "),
            "/usr/local/bin/cairn check disk /var/lib/cairn --size-mib 1 --output json"
        );
        assert_eq!(world.machines["m1"].files[REMOTE_BINARY].1, 0o755);
    }

    #[tokio::test]
    async fn a_missing_data_dir_checks_its_parent_and_a_failed_run_names_the_host() {
        let fake = Fake::new(&["m2"], 0);
        fake.world().machines.get_mut("m2").expect("m2").exec_reply = Exec {
            code: Some(2),
            stdout: Vec::new(),
            stderr: b"cairn: /var/lib/.cairn-disk-check-7: Read-only file system\n".to_vec(),
        };
        let host = fake.host("m2");
        let binary = Blob::new(b"cairn binary".to_vec());
        let err = check_host(&host, &binary, &options(), "/var/lib/cairn")
            .await
            .expect_err("exit 2");
        assert_eq!(
            err.to_string(),
            "m2: `/usr/local/bin/cairn check disk /var/lib --size-mib 1 --output json` failed with exit code 2: cairn: /var/lib/.cairn-disk-check-7: Read-only file system"
        );
        fake.world().machines.get_mut("m2").expect("m2").exec_reply = Exec {
            code: Some(1),
            stdout: b"not json".to_vec(),
            stderr: Vec::new(),
        };
        let err = check_host(&host, &binary, &options(), "/var/lib/cairn")
            .await
            .expect_err("garbage");
        assert!(
            matches!(err, Error::Report { ref host, .. } if host == "m2"),
            "{err}"
        );
    }

    #[test]
    fn json_has_a_report_or_an_error_per_host() {
        let rows = [
            HostDisk {
                host: "m1".into(),
                result: Ok(serde_json::from_str(REPORT).expect("report")),
            },
            HostDisk {
                host: "m2".into(),
                result: Err(Error::UnknownHost {
                    name: "x".into(),
                    known: "m1".into(),
                }),
            },
        ];
        let json = serde_json::to_value(&rows).expect("json");
        assert_eq!(json[0]["host"], "m1");
        assert_eq!(json[0]["report"]["writes"], 455);
        assert!(json[0].get("error").is_none());
        assert_eq!(json[1]["host"], "m2");
        assert!(json[1]["error"]
            .as_str()
            .expect("error")
            .contains("--limit x"));
    }
}
