//! What the tools derive from the hosts: URLs, `--initial-cluster`, endpoints, per-host data
//! directories and SSH logins, computed once here so the provisioner, the backup tool and
//! the alert rules agree.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use crate::model::{Jump, Transport};
use crate::{Host, Inventory};

impl Inventory {
    /// `https` with `[tls]`, `http` without.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The member's client URL (`--advertise-client-urls`).
    pub fn client_url(&self, host: &Host) -> String {
        format!(
            "{}://{}",
            self.scheme(),
            host_port(&host.address, self.client_port(host))
        )
    }

    /// The member's peer URL (`--initial-advertise-peer-urls`).
    pub fn peer_url(&self, host: &Host) -> String {
        format!(
            "{}://{}",
            self.scheme(),
            host_port(&host.address, self.peer_port(host))
        )
    }

    /// `--initial-cluster`: `name=peer-url` for every member, in file order.
    pub fn initial_cluster(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("{}={}", h.name, self.peer_url(h)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every member's client URL, for `--endpoints`.
    pub fn endpoints(&self) -> Vec<String> {
        self.hosts.iter().map(|h| self.client_url(h)).collect()
    }

    /// The member names, in file order.
    pub fn member_names(&self) -> Vec<&str> {
        self.hosts.iter().map(|h| h.name.as_str()).collect()
    }

    /// The member's client port.
    pub fn client_port(&self, host: &Host) -> u16 {
        host.client_port.unwrap_or(self.cluster.client_port)
    }

    /// The member's peer port.
    pub fn peer_port(&self, host: &Host) -> u16 {
        host.peer_port.unwrap_or(self.cluster.peer_port)
    }

    /// The member's plain-HTTP metrics port, when it has one.
    pub fn metrics_port(&self, host: &Host) -> Option<u16> {
        host.metrics_port.or(self.cluster.metrics_port)
    }

    /// The member's `--data-dir` on its host; with `transport = "local"`,
    /// `data_dir/<name>/data` unless the host sets its own.
    pub fn data_dir(&self, host: &Host) -> PathBuf {
        match (&host.data_dir, self.cluster.transport) {
            (Some(dir), _) => dir.clone(),
            (None, Transport::Ssh) => self.cluster.data_dir.clone(),
            (None, Transport::Local) => self.local_dir(host).join("data"),
        }
    }

    /// The data directory of member `name` when the inventory does not list it (a member
    /// being removed): `[cluster] data_dir`, or with `transport = "local"` its directory's.
    pub fn unlisted_data_dir(&self, name: &str) -> PathBuf {
        match self.cluster.transport {
            Transport::Ssh => self.cluster.data_dir.clone(),
            Transport::Local => self.local_dir_of(name).join("data"),
        }
    }

    /// With `transport = "local"`, the directory of the member's own files (env file, data):
    /// `data_dir/<name>`.
    /// Absolute, as it is written into the member's env file, which a member reads from
    /// its own directory.
    pub fn local_dir(&self, host: &Host) -> PathBuf {
        self.local_dir_of(&host.name)
    }

    fn local_dir_of(&self, name: &str) -> PathBuf {
        let dir = self.cluster.data_dir.join(name);
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The `host:port` Prometheus scrapes: the metrics port when set, else the client port.
    pub fn metrics_target(&self, host: &Host) -> String {
        host_port(
            &host.address,
            self.metrics_port(host)
                .unwrap_or_else(|| self.client_port(host)),
        )
    }

    /// Whether the metrics targets speak TLS (only the client port does, under `[tls]`).
    /// Validation has every member's metrics on a metrics port, or none.
    pub fn metrics_tls(&self) -> bool {
        self.tls.is_some() && self.hosts.iter().all(|h| self.metrics_port(h).is_none())
    }

    /// Where the inspection keeps its state and history: `[inspection] state_file`, else a
    /// file of this cluster's in the user's state directory (never next to the inventory,
    /// which may be read-only or shared in a repository).
    pub fn inspection_state_file(&self) -> PathBuf {
        if let Some(file) = &self.inspection.state_file {
            return file.clone();
        }
        let env = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let base = env("STATE_DIRECTORY")
            .or_else(|| env("XDG_STATE_HOME"))
            .or_else(|| env("HOME").map(|h| h.join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("cairn")
            .join(&self.cluster.name)
            .join("inspection.json")
    }

    /// SSH user the inventory sets for `host`; `None` leaves it to `~/.ssh/config`.
    pub fn ssh_user<'a>(&'a self, host: &'a Host) -> Option<&'a str> {
        host.ssh_user.as_deref().or(self.ssh.user.as_deref())
    }

    /// SSH port the inventory sets for `host`; `None` leaves it to `~/.ssh/config`.
    pub fn ssh_port(&self, host: &Host) -> Option<u16> {
        host.ssh_port.or(self.ssh.port)
    }

    /// Bastions the inventory sets for `host`; `None` leaves them to `~/.ssh/config`.
    pub fn ssh_jump<'a>(&'a self, host: &'a Host) -> Option<&'a Jump> {
        host.ssh_jump.as_ref().or(self.ssh.jump.as_ref())
    }
}

/// `address:port`, with IPv6 addresses in brackets as URLs and socket addresses need them.
pub fn host_port(address: &str, port: u16) -> String {
    if address.parse::<Ipv6Addr>().is_ok() {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Inventory;

    fn inventory(extra: &str, hosts: &str) -> Inventory {
        let text = format!(
            "[cluster]\nname = \"c\"\nbinary = \"cairn-server\"\ntoken = \"t\"\n{extra}\n{hosts}"
        );
        Inventory::parse(Path::new("/etc/cairn/cairn.toml"), text).expect("valid")
    }

    const THREE: &str = "[[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\ndata_dir = \"/data\"\nssh_user = \"ops\"\n\
        [[hosts]]\nname = \"b\"\naddress = \"::1\"\nssh_port = 2222\n\
        [[hosts]]\nname = \"c\"\naddress = \"c.example.com\"\n";

    #[test]
    fn plain_urls_without_tls() {
        let inv = inventory("", THREE);
        assert_eq!(
            inv.endpoints(),
            [
                "http://10.0.0.1:2379",
                "http://[::1]:2379",
                "http://c.example.com:2379"
            ]
        );
        assert_eq!(
            inv.initial_cluster(),
            "a=http://10.0.0.1:2380,b=http://[::1]:2380,c=http://c.example.com:2380"
        );
        assert_eq!(inv.member_names(), ["a", "b", "c"]);
        assert_eq!(inv.metrics_target(&inv.hosts[1]), "[::1]:2379");
        assert!(!inv.metrics_tls());
    }

    #[test]
    fn https_urls_with_tls_and_a_separate_metrics_port() {
        let inv = inventory("client_port = 12379\nmetrics_port = 12381\n[tls]\n", THREE);
        assert_eq!(inv.client_url(&inv.hosts[0]), "https://10.0.0.1:12379");
        assert_eq!(inv.peer_url(&inv.hosts[0]), "https://10.0.0.1:2380");
        assert_eq!(inv.metrics_target(&inv.hosts[0]), "10.0.0.1:12381");
        assert!(!inv.metrics_tls());
        assert_eq!(
            inv.tls.as_ref().map(|t| t.dir.as_path()),
            Some(Path::new("/etc/cairn/pki"))
        );
    }

    #[test]
    fn per_host_overrides_win() {
        let inv = inventory("", THREE);
        let (a, b) = (&inv.hosts[0], &inv.hosts[1]);
        assert_eq!(inv.data_dir(a), Path::new("/data"));
        assert_eq!(inv.data_dir(b), Path::new("/var/lib/cairn"));
        assert_eq!((inv.ssh_user(a), inv.ssh_port(a)), (Some("ops"), None));
        assert_eq!((inv.ssh_user(b), inv.ssh_port(b)), (None, Some(2222)));
    }

    #[test]
    fn local_members_share_an_address_with_ports_and_directories_of_their_own() {
        let inv = inventory(
            "transport = \"local\"\ndata_dir = \"up\"\n[tls]\n",
            "[[hosts]]\nname = \"m1\"\naddress = \"127.0.0.1\"\nclient_port = 2379\npeer_port = 2380\n\
             [[hosts]]\nname = \"m2\"\naddress = \"127.0.0.1\"\nclient_port = 12379\npeer_port = 12380\n",
        );
        let (m1, m2) = (&inv.hosts[0], &inv.hosts[1]);
        assert_eq!(
            inv.initial_cluster(),
            "m1=https://127.0.0.1:2380,m2=https://127.0.0.1:12380"
        );
        assert_eq!(inv.client_url(m2), "https://127.0.0.1:12379");
        assert_eq!(inv.local_dir(m1), Path::new("/etc/cairn/up/m1"));
        assert_eq!(inv.data_dir(m2), Path::new("/etc/cairn/up/m2/data"));
        assert_eq!(inv.metrics_target(m2), "127.0.0.1:12379");
        assert!(inv.metrics_tls());
    }
}
