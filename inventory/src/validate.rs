//! The checks a parsed file must pass before any tool acts on it: hosts, ports, addresses,
//! thresholds and durations. Each failure points at the value to change.

use std::collections::HashMap;
use std::fmt::Display;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use crate::model::{Cluster, File, Host, Transport};
use crate::{Error, Location, Warning};

/// Points errors at the inventory's text.
pub(crate) struct Checker<'a> {
    pub(crate) path: &'a Path,
    pub(crate) source: &'a str,
}

impl Checker<'_> {
    pub(crate) fn at(&self, key: &[&str]) -> Location {
        Location::of_key(self.path, self.source, key)
    }

    fn require(
        &self,
        ok: bool,
        key_path: &[&str],
        key: &'static str,
        value: impl Display,
        expected: &'static str,
    ) -> Result<(), Error> {
        if ok {
            return Ok(());
        }
        Err(Error::InvalidValue {
            at: self.at(key_path),
            key,
            value: value.to_string(),
            expected,
        })
    }

    /// A positive duration such as `"90m"`.
    pub(crate) fn duration(
        &self,
        key_path: &[&str],
        key: &'static str,
        value: &str,
    ) -> Result<Duration, Error> {
        let d = humantime::parse_duration(value).map_err(|source| Error::InvalidDuration {
            at: self.at(key_path),
            key,
            value: value.to_string(),
            source: Box::new(source),
        })?;
        self.require(
            !d.is_zero(),
            key_path,
            key,
            format!("\"{value}\""),
            "longer than zero",
        )?;
        Ok(d)
    }

    /// Everything but local files; warnings for legal but risky member counts.
    pub(crate) fn file(&self, f: &File) -> Result<Vec<Warning>, Error> {
        self.cluster(f)?;
        let warnings = self.hosts(f)?;
        self.alerts(f)?;
        self.backup(f)?;
        self.inspection(f)?;
        self.auth(f)?;
        if let Some(tls) = &f.tls {
            self.require(
                tls.ca_cert.is_some() == tls.ca_key.is_some(),
                &[
                    "tls",
                    if tls.ca_cert.is_some() {
                        "ca_cert"
                    } else {
                        "ca_key"
                    },
                ],
                "ca_cert/ca_key",
                "(only one set)",
                "both set (the operator's CA) or both absent (a CA generated in dir)",
            )?;
        }
        Ok(warnings)
    }

    fn cluster(&self, f: &File) -> Result<(), Error> {
        let c = &f.cluster;
        self.require(
            is_name(&c.name),
            &["cluster", "name"],
            "name",
            format!("\"{}\"", c.name),
            "non-empty letters, digits, '-', '_' or '.'",
        )?;
        self.require(
            !c.token.is_empty(),
            &["cluster", "token"],
            "token",
            "\"\"",
            "non-empty (a different token per cluster)",
        )?;
        self.ports(
            &["cluster"],
            [
                ("client_port", Some(c.client_port)),
                ("peer_port", Some(c.peer_port)),
                ("metrics_port", c.metrics_port),
            ],
        )?;
        self.require(
            c.heartbeat_interval_ms > 0,
            &["cluster", "heartbeat_interval_ms"],
            "heartbeat_interval_ms",
            c.heartbeat_interval_ms,
            "at least 1",
        )?;
        self.require(
            u64::from(c.election_timeout_ms) >= 5 * u64::from(c.heartbeat_interval_ms),
            &["cluster", "election_timeout_ms"],
            "election_timeout_ms",
            c.election_timeout_ms,
            "at least 5 times heartbeat_interval_ms, as etcd requires",
        )
    }

    /// Ports from 1 to 65535, each its own number; `table` is where they are set.
    fn ports(&self, table: &[&str], ports: [(&'static str, Option<u16>); 3]) -> Result<(), Error> {
        let ports: Vec<(&'static str, u16)> =
            ports.iter().filter_map(|&(k, p)| Some((k, p?))).collect();
        let at = |key: &'static str| [table, &[key]].concat();
        for (i, &(key, port)) in ports.iter().enumerate() {
            self.require(port != 0, &at(key), key, port, "a port from 1 to 65535")?;
            if let Some(&(other, _)) = ports[..i].iter().find(|(_, p)| *p == port) {
                return Err(Error::PortClash {
                    at: self.at(&at(key)),
                    key,
                    port,
                    other,
                });
            }
        }
        Ok(())
    }

    /// A member's own ports (its overrides over `[cluster]`'s), as it will listen on them.
    fn host_ports(
        &self,
        c: &Cluster,
        h: &Host,
        index: &str,
    ) -> Result<Vec<(&'static str, u16)>, Error> {
        let host_set = h.client_port.is_some() || h.peer_port.is_some() || h.metrics_port.is_some();
        let ports = [
            ("client_port", Some(h.client_port.unwrap_or(c.client_port))),
            ("peer_port", Some(h.peer_port.unwrap_or(c.peer_port))),
            ("metrics_port", h.metrics_port.or(c.metrics_port)),
        ];
        if host_set {
            self.ports(&["hosts", index], ports)?;
        }
        Ok(ports.iter().filter_map(|&(k, p)| Some((k, p?))).collect())
    }

    fn hosts(&self, f: &File) -> Result<Vec<Warning>, Error> {
        if f.hosts.is_empty() {
            return Err(Error::NoHosts {
                at: self.at(&["hosts"]),
            });
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<String, usize> = HashMap::new();
        let mut listening: HashMap<(String, u16), &str> = HashMap::new();
        for (i, h) in f.hosts.iter().enumerate() {
            let index = i.to_string();
            let name_at = self.at(&["hosts", &index, "name"]);
            self.require(
                is_name(&h.name),
                &["hosts", &index, "name"],
                "name",
                format!("\"{}\"", h.name),
                "non-empty letters, digits, '-', '_' or '.' (it goes into --initial-cluster)",
            )?;
            if let Some(first_line) = names.insert(&h.name, name_at.line) {
                return Err(Error::DuplicateHostName {
                    at: name_at,
                    name: h.name.clone(),
                    first_line,
                });
            }
            let address_at = self.at(&["hosts", &index, "address"]);
            let Some(address) = canonical_address(&h.address) else {
                return Err(Error::InvalidAddress {
                    at: address_at,
                    address: h.address.clone(),
                });
            };
            let ports = self.host_ports(&f.cluster, h, &index)?;
            match f.cluster.transport {
                Transport::Ssh => {
                    if let Some(first_line) = addresses.insert(address, address_at.line) {
                        return Err(Error::DuplicateAddress {
                            at: address_at,
                            address: h.address.clone(),
                            first_line,
                        });
                    }
                }
                Transport::Local => {
                    if !h.address.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
                        return Err(Error::NotLoopback {
                            at: address_at,
                            address: h.address.clone(),
                        });
                    }
                    for (key, port) in ports {
                        if let Some(other) = listening.insert((address.clone(), port), &h.name) {
                            return Err(Error::PortTaken {
                                at: self.at(&["hosts", &index, key]),
                                address: h.address.clone(),
                                port,
                                other: other.to_string(),
                            });
                        }
                    }
                }
            }
        }
        // Prometheus scrapes all members of a job with one scheme: metrics ports on every
        // member (plain HTTP) or on none (the client port, with TLS under [tls]).
        if f.cluster.metrics_port.is_none() {
            let with: Vec<_> = f.hosts.iter().map(|h| h.metrics_port.is_some()).collect();
            if let Some(i) = with.iter().position(|&w| w != with[0]) {
                let index = i.to_string();
                return Err(Error::InvalidValue {
                    at: self.at(&["hosts", &index, "name"]),
                    key: "metrics_port",
                    value: if with[i] { "set" } else { "not set" }.into(),
                    expected: "set on every host or on none (or once in [cluster])",
                });
            }
        }
        let last = self.at(&["hosts", &(f.hosts.len() - 1).to_string(), "name"]);
        Ok(match f.hosts.len() {
            1 => vec![Warning::SingleMember { at: last }],
            n if n % 2 == 0 => vec![Warning::EvenMembers { at: last, count: n }],
            _ => Vec::new(),
        })
    }

    fn alerts(&self, f: &File) -> Result<(), Error> {
        let a = &f.alerts;
        let k = |key: &'static str| ["alerts", key];
        for (key, value) in [("job", &a.job), ("cairn_job", &a.cairn_job)] {
            self.require(
                !value.is_empty(),
                &k(key),
                key,
                "\"\"",
                "a non-empty Prometheus job name",
            )?;
        }
        for (i, target) in a.cairn_targets.iter().enumerate() {
            self.require(
                is_target(target),
                &["alerts", "cairn_targets", &i.to_string()],
                "cairn_targets",
                format!("\"{target}\""),
                "host:port entries (an IPv6 address in brackets: \"[fd00::1]:9469\")",
            )?;
        }
        self.require(
            is_label_name(&a.cluster_label),
            &k("cluster_label"),
            "cluster_label",
            format!("\"{}\"", a.cluster_label),
            "a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)",
        )?;
        self.require(
            a.scrape_interval_seconds > 0,
            &k("scrape_interval_seconds"),
            "scrape_interval_seconds",
            a.scrape_interval_seconds,
            "at least 1",
        )?;
        let positive: [(&'static str, f64); 6] = [
            ("fsync_p99_warning_seconds", a.fsync_p99_warning_seconds),
            ("commit_p99_seconds", a.commit_p99_seconds),
            ("grpc_p99_seconds", a.grpc_p99_seconds),
            ("peer_rtt_p99_seconds", a.peer_rtt_p99_seconds),
            ("failed_proposals_per_second", a.failed_proposals_per_second),
            ("cert_expiry_critical_days", a.cert_expiry_critical_days),
        ];
        for (key, value) in positive {
            self.require(
                value > 0.0 && value.is_finite(),
                &k(key),
                key,
                value,
                "a number above 0",
            )?;
        }
        self.require(
            a.fsync_p99_critical_seconds > a.fsync_p99_warning_seconds
                && a.fsync_p99_critical_seconds.is_finite(),
            &k("fsync_p99_critical_seconds"),
            "fsync_p99_critical_seconds",
            a.fsync_p99_critical_seconds,
            "above fsync_p99_warning_seconds",
        )?;
        self.require(
            a.cert_expiry_warning_days > a.cert_expiry_critical_days
                && a.cert_expiry_warning_days.is_finite(),
            &k("cert_expiry_warning_days"),
            "cert_expiry_warning_days",
            a.cert_expiry_warning_days,
            "above cert_expiry_critical_days",
        )?;
        self.require(
            a.leader_changes_per_15m > 0,
            &k("leader_changes_per_15m"),
            "leader_changes_per_15m",
            a.leader_changes_per_15m,
            "at least 1",
        )?;
        self.require(
            a.failed_grpc_warning_percent > 0.0 && a.failed_grpc_warning_percent < 100.0,
            &k("failed_grpc_warning_percent"),
            "failed_grpc_warning_percent",
            a.failed_grpc_warning_percent,
            "a percentage above 0 and below 100",
        )?;
        self.require(
            a.failed_grpc_critical_percent > a.failed_grpc_warning_percent
                && a.failed_grpc_critical_percent < 100.0,
            &k("failed_grpc_critical_percent"),
            "failed_grpc_critical_percent",
            a.failed_grpc_critical_percent,
            "above failed_grpc_warning_percent and below 100",
        )?;
        self.require(
            a.quota_used_percent > 0.0 && a.quota_used_percent < 100.0,
            &k("quota_used_percent"),
            "quota_used_percent",
            a.quota_used_percent,
            "a percentage above 0 and below 100",
        )?;
        self.require(
            a.fragmentation_ratio > 0.0 && a.fragmentation_ratio < 1.0,
            &k("fragmentation_ratio"),
            "fragmentation_ratio",
            a.fragmentation_ratio,
            "a ratio above 0 and below 1",
        )
    }

    fn auth(&self, f: &File) -> Result<(), Error> {
        let Some(a) = &f.auth else {
            return Ok(());
        };
        let root_password = a.root_password_file.is_some() || a.root_password_env.is_some();
        // Without TLS there is no certificate to log in with: the tools need root's password.
        self.require(
            root_password || f.tls.is_some(),
            &["auth"],
            "root_password_file",
            "(unset)",
            "a root password (root_password_file or root_password_env) when there is no [tls]",
        )?;
        let mut roles = std::collections::HashSet::new();
        for r in &a.roles {
            self.require(is_name(&r.name), &["auth", "roles"], "name", &r.name, NAME)?;
            self.require(
                roles.insert(r.name.as_str()),
                &["auth", "roles"],
                "name",
                &r.name,
                "a name no other role has",
            )?;
            for p in &r.permissions {
                let ranges = usize::from(p.prefix)
                    + usize::from(p.from_key)
                    + usize::from(p.range_end.is_some());
                self.require(
                    ranges <= 1,
                    &["auth", "roles"],
                    "permissions",
                    &p.key,
                    "at most one of prefix, range_end and from_key",
                )?;
                self.require(
                    !p.key.is_empty() || p.prefix || p.from_key,
                    &["auth", "roles"],
                    "key",
                    "\"\"",
                    "a key (an empty one only with prefix or from_key: every key)",
                )?;
            }
        }
        let mut users = std::collections::HashSet::new();
        for u in &a.users {
            self.require(is_name(&u.name), &["auth", "users"], "name", &u.name, NAME)?;
            self.require(
                u.name != "root" && users.insert(u.name.as_str()),
                &["auth", "users"],
                "name",
                &u.name,
                "a name no other user has (root is managed by [auth] itself)",
            )?;
            for role in &u.roles {
                self.require(
                    role == "root" || roles.contains(role.as_str()),
                    &["auth", "users"],
                    "roles",
                    role,
                    "root or a role of [[auth.roles]]",
                )?;
            }
        }
        Ok(())
    }

    fn backup(&self, f: &File) -> Result<(), Error> {
        let Some(b) = &f.backup else {
            return Ok(());
        };
        let store_ok = match b.store.split_once("://") {
            Some(("s3", rest)) => !rest.split('/').next().unwrap_or("").is_empty(),
            Some(("file", rest)) => !rest.is_empty(),
            _ => false,
        };
        self.require(
            store_ok,
            &["backup", "store"],
            "store",
            format!("\"{}\"", b.store),
            "s3://bucket/prefix or file:///path",
        )?;
        self.require(
            b.listen.parse::<std::net::SocketAddr>().is_ok(),
            &["backup", "listen"],
            "listen",
            format!("\"{}\"", b.listen),
            "an address and port such as \"127.0.0.1:9471\"",
        )?;
        if let Some(period) = &b.incremental {
            self.duration(&["backup", "incremental"], "incremental", period)?;
        }
        if let Some(host) = &b.host {
            self.require(
                f.hosts.iter().any(|h| &h.name == host),
                &["backup", "host"],
                "host",
                format!("\"{host}\""),
                "the name of one of the [[hosts]]",
            )?;
        }
        if let Some(tz) = &b.timezone {
            self.require(
                tz.parse::<chrono_tz::Tz>().is_ok(),
                &["backup", "timezone"],
                "timezone",
                format!("\"{tz}\""),
                "an IANA time zone name such as \"Europe/Berlin\" or \"America/New_York\"",
            )?;
        }
        self.backup_interval(&b.schedule, b.timezone.as_deref())
            .map(|_| ())
    }

    /// The longest time between two runs of the backup schedule (what staleness alerts
    /// wait for), over a year of runs from a fixed date so that generated rules are stable.
    pub(crate) fn backup_interval(
        &self,
        schedule: &str,
        timezone: Option<&str>,
    ) -> Result<Duration, Error> {
        let invalid = || {
            Error::InvalidValue {
            at: self.at(&["backup", "schedule"]),
            key: "schedule",
            value: format!("\"{schedule}\""),
            expected: "a crontab line such as \"0 * * * *\" (minute hour day month weekday) or @hourly/@daily/@weekly/@monthly",
        }
        };
        let parsed = cron::Schedule::from_str(&crate::model::cron_expression(schedule))
            .map_err(|_| invalid())?;
        // Gaps in the schedule's own zone: a daylight-saving change makes one day's gap
        // longer or shorter, and staleness alerts must allow the longest.
        let tz: chrono_tz::Tz = timezone
            .and_then(|t| t.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let start = chrono::DateTime::<chrono::Utc>::from_timestamp(1_767_225_600, 0)
            .expect("2026-01-01 is a valid time")
            .with_timezone(&tz);
        let end = start + chrono::Duration::days(366);
        let mut longest = Duration::ZERO;
        let mut previous: Option<chrono::DateTime<chrono_tz::Tz>> = None;
        for t in parsed.after(&start).take(10_000) {
            if let Some(p) = previous {
                longest = longest.max((t - p).to_std().unwrap_or_default());
            }
            previous = Some(t);
            if t > end {
                break;
            }
        }
        if previous.is_none() || longest.is_zero() {
            return Err(invalid());
        }
        Ok(longest)
    }

    fn inspection(&self, f: &File) -> Result<(), Error> {
        let i = &f.inspection;
        self.require(
            i.large_value_fail_bytes > i.large_value_warn_bytes,
            &["inspection", "large_value_fail_bytes"],
            "large_value_fail_bytes",
            i.large_value_fail_bytes,
            "above large_value_warn_bytes",
        )?;
        self.require(
            i.key_growth_warn_percent > 0.0 && i.key_growth_warn_percent.is_finite(),
            &["inspection", "key_growth_warn_percent"],
            "key_growth_warn_percent",
            i.key_growth_warn_percent,
            "a number above 0",
        )?;
        self.require(
            i.key_growth_fail_percent > i.key_growth_warn_percent
                && i.key_growth_fail_percent.is_finite(),
            &["inspection", "key_growth_fail_percent"],
            "key_growth_fail_percent",
            i.key_growth_fail_percent,
            "above key_growth_warn_percent",
        )?;
        self.require(
            i.prefix_depth >= 1,
            &["inspection", "prefix_depth"],
            "prefix_depth",
            i.prefix_depth,
            "at least 1",
        )?;
        self.require(
            i.top >= 1,
            &["inspection", "top"],
            "top",
            i.top,
            "at least 1",
        )?;
        self.require(
            i.versions_warn >= 1,
            &["inspection", "versions_warn"],
            "versions_warn",
            i.versions_warn,
            "at least 1",
        )?;
        self.require(
            i.scan_page_keys >= 1,
            &["inspection", "scan_page_keys"],
            "scan_page_keys",
            i.scan_page_keys,
            "at least 1",
        )?;
        self.require(
            i.scan_page_bytes >= 1024 * 1024,
            &["inspection", "scan_page_bytes"],
            "scan_page_bytes",
            i.scan_page_bytes,
            "at least 1048576 (1 MiB)",
        )?;
        self.require(
            i.quota_warn_percent > 0.0 && i.quota_warn_percent <= 100.0,
            &["inspection", "quota_warn_percent"],
            "quota_warn_percent",
            i.quota_warn_percent,
            "a percentage above 0 and at most 100",
        )?;
        self.require(
            i.index_spread_fail > i.index_spread_warn,
            &["inspection", "index_spread_fail"],
            "index_spread_fail",
            i.index_spread_fail,
            "above index_spread_warn",
        )?;
        self.require(
            i.hot_prefix_warn_per_second > 0.0 && i.hot_prefix_warn_per_second.is_finite(),
            &["inspection", "hot_prefix_warn_per_second"],
            "hot_prefix_warn_per_second",
            i.hot_prefix_warn_per_second,
            "a number above 0",
        )?;
        self.require(
            i.hot_prefix_fail_per_second > i.hot_prefix_warn_per_second
                && i.hot_prefix_fail_per_second.is_finite(),
            &["inspection", "hot_prefix_fail_per_second"],
            "hot_prefix_fail_per_second",
            i.hot_prefix_fail_per_second,
            "above hot_prefix_warn_per_second",
        )?;
        self.require(
            i.read_latency_warn_ms > 0.0 && i.read_latency_warn_ms.is_finite(),
            &["inspection", "read_latency_warn_ms"],
            "read_latency_warn_ms",
            i.read_latency_warn_ms,
            "a number above 0",
        )?;
        self.require(
            i.read_latency_fail_ms > i.read_latency_warn_ms && i.read_latency_fail_ms.is_finite(),
            &["inspection", "read_latency_fail_ms"],
            "read_latency_fail_ms",
            i.read_latency_fail_ms,
            "above read_latency_warn_ms",
        )
    }
}

/// Member and cluster names go into flags and label values: keep them plain.
/// What [`is_name`] accepts, for errors.
const NAME: &str = "letters, digits, '-', '_' and '.'";

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// `host:port` as Prometheus takes a target (IPv6 addresses in brackets).
fn is_target(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => match v6.parse::<std::net::Ipv6Addr>() {
            Ok(_) => return port.parse::<u16>().is_ok_and(|p| p > 0),
            Err(_) => return false,
        },
        None => host,
    };
    !host.contains(':')
        && canonical_address(host).is_some()
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

/// The address in one spelling per host (IPs normalised, DNS names lower-cased), or `None`
/// when it is neither an IP address nor an RFC 1123 host name.
fn canonical_address(s: &str) -> Option<String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let labels: Vec<&str> = s.strip_suffix('.').unwrap_or(s).split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // An all-digit last label is a mistyped IPv4 address, not a name.
    let last_is_numeric = labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()));
    (s.len() <= 253 && labels.iter().all(label_ok) && !last_is_numeric)
        .then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Inventory;

    const CLUSTER: &str = "[cluster]\nname = \"main\"\nbinary = \"cairn-server\"\ntoken = \"t\"\n";
    const THREE: &str = "[[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[hosts]]\nname = \"b\"\naddress = \"10.0.0.2\"\n[[hosts]]\nname = \"c\"\naddress = \"10.0.0.3\"\n";

    /// The error for `text`, with its `line:column` and message.
    fn error(text: &str) -> (usize, usize, String) {
        let err = Inventory::parse(Path::new("dir/cairn.toml"), text.to_string())
            .expect_err("invalid inventory");
        let at = match &err {
            Error::NoHosts { at }
            | Error::DuplicateHostName { at, .. }
            | Error::DuplicateAddress { at, .. }
            | Error::InvalidAddress { at, .. }
            | Error::PortClash { at, .. }
            | Error::PortTaken { at, .. }
            | Error::NotLoopback { at, .. }
            | Error::InvalidDuration { at, .. }
            | Error::InvalidValue { at, .. }
            | Error::Syntax { at, .. }
            | Error::MissingFile { at, .. }
            | Error::MissingVariable { at, .. } => at.clone(),
            Error::Read { .. } => panic!("{err}"),
        };
        assert_eq!(at.file, Path::new("dir/cairn.toml"));
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("dir/cairn.toml:{}:{}: ", at.line, at.column)),
            "{message}"
        );
        (at.line, at.column, message)
    }

    fn warnings(text: &str) -> Vec<String> {
        Inventory::parse(Path::new("cairn.toml"), text.to_string())
            .expect("valid")
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn no_hosts() {
        let (line, col, msg) = error(CLUSTER);
        assert_eq!((line, col), (1, 1));
        assert!(
            msg.ends_with(
                "the inventory has no hosts; add one [[hosts]] table (name, address) per member"
            ),
            "{msg}"
        );
        let (line, col, _) = error(&format!("{CLUSTER}hosts = []\n"));
        assert_eq!((line, col), (5, 1));
    }

    #[test]
    fn duplicate_host_name() {
        let text = format!("{CLUSTER}{THREE}").replace("name = \"c\"", "name = \"a\"");
        let (line, col, msg) = error(&text);
        assert_eq!((line, col), (12, 8));
        assert!(
            msg.ends_with(
                "host name \"a\" is already used at line 6; give every member its own name"
            ),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_address_in_another_spelling() {
        let text = format!("{CLUSTER}{THREE}")
            .replace("10.0.0.3", "10.0.0.1")
            .replace("10.0.0.2", "::2");
        let (line, col, msg) = error(&text);
        assert_eq!((line, col), (13, 11));
        assert!(
            msg.ends_with(
                "address \"10.0.0.1\" is already used at line 7; each member needs its own host"
            ),
            "{msg}"
        );
        let text = format!("{CLUSTER}{THREE}")
            .replace("10.0.0.3", "A.example")
            .replace("10.0.0.2", "a.EXAMPLE");
        assert_eq!(error(&text).0, 13);
    }

    #[test]
    fn local_members_share_an_address_but_not_a_port() {
        const LOCAL: &str = "[cluster]\nname = \"main\"\nbinary = \"cairn-server\"\ntoken = \"t\"\ntransport = \"local\"\n";
        let host = |name: &str, client: u16, peer: u16| {
            format!("[[hosts]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nclient_port = {client}\npeer_port = {peer}\n")
        };
        let ok = format!(
            "{LOCAL}{}{}",
            host("a", 2379, 2380),
            host("b", 12379, 12380)
        );
        assert!(Inventory::parse(Path::new("cairn.toml"), ok).is_ok());

        let (line, col, msg) = error(&format!(
            "{LOCAL}{}{}",
            host("a", 2379, 2380),
            host("b", 12379, 2379)
        ));
        assert_eq!((line, col), (15, 13));
        assert!(
            msg.ends_with(
                "127.0.0.1:2379 is already a's; members on one machine need ports of their own"
            ),
            "{msg}"
        );
        let (line, _, msg) = error(&format!(
            "{LOCAL}{}{}",
            host("a", 2379, 2380),
            host("b", 2380, 2380)
        ));
        assert_eq!(line, 15);
        assert!(
            msg.ends_with("peer_port 2380 is also the client_port; give each port its own number"),
            "{msg}"
        );
        let (_, _, msg) =
            error(&format!("{LOCAL}{}", host("a", 2379, 2380)).replace("127.0.0.1", "10.0.0.1"));
        assert!(
            msg.contains("\"10.0.0.1\" is not a loopback address"),
            "{msg}"
        );
        // Over SSH, one address is one machine: the ports do not make two hosts of it.
        let (_, _, msg) = error(&format!(
            "{CLUSTER}{}{}",
            host("a", 2379, 2380),
            host("b", 12379, 12380)
        ));
        assert!(msg.ends_with("each member needs its own host"), "{msg}");
        // One scrape scheme per job: metrics ports on every member or none.
        let (line, _, msg) = error(&format!(
            "{LOCAL}{}metrics_port = 2381\n{}",
            host("a", 2379, 2380),
            host("b", 12379, 12380)
        ));
        assert_eq!(line, 13);
        assert!(msg.contains("set on every host or on none"), "{msg}");
    }

    #[test]
    fn invalid_address() {
        let text = format!("{CLUSTER}{THREE}").replace("10.0.0.2", "10.0.0.256");
        let (line, col, msg) = error(&text);
        assert_eq!((line, col), (10, 11));
        assert!(
            msg.contains("\"10.0.0.256\" is neither an IP address nor a DNS name; write e.g."),
            "{msg}"
        );
    }

    #[test]
    fn ports_must_differ() {
        let (line, col, msg) = error(&format!("{CLUSTER}peer_port = 2379\n{THREE}"));
        assert_eq!((line, col), (5, 13));
        assert!(
            msg.ends_with("peer_port 2379 is also the client_port; give each port its own number"),
            "{msg}"
        );
        let (line, col, msg) = error(&format!("{CLUSTER}metrics_port = 2380\n{THREE}"));
        assert_eq!((line, col), (5, 16));
        assert!(
            msg.ends_with("metrics_port 2380 is also the peer_port; give each port its own number"),
            "{msg}"
        );
        let (_, _, msg) = error(&format!("{CLUSTER}client_port = 0\n{THREE}"));
        assert!(
            msg.ends_with("client_port = 0 is not allowed: it must be a port from 1 to 65535"),
            "{msg}"
        );
    }

    #[test]
    fn thresholds_in_range_and_ordered() {
        let (line, col, msg) = error(&format!(
            "{CLUSTER}{THREE}[alerts]\nfsync_p99_critical_seconds = 0.2\n"
        ));
        assert_eq!((line, col), (15, 30));
        assert!(msg.ends_with("fsync_p99_critical_seconds = 0.2 is not allowed: it must be above fsync_p99_warning_seconds"), "{msg}");
        let (_, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[alerts]\nfailed_grpc_warning_percent = 100.0\n"
        ));
        assert!(msg.contains("a percentage above 0 and below 100"), "{msg}");
        let (_, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[alerts]\ncluster_label = \"__c\"\n"
        ));
        assert!(
            msg.contains("cluster_label = \"__c\" is not allowed"),
            "{msg}"
        );
        let (line, _, msg) = error(&format!("{CLUSTER}election_timeout_ms = 400\n{THREE}"));
        assert_eq!(line, 5);
        assert!(
            msg.ends_with("at least 5 times heartbeat_interval_ms, as etcd requires"),
            "{msg}"
        );
    }

    #[test]
    fn names_that_would_break_flags() {
        let (line, col, msg) =
            error(&format!("{CLUSTER}{THREE}").replace("name = \"b\"", "name = \"b=c\""));
        assert_eq!((line, col), (9, 8));
        assert!(msg.contains("name = \"b=c\" is not allowed"), "{msg}");
    }

    #[test]
    fn durations() {
        let (line, col, msg) = error(&format!(
            "{CLUSTER}{THREE}[backup]\nstore = \"file:///b\"\nincremental = \"often\"\n"
        ));
        assert_eq!((line, col), (16, 15));
        assert!(
            msg.ends_with(
                "incremental = \"often\" is not a duration; write e.g. \"30m\" or \"2h\""
            ),
            "{msg}"
        );
        let (_, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[alerts]\nbackup_stale_after = \"0s\"\n"
        ));
        assert!(
            msg.ends_with(
                "backup_stale_after = \"0s\" is not allowed: it must be longer than zero"
            ),
            "{msg}"
        );
    }

    #[test]
    fn ca_files_go_together() {
        let (line, col, msg) = error(&format!("{CLUSTER}{THREE}[tls]\nca_cert = \"ca.pem\"\n"));
        assert_eq!((line, col), (15, 11));
        assert!(
            msg.contains("both set (the operator's CA) or both absent"),
            "{msg}"
        );
    }

    #[test]
    fn odd_member_counts_have_no_warning() {
        assert!(warnings(&format!("{CLUSTER}{THREE}")).is_empty());
    }

    #[test]
    fn one_or_an_even_number_of_members_warns() {
        let one = "[[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n";
        assert_eq!(
            warnings(&format!("{CLUSTER}{one}")),
            ["cairn.toml:6:8: a single member survives no failure; use 3 or 5 hosts for production"]
        );
        let four = format!("{THREE}[[hosts]]\nname = \"d\"\naddress = \"10.0.0.4\"\n");
        assert_eq!(
            warnings(&format!("{CLUSTER}{four}")),
            ["cairn.toml:15:8: 4 members tolerate no more failures than 3 do; add or remove one host"]
        );
    }

    #[test]
    fn addresses_are_ips_or_host_names() {
        assert_eq!(canonical_address("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(canonical_address("::0001").as_deref(), Some("::1"));
        assert_eq!(
            canonical_address("Etcd1.Example.com").as_deref(),
            Some("etcd1.example.com")
        );
        for bad in [
            "10.0.0.300",
            "",
            "a..b",
            "-a.b",
            "a_b",
            "host name",
            "1.2.3",
        ] {
            assert_eq!(canonical_address(bad), None, "{bad}");
        }
    }

    #[test]
    fn targets_are_host_port() {
        for ok in ["10.0.0.1:9469", "[fd00::1]:9469", "cairn.example.com:80"] {
            assert!(is_target(ok), "{ok}");
        }
        for bad in [
            "10.0.0.1",
            "fd00::1:9469",
            "[fd00::1]",
            "h:0",
            "h:x",
            ":80",
            "[x]:80",
        ] {
            assert!(!is_target(bad), "{bad}");
        }
    }

    #[test]
    fn cairn_targets_and_backup_store() {
        let (line, col, msg) = error(&format!(
            "{CLUSTER}{THREE}[alerts]\ncairn_targets = [\"a:1\", \"b\"]\n"
        ));
        assert_eq!((line, col), (15, 25));
        assert!(
            msg.contains("cairn_targets = \"b\" is not allowed: it must be host:port entries"),
            "{msg}"
        );
        let (line, col, msg) = error(&format!("{CLUSTER}{THREE}[backup]\nstore = \"ftp://x\"\n"));
        assert_eq!((line, col), (15, 9));
        assert!(
            msg.ends_with(
                "store = \"ftp://x\" is not allowed: it must be s3://bucket/prefix or file:///path"
            ),
            "{msg}"
        );
        let (line, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[backup]\nstore = \"s3://b\"\nschedule = \"every hour\"\n"
        ));
        assert_eq!(line, 16);
        assert!(
            msg.contains("schedule = \"every hour\" is not allowed: it must be a crontab line"),
            "{msg}"
        );
    }

    #[test]
    fn the_backup_host_and_timezone_must_exist() {
        let (line, col, msg) = error(&format!(
            "{CLUSTER}{THREE}[backup]\nstore = \"s3://b\"\nhost = \"d\"\n"
        ));
        assert_eq!((line, col), (16, 8));
        assert!(
            msg.ends_with(
                "host = \"d\" is not allowed: it must be the name of one of the [[hosts]]"
            ),
            "{msg}"
        );
        let (line, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[backup]\nstore = \"s3://b\"\ntimezone = \"Mars/Olympus\"\n"
        ));
        assert_eq!(line, 16);
        assert!(msg.contains("an IANA time zone name"), "{msg}");
    }

    #[test]
    fn inspection_limits_are_checked_at_their_line() {
        let (line, col, msg) = error(&format!("{CLUSTER}{THREE}[inspection]\nprefix_depth = 0\n"));
        assert_eq!((line, col), (15, 16));
        assert!(
            msg.ends_with("prefix_depth = 0 is not allowed: it must be at least 1"),
            "{msg}"
        );
        let (line, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[inspection]\nhot_prefix_warn_per_second = 10.0\nhot_prefix_fail_per_second = 5.0\n"
        ));
        assert_eq!(line, 16);
        assert!(
            msg.ends_with("it must be above hot_prefix_warn_per_second"),
            "{msg}"
        );
        let (line, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[inspection]\nhot_prefix_window = \"soon\"\n"
        ));
        assert_eq!(line, 15);
        assert!(
            msg.contains("hot_prefix_window = \"soon\" is not a duration"),
            "{msg}"
        );
        let (_, _, msg) = error(&format!(
            "{CLUSTER}{THREE}[inspection]\nscan_page_bytes = 1024\n"
        ));
        assert!(
            msg.ends_with("it must be at least 1048576 (1 MiB)"),
            "{msg}"
        );
    }

    #[test]
    fn label_names_follow_prometheus() {
        assert!(is_label_name("cluster"));
        assert!(is_label_name("_x1"));
        assert!(!is_label_name("__name__"));
        assert!(!is_label_name("1x"));
        assert!(!is_label_name("a-b"));
    }
}
