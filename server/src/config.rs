//! cairn-server's flags: etcd's names, each also read from its `ETCD_*` variable, so etcd's
//! systemd units and env files drive cairn-server unchanged.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use url::Url;

/// Why a flag combination cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--initial-cluster` does not name this member.
    #[error(
        "--initial-cluster has no member named {name:?}: add \"{name}=<peer url>\" or fix --name"
    )]
    NotInCluster {
        /// This member's name.
        name: String,
    },
    /// An `--initial-cluster` entry is not `name=url`.
    #[error("--initial-cluster entry {0:?} is not name=url")]
    BadClusterEntry(String),
    /// A URL does not parse.
    #[error("invalid URL {url:?}")]
    BadUrl {
        /// The text.
        url: String,
        /// Why.
        source: url::ParseError,
    },
    /// A listen URL has no usable scheme/host/port.
    #[error("listen URL {0} must be http:// or https:// with a host and a port")]
    BadListenUrl(String),
    /// An https listener without a certificate.
    #[error("{0} is https but --cert-file and --key-file are not both set")]
    TlsWithoutCert(String),
    /// An https peer listener without a peer certificate.
    #[error("{0} is https but --peer-cert-file and --peer-key-file are not both set")]
    PeerTlsWithoutCert(String),
    /// `--client-cert-auth` without a CA to check client certificates against.
    #[error("--client-cert-auth needs --trusted-ca-file")]
    ClientAuthWithoutCa,
    /// `--auto-compaction-retention` does not parse for the mode.
    #[error("--auto-compaction-retention {0:?} is not a number of hours/revisions or a duration like 30m")]
    BadRetention(String),
    /// A restore's advertised peer URLs are not the member's `--initial-cluster` URLs.
    #[error("--initial-cluster has {cluster} for {name} but --initial-advertise-peer-urls is {advertised}")]
    AdvertiseMismatch {
        /// The member.
        name: String,
        /// Its URLs in `--initial-cluster`.
        cluster: String,
        /// `--initial-advertise-peer-urls`.
        advertised: String,
    },
    /// The data dir was bootstrapped with another `--initial-cluster-token`.
    #[error("the data dir belongs to a cluster bootstrapped with --initial-cluster-token {stored:?}, not {flag:?}: use the original token, or another data dir for a new cluster")]
    TokenMismatch {
        /// The token in the data dir.
        stored: String,
        /// `--initial-cluster-token`.
        flag: String,
    },
    /// A peer answered for another cluster.
    #[error("peer {url} belongs to cluster {theirs:x}, not to this member's cluster {ours:x}: check --initial-cluster and --initial-cluster-token")]
    ClusterMismatch {
        /// The peer.
        url: String,
        /// Its cluster ID.
        theirs: u64,
        /// This member's cluster ID.
        ours: u64,
    },
    /// A fresh data dir for a member the cluster has already seen running.
    #[error("member {0:x} has already been bootstrapped and its data dir is gone: remove it (etcdctl member remove {0:x}), add it again (etcdctl member add) and start it with --initial-cluster-state existing")]
    AlreadyBootstrapped(u64),
    /// `--initial-cluster-state existing` for a member the cluster does not list.
    #[error("the cluster has no member with peer URLs {0}: add it first (etcdctl member add NAME --peer-urls={0}), then start it with --initial-cluster-state existing")]
    NotAdded(String),
    /// `--initial-cluster-state existing` and no peer answered.
    #[error("no member of --initial-cluster answered ({0}): a member joining an existing cluster needs a running peer")]
    NoPeerAnswered(String),
    /// The data dir holds a single member's data, without a raft log, and the flags name more
    /// members.
    #[error("the data dir holds a single-member cluster; --initial-cluster names {0} members: start it alone, or restore a snapshot into new data dirs for the larger cluster")]
    SingleMemberData(usize),
}

/// Ends a command whose arguments did not parse: `--help`/`--version` print and succeed; any
/// other problem is one line on stderr (what is wrong, where to look) and exit code 2.
pub fn exit_for_args_error(e: &clap::Error, program: &str) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return std::process::ExitCode::SUCCESS;
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid arguments");
    eprintln!(
        "{program}: {} (see {program} --help)",
        first.trim_start_matches("error: ")
    );
    std::process::ExitCode::from(2)
}

/// Log verbosity, with etcd's level names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Debug,
    /// Normal operation.
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
    /// Failures only (etcd's name).
    Panic,
    /// Failures only (etcd's name).
    Fatal,
}

impl LogLevel {
    /// The tracing filter directive for this level.
    pub fn directive(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error | Self::Panic | Self::Fatal => "error",
        }
    }
}

/// How `--auto-compaction-retention` is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AutoCompactionMode {
    /// Keep history for a period ("1h", "30m", or a bare number of hours).
    Periodic,
    /// Keep this many revisions of history.
    Revision,
}

/// How many metrics `/metrics` exports (etcd's names; cairn exports the same set for both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetricsLevel {
    /// The metrics etcd exports by default.
    Basic,
    /// Also per-request histograms.
    Extensive,
}

/// The etcd release whose API and behaviour cairn-server follows, reported wherever etcd
/// reports its own (Status, `/version`, `etcd_server_version`). Clients such as Kubernetes
/// gate features on it, so it names the release cairn is compared with, never a later one
/// whose features cairn lacks.
pub const ETCD_VERSION: &str = "3.4.23";
/// The cluster version of that release (`major.minor.0`), as `/version` reports it.
pub const CLUSTER_VERSION: &str = "3.4.0";

/// Parses a Go-style duration as etcd's flags take them ("500ms", "10m", "1h30m", "0").
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{s:?} is not a duration like 500ms, 10m or 1h30m: {e}"))
}

/// Whether this member bootstraps a new cluster or joins an existing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterState {
    /// Form a new cluster with the members of `--initial-cluster`.
    New,
    /// Join a cluster that already runs (after MemberAdd).
    Existing,
}

/// A `--initial-cluster` member: name and peer URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    /// Member name.
    pub name: String,
    /// One of its peer URLs.
    pub peer_url: String,
}

/// Parsed `--initial-cluster`: `name=url,name=url,...` (a name may repeat for several URLs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialCluster(pub Vec<InitialMember>);

impl FromStr for InitialCluster {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut members = Vec::new();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, url) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::BadClusterEntry(entry.to_string()))?;
            Url::parse(url).map_err(|source| ConfigError::BadUrl {
                url: url.to_string(),
                source,
            })?;
            members.push(InitialMember {
                name: name.to_string(),
                peer_url: url.to_string(),
            });
        }
        Ok(Self(members))
    }
}

impl InitialCluster {
    /// The peer URLs of member `name`, sorted (etcd sorts them before deriving IDs).
    pub fn peer_urls_of(&self, name: &str) -> Vec<String> {
        let mut urls: Vec<String> = self
            .0
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.peer_url.clone())
            .collect();
        urls.sort();
        urls
    }

    /// Distinct member names, in first-seen order.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for m in &self.0 {
            if !names.contains(&m.name.as_str()) {
                names.push(&m.name);
            }
        }
        names
    }
}

fn parse_urls(s: &str) -> Result<Url, ConfigError> {
    Url::parse(s.trim()).map_err(|source| ConfigError::BadUrl {
        url: s.to_string(),
        source,
    })
}

/// Every flag cairn-server takes. Defaults are etcd's.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "cairn-server",
    version,
    about = "An etcd-v3-compatible key-value server: etcd's API, flags and ETCD_* variables.",
    max_term_width = 100
)]
pub struct Config {
    /// Human-readable name for this member.
    #[arg(long, env = "ETCD_NAME", default_value = "default")]
    pub name: String,
    /// Path to the data directory [default: ${name}.etcd].
    #[arg(long, env = "ETCD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// URLs to listen on for client traffic (comma-separated).
    #[arg(long, env = "ETCD_LISTEN_CLIENT_URLS", default_value = "http://localhost:2379", value_delimiter = ',', value_parser = parse_urls)]
    pub listen_client_urls: Vec<Url>,
    /// Client URLs of this member to advertise to the rest of the cluster.
    #[arg(long, env = "ETCD_ADVERTISE_CLIENT_URLS", default_value = "http://localhost:2379", value_delimiter = ',', value_parser = parse_urls)]
    pub advertise_client_urls: Vec<Url>,
    /// URLs to listen on for peer traffic.
    #[arg(long, env = "ETCD_LISTEN_PEER_URLS", default_value = "http://localhost:2380", value_delimiter = ',', value_parser = parse_urls)]
    pub listen_peer_urls: Vec<Url>,
    /// Peer URLs of this member to advertise to the rest of the cluster.
    #[arg(long, env = "ETCD_INITIAL_ADVERTISE_PEER_URLS", default_value = "http://localhost:2380", value_delimiter = ',', value_parser = parse_urls)]
    pub initial_advertise_peer_urls: Vec<Url>,
    /// Initial cluster configuration for bootstrapping: name=peer-url,...
    #[arg(
        long,
        env = "ETCD_INITIAL_CLUSTER",
        default_value = "default=http://localhost:2380"
    )]
    pub initial_cluster: InitialCluster,
    /// Initial cluster token; distinguishes clusters bootstrapped from the same URLs.
    #[arg(
        long,
        env = "ETCD_INITIAL_CLUSTER_TOKEN",
        default_value = "etcd-cluster"
    )]
    pub initial_cluster_token: String,
    /// Initial cluster state: new or existing.
    #[arg(
        long,
        env = "ETCD_INITIAL_CLUSTER_STATE",
        value_enum,
        default_value = "new"
    )]
    pub initial_cluster_state: ClusterState,
    /// Time (ms) of a heartbeat interval.
    #[arg(long, env = "ETCD_HEARTBEAT_INTERVAL", default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (ms) for an election to time out.
    #[arg(long, env = "ETCD_ELECTION_TIMEOUT", default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of committed transactions that trigger a snapshot of the raft log.
    #[arg(long, env = "ETCD_SNAPSHOT_COUNT", default_value_t = 100_000)]
    pub snapshot_count: u64,
    /// Maximum client request size in bytes the server accepts.
    #[arg(long, env = "ETCD_MAX_REQUEST_BYTES", default_value_t = 1_572_864)]
    pub max_request_bytes: u32,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, env = "ETCD_MAX_TXN_OPS", default_value_t = 128)]
    pub max_txn_ops: u32,
    /// Raise alarms when the backend size exceeds this (0 means the default, 2 GiB; negative
    /// disables the quota).
    #[arg(long, env = "ETCD_QUOTA_BACKEND_BYTES", default_value_t = 0)]
    pub quota_backend_bytes: i64,
    /// Log level: debug, info, warn, error, panic or fatal.
    #[arg(long, env = "ETCD_LOG_LEVEL", value_enum, default_value = "info")]
    pub log_level: LogLevel,
    /// Logger kind (accepted for etcd compatibility; cairn always logs through tracing).
    #[arg(long, env = "ETCD_LOGGER", default_value = "zap")]
    pub logger: String,
    /// Additional URLs to serve /metrics and /health on (plain HTTP or https with the client cert).
    #[arg(long, env = "ETCD_LISTEN_METRICS_URLS", value_delimiter = ',', value_parser = parse_urls)]
    pub listen_metrics_urls: Vec<Url>,
    /// Metrics detail: basic or extensive.
    #[arg(long, env = "ETCD_METRICS", value_enum, default_value = "basic")]
    pub metrics: MetricsLevel,
    /// Interpret --auto-compaction-retention as a period (periodic) or a revision count (revision).
    #[arg(
        long,
        env = "ETCD_AUTO_COMPACTION_MODE",
        value_enum,
        default_value = "periodic"
    )]
    pub auto_compaction_mode: AutoCompactionMode,
    /// History to keep when compacting automatically ("0" disables auto compaction).
    #[arg(long, env = "ETCD_AUTO_COMPACTION_RETENTION", default_value = "0")]
    pub auto_compaction_retention: String,
    /// How often watchers that asked for progress notifications get one when idle.
    #[arg(long, env = "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub experimental_watch_progress_notify_interval: std::time::Duration,
    /// Events kept in memory for watchers; watchers further behind read history from disk.
    #[arg(long, env = "ETCD_EXPERIMENTAL_WATCH_EVENT_BUFFER", default_value_t = WATCH_EVENT_BUFFER, hide = true)]
    pub experimental_watch_event_buffer: usize,
    /// Path to the client server TLS certificate file.
    #[arg(long, env = "ETCD_CERT_FILE")]
    pub cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long, env = "ETCD_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Path to the client server TLS trusted CA certificate file.
    #[arg(long, env = "ETCD_TRUSTED_CA_FILE")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Require client certificates signed by --trusted-ca-file.
    #[arg(long, env = "ETCD_CLIENT_CERT_AUTH", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub client_cert_auth: bool,
    /// Auth tokens: `simple`, or `jwt,pub-key=FILE,priv-key=FILE,sign-method=RS256,ttl=5m`.
    #[arg(long, env = "ETCD_AUTH_TOKEN", default_value = "simple")]
    pub auth_token: String,
    /// Seconds a simple token lives after its last use.
    #[arg(long, env = "ETCD_AUTH_TOKEN_TTL", default_value_t = 300)]
    pub auth_token_ttl: u64,
    /// The bcrypt cost of password hashes (etcd's range: 4 to 31).
    #[arg(long, env = "ETCD_BCRYPT_COST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
    pub bcrypt_cost: u32,
    /// Path to the peer server TLS certificate file.
    #[arg(long, env = "ETCD_PEER_CERT_FILE")]
    pub peer_cert_file: Option<PathBuf>,
    /// Path to the peer server TLS key file.
    #[arg(long, env = "ETCD_PEER_KEY_FILE")]
    pub peer_key_file: Option<PathBuf>,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long, env = "ETCD_PEER_TRUSTED_CA_FILE")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Require peer certificates signed by --peer-trusted-ca-file.
    #[arg(long, env = "ETCD_PEER_CLIENT_CERT_AUTH", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub peer_client_cert_auth: bool,
}

impl Config {
    /// Parses etcd-style arguments: Go's single-dash long flags (`-name x`) are accepted too.
    pub fn try_parse_etcd_args<I, S>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let args = args.into_iter().map(Into::into).enumerate().map(|(i, a)| {
            let bytes = a.as_bytes();
            let go_style =
                i > 0 && bytes.len() > 2 && bytes[0] == b'-' && bytes[1].is_ascii_alphabetic();
            if go_style {
                format!("-{a}")
            } else {
                a
            }
        });
        Self::try_parse_from(args)
    }

    /// The data dir, defaulting like etcd to `${name}.etcd`.
    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", self.name)))
    }

    /// The backend quota in bytes: etcd's default of 2 GiB when 0, no quota when negative.
    pub fn quota_bytes(&self) -> i64 {
        match self.quota_backend_bytes {
            0 => 2 * 1024 * 1024 * 1024,
            n if n < 0 => i64::MAX,
            n => n,
        }
    }

    /// Whether this member runs raft with peers: more than one initial member, or joining an
    /// existing cluster.
    pub fn is_replicated(&self) -> bool {
        self.initial_cluster.names().len() > 1
            || self.initial_cluster_state == ClusterState::Existing
    }

    /// Checks that the flags describe a member that can start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initial_cluster.peer_urls_of(&self.name).is_empty() {
            return Err(ConfigError::NotInCluster {
                name: self.name.clone(),
            });
        }
        let mut advertised: Vec<String> = self
            .initial_advertise_peer_urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .collect();
        advertised.sort();
        let listed: Vec<String> = self
            .initial_cluster
            .peer_urls_of(&self.name)
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        if self.is_replicated() && advertised != listed {
            return Err(ConfigError::AdvertiseMismatch {
                name: self.name.clone(),
                cluster: listed.join(","),
                advertised: advertised.join(","),
            });
        }
        for url in self
            .listen_client_urls
            .iter()
            .chain(&self.listen_metrics_urls)
        {
            let scheme_ok = matches!(url.scheme(), "http" | "https");
            if !scheme_ok || url.host_str().is_none() || url.port().is_none() {
                return Err(ConfigError::BadListenUrl(url.to_string()));
            }
            if url.scheme() == "https" && (self.cert_file.is_none() || self.key_file.is_none()) {
                return Err(ConfigError::TlsWithoutCert(url.to_string()));
            }
        }
        if self.client_cert_auth && self.trusted_ca_file.is_none() {
            return Err(ConfigError::ClientAuthWithoutCa);
        }
        parse_retention(self.auto_compaction_mode, &self.auto_compaction_retention)?;
        Ok(())
    }
}

/// `--experimental-watch-event-buffer`'s default: events kept in memory for watchers.
pub const WATCH_EVENT_BUFFER: usize = 50_000;

/// How much history to keep, decoded from the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// Keep this long a period.
    Period(Duration),
    /// Keep this many revisions.
    Revisions(i64),
}

/// Decodes `--auto-compaction-retention` for `mode` like etcd: a bare integer is hours
/// (periodic) or revisions (revision); otherwise a Go duration. `None` when it is zero
/// (auto compaction off).
pub fn parse_retention(
    mode: AutoCompactionMode,
    text: &str,
) -> Result<Option<Retention>, ConfigError> {
    let bad = || ConfigError::BadRetention(text.to_string());
    let retention = match (text.trim().parse::<i64>(), mode) {
        (Ok(n), _) if n < 0 => return Err(bad()),
        (Ok(n), AutoCompactionMode::Revision) => Retention::Revisions(n),
        (Ok(n), AutoCompactionMode::Periodic) => {
            Retention::Period(Duration::from_secs(n as u64 * 3600))
        }
        (Err(_), AutoCompactionMode::Periodic) => {
            Retention::Period(parse_duration(text).map_err(|_| bad())?)
        }
        // etcd reads a duration in revision mode as a count of nanoseconds; nobody means that.
        (Err(_), AutoCompactionMode::Revision) => return Err(bad()),
    };
    Ok(match retention {
        Retention::Period(d) if d.is_zero() => None,
        Retention::Revisions(0) => None,
        r => Some(r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_etcd_args(std::iter::once("cairn-server").chain(args.iter().copied()))
    }

    #[test]
    fn etcd_defaults_and_go_style_flags() {
        let c = parse(&[
            "-name",
            "m1",
            "--client-cert-auth",
            "--trusted-ca-file",
            "ca.pem",
        ])
        .unwrap();
        assert_eq!(c.name, "m1");
        assert!(c.client_cert_auth);
        assert_eq!(c.data_dir(), PathBuf::from("m1.etcd"));
        assert_eq!(c.max_request_bytes, 1_572_864);
        assert_eq!(c.heartbeat_interval, 100);
        assert_eq!(c.election_timeout, 1000);
        let c = parse(&["--client-cert-auth=false"]).unwrap();
        assert!(!c.client_cert_auth);
    }

    #[test]
    fn bad_flags_and_values_are_errors() {
        assert!(parse(&["--no-such-flag"]).is_err());
        assert!(parse(&["--max-request-bytes", "lots"]).is_err());
        assert!(parse(&["--initial-cluster", "nourl"]).is_err());
        assert!(parse(&["--initial-cluster-state", "maybe"]).is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        let c = parse(&["--name", "x"]).unwrap();
        assert!(matches!(
            c.validate(),
            Err(ConfigError::NotInCluster { .. })
        ));
        let c = parse(&["--listen-client-urls", "https://127.0.0.1:2379"]).unwrap();
        assert!(matches!(c.validate(), Err(ConfigError::TlsWithoutCert(_))));
        let c = parse(&[
            "--name",
            "a",
            "--initial-cluster",
            "a=http://127.0.0.1:2380,b=http://127.0.0.2:2380",
        ])
        .unwrap();
        // The default advertised peer URL is not a's URL in --initial-cluster.
        assert!(matches!(
            c.validate(),
            Err(ConfigError::AdvertiseMismatch { .. })
        ));
        let c = parse(&[
            "--name",
            "a",
            "--initial-cluster",
            "a=http://127.0.0.1:2380,b=http://127.0.0.2:2380",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2380",
        ])
        .unwrap();
        assert!(c.is_replicated());
        c.validate().expect("a valid member of a 2-member cluster");
    }
}
