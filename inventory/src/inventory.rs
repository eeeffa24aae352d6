//! The checked inventory and what tools ask of it (endpoints, URLs, initial cluster).

use crate::validate::Checker;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::model::{
    self, Alerts, Auth, AuthUser, Backup, Cluster, Inspection, Ssh, Tls, Transport,
};
use crate::{paths, Error, Host, Location, Warning};

/// The inventory file name tools look for in the current directory.
pub const DEFAULT_FILE: &str = "cairn.toml";

/// A checked inventory. Local paths (`binary`, `identity_file`, `known_hosts`, TLS and backup
/// directories) are resolved: `~` expanded, relative ones joined to the file's directory.
#[derive(Clone, Debug)]
pub struct Inventory {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[cluster]`.
    pub cluster: Cluster,
    /// `[ssh]`.
    pub ssh: Ssh,
    /// `[tls]`, when the cluster uses TLS.
    pub tls: Option<Tls>,
    /// `[[hosts]]`, in file order.
    pub hosts: Vec<Host>,
    /// `[alerts]`.
    pub alerts: Alerts,
    /// `[backup]`, when backups are configured.
    pub backup: Option<Backup>,
    /// `[inspection]`.
    pub inspection: Inspection,
    /// `[auth]`, when the inventory manages etcd's auth.
    pub auth: Option<Auth>,
    /// The schedules, parsed.
    pub schedule: Schedule,
    warnings: Vec<Warning>,
    source: String,
}

/// The inventory's durations, parsed, with the alerting defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The longest time between two runs of `[backup] schedule` (an hour without `[backup]`).
    pub backup_interval: Duration,
    /// `[inspection] interval`.
    pub inspection_interval: Duration,
    /// `[alerts] backup_stale_after`, or two backup intervals.
    pub backup_stale_after: Duration,
    /// `[alerts] inspection_stale_after`, or three inspection intervals.
    pub inspection_stale_after: Duration,
    /// `[inspection] hot_prefix_window`.
    pub hot_prefix_window: Duration,
}

impl Inventory {
    /// Reads and checks the inventory at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let source = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, source)
    }

    /// Checks `source` as if read from `path` (relative paths resolve against its directory).
    pub fn parse(path: &Path, source: String) -> Result<Self, Error> {
        let checker = Checker {
            path,
            source: &source,
        };
        let file: model::File = toml::from_str(&source).map_err(|source_err| Error::Syntax {
            at: Location::of_span(path, &source, source_err.span()),
            message: source_err.message().trim_end().to_string(),
            parse: Box::new(source_err),
        })?;
        let warnings = checker.file(&file)?;
        let backup_interval = match &file.backup {
            Some(b) => checker.backup_interval(&b.schedule, b.timezone.as_deref())?,
            None => Duration::from_secs(3600),
        };
        let inspection_interval = checker.duration(
            &["inspection", "interval"],
            "interval",
            &file.inspection.interval,
        )?;
        let hot_prefix_window = checker.duration(
            &["inspection", "hot_prefix_window"],
            "hot_prefix_window",
            &file.inspection.hot_prefix_window,
        )?;
        let backup_stale_after = match &file.alerts.backup_stale_after {
            Some(d) => {
                checker.duration(&["alerts", "backup_stale_after"], "backup_stale_after", d)?
            }
            None => backup_interval * 2,
        };
        let inspection_stale_after = match &file.alerts.inspection_stale_after {
            Some(d) => checker.duration(
                &["alerts", "inspection_stale_after"],
                "inspection_stale_after",
                d,
            )?,
            None => inspection_interval * 3,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Absolute, so a resolved path means the same file from any working directory and in
        // any file written elsewhere (a prometheus.yml in another directory, a unit).
        let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        let model::File {
            mut cluster,
            mut ssh,
            mut tls,
            hosts,
            mut alerts,
            mut backup,
            mut inspection,
            mut auth,
        } = file;
        cluster.binary = paths::resolve(dir, &cluster.binary);
        let mut hosts = hosts;
        if cluster.transport == Transport::Local {
            // The members run here: their directories are local paths like the others.
            cluster.data_dir = paths::resolve(dir, &cluster.data_dir);
            for h in &mut hosts {
                h.data_dir = h.data_dir.as_deref().map(|p| paths::resolve(dir, p));
            }
        }
        ssh.identity_file = ssh.identity_file.as_deref().map(|p| paths::resolve(dir, p));
        ssh.passphrase_file = ssh
            .passphrase_file
            .as_deref()
            .map(|p| paths::resolve(dir, p));
        ssh.known_hosts = paths::resolve(dir, &ssh.known_hosts);
        ssh.config = paths::resolve(dir, &ssh.config);
        if let Some(tls) = &mut tls {
            tls.dir = paths::resolve(dir, &tls.dir);
            tls.ca_cert = tls.ca_cert.as_deref().map(|p| paths::resolve(dir, p));
            tls.ca_key = tls.ca_key.as_deref().map(|p| paths::resolve(dir, p));
        }
        alerts.prometheus_tls_dir = alerts
            .prometheus_tls_dir
            .as_deref()
            .map(|p| paths::resolve(dir, p));
        if let Some(backup) = &mut backup {
            if let Some(path) = backup.store.strip_prefix("file://") {
                backup.store = format!("file://{}", paths::resolve(dir, Path::new(path)).display());
            }
            backup.encryption_key_file = backup
                .encryption_key_file
                .as_deref()
                .map(|p| paths::resolve(dir, p));
            backup.environment_file = backup
                .environment_file
                .as_deref()
                .map(|p| paths::resolve(dir, p));
        }
        inspection.state_file = inspection
            .state_file
            .as_deref()
            .map(|p| paths::resolve(dir, p));
        if let Some(auth) = &mut auth {
            auth.root_password_file = auth
                .root_password_file
                .as_deref()
                .map(|p| paths::resolve(dir, p));
            for u in &mut auth.users {
                u.password_file = u.password_file.as_deref().map(|p| paths::resolve(dir, p));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            cluster,
            ssh,
            tls,
            hosts,
            alerts,
            backup,
            inspection,
            auth,
            schedule: Schedule {
                backup_interval,
                inspection_interval,
                backup_stale_after,
                inspection_stale_after,
                hot_prefix_window,
            },
            warnings,
            source,
        })
    }

    /// The root login cairn's tools use on an auth-enabled cluster: root and its password
    /// from `[auth] root_password_file` or `root_password_env`. `None` without `[auth]` or a
    /// root password: the tools then rely on their client certificate's CN.
    pub fn root_login(&self) -> Result<Option<(String, String)>, Error> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let password = self.secret(
            &["auth", "root_password_file"],
            auth.root_password_file.as_deref(),
            auth.root_password_env.as_deref(),
        )?;
        Ok(password.map(|p| ("root".to_string(), p)))
    }

    /// The password of `[[auth.users]]` entry `user`, from its file or variable; `None`: the
    /// user has no password.
    pub fn user_password(&self, user: &AuthUser) -> Result<Option<String>, Error> {
        self.secret(
            &["auth", "users"],
            user.password_file.as_deref(),
            user.password_env.as_deref(),
        )
    }

    /// A secret from `file` (its first line), else from the variable `env`.
    fn secret(
        &self,
        key_path: &[&str],
        file: Option<&Path>,
        env: Option<&str>,
    ) -> Result<Option<String>, Error> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::MissingFile {
                at: Location::of_key(&self.path, &self.source, key_path),
                key: "password file",
                path: path.to_path_buf(),
                source,
            })?;
            return Ok(Some(text.lines().next().unwrap_or_default().to_string()));
        }
        match env {
            Some(var) => match std::env::var(var) {
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(Error::MissingVariable {
                    at: Location::of_key(&self.path, &self.source, key_path),
                    var: var.to_string(),
                }),
            },
            None => Ok(None),
        }
    }

    /// The member whose host runs the backup daemon: `[backup] host`, else the first host;
    /// `None` without `[backup]`.
    pub fn backup_host(&self) -> Option<&Host> {
        let backup = self.backup.as_ref()?;
        match &backup.host {
            Some(name) => self.hosts.iter().find(|h| &h.name == name),
            None => self.hosts.first(),
        }
    }

    /// Legal but risky findings (a single member, an even member count), for the binary to
    /// print.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The local files that provisioning needs: the server binary, the SSH key (not for
    /// `transport = "local"`) and, when set, the operator's CA and the backup key and
    /// environment files. Separate from [`Inventory::load`] because tools that only read the
    /// cluster's shape (alert rules, dashboards) run where these files are not.
    pub fn check_local_files(&self) -> Result<(), Error> {
        let mut files = vec![(
            ["cluster", "binary"],
            "binary",
            self.cluster.binary.as_path(),
        )];
        if self.cluster.transport == Transport::Ssh {
            // Unset, the key may come from the agent or ~/.ssh/config: the connection says
            // when there is none at all.
            files.extend(
                self.ssh
                    .identity_file
                    .as_deref()
                    .map(|p| (["ssh", "identity_file"], "identity_file", p)),
            );
            files.extend(
                self.ssh
                    .passphrase_file
                    .as_deref()
                    .map(|p| (["ssh", "passphrase_file"], "passphrase_file", p)),
            );
        }
        if let Some(backup) = &self.backup {
            files.extend(
                backup
                    .encryption_key_file
                    .as_deref()
                    .map(|p| (["backup", "encryption_key_file"], "encryption_key_file", p)),
            );
            files.extend(
                backup
                    .environment_file
                    .as_deref()
                    .map(|p| (["backup", "environment_file"], "environment_file", p)),
            );
        }
        if let Some(tls) = &self.tls {
            files.extend(
                tls.ca_cert
                    .as_deref()
                    .map(|p| (["tls", "ca_cert"], "ca_cert", p)),
            );
            files.extend(
                tls.ca_key
                    .as_deref()
                    .map(|p| (["tls", "ca_key"], "ca_key", p)),
            );
        }
        for (key_path, key, path) in files {
            let problem = match std::fs::metadata(path) {
                Ok(m) if m.is_file() => continue,
                Ok(_) => std::io::Error::other("not a regular file"),
                Err(e) => e,
            };
            return Err(Error::MissingFile {
                at: Location::of_key(&self.path, &self.source, &key_path),
                key,
                path: path.to_path_buf(),
                source: problem,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cron_expression, Compression, ServerKind};

    const MINIMAL: &str = "[cluster]\nname = \"main\"\nbinary = \"bin/cairn-server\"\ntoken = \"main-1\"\n\n[[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n";

    #[test]
    fn auth_passwords_come_from_files_or_the_environment_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pw"), "s3cret\nignored\n").unwrap();
        let path = dir.path().join("cairn.toml");
        let text = format!(
            "{MINIMAL}[auth]\nroot_password_file = \"root.pw\"\n\n[[auth.roles]]\nname = \"app\"\npermissions = [{{ access = \"read\", key = \"/a/\", prefix = true }}]\n\n[[auth.users]]\nname = \"u\"\npassword_env = \"CAIRN_TEST_UNSET_PASSWORD\"\nroles = [\"app\"]\n"
        );
        let inv = Inventory::parse(&path, text.clone()).expect("valid");
        assert_eq!(
            inv.root_login().unwrap(),
            Some(("root".to_string(), "s3cret".to_string()))
        );
        let auth = inv.auth.as_ref().unwrap();
        assert_eq!(auth.roles[0].permissions[0].etcd_range_end(), b"/a0");
        let err = inv.user_password(&auth.users[0]).unwrap_err().to_string();
        assert!(
            err.contains("CAIRN_TEST_UNSET_PASSWORD is not set"),
            "{err}"
        );

        // No TLS and no root password: the tools could not log in.
        let err = Inventory::parse(&path, format!("{MINIMAL}[auth]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("root_password_env"), "{err}");
        // A user holding a role nobody declared.
        let bad = text.replace("roles = [\"app\"]", "roles = [\"ghost\"]");
        let err = Inventory::parse(&path, bad).unwrap_err().to_string();
        assert!(err.contains("ghost"), "{err}");
    }

    #[test]
    fn defaults_fill_everything_but_the_cluster_identity() {
        let inv =
            Inventory::parse(Path::new("/etc/cairn/cairn.toml"), MINIMAL.into()).expect("valid");
        let c = &inv.cluster;
        assert_eq!(
            (c.server, c.client_port, c.peer_port, c.metrics_port),
            (ServerKind::Cairn, 2379, 2380, None)
        );
        assert_eq!(c.binary, Path::new("/etc/cairn/bin/cairn-server"));
        assert_eq!(c.data_dir, Path::new("/var/lib/cairn"));
        assert_eq!(
            (c.heartbeat_interval_ms, c.election_timeout_ms),
            (100, 1000)
        );
        assert_eq!((inv.ssh.user.as_deref(), inv.ssh.port), (None, None));
        assert_eq!(
            (inv.ssh.identity_file.as_deref(), inv.ssh.agent),
            (None, true)
        );
        assert!(inv.ssh.config.ends_with(".ssh/config") && inv.ssh.config.is_absolute());
        assert!(inv.tls.is_none());
        let a = &inv.alerts;
        assert_eq!(
            (
                a.job.as_str(),
                a.cairn_job.as_str(),
                a.cluster_label.as_str()
            ),
            ("etcd", "cairn", "cluster")
        );
        assert_eq!(
            (
                a.fsync_p99_warning_seconds,
                a.fsync_p99_critical_seconds,
                a.commit_p99_seconds
            ),
            (0.5, 1.0, 0.25)
        );
        assert_eq!(
            (
                a.failed_grpc_warning_percent,
                a.failed_grpc_critical_percent
            ),
            (1.0, 5.0)
        );
        assert_eq!(
            (
                a.grpc_p99_seconds,
                a.peer_rtt_p99_seconds,
                a.leader_changes_per_15m
            ),
            (0.15, 0.15, 4)
        );
        assert_eq!(
            (
                a.quota_used_percent,
                a.fragmentation_ratio,
                a.fragmentation_min_bytes
            ),
            (95.0, 0.5, 104_857_600)
        );
        assert_eq!(
            (a.cert_expiry_warning_days, a.cert_expiry_critical_days),
            (30.0, 7.0)
        );
        assert!(inv.backup.is_none());
        assert_eq!(
            inv.schedule,
            Schedule {
                backup_interval: Duration::from_secs(3600),
                inspection_interval: Duration::from_secs(900),
                backup_stale_after: Duration::from_secs(7200),
                inspection_stale_after: Duration::from_secs(2700),
                hot_prefix_window: Duration::from_secs(10),
            }
        );
    }

    #[test]
    fn a_daily_schedule_across_daylight_saving_allows_the_long_day() {
        let inv = Inventory::parse(
            Path::new("/etc/cairn/cairn.toml"),
            format!(
                "{MINIMAL}[backup]\nstore = \"s3://b\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\nenvironment_file = \"aws.env\"\n"
            ),
        )
        .expect("valid");
        // 02:30 does not exist on the last Sunday of March: that day has no run, and the
        // clocks went forward, so the gap is 47 hours.
        assert_eq!(inv.schedule.backup_interval, Duration::from_secs(47 * 3600));
        assert_eq!(inv.backup_host().map(|h| h.name.as_str()), Some("a"));
        let b = inv.backup.expect("backup");
        assert_eq!(
            b.environment_file.as_deref(),
            Some(Path::new("/etc/cairn/aws.env"))
        );
    }

    #[test]
    fn a_backup_table_needs_only_a_store() {
        let inv = Inventory::parse(
            Path::new("/etc/cairn/cairn.toml"),
            format!("{MINIMAL}[backup]\nstore = \"file://backups\"\nschedule = \"0 3 * * *\"\n"),
        )
        .expect("valid");
        let b = inv.backup.expect("backup");
        assert_eq!(b.store, "file:///etc/cairn/backups");
        assert_eq!(
            (b.compression, b.retention.keep_last),
            (Compression::Zstd, 24)
        );
        assert_eq!(inv.schedule.backup_interval, Duration::from_secs(86_400));
        assert_eq!(
            inv.schedule.backup_stale_after,
            Duration::from_secs(172_800)
        );
    }

    #[test]
    fn cron_expressions_get_a_seconds_field() {
        assert_eq!(cron_expression("*/5 * * * *"), "0 */5 * * * *");
        assert_eq!(cron_expression("@hourly"), "@hourly");
        assert_eq!(cron_expression("30 0 * * * *"), "30 0 * * * *");
    }

    #[test]
    fn a_tls_table_alone_means_the_default_pki_dir() {
        let inv = Inventory::parse(Path::new("x/cairn.toml"), format!("{MINIMAL}[tls]\n"))
            .expect("valid");
        let tls = inv.tls.expect("tls");
        // Resolved against the inventory's directory, made absolute.
        let want = std::env::current_dir().expect("cwd").join("x/pki");
        assert_eq!(
            (tls.dir.as_path(), tls.renew_before_days),
            (want.as_path(), 30)
        );
    }

    /// `cairn up -i cairn.toml` with a `[tls] dir` that does not exist yet: it is made next
    /// to the inventory (it was once made at the filesystem root).
    #[test]
    fn a_bare_inventory_file_name_puts_a_missing_tls_dir_beside_it() {
        let text = format!("{MINIMAL}[tls]\ndir = \"missing/pki\"\n");
        let inv = Inventory::parse(Path::new("cairn.toml"), text).expect("valid");
        let want = std::env::current_dir().expect("cwd").join("missing/pki");
        assert_eq!(inv.tls.expect("tls").dir, want);
    }

    #[test]
    fn unknown_keys_are_syntax_errors_at_their_line() {
        let text = MINIMAL.replace("token", "tokn");
        let err = Inventory::parse(Path::new("c.toml"), text).expect_err("unknown key");
        let Error::Syntax { at, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((at.line, at.column), (4, 1));
        let msg = err.to_string();
        assert!(
            msg.starts_with("c.toml:4:1: unknown field `tokn`, expected one of"),
            "{msg}"
        );
        assert!(
            msg.ends_with("; fix it there (examples/full.toml shows every option and its type)"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_types_and_bad_toml_are_syntax_errors_at_their_line() {
        let err = Inventory::parse(Path::new("c.toml"), MINIMAL.replace("\"10.0.0.1\"", "10"))
            .expect_err("type");
        assert!(
            err.to_string()
                .starts_with("c.toml:8:11: invalid type: integer `10`, expected a string"),
            "{err}"
        );
        let err =
            Inventory::parse(Path::new("c.toml"), format!("{MINIMAL}[alerts\n")).expect_err("toml");
        assert!(err.to_string().starts_with("c.toml:9:"), "{err}");
    }

    #[test]
    fn a_missing_required_key_names_it() {
        let err = Inventory::parse(
            Path::new("c.toml"),
            MINIMAL.replace("token = \"main-1\"\n", ""),
        )
        .expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("c.toml:1:1: missing field `token`"),
            "{err}"
        );
    }

    #[test]
    fn an_unreadable_file_names_it() {
        let err = Inventory::load(Path::new("/nonexistent/cairn.toml")).expect_err("missing");
        assert!(matches!(err, Error::Read { .. }));
        assert_eq!(
            err.to_string(),
            "/nonexistent/cairn.toml: cannot read the inventory (give another file with -i FILE)"
        );
        let cause = std::error::Error::source(&err).expect("the cause");
        assert!(
            cause.to_string().starts_with("No such file or directory"),
            "{cause}"
        );
    }

    #[test]
    fn local_files_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cairn.toml");
        let text = format!("{MINIMAL}[ssh]\nidentity_file = \"id\"\n");
        let inv = Inventory::parse(&path, text).expect("valid");
        let err = inv.check_local_files().expect_err("no binary");
        let Error::MissingFile { at, key, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((at.line, at.column, *key), (3, 10, "binary"));
        let bin = dir.path().join("bin/cairn-server");
        assert!(
            err.to_string().starts_with(&format!(
                "{}:3:10: binary {}: cannot read it",
                path.display(),
                bin.display()
            )),
            "{err}"
        );
        let cause = std::error::Error::source(&err).expect("the cause");
        assert!(
            cause.to_string().starts_with("No such file or directory"),
            "{cause}"
        );
        assert!(
            err.to_string().ends_with(
                "relative paths are against the inventory's directory, ~ is the home directory)"
            ),
            "{err}"
        );
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        std::fs::write(&bin, "").expect("binary");
        let err = inv.check_local_files().expect_err("no identity");
        assert_eq!(
            err.to_string().split(": ").next(),
            Some(format!("{}:10:17", path.display()).as_str())
        );
        std::fs::write(dir.path().join("id"), "").expect("identity");
        inv.check_local_files().expect("all files there");
    }
}
