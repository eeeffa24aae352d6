//! `[ssh] jump` and `ssh_jump`: the bastions a host is reached through, written as OpenSSH's
//! `ProxyJump` is (`user@host:port`, comma-separated for a chain, `none` for a direct
//! connection), so a line can be copied from `~/.ssh/config` unchanged.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One SSH server to log in to: `[user@]host[:port]`, IPv6 addresses in brackets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    /// Login user; unset means the one the configuration gives.
    pub user: Option<String>,
    /// Address or name.
    pub host: String,
    /// Port; unset means the configured or default one.
    pub port: Option<u16>,
}

/// How a host is reached.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Jump {
    /// Directly (`none`), even when `[ssh] jump` or `~/.ssh/config` names a bastion.
    Direct,
    /// Through these bastions, first one first.
    Via(Vec<SshTarget>),
}

/// The text that does not parse as a jump; serde puts it at its line in the inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadJump(pub String);

impl fmt::Display for BadJump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a jump host; write user@host:port (user and port optional), several separated by commas, or none",
            self.0
        )
    }
}

impl std::error::Error for BadJump {}

impl FromStr for SshTarget {
    type Err = BadJump;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadJump(s.to_string());
        let s = s.trim();
        let s = s.strip_prefix("ssh://").unwrap_or(s);
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad()),
            None => (None, s),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or_else(bad)?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
            }
        } else if rest.matches(':').count() > 1 {
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad))
            .transpose()?;
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(bad());
        }
        Ok(Self {
            user,
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        match (self.host.contains(':'), self.port) {
            (true, Some(p)) => write!(f, "[{}]:{p}", self.host),
            (false, Some(p)) => write!(f, "{}:{p}", self.host),
            (_, None) => f.write_str(&self.host),
        }
    }
}

impl FromStr for Jump {
    type Err = BadJump;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(Self::Direct);
        }
        let hops = s
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<SshTarget>, _>>()
            .map_err(|_| BadJump(s.to_string()))?;
        Ok(Self::Via(hops))
    }
}

impl TryFrom<String> for Jump {
    type Error = BadJump;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for Jump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("none"),
            Self::Via(hops) => {
                for (i, hop) in hops.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{hop}")?;
                }
                Ok(())
            }
        }
    }
}

impl From<Jump> for String {
    fn from(j: Jump) -> Self {
        j.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: Option<&str>, host: &str, port: Option<u16>) -> SshTarget {
        SshTarget {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn targets_parse_as_openssh_writes_them() {
        let cases = [
            (
                "ops@bastion:2222",
                target(Some("ops"), "bastion", Some(2222)),
            ),
            ("bastion", target(None, "bastion", None)),
            ("ops@10.0.0.1", target(Some("ops"), "10.0.0.1", None)),
            ("[::1]:22", target(None, "::1", Some(22))),
            ("fe80::1", target(None, "fe80::1", None)),
            ("ssh://ops@b:22", target(Some("ops"), "b", Some(22))),
        ];
        for (text, want) in cases {
            let got: SshTarget = text.parse().expect(text);
            assert_eq!(got, want, "{text}");
            let again: SshTarget = got.to_string().parse().expect("round trip");
            assert_eq!(again, want, "{text} round trip");
        }
    }

    #[test]
    fn malformed_targets_are_refused() {
        for bad in [
            "", "@b", "b:", "b:0", "b:99999", "a b", "[::1", "[::1]x", "b/c",
        ] {
            assert!(bad.parse::<SshTarget>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn jumps_are_none_or_a_chain() {
        assert_eq!("none".parse::<Jump>(), Ok(Jump::Direct));
        assert_eq!(
            "a@b:1,c".parse::<Jump>(),
            Ok(Jump::Via(vec![
                target(Some("a"), "b", Some(1)),
                target(None, "c", None)
            ]))
        );
        assert_eq!(Jump::Via(vec![target(None, "c", None)]).to_string(), "c");
        let err = "a,,b".parse::<Jump>().expect_err("empty hop");
        assert!(err.to_string().contains("user@host:port"), "{err}");
    }
}
