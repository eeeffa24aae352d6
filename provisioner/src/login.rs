//! Where and as whom to log in to a host: the inventory's `[ssh]` and per-host settings first,
//! then the operator's `~/.ssh/config` for the host's address, then OpenSSH's defaults. The
//! same rules give each bastion of a `jump` chain its own login.

use std::path::PathBuf;

use cairn_inventory::{Host, Inventory, Jump, SshTarget};

use crate::ssh_config::SshConfig;
use crate::Error;

/// Port of a host or bastion nothing else names.
const DEFAULT_PORT: u16 = 22;
/// User of a host or bastion nothing else names.
const DEFAULT_USER: &str = "root";
/// The key files OpenSSH tries when none is configured, those that exist.
const DEFAULT_IDENTITIES: [&str; 3] = [".ssh/id_ed25519", ".ssh/id_ecdsa", ".ssh/id_rsa"];

/// One SSH login: a member's host, or one of the bastions on the way to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Login {
    /// Member name, or `<member> (jump host <target>)` for a bastion, for messages.
    pub name: String,
    /// Address to connect to (the configuration's `HostName` applied).
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user; anything but root runs commands through `sudo -n`.
    pub user: String,
    /// Key files to try after the agent's keys, in order.
    pub identities: Vec<PathBuf>,
    /// Bastions to go through, first one first; each one's own `jumps` is empty.
    pub jumps: Vec<Login>,
}

impl Login {
    /// A host on this machine (`transport = "local"`): only its name matters.
    pub fn local(name: &str) -> Self {
        Self {
            name: name.to_string(),
            address: String::new(),
            port: 0,
            user: DEFAULT_USER.to_string(),
            identities: Vec::new(),
            jumps: Vec::new(),
        }
    }

    /// `user@address:port`, for messages.
    pub fn target(&self) -> String {
        format!("{}@{}", self.user, self.addr())
    }

    /// `address:port`, IPv6 addresses in brackets.
    pub fn addr(&self) -> String {
        cairn_inventory::host_port(&self.address, self.port)
    }
}

/// Builds the logins of an inventory's hosts against one parsed `~/.ssh/config`.
#[derive(Debug)]
pub struct Logins {
    config: SshConfig,
    identity: Option<PathBuf>,
    user: Option<String>,
    port: Option<u16>,
    jump: Option<Jump>,
    home: Option<PathBuf>,
}

impl Logins {
    /// Reads `[ssh] config` (a missing file is fine).
    pub fn new(inventory: &Inventory) -> Result<Self, Error> {
        Ok(Self::with_config(
            inventory,
            SshConfig::load(&inventory.ssh.config)?,
        ))
    }

    /// With an already parsed configuration.
    pub fn with_config(inventory: &Inventory, config: SshConfig) -> Self {
        Self {
            config,
            identity: inventory.ssh.identity_file.clone(),
            user: inventory.ssh.user.clone(),
            port: inventory.ssh.port,
            jump: inventory.ssh.jump.clone(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// The login of an inventory host.
    pub fn of(&self, inventory: &Inventory, host: &Host) -> Result<Login, Error> {
        self.resolve(
            &host.name,
            &host.address,
            inventory.ssh_user(host),
            inventory.ssh_port(host),
            inventory.ssh_jump(host),
        )
    }

    /// The login of a member the inventory no longer lists (one being removed), found by its
    /// address: `[ssh]` and the configuration apply as to any host.
    pub fn of_address(&self, name: &str, address: &str) -> Result<Login, Error> {
        self.resolve(
            name,
            address,
            self.user.as_deref(),
            self.port,
            self.jump.as_ref(),
        )
    }

    fn resolve(
        &self,
        name: &str,
        address: &str,
        user: Option<&str>,
        port: Option<u16>,
        jump: Option<&Jump>,
    ) -> Result<Login, Error> {
        let found = self.config.lookup(address)?;
        let user = user
            .map(str::to_string)
            .or(found.user)
            .unwrap_or_else(|| DEFAULT_USER.to_string());
        let identities = self.identities(found.identity_files);
        let jumps = match jump.cloned().or(found.proxy_jump) {
            None | Some(Jump::Direct) => Vec::new(),
            Some(Jump::Via(hops)) => hops
                .iter()
                .map(|hop| self.hop(name, hop, &user))
                .collect::<Result<_, _>>()?,
        };
        Ok(Login {
            name: name.to_string(),
            address: found.host_name.unwrap_or_else(|| address.to_string()),
            port: port.or(found.port).unwrap_or(DEFAULT_PORT),
            user,
            identities,
            jumps,
        })
    }

    /// A bastion: its own user and port if written, else its configuration's, else the
    /// member's user and port 22; its own `ProxyJump` is not followed (write the chain).
    fn hop(&self, member: &str, hop: &SshTarget, member_user: &str) -> Result<Login, Error> {
        let found = self.config.lookup(&hop.host)?;
        Ok(Login {
            name: format!("{member} (jump host {hop})"),
            address: found.host_name.unwrap_or_else(|| hop.host.clone()),
            port: hop.port.or(found.port).unwrap_or(DEFAULT_PORT),
            user: hop
                .user
                .clone()
                .or(found.user)
                .unwrap_or_else(|| member_user.to_string()),
            identities: self.identities(found.identity_files),
            jumps: Vec::new(),
        })
    }

    /// `[ssh] identity_file`, else the configuration's, else OpenSSH's defaults.
    fn identities(&self, configured: Vec<PathBuf>) -> Vec<PathBuf> {
        if let Some(file) = &self.identity {
            return vec![file.clone()];
        }
        if !configured.is_empty() {
            return configured;
        }
        self.home
            .iter()
            .flat_map(|home| DEFAULT_IDENTITIES.iter().map(move |f| home.join(f)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory(ssh: &str, host_extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nname = \"c\"\ntoken = \"c-1\"\nbinary = \"/bin/true\"\n\n[ssh]\n{ssh}\n\n\
             [[hosts]]\nname = \"m1\"\naddress = \"10.0.0.1\"\n{host_extra}\n"
        );
        Inventory::parse(Path::new("/etc/cairn/cairn.toml"), text).expect("valid inventory")
    }

    fn config(text: &str) -> SshConfig {
        SshConfig::parse(Path::new("config"), &mut text.as_bytes()).expect("parses")
    }

    const FLEET: &str = "Host 10.0.0.*\n  HostName %h\n  User deploy\n  Port 2222\n  \
                         IdentityFile /keys/fleet\n  ProxyJump ops@bastion\n\
                         Host bastion\n  HostName 192.0.2.10\n  Port 2200\n";

    #[test]
    fn the_configuration_fills_what_the_inventory_leaves_unset() {
        let inv = inventory("", "");
        let logins = Logins::with_config(&inv, config(FLEET));
        let login = logins.of(&inv, &inv.hosts[0]).expect("login");
        assert_eq!(login.user, "deploy");
        assert_eq!(login.port, 2222);
        assert_eq!(login.identities, vec![PathBuf::from("/keys/fleet")]);
        assert_eq!(login.jumps.len(), 1);
        let hop = &login.jumps[0];
        assert_eq!(
            (hop.user.as_str(), hop.address.as_str(), hop.port),
            ("ops", "192.0.2.10", 2200)
        );
        assert_eq!(hop.name, "m1 (jump host ops@bastion)");
    }

    #[test]
    fn the_inventory_wins_over_the_configuration() {
        let inv = inventory(
            "user = \"admin\"\nport = 22\nidentity_file = \"/keys/own\"\njump = \"none\"",
            "ssh_port = 2022",
        );
        let logins = Logins::with_config(&inv, config(FLEET));
        let login = logins.of(&inv, &inv.hosts[0]).expect("login");
        assert_eq!(
            (login.user.as_str(), login.port, login.jumps.len()),
            ("admin", 2022, 0)
        );
        assert_eq!(login.identities, vec![PathBuf::from("/keys/own")]);
    }

    #[test]
    fn a_host_jump_replaces_the_shared_one() {
        let inv = inventory("jump = \"b1\"", "ssh_jump = \"ops@b2:2201,b3\"");
        let logins = Logins::with_config(&inv, SshConfig::default());
        let login = logins.of(&inv, &inv.hosts[0]).expect("login");
        let hops: Vec<String> = login.jumps.iter().map(Login::target).collect();
        assert_eq!(hops, ["ops@b2:2201", "root@b3:22"]);
        assert_eq!((login.user.as_str(), login.port), ("root", 22));
    }

    #[test]
    fn without_any_setting_openssh_defaults_apply() {
        let inv = inventory("", "");
        let logins = Logins::with_config(&inv, SshConfig::default());
        let login = logins.of(&inv, &inv.hosts[0]).expect("login");
        assert_eq!(login.target(), "root@10.0.0.1:22");
        let names: Vec<_> = login
            .identities
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        assert_eq!(names, ["id_ed25519", "id_ecdsa", "id_rsa"]);
    }
}
