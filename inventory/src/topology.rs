//! What the tools derive from the hosts: URLs, `--initial-cluster`, endpoints, per-host data
//! directories and SSH logins, computed once here so the provisioner, the backup tool and
//! the alert rules agree.

use std::net::Ipv6Addr;
use std::path::Path;

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
            host_port(&host.address, self.cluster.client_port)
        )
    }

    /// The member's peer URL (`--initial-advertise-peer-urls`).
    pub fn peer_url(&self, host: &Host) -> String {
        format!(
            "{}://{}",
            self.scheme(),
            host_port(&host.address, self.cluster.peer_port)
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

    /// The member's `--data-dir` on its host.
    pub fn data_dir<'a>(&'a self, host: &'a Host) -> &'a Path {
        host.data_dir.as_deref().unwrap_or(&self.cluster.data_dir)
    }

    /// The `host:port` Prometheus scrapes: the metrics port when set, else the client port.
    pub fn metrics_target(&self, host: &Host) -> String {
        host_port(
            &host.address,
            self.cluster
                .metrics_port
                .unwrap_or(self.cluster.client_port),
        )
    }

    /// Whether the metrics target speaks TLS (only the client port does, under `[tls]`).
    pub fn metrics_tls(&self) -> bool {
        self.tls.is_some() && self.cluster.metrics_port.is_none()
    }

    /// SSH user for `host`.
    pub fn ssh_user<'a>(&'a self, host: &'a Host) -> &'a str {
        host.ssh_user.as_deref().unwrap_or(&self.ssh.user)
    }

    /// SSH port for `host`.
    pub fn ssh_port(&self, host: &Host) -> u16 {
        host.ssh_port.unwrap_or(self.ssh.port)
    }
}

/// `address:port`, with IPv6 addresses in brackets as URLs need them.
fn host_port(address: &str, port: u16) -> String {
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
        assert_eq!((inv.ssh_user(a), inv.ssh_port(a)), ("ops", 22));
        assert_eq!((inv.ssh_user(b), inv.ssh_port(b)), ("root", 2222));
    }
}
