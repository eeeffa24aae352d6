//! The operator's OpenSSH client configuration (`~/.ssh/config`, parsed by `ssh2-config`): the
//! `HostName`, `User`, `Port`, `IdentityFile` and `ProxyJump` of the block matching a host, so
//! the fleet's existing settings apply to cairn without being copied into the inventory.
//! Everything else in the file (options OpenSSH has that cairn does not use) is ignored.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use cairn_inventory::Jump;
use ssh2_config::{ParseRule, SshConfig as Parsed};

use crate::Error;

/// A parsed client configuration; a missing file is an empty one.
#[derive(Debug, Default)]
pub struct SshConfig {
    parsed: Option<Parsed>,
}

/// What the configuration says for one host; `None` where it says nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostConfig {
    /// `HostName`: where to connect instead of the name looked up.
    pub host_name: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`s, in order.
    pub identity_files: Vec<PathBuf>,
    /// `ProxyJump`.
    pub proxy_jump: Option<Jump>,
}

impl SshConfig {
    /// Reads `path`; a file that does not exist is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(Error::SshConfig {
                    path: path.to_path_buf(),
                    source: ssh2_config::SshParserError::Io(source),
                })
            }
        };
        Self::parse(path, &mut BufReader::new(file))
    }

    /// Parses a configuration read from `path` (named in errors).
    pub fn parse(path: &Path, reader: &mut impl std::io::BufRead) -> Result<Self, Error> {
        let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
        Parsed::default()
            .parse(reader, rules)
            .map(|parsed| Self {
                parsed: Some(parsed),
            })
            .map_err(|source| Error::SshConfig {
                path: path.to_path_buf(),
                source,
            })
    }

    /// The settings of every block whose `Host` patterns match `host`, first value winning as
    /// in OpenSSH. A `ProxyJump` that does not parse is an error naming the file.
    pub fn lookup(&self, host: &str) -> Result<HostConfig, Error> {
        let Some(parsed) = &self.parsed else {
            return Ok(HostConfig::default());
        };
        let params = parsed.query(host);
        let proxy_jump = params
            .proxy_jump
            .map(|hops| {
                let text = hops.join(",");
                text.parse::<Jump>().map_err(|source| Error::SshConfigJump {
                    host: host.to_string(),
                    source,
                })
            })
            .transpose()?;
        Ok(HostConfig {
            // `%h` is the name looked up, the one token a HostName commonly holds.
            host_name: params.host_name.map(|n| n.replace("%h", host)),
            user: params.user,
            port: params.port,
            identity_files: params.identity_file.unwrap_or_default(),
            proxy_jump,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> SshConfig {
        SshConfig::parse(Path::new("config"), &mut text.as_bytes()).expect("parses")
    }

    #[test]
    fn the_first_matching_value_wins_as_in_openssh() {
        let c = config(
            "Host 10.0.0.*\n  User deploy\n  Port 2222\n  ProxyJump ops@bastion:22\n  ForwardAgent yes\n\
             Host 10.0.0.1\n  HostName etcd-1.internal\n  User other\n\
             Host *\n  User fallback\n  IdentityFile /keys/fleet\n  ServerAliveInterval 30\n",
        );
        let h = c.lookup("10.0.0.1").expect("lookup");
        assert_eq!(h.user.as_deref(), Some("deploy"));
        assert_eq!(h.port, Some(2222));
        assert_eq!(h.host_name.as_deref(), Some("etcd-1.internal"));
        assert_eq!(h.identity_files, vec![PathBuf::from("/keys/fleet")]);
        assert_eq!(h.proxy_jump, Some("ops@bastion:22".parse().expect("jump")));
        let other = c.lookup("192.168.1.1").expect("lookup");
        assert_eq!(
            (other.user.as_deref(), other.port, other.proxy_jump),
            (Some("fallback"), None, None)
        );
    }

    #[test]
    fn proxy_jump_none_and_chains() {
        let c = config("Host a\n  ProxyJump none\nHost b\n  ProxyJump j1,ops@j2:2200\n");
        assert_eq!(c.lookup("a").expect("a").proxy_jump, Some(Jump::Direct));
        assert_eq!(
            c.lookup("b").expect("b").proxy_jump.map(|j| j.to_string()),
            Some("j1,ops@j2:2200".to_string())
        );
    }

    #[test]
    fn a_missing_file_is_an_empty_configuration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = SshConfig::load(&dir.path().join("none")).expect("missing is fine");
        assert_eq!(c.lookup("x").expect("lookup"), HostConfig::default());
    }
}
