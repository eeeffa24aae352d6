//! `cairn import`: an inventory for a cluster that runs already, from its member list (names,
//! addresses, client and peer ports) and a member's Status (its version). What the cluster
//! cannot tell (the `--initial-cluster-token`, the binary to push) is written as a placeholder
//! the validation accepts, with a comment saying what to set.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use cairn_inventory::ServerKind;

use crate::Error;

/// The token written until the operator sets the real one.
pub const TOKEN_PLACEHOLDER: &str = "set-the-real-initial-cluster-token";

/// How to reach the cluster.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Client URLs of one or more members.
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) to trust, for https endpoints.
    pub cacert: Option<PathBuf>,
    /// Client certificate and key (PEM), when the members require one.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// How long each request may take.
    pub timeout: Duration,
}

/// One member as the member list gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedMember {
    /// Its name.
    pub name: String,
    /// Its first client URL.
    pub client_url: String,
    /// Its first peer URL.
    pub peer_url: String,
}

/// What the cluster told about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The members, in member-list order.
    pub members: Vec<ImportedMember>,
    /// The version a member's Status reports.
    pub version: String,
    /// Which server answered: cairn-server exports `cairn_server_info` in its metrics (both
    /// report etcd's version in Status).
    pub server: ServerKind,
}

/// The metric only cairn-server exports.
const CAIRN_METRIC: &str = "cairn_server_info";

/// Reads the member list and a Status from the first endpoint that answers.
pub async fn read_cluster(options: &Options) -> Result<Imported, Error> {
    let connector = cairn_client::Connector::from_parts(
        options.cacert.as_deref(),
        options
            .cert
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path())),
        None,
        options.timeout,
        options.timeout,
    )?;
    let endpoints = options.endpoints.join(",");
    let mut client = connector.connect_to(&options.endpoints).await?;
    let list = connector
        .timed(&endpoints, "a member list request", client.member_list())
        .await?;
    let status = connector
        .timed(&endpoints, "a status request", client.status())
        .await?;
    let members = list
        .members()
        .iter()
        .map(|m| ImportedMember {
            name: m.name().to_string(),
            client_url: m.client_urls().first().cloned().unwrap_or_default(),
            peer_url: m.peer_urls().first().cloned().unwrap_or_default(),
        })
        .collect();
    // The first endpoint's metrics, on its client URL, with the same credentials.
    let tls = match (&options.cacert, &options.cert) {
        (Some(ca), Some((cert, key))) => Some(cairn_client::TlsFiles {
            ca: ca.clone(),
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let http = cairn_client::HttpClient::new(tls.as_ref(), options.timeout)?;
    let first = options.endpoints.first().cloned().unwrap_or_default();
    let cairn = http.metrics(&first).await?.gauge(CAIRN_METRIC).is_some();
    Ok(Imported {
        members,
        version: status.version().to_string(),
        server: if cairn {
            ServerKind::Cairn
        } else {
            ServerKind::Etcd
        },
    })
}

/// An URL's scheme, host and port.
fn parts(url: &str) -> Option<(String, String, u16)> {
    let u = url::Url::parse(url).ok()?;
    let host = match u.host()? {
        url::Host::Ipv6(ip) => ip.to_string(),
        h => h.to_string(),
    };
    Some((u.scheme().to_string(), host, u.port_or_known_default()?))
}

/// The inventory text for `cluster` named `name`; when the members speak https, `[tls]`
/// with `tls_dir` (where the CA and admin certificate are put).
pub fn inventory_text(
    cluster: &Imported,
    name: &str,
    endpoints: &[String],
    tls_dir: &str,
) -> Result<String, Error> {
    let bad = |m: &ImportedMember| Error::UnexpectedOutput {
        host: m.name.clone(),
        command: "MemberList".into(),
        output: format!("client URL {:?}, peer URL {:?}", m.client_url, m.peer_url),
    };
    let mut hosts = Vec::new();
    for m in &cluster.members {
        if m.name.is_empty() {
            return Err(Error::UnstartedMember {
                peer_url: m.peer_url.clone(),
            });
        }
        let (scheme, address, client) = parts(&m.client_url).ok_or_else(|| bad(m))?;
        let (_, _, peer) = parts(&m.peer_url).ok_or_else(|| bad(m))?;
        hosts.push((m, scheme, address, client, peer));
    }
    // Members sharing an address run on one machine: an SSH inventory has one member per
    // host, so only loopback members (this machine's) can be written, as a local inventory.
    let mut seen = std::collections::HashMap::new();
    let mut local = false;
    for (m, _, address, _, _) in &hosts {
        if let Some(first) = seen.insert(address.as_str(), m.name.as_str()) {
            if !address
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            {
                return Err(Error::SharedAddress {
                    address: address.clone(),
                    first: first.to_string(),
                    second: m.name.clone(),
                });
            }
            local = true;
        }
    }
    let tls = hosts.iter().any(|h| h.1 == "https");
    let shared = |port: fn(&(&ImportedMember, String, String, u16, u16)) -> u16| {
        let first = hosts.first().map(port)?;
        hosts.iter().all(|h| port(h) == first).then_some(first)
    };
    let client_port = shared(|h| h.3);
    let peer_port = shared(|h| h.4);
    let kind = cluster.server;
    let (server, binary) = match kind {
        ServerKind::Cairn => ("cairn", "cairn-server"),
        ServerKind::Etcd => ("etcd", "etcd"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by cairn import from the member list of {}.\n\
         # Check every value before cairn provision uses this file.\n\
         [cluster]\n\
         name = {}\n\
         # Status reports version {}.\n\
         server = \"{server}\"\n\
         # The server binary cairn provision pushes: not known from the cluster, set its path.\n\
         binary = \"{binary}\"\n\
         # The cluster's --initial-cluster-token cannot be read from it: set the real one\n\
         # (members compare it when they join).\n\
         token = \"{TOKEN_PLACEHOLDER}\"",
        endpoints.join(","),
        toml_string(name),
        cluster.version,
    );
    if local {
        let _ = writeln!(
            out,
            "# The members share a loopback address: they run on this machine.\n\
             transport = \"local\""
        );
    }
    if let Some(p) = client_port {
        let _ = writeln!(out, "client_port = {p}");
    }
    if let Some(p) = peer_port {
        let _ = writeln!(out, "peer_port = {p}");
    }
    if tls {
        let _ = writeln!(
            out,
            "\n# The CA and admin client certificate given to cairn import are in dir (ca.pem,\n\
             # admin.pem, admin-key.pem); cairn provision also needs the CA's key there.\n\
             [tls]\ndir = {}",
            toml_string(tls_dir)
        );
    }
    for (m, _, address, client, peer) in &hosts {
        let _ = writeln!(
            out,
            "\n[[hosts]]\nname = {}\naddress = {}",
            toml_string(&m.name),
            toml_string(address)
        );
        if client_port.is_none() {
            let _ = writeln!(out, "client_port = {client}");
        }
        if peer_port.is_none() {
            let _ = writeln!(out, "peer_port = {peer}");
        }
    }
    Ok(out)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use cairn_inventory::Inventory;

    use super::*;

    fn member(name: &str, host: &str, client: u16, peer: u16) -> ImportedMember {
        ImportedMember {
            name: name.into(),
            client_url: format!("https://{host}:{client}"),
            peer_url: format!("https://{host}:{peer}"),
        }
    }

    fn load(text: &str) -> Inventory {
        Inventory::parse(Path::new("/x/cairn.toml"), text.to_string())
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn shared_ports_go_to_the_cluster_and_the_file_loads() {
        let cluster = Imported {
            members: vec![
                member("a", "10.0.0.1", 2379, 2380),
                member("b", "10.0.0.2", 2379, 2380),
                member("c", "10.0.0.3", 2379, 2380),
            ],
            version: "3.4.23".into(),
            server: ServerKind::Etcd,
        };
        let text = inventory_text(&cluster, "prod", &["https://10.0.0.1:2379".into()], "pki")
            .expect("text");
        assert!(text.contains("\nserver = \"etcd\"\n"), "{text}");
        assert!(
            text.contains("\ntoken = \"set-the-real-initial-cluster-token\"\n"),
            "{text}"
        );
        let inv = load(&text);
        assert_eq!(inv.cluster.client_port, 2379);
        assert!(inv.hosts.iter().all(|h| h.client_port.is_none()));
        assert_eq!(inv.endpoints()[1], "https://10.0.0.2:2379");
        assert_eq!(
            inv.initial_cluster(),
            "a=https://10.0.0.1:2380,b=https://10.0.0.2:2380,c=https://10.0.0.3:2380"
        );
    }

    #[test]
    fn different_ports_go_to_each_host() {
        let cluster = Imported {
            members: vec![
                member("a", "127.0.0.21", 3001, 4001),
                member("b", "127.0.0.22", 3002, 4002),
            ],
            version: "3.4.23".into(),
            server: ServerKind::Cairn,
        };
        let text = inventory_text(&cluster, "dev", &[], "pki").expect("text");
        assert!(text.contains("\nserver = \"cairn\"\n"), "{text}");
        let inv = load(&text);
        assert_eq!(inv.client_port(&inv.hosts[1]), 3002);
        assert_eq!(inv.peer_port(&inv.hosts[0]), 4001);
    }

    /// Members on one loopback address (a local cluster) made an inventory that did not
    /// load ("address is already used"); on another shared address it is refused.
    #[test]
    fn members_sharing_an_address_are_local_on_loopback_and_refused_elsewhere() {
        let cluster = Imported {
            members: vec![
                member("a", "127.0.0.1", 12379, 12380),
                member("b", "127.0.0.1", 22379, 22380),
                member("c", "127.0.0.1", 32379, 32380),
            ],
            version: "3.4.23".into(),
            server: ServerKind::Cairn,
        };
        let text = inventory_text(&cluster, "dev", &[], "pki").expect("text");
        let inv = load(&text);
        assert_eq!(inv.cluster.transport, cairn_inventory::Transport::Local);
        assert_eq!(inv.client_port(&inv.hosts[2]), 32379);
        let cluster = Imported {
            members: vec![
                member("a", "10.0.0.1", 2379, 2380),
                member("b", "10.0.0.1", 3379, 3380),
            ],
            version: "3.4.23".into(),
            server: ServerKind::Etcd,
        };
        let err = inventory_text(&cluster, "prod", &[], "pki").expect_err("shared host");
        assert!(
            matches!(&err, Error::SharedAddress { address, first, second }
                if address == "10.0.0.1" && first == "a" && second == "b"),
            "{err}"
        );
    }

    #[test]
    fn a_member_that_never_started_is_refused() {
        let mut m = member("", "10.0.0.9", 2379, 2380);
        m.name.clear();
        let cluster = Imported {
            members: vec![m],
            version: "3.4.23".into(),
            server: ServerKind::Cairn,
        };
        let err = inventory_text(&cluster, "x", &[], "pki").expect_err("unnamed");
        assert!(err.to_string().contains("https://10.0.0.9:2380"), "{err}");
    }
}
