//! The text files each host gets: an env file with etcd's `ETCD_*` names, so one file drives
//! cairn-server or etcd 3.4, and a systemd unit that runs the pushed binary with it.

use std::fmt::Write as _;

use cairn_inventory::model::CompactionMode;
use cairn_inventory::{Host, Inventory, ServerKind};

use crate::layout;

/// Where a member's env file says its TLS files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// The CA certificate (bundle) it trusts.
    pub ca: String,
    /// Its certificate.
    pub cert: String,
    /// Its key.
    pub key: String,
}

impl TlsPaths {
    /// The fixed paths on a provisioned host ([`layout`]).
    pub fn on_host() -> Self {
        Self {
            ca: layout::CA_CERT.into(),
            cert: layout::MEMBER_CERT.into(),
            key: layout::MEMBER_KEY.into(),
        }
    }
}

/// `ETCD_INITIAL_CLUSTER_STATE`: found a cluster or join one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Every member of `ETCD_INITIAL_CLUSTER` starts together and forms the cluster.
    New,
    /// The member was added with MemberAdd and joins the running cluster.
    Existing,
}

/// The `ETCD_INITIAL_CLUSTER*` values a member's env file carries. They are read only on the
/// member's first start (a member with data ignores them), so the provisioner keeps what a
/// running member's file already says: adding or removing other members never rewrites it
/// and never restarts it. Only a member that is about to start without data gets new values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bootstrap {
    /// `ETCD_INITIAL_CLUSTER`: `name=peer-url,...`.
    pub initial_cluster: String,
    /// `ETCD_INITIAL_CLUSTER_STATE`.
    pub state: ClusterState,
}

impl Bootstrap {
    /// A new cluster of every inventory member.
    pub fn new_cluster(inventory: &Inventory) -> Self {
        Self {
            initial_cluster: inventory.initial_cluster(),
            state: ClusterState::New,
        }
    }

    /// Joining a running cluster whose members (with the joining one) are `members`, as
    /// `(name, peer URL)`: etcd checks that they are exactly the cluster's.
    pub fn join<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let initial_cluster = members
            .into_iter()
            .map(|(name, url)| format!("{name}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        Self {
            initial_cluster,
            state: ClusterState::Existing,
        }
    }

    /// What an env file this module wrote says, or `None` when it does not say both.
    pub fn from_env_file(text: &str) -> Option<Self> {
        let var = |name: &str| {
            text.lines().find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|r| r.strip_prefix('='))
                    .map(unquote)
            })
        };
        let state = match var("ETCD_INITIAL_CLUSTER_STATE")?.as_str() {
            "new" => ClusterState::New,
            "existing" => ClusterState::Existing,
            _ => return None,
        };
        Some(Self {
            initial_cluster: var("ETCD_INITIAL_CLUSTER")?,
            state,
        })
    }
}

/// The member's env file on a provisioned host: [`env_vars`] with the fixed TLS paths.
pub fn env_file(inventory: &Inventory, host: &Host, bootstrap: &Bootstrap) -> String {
    format_env_file(
        inventory,
        &env_vars(inventory, host, bootstrap, &TlsPaths::on_host()),
    )
}

/// The member's etcd variables: identity, URLs, bootstrap ([`Bootstrap`]), raft timings,
/// storage and TLS settings (with `tls` as its files).
pub fn env_vars(
    inventory: &Inventory,
    host: &Host,
    bootstrap: &Bootstrap,
    tls: &TlsPaths,
) -> Vec<(&'static str, String)> {
    let cluster = &inventory.cluster;
    let client_url = inventory.client_url(host);
    let peer_url = inventory.peer_url(host);
    let mut vars: Vec<(&str, String)> = vec![
        ("ETCD_NAME", host.name.clone()),
        (
            "ETCD_DATA_DIR",
            inventory.data_dir(host).display().to_string(),
        ),
        ("ETCD_LISTEN_CLIENT_URLS", client_url.clone()),
        ("ETCD_ADVERTISE_CLIENT_URLS", client_url),
        ("ETCD_LISTEN_PEER_URLS", peer_url.clone()),
        ("ETCD_INITIAL_ADVERTISE_PEER_URLS", peer_url),
        ("ETCD_INITIAL_CLUSTER", bootstrap.initial_cluster.clone()),
        ("ETCD_INITIAL_CLUSTER_TOKEN", cluster.token.clone()),
        (
            "ETCD_INITIAL_CLUSTER_STATE",
            match bootstrap.state {
                ClusterState::New => "new",
                ClusterState::Existing => "existing",
            }
            .into(),
        ),
        (
            "ETCD_HEARTBEAT_INTERVAL",
            cluster.heartbeat_interval_ms.to_string(),
        ),
        (
            "ETCD_ELECTION_TIMEOUT",
            cluster.election_timeout_ms.to_string(),
        ),
    ];
    if let Some(bytes) = cluster.quota_backend_bytes {
        vars.push(("ETCD_QUOTA_BACKEND_BYTES", bytes.to_string()));
    }
    if let Some(count) = cluster.snapshot_count {
        vars.push(("ETCD_SNAPSHOT_COUNT", count.to_string()));
    }
    if let Some(ac) = &cluster.auto_compaction {
        let mode = match ac.mode {
            CompactionMode::Periodic => "periodic",
            CompactionMode::Revision => "revision",
        };
        vars.push(("ETCD_AUTO_COMPACTION_MODE", mode.into()));
        vars.push(("ETCD_AUTO_COMPACTION_RETENTION", ac.retention.clone()));
    }
    if inventory.metrics_port(host).is_some() {
        let target = inventory.metrics_target(host);
        vars.push(("ETCD_LISTEN_METRICS_URLS", format!("http://{target}")));
    }
    if inventory.tls.is_some() {
        vars.extend([
            ("ETCD_CERT_FILE", tls.cert.clone()),
            ("ETCD_KEY_FILE", tls.key.clone()),
            ("ETCD_TRUSTED_CA_FILE", tls.ca.clone()),
            ("ETCD_CLIENT_CERT_AUTH", "true".into()),
            ("ETCD_PEER_CERT_FILE", tls.cert.clone()),
            ("ETCD_PEER_KEY_FILE", tls.key.clone()),
            ("ETCD_PEER_TRUSTED_CA_FILE", tls.ca.clone()),
            ("ETCD_PEER_CLIENT_CERT_AUTH", "true".into()),
        ]);
    }
    vars
}

/// `vars` as an EnvironmentFile, under a header naming the cluster.
pub fn format_env_file(inventory: &Inventory, vars: &[(&str, String)]) -> String {
    let mut out = format!(
        "# Written by cairn provision from the inventory of cluster {}; edit the inventory, not this file.\n",
        inventory.cluster.name
    );
    for (name, value) in vars {
        let _ = writeln!(out, "{name}={}", env_value(value));
    }
    out
}

/// A value as systemd's EnvironmentFile reads it: bare when it has nothing special, else in
/// double quotes with `\` and `"` escaped.
fn env_value(value: &str) -> String {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:.,=_-+@[]".contains(c))
    {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// The value [`env_value`] wrote.
fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    out.extend(chars.next());
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => value.to_string(),
    }
}

/// The variables of an env file [`format_env_file`] wrote, as systemd reads them (comments and
/// blank lines skipped), for the local transport, which starts members itself.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once('=')?;
            Some((name.trim().to_string(), unquote(value.trim())))
        })
        .collect()
}

/// What a unit [`unit_file`] wrote runs: its `ExecStart=` command line split and unescaped as
/// systemd does, and its `EnvironmentFile=`, for the local transport.
pub fn parse_unit(text: &str) -> Option<(Vec<String>, Option<String>)> {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    let exec = split_exec(value("ExecStart")?);
    let env = value("EnvironmentFile").map(|e| e.trim_start_matches('-').to_string());
    (!exec.is_empty()).then_some((exec, env))
}

/// An `ExecStart=` line's words: the inverse of [`exec_arg`].
fn split_exec(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(first) = chars.next() else {
            return words;
        };
        let mut word = String::new();
        let quoted = first == '"';
        if !quoted {
            word.push(first);
        }
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted => break,
                '\\' if quoted => word.extend(chars.next()),
                c if c.is_whitespace() && !quoted => break,
                c => word.push(c),
            }
        }
        words.push(word.replace("$$", "$").replace("%%", "%"));
    }
}

/// The member's systemd unit: the pushed binary with the env file and the inventory's extra
/// flags, restarted on failure, after the network is up.
pub fn unit_file(inventory: &Inventory, host: &Host) -> String {
    let cluster = &inventory.cluster;
    let what = match cluster.server {
        ServerKind::Cairn => "cairn-server",
        ServerKind::Etcd => "etcd",
    };
    let mut exec = layout::binary(cluster.server).to_string();
    for flag in &cluster.extra_flags {
        exec.push(' ');
        exec.push_str(&exec_arg(flag));
    }
    format!(
        "# Written by cairn provision from the inventory of cluster {name}; edit the inventory, not this file.\n\
         [Unit]\n\
         Description={what} member {member} of cluster {name}\n\
         Documentation=https://github.com/cairn-ops/cairn\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         EnvironmentFile={env}\n\
         ExecStart={exec}\n\
         Restart=on-failure\n\
         RestartSec=5s\n\
         LimitNOFILE=65536\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        name = cluster.name,
        member = host.name,
        env = layout::ENV_FILE,
    )
}

/// The backup daemon's unit on the `[backup] host`: `cairn backupd` with its own inventory,
/// after the member (it backs the cluster up through it), with the `AWS_*` environment file
/// when there is one. A stop lets the backup in flight finish, so the stop timeout is long.
pub fn backupd_unit(inventory: &Inventory) -> String {
    let cluster = &inventory.cluster;
    let environment = match inventory
        .backup
        .as_ref()
        .and_then(|b| b.environment_file.as_ref())
    {
        Some(_) => format!("EnvironmentFile={}\n", layout::BACKUPD_ENV_FILE),
        None => String::new(),
    };
    format!(
        "# Written by cairn provision from the inventory of cluster {name}; edit the inventory, not this file.\n\
         [Unit]\n\
         Description=cairn backup daemon of cluster {name}\n\
         Documentation=https://github.com/cairn-ops/cairn\n\
         After=network-online.target {member_unit}\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         {environment}\
         ExecStart={cairn} backupd --inventory {inventory}\n\
         Restart=on-failure\n\
         RestartSec=30s\n\
         TimeoutStopSec=30min\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        name = cluster.name,
        member_unit = layout::UNIT_NAME,
        cairn = layout::CAIRN_BINARY,
        inventory = layout::BACKUPD_INVENTORY,
    )
}

/// The inventory `cairn backupd` reads on its host: the operator's, with the paths of that
/// host (the pushed server binary, the daemon's TLS directory and key file; the environment
/// file is the unit's) and none of the operator's own. Everything else, the store and
/// schedule included, is as written.
pub fn backupd_inventory(inventory: &Inventory) -> Result<String, crate::Error> {
    let mut backup = inventory.backup.clone();
    if let Some(b) = &mut backup {
        if b.encryption_key_file.is_some() {
            b.encryption_key_file = Some(layout::BACKUPD_KEY.into());
        }
        b.environment_file = None;
    }
    let file = cairn_inventory::model::File {
        cluster: cairn_inventory::Cluster {
            binary: layout::binary(inventory.cluster.server).into(),
            ..inventory.cluster.clone()
        },
        ssh: cairn_inventory::Ssh::default(),
        tls: inventory.tls.as_ref().map(|t| cairn_inventory::Tls {
            dir: layout::BACKUPD_PKI_DIR.into(),
            ca_cert: None,
            ca_key: None,
            ..t.clone()
        }),
        hosts: inventory.hosts.clone(),
        // Local paths of the operator's machine mean nothing on the host; the daemon reads
        // neither.
        alerts: cairn_inventory::Alerts {
            prometheus_tls_dir: None,
            ..inventory.alerts.clone()
        },
        backup,
        inspection: cairn_inventory::Inspection {
            state_file: Some(format!("{}/inspection-state.json", layout::BACKUPD_DIR).into()),
            ..inventory.inspection.clone()
        },
        // Only the login: the users and roles are the operator's to provision.
        auth: inventory.auth.as_ref().map(|a| cairn_inventory::Auth {
            root_password_file: (a.root_password_file.is_some() || a.root_password_env.is_some())
                .then(|| layout::BACKUPD_ROOT_PASSWORD.into()),
            root_password_env: None,
            roles: Vec::new(),
            users: Vec::new(),
            ..a.clone()
        }),
    };
    let text = toml::to_string(&file)?;
    Ok(format!(
        "# Written by cairn provision from the inventory of cluster {}, for cairn backupd on this host; edit the operator's inventory, not this file.\n{text}",
        inventory.cluster.name
    ))
}

/// One ExecStart argument, quoted and escaped as systemd parses command lines (`$` and `%`
/// doubled so they are not expanded).
fn exec_arg(arg: &str) -> String {
    let escaped = arg.replace('%', "%%").replace('$', "$$");
    if escaped
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/:.,=_-+@".contains(c))
    {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn inventory(extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n{extra}\n\
             [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n\
             [[hosts]]\nname = \"b\"\naddress = \"10.0.0.2\"\ndata_dir = \"/data/my cairn\"\n"
        );
        Inventory::parse(Path::new("/x/cairn.toml"), text).expect("inventory")
    }

    fn var<'a>(env: &'a str, name: &str) -> Option<&'a str> {
        env.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
    }

    #[test]
    fn a_unit_and_env_file_read_back_as_written() {
        let inv = inventory(
            "extra_flags = [\"--log-level=debug\", \"--x=a b\", \"--y=$HOME%\", \"--z=\\\"q\\\"\"]",
        );
        let unit = unit_file(&inv, &inv.hosts[0]);
        let (exec, env) = parse_unit(&unit).expect("ExecStart");
        assert_eq!(
            exec,
            [
                layout::binary(ServerKind::Cairn),
                "--log-level=debug",
                "--x=a b",
                "--y=$HOME%",
                "--z=\"q\""
            ]
        );
        assert_eq!(env.as_deref(), Some(layout::ENV_FILE));
        let host = &inv.hosts[1];
        let vars = env_vars(
            &inv,
            host,
            &Bootstrap::new_cluster(&inv),
            &TlsPaths::on_host(),
        );
        let parsed = parse_env_file(&format_env_file(&inv, &vars));
        let written: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        assert_eq!(parsed, written);
        assert!(
            parsed.iter().any(|(_, v)| v == "/data/my cairn"),
            "{parsed:?}"
        );
    }

    #[test]
    fn plain_clusters_have_no_tls_variables() {
        let inv = inventory("");
        let env = env_file(&inv, &inv.hosts[0], &Bootstrap::new_cluster(&inv));
        assert_eq!(
            var(&env, "ETCD_LISTEN_CLIENT_URLS"),
            Some("http://10.0.0.1:2379")
        );
        assert_eq!(
            var(&env, "ETCD_INITIAL_CLUSTER"),
            Some("a=http://10.0.0.1:2380,b=http://10.0.0.2:2380")
        );
        assert!(!env.contains("CERT"), "{env}");
        assert_eq!(var(&env, "ETCD_QUOTA_BACKEND_BYTES"), None);
    }

    #[test]
    fn values_with_spaces_are_quoted() {
        let inv = inventory("");
        let env = env_file(&inv, &inv.hosts[1], &Bootstrap::new_cluster(&inv));
        assert_eq!(var(&env, "ETCD_DATA_DIR"), Some("\"/data/my cairn\""));
    }

    #[test]
    fn the_bootstrap_values_are_read_back_from_a_written_file() {
        let inv = inventory("");
        for bootstrap in [
            Bootstrap::new_cluster(&inv),
            Bootstrap::join([("a", "http://10.0.0.1:2380"), ("n\"ew", "http://x y:1")]),
        ] {
            let env = env_file(&inv, &inv.hosts[1], &bootstrap);
            assert_eq!(Bootstrap::from_env_file(&env), Some(bootstrap), "{env}");
        }
        let joined = env_file(
            &inv,
            &inv.hosts[1],
            &Bootstrap::join([("a", "http://10.0.0.1:2380"), ("b", "http://10.0.0.2:2380")]),
        );
        assert_eq!(var(&joined, "ETCD_INITIAL_CLUSTER_STATE"), Some("existing"));
        assert_eq!(Bootstrap::from_env_file("ETCD_NAME=a\n"), None);
    }

    #[test]
    fn extra_flags_are_escaped_for_systemd() {
        let inv = inventory("extra_flags = [\"--log-level=debug\", \"--x=a b\", \"--y=$HOME%\"]\n");
        let unit = unit_file(&inv, &inv.hosts[0]);
        assert!(
            unit.contains("ExecStart=/usr/local/bin/cairn-server --log-level=debug \"--x=a b\" \"--y=$$HOME%%\"\n"),
            "{unit}"
        );
    }
}
