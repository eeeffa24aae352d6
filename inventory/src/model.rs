//! The file's tables as serde types. Every table refuses unknown keys, so a misspelt option is
//! an error at its line instead of a silently ignored setting.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::jump::{BadJump, Jump, SshTarget};

/// The whole `cairn.toml`, as written (paths not yet resolved, nothing checked yet).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// `[cluster]`.
    pub cluster: Cluster,
    /// `[ssh]`; how the provisioner reaches the hosts.
    #[serde(default)]
    pub ssh: Ssh,
    /// `[tls]`; absent means plain-HTTP client and peer URLs.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// `[[hosts]]`, one per member, in `--initial-cluster` order.
    #[serde(default)]
    pub hosts: Vec<Host>,
    /// `[alerts]`; the Prometheus side.
    #[serde(default)]
    pub alerts: Alerts,
    /// `[backup]`; the backups `cairn backupd` takes and the alerts watch.
    #[serde(default)]
    pub backup: Option<Backup>,
    /// `[inspection]`; the schedule and thresholds of the inspection tool.
    #[serde(default)]
    pub inspection: Inspection,
    /// `[auth]`; etcd's users and roles, and whether auth is on.
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// Which server the hosts run; both take etcd's flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// The bundled cairn-server.
    #[default]
    Cairn,
    /// An etcd binary.
    Etcd,
}

/// How the members are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Real hosts, provisioned over SSH with systemd units.
    #[default]
    Ssh,
    /// Every member on this machine, run in the foreground by `cairn up` with the same env
    /// files; each member's files live under `data_dir/<name>/`.
    Local,
}

impl Transport {
    /// The command that issues the certificates and starts the members, for hints.
    pub fn setup_command(self) -> &'static str {
        match self {
            Transport::Ssh => "cairn provision",
            Transport::Local => "cairn up",
        }
    }
}

/// `[cluster]`: what every member shares.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// Names the cluster in alerts, dashboards and backups.
    pub name: String,
    /// Which server runs on the hosts.
    #[serde(default)]
    pub server: ServerKind,
    /// How the tools reach the hosts: over SSH, or this machine's child processes (`cairn up`).
    #[serde(default)]
    pub transport: Transport,
    /// Local server binary pushed to every host (relative to this file's directory).
    pub binary: PathBuf,
    /// `--initial-cluster-token`: keeps members of different clusters apart.
    pub token: String,
    /// Client port (gRPC and HTTP: health, metrics).
    #[serde(default = "default_client_port")]
    pub client_port: u16,
    /// Peer (raft) port.
    #[serde(default = "default_peer_port")]
    pub peer_port: u16,
    /// A plain-HTTP `--listen-metrics-urls` port; without it Prometheus scrapes the client
    /// port (with a client certificate under TLS).
    #[serde(default)]
    pub metrics_port: Option<u16>,
    /// `--data-dir` on every host (a host may override it). With `transport = "local"`, the
    /// directory (relative to this file) holding each member's env file and data directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `--quota-backend-bytes`; etcd's default (2 GiB) when absent.
    #[serde(default)]
    pub quota_backend_bytes: Option<u64>,
    /// `--heartbeat-interval` in milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_interval_ms: u32,
    /// `--election-timeout` in milliseconds; etcd wants at least 5 heartbeats.
    #[serde(default = "default_election_ms")]
    pub election_timeout_ms: u32,
    /// `--auto-compaction-mode` and `--auto-compaction-retention`.
    #[serde(default)]
    pub auto_compaction: Option<AutoCompaction>,
    /// `--snapshot-count`.
    #[serde(default)]
    pub snapshot_count: Option<u64>,
    /// More server flags, passed as given (`["--log-level=debug"]`).
    #[serde(default)]
    pub extra_flags: Vec<String>,
}

/// etcd's automatic compaction settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AutoCompaction {
    /// `periodic` (retention is a duration) or `revision` (a revision count).
    pub mode: CompactionMode,
    /// `--auto-compaction-retention` as etcd takes it (`"1h"`, `"1000"`).
    pub retention: String,
}

/// `--auto-compaction-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompactionMode {
    /// Keep a time window of history.
    Periodic,
    /// Keep a number of revisions.
    Revision,
}

/// `[ssh]`: how the provisioner logs in; a non-root user needs passwordless sudo. What is left
/// unset here comes from the operator's `~/.ssh/config` (`config`) for the host's address, as
/// `ssh <address>` would use it, then from OpenSSH's defaults.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    /// Login user; unset: `User` of `~/.ssh/config`, else root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Private key, tried after the agent's (`~` is expanded, relative paths are against this
    /// file's directory); unset: `IdentityFile` of `~/.ssh/config`, else whichever of
    /// `~/.ssh/id_ed25519`, `id_ecdsa` and `id_rsa` exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_file: Option<PathBuf>,
    /// File holding the passphrase of an encrypted key, for runs with neither an agent holding
    /// the key nor a terminal to ask on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase_file: Option<PathBuf>,
    /// Use the keys of the ssh-agent at `$SSH_AUTH_SOCK` first.
    #[serde(default = "default_true")]
    pub agent: bool,
    /// Known hosts file the host keys (bastions' too) are checked against.
    #[serde(default = "default_known_hosts")]
    pub known_hosts: PathBuf,
    /// SSH port; unset: `Port` of `~/.ssh/config`, else 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Bastions every host is reached through (`user@host:port`, as `ProxyJump`); unset:
    /// `ProxyJump` of `~/.ssh/config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jump: Option<Jump>,
    /// The OpenSSH client configuration consulted for what is unset; a missing file is none.
    #[serde(default = "default_ssh_config")]
    pub config: PathBuf,
}

impl Default for Ssh {
    fn default() -> Self {
        Self {
            user: None,
            identity_file: None,
            passphrase_file: None,
            agent: true,
            known_hosts: default_known_hosts(),
            port: None,
            jump: None,
            config: default_ssh_config(),
        }
    }
}

/// `[tls]`: with it, client and peer URLs are https and members require client certificates.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Local directory with the CA and the issued certificates (`ca.pem`, `<host>.pem`,
    /// `prometheus.pem`, ...).
    #[serde(default = "default_tls_dir")]
    pub dir: PathBuf,
    /// Certificates expiring within this many days are reissued.
    #[serde(default = "default_renew_before_days")]
    pub renew_before_days: u32,
    /// The operator's own CA certificate, instead of one generated in `dir`.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// The key of `ca_cert`; both or neither.
    #[serde(default)]
    pub ca_key: Option<PathBuf>,
    /// Extra subject alternative names on every member certificate (a load balancer's name).
    #[serde(default)]
    pub extra_sans: Vec<String>,
}

/// `[[hosts]]`: one member.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Member name (`--name`).
    pub name: String,
    /// IP address or DNS name the member listens on and is reached at.
    pub address: String,
    /// SSH port for this host instead of `[ssh] port`.
    #[serde(default)]
    pub ssh_port: Option<u16>,
    /// SSH user for this host instead of `[ssh] user`.
    #[serde(default)]
    pub ssh_user: Option<String>,
    /// Bastions for this host instead of `[ssh] jump`; `none` connects directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_jump: Option<Jump>,
    /// Data directory for this host instead of `[cluster] data_dir`.
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Client port for this host instead of `[cluster] client_port` (members sharing an
    /// address, as `cairn up`'s do, need their own ports).
    #[serde(default)]
    pub client_port: Option<u16>,
    /// Peer port for this host instead of `[cluster] peer_port`.
    #[serde(default)]
    pub peer_port: Option<u16>,
    /// Metrics port for this host instead of `[cluster] metrics_port`.
    #[serde(default)]
    pub metrics_port: Option<u16>,
    /// Extra subject alternative names on this member's certificate.
    #[serde(default)]
    pub extra_sans: Vec<String>,
}

/// `[alerts]`: how Prometheus finds the members and when the alerts fire. Thresholds default
/// to the etcd mixin's.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Prometheus job of the members' targets.
    #[serde(default = "default_job")]
    pub job: String,
    /// Prometheus job of cairn's own exporters (backup, inspection, certificates).
    #[serde(default = "default_cairn_job")]
    pub cairn_job: String,
    /// `host:port` targets serving cairn's own metrics; none means no cairn job is scraped.
    #[serde(default)]
    pub cairn_targets: Vec<String>,
    /// Name of the label carrying `[cluster] name` on every target and alert.
    #[serde(default = "default_cluster_label")]
    pub cluster_label: String,
    /// Scrape interval; the mixin sizes its peer-failure window as four of them.
    #[serde(default = "default_scrape_interval_seconds")]
    pub scrape_interval_seconds: u32,
    /// Directory holding `ca.pem`, `prometheus.pem` and `prometheus-key.pem` on the
    /// Prometheus machine; `[tls] dir` when absent.
    #[serde(default)]
    pub prometheus_tls_dir: Option<PathBuf>,
    /// etcdHighFsyncDurations (warning): WAL fsync p99 in seconds.
    #[serde(default = "default_fsync_warning")]
    pub fsync_p99_warning_seconds: f64,
    /// etcdHighFsyncDurations (critical).
    #[serde(default = "default_fsync_critical")]
    pub fsync_p99_critical_seconds: f64,
    /// etcdHighCommitDurations: backend commit p99 in seconds.
    #[serde(default = "default_commit")]
    pub commit_p99_seconds: f64,
    /// etcdGRPCRequestsSlow: unary gRPC p99 in seconds.
    #[serde(default = "default_grpc_slow")]
    pub grpc_p99_seconds: f64,
    /// etcdMemberCommunicationSlow: peer round trip p99 in seconds.
    #[serde(default = "default_peer_rtt")]
    pub peer_rtt_p99_seconds: f64,
    /// etcdHighNumberOfLeaderChanges: leader changes within 15 minutes.
    #[serde(default = "default_leader_changes")]
    pub leader_changes_per_15m: u32,
    /// etcdHighNumberOfFailedGRPCRequests (warning): percent of requests failing.
    #[serde(default = "default_failed_grpc_warning")]
    pub failed_grpc_warning_percent: f64,
    /// etcdHighNumberOfFailedGRPCRequests (critical).
    #[serde(default = "default_failed_grpc_critical")]
    pub failed_grpc_critical_percent: f64,
    /// etcdHighNumberOfFailedProposals: failed proposals per second.
    #[serde(default = "default_failed_proposals")]
    pub failed_proposals_per_second: f64,
    /// etcdDatabaseQuotaLowSpace: percent of the quota used.
    #[serde(default = "default_quota_used")]
    pub quota_used_percent: f64,
    /// etcdDatabaseHighFragmentationRatio: in-use / allocated below this ratio...
    #[serde(default = "default_fragmentation_ratio")]
    pub fragmentation_ratio: f64,
    /// ...while more than this many bytes are in use.
    #[serde(default = "default_fragmentation_min_bytes")]
    pub fragmentation_min_bytes: u64,
    /// CairnCertificateExpiry (warning): days left.
    #[serde(default = "default_cert_warning_days")]
    pub cert_expiry_warning_days: f64,
    /// CairnCertificateExpiry (critical).
    #[serde(default = "default_cert_critical_days")]
    pub cert_expiry_critical_days: f64,
    /// CairnBackupStale: no successful backup for this long (`"2h"`); twice `[backup]
    /// interval` when absent.
    #[serde(default)]
    pub backup_stale_after: Option<String>,
    /// CairnInspectionNotRunning: no inspection run for this long; three `[inspection]
    /// interval`s when absent.
    #[serde(default)]
    pub inspection_stale_after: Option<String>,
    /// Where the runbooks are: alerts' `runbook_url` and the inspector's hints link to
    /// `<this>#<alert name>`. Point it at your own copy of docs/runbooks.md (a wiki, an internal
    /// Git server) when the operators on call cannot reach GitHub.
    #[serde(default = "default_runbook_url")]
    pub runbook_url: String,
}

/// `[alerts] runbook_url` by default: cairn's own runbooks.
pub const DEFAULT_RUNBOOK_URL: &str =
    "https://github.com/cairn-ops/cairn/blob/main/docs/runbooks.md";

impl Alerts {
    /// The runbook section of `alert` (GitHub's anchor of a `## name` heading).
    pub fn runbook(&self, alert: &str) -> String {
        format!("{}#{}", self.runbook_url, alert.to_lowercase())
    }
}

impl Default for Alerts {
    fn default() -> Self {
        toml::from_str("").expect("every [alerts] key has a default")
    }
}

/// `[backup]`: where `cairn backupd` stores backups, how often it takes them and how many it
/// keeps. Absent: no backups are configured (and no backup daemon is provisioned).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// `s3://bucket/prefix` or `file:///path` (a relative `file://` path is against the
    /// inventory's directory).
    pub store: String,
    /// When full backups run: a 5-field crontab line (`"0 * * * *"`), a 6-field one with
    /// seconds first, or `@hourly`, `@daily`, `@weekly`, `@monthly`; in `timezone`.
    #[serde(default = "default_backup_schedule")]
    pub schedule: String,
    /// The IANA time zone `schedule` is read in (`"Europe/Berlin"`), so `0 3 * * *` stays
    /// 03:00 local across daylight saving; UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// The member whose host runs the provisioned daemon (`cairn-backupd.service`); the first
    /// host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// A local file of `AWS_*` variables (keys, profile, session token) pushed to the daemon's
    /// host as its systemd `EnvironmentFile`, mode 0600, never shown in plans; absent: the
    /// host's own chain (instance profile, `/root/.aws`).
    #[serde(default)]
    pub environment_file: Option<PathBuf>,
    /// Period of watch-based incremental backups between full ones (`"30s"`); none when
    /// absent.
    #[serde(default)]
    pub incremental: Option<String>,
    /// How stored objects are compressed.
    #[serde(default)]
    pub compression: Compression,
    /// A file holding a 32-byte key (64 hex digits) for client-side AES-256-GCM encryption;
    /// backups are not encrypted when absent.
    #[serde(default)]
    pub encryption_key_file: Option<PathBuf>,
    /// S3 region; the AWS environment/profile's, or `us-east-1`, when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// S3 endpoint override for S3-compatible stores (MinIO, Ceph): `http://10.0.0.5:9000`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    #[serde(default)]
    pub path_style: bool,
    /// Where the daemon serves `/metrics` and `/healthz`.
    #[serde(default = "default_backup_listen")]
    pub listen: String,
    /// How many backups of each age are kept.
    #[serde(default)]
    pub retention: Retention,
}

/// How backup objects are compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// zstd, level 3.
    #[default]
    Zstd,
    /// Stored as the server sent it.
    None,
}

/// `[backup.retention]`: restic-style buckets. A full backup is kept when any bucket keeps it;
/// the newest full backup and the increments it needs are always kept.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// The newest N full backups.
    #[serde(default = "default_keep_last")]
    pub keep_last: u32,
    /// The newest full backup of each of the last N hours that have one.
    #[serde(default = "default_keep_hourly")]
    pub keep_hourly: u32,
    /// The newest of each of the last N days.
    #[serde(default = "default_keep_daily")]
    pub keep_daily: u32,
    /// The newest of each of the last N ISO weeks.
    #[serde(default = "default_keep_weekly")]
    pub keep_weekly: u32,
    /// The newest of each of the last N months.
    #[serde(default = "default_keep_monthly")]
    pub keep_monthly: u32,
}

impl Default for Retention {
    fn default() -> Self {
        toml::from_str("").expect("every [backup.retention] key has a default")
    }
}

/// The `cron` crate wants a seconds field and knows no 5-field crontab lines: this turns
/// what operators write into what it parses (`"*/5 * * * *"` to `"0 */5 * * * *"`).
pub fn cron_expression(schedule: &str) -> String {
    let s = schedule.trim();
    if s.starts_with('@') || s.split_whitespace().count() != 5 {
        s.to_string()
    } else {
        format!("0 {s}")
    }
}

/// `[inspection]`: the inspection tool's schedule and the limits its checks report against.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Inspection {
    /// Time between runs.
    #[serde(default = "default_inspection_interval")]
    pub interval: String,
    /// A value at least this large is a warning.
    #[serde(default = "default_large_value_warn")]
    pub large_value_warn_bytes: u64,
    /// A value at least this large fails the check.
    #[serde(default = "default_large_value_fail")]
    pub large_value_fail_bytes: u64,
    /// Key count growth between two runs, in percent, that is a warning.
    #[serde(default = "default_key_growth_warn")]
    pub key_growth_warn_percent: f64,
    /// Key count growth between two runs that fails the check.
    #[serde(default = "default_key_growth_fail")]
    pub key_growth_fail_percent: f64,
    /// Growth is only graded for counts that were at least this large, so a prefix going
    /// from 2 keys to 4 is not a 100% alarm.
    #[serde(default = "default_key_growth_min_keys")]
    pub key_growth_min_keys: u64,
    /// Where the previous run's key counts and database sizes and the history of the last
    /// runs are kept (growth, the report's trends); unset: `<state dir>/cairn/<cluster
    /// name>/inspection.json`, the state dir being systemd's `$STATE_DIRECTORY`, else
    /// `$XDG_STATE_HOME`, else `~/.local/state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// How many runs the history keeps for the report's trends.
    #[serde(default = "default_inspection_history")]
    pub history: usize,
    /// How many `/`-separated segments make a prefix (2: `/registry/pods/`).
    #[serde(default = "default_prefix_depth")]
    pub prefix_depth: usize,
    /// How many of the largest values and busiest prefixes the report lists.
    #[serde(default = "default_top")]
    pub top: usize,
    /// A key with at least this many versions since its creation is a warning: something
    /// rewrites it in a loop.
    #[serde(default = "default_versions_warn")]
    pub versions_warn: i64,
    /// Keys per page of the keyspace scan.
    #[serde(default = "default_scan_page_keys")]
    pub scan_page_keys: u32,
    /// Value bytes a scan page may hold; pages shrink to stay under it, which bounds the
    /// inspector's memory however large the values are.
    #[serde(default = "default_scan_page_bytes")]
    pub scan_page_bytes: u64,
    /// Database size in percent of the quota that is a warning (`[alerts]
    /// quota_used_percent` fails).
    #[serde(default = "default_quota_warn")]
    pub quota_warn_percent: f64,
    /// Spread of revisions or raft indexes between members that is a warning.
    #[serde(default = "default_index_spread_warn")]
    pub index_spread_warn: u64,
    /// Spread that fails the check (a member, or a learner, is far behind).
    #[serde(default = "default_index_spread_fail")]
    pub index_spread_fail: u64,
    /// How long writes are watched to find the hot prefixes (`"10s"`).
    #[serde(default = "default_hot_window")]
    pub hot_prefix_window: String,
    /// Writes per second to one prefix that are a warning.
    #[serde(default = "default_hot_warn")]
    pub hot_prefix_warn_per_second: f64,
    /// Writes per second to one prefix that fail the check.
    #[serde(default = "default_hot_fail")]
    pub hot_prefix_fail_per_second: f64,
    /// Read latency (serializable or linearizable) in milliseconds that is a warning.
    #[serde(default = "default_read_latency_warn")]
    pub read_latency_warn_ms: f64,
    /// Read latency that fails the check.
    #[serde(default = "default_read_latency_fail")]
    pub read_latency_fail_ms: f64,
}

impl Default for Inspection {
    fn default() -> Self {
        toml::from_str("").expect("every [inspection] key has a default")
    }
}

fn default_client_port() -> u16 {
    2379
}
fn default_peer_port() -> u16 {
    2380
}
fn default_data_dir() -> PathBuf {
    "/var/lib/cairn".into()
}
fn default_heartbeat_ms() -> u32 {
    100
}
fn default_election_ms() -> u32 {
    1000
}
fn default_known_hosts() -> PathBuf {
    "~/.ssh/known_hosts".into()
}
fn default_true() -> bool {
    true
}
fn default_ssh_config() -> PathBuf {
    "~/.ssh/config".into()
}
fn default_tls_dir() -> PathBuf {
    "pki".into()
}
fn default_renew_before_days() -> u32 {
    30
}
fn default_runbook_url() -> String {
    DEFAULT_RUNBOOK_URL.into()
}
fn default_job() -> String {
    "etcd".into()
}
fn default_cairn_job() -> String {
    "cairn".into()
}
fn default_cluster_label() -> String {
    "cluster".into()
}
fn default_scrape_interval_seconds() -> u32 {
    30
}
fn default_fsync_warning() -> f64 {
    0.5
}
fn default_fsync_critical() -> f64 {
    1.0
}
fn default_commit() -> f64 {
    0.25
}
fn default_grpc_slow() -> f64 {
    0.15
}
fn default_peer_rtt() -> f64 {
    0.15
}
fn default_leader_changes() -> u32 {
    4
}
fn default_failed_grpc_warning() -> f64 {
    1.0
}
fn default_failed_grpc_critical() -> f64 {
    5.0
}
fn default_failed_proposals() -> f64 {
    5.0
}
fn default_quota_used() -> f64 {
    95.0
}
fn default_fragmentation_ratio() -> f64 {
    0.5
}
fn default_fragmentation_min_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_cert_warning_days() -> f64 {
    30.0
}
fn default_cert_critical_days() -> f64 {
    7.0
}
fn default_backup_schedule() -> String {
    "@hourly".into()
}
fn default_backup_listen() -> String {
    "127.0.0.1:9471".into()
}
fn default_keep_last() -> u32 {
    24
}
fn default_keep_hourly() -> u32 {
    48
}
fn default_keep_daily() -> u32 {
    14
}
fn default_keep_weekly() -> u32 {
    8
}
fn default_keep_monthly() -> u32 {
    12
}
fn default_inspection_interval() -> String {
    "15m".into()
}
fn default_large_value_warn() -> u64 {
    100 * 1024
}
fn default_large_value_fail() -> u64 {
    1024 * 1024
}
fn default_key_growth_warn() -> f64 {
    20.0
}
fn default_key_growth_fail() -> f64 {
    50.0
}
fn default_key_growth_min_keys() -> u64 {
    100
}
fn default_inspection_history() -> usize {
    100
}
fn default_prefix_depth() -> usize {
    2
}
fn default_top() -> usize {
    10
}
fn default_versions_warn() -> i64 {
    100_000
}
fn default_scan_page_keys() -> u32 {
    1000
}
fn default_scan_page_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_quota_warn() -> f64 {
    80.0
}
fn default_index_spread_warn() -> u64 {
    1000
}
fn default_index_spread_fail() -> u64 {
    10_000
}
fn default_hot_window() -> String {
    "10s".into()
}
fn default_hot_warn() -> f64 {
    100.0
}
fn default_hot_fail() -> f64 {
    1000.0
}
fn default_read_latency_warn() -> f64 {
    100.0
}
fn default_read_latency_fail() -> f64 {
    500.0
}

/// `[auth]`: etcd's authentication and roles. `cairn provision` and `cairn up` create the roles
/// and users, grant exactly the permissions listed (others are revoked) and turn auth on.
/// cairn's own tools then log in as root with its password when one is set, else with their
/// client certificate's CN: with `[tls]`, the admin certificate's CN is `root`, and users
/// `cairn-backup` and `cairn-inspector` are created with the root role and no password, so
/// the certificates alone let the tools in.
/// Passwords come from files or the environment, never from this file.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// Turn auth on; `false` turns it off (users and roles are still created).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A file holding root's password. Without a password (file or variable), root has none
    /// and logs in by a certificate whose CN is `root` only; plain-http clusters need one.
    #[serde(default)]
    pub root_password_file: Option<PathBuf>,
    /// The environment variable holding root's password, when no file is given.
    #[serde(default)]
    pub root_password_env: Option<String>,
    /// `[[auth.roles]]`.
    #[serde(default)]
    pub roles: Vec<AuthRole>,
    /// `[[auth.users]]`.
    #[serde(default)]
    pub users: Vec<AuthUser>,
}

fn yes() -> bool {
    true
}

/// One role and every permission it has.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRole {
    /// The role's name.
    pub name: String,
    /// `[[auth.roles.permissions]]`: the role's permissions, all of them.
    #[serde(default)]
    pub permissions: Vec<AuthPermission>,
}

/// What a permission allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Range and watch.
    Read,
    /// Put and delete.
    Write,
    /// Both.
    Readwrite,
}

/// One permission: a key, a prefix (`prefix = true`), a range `[key, range_end)` or every
/// key from `key` on (`from_key = true`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthPermission {
    /// read, write or readwrite.
    pub access: Access,
    /// The key (or the prefix, or the range's start).
    pub key: String,
    /// Every key starting with `key`.
    #[serde(default)]
    pub prefix: bool,
    /// The end of the range (excluded).
    #[serde(default)]
    pub range_end: Option<String>,
    /// Every key from `key` on.
    #[serde(default)]
    pub from_key: bool,
}

impl AuthPermission {
    /// The range end in etcd's encoding: empty for one key, `\0` for every key from `key`
    /// on, the key with its last byte incremented for a prefix.
    pub fn etcd_range_end(&self) -> Vec<u8> {
        if self.from_key {
            return vec![0];
        }
        if let Some(end) = &self.range_end {
            return end.clone().into_bytes();
        }
        if !self.prefix {
            return Vec::new();
        }
        let mut end = self.key.clone().into_bytes();
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                return end;
            }
        }
        vec![0]
    }
}

/// One user and the roles it holds.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthUser {
    /// The user's name.
    pub name: String,
    /// A file holding the user's password; without one (and no variable), the user has no
    /// password and logs in with a client certificate of its name as CN.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The environment variable holding the password, when no file is given.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The roles it holds, all of them (`root` is etcd's administrator role).
    #[serde(default)]
    pub roles: Vec<String>,
}
