//! Network partitions between loopback addresses with iptables: a chain of the test's own,
//! hooked into INPUT, holding DROP rules by source and destination address; and
//! [`UserFence`], a port only one user's processes may connect to (a host reachable through
//! its bastion only). Dropping a handle removes its chain, also when the test panics. Needs
//! root (CI runs as root) and, for partitions, members whose peer connections come from their
//! own address (cairn-server binds them so).

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{run_command, Error};

static NEXT_CHAIN: AtomicU32 = AtomicU32::new(0);

/// A set of cut links; empty when created.
#[derive(Debug)]
pub struct Partition {
    chain: String,
}

fn iptables(args: &[&str]) -> Result<(), Error> {
    let mut cmd = Command::new("iptables");
    // -w: wait for the xtables lock instead of failing when another test holds it.
    cmd.arg("-w").args(args);
    let out = run_command(cmd, Duration::from_secs(30))?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::Cluster(format!(
            "iptables {}: {out:?}",
            args.join(" ")
        )))
    }
}

/// A chain name no other test of any process uses.
fn new_chain() -> String {
    format!(
        "CAIRN-T{}-{}",
        std::process::id(),
        NEXT_CHAIN.fetch_add(1, Ordering::Relaxed)
    )
}

impl Partition {
    /// Creates the chain and hooks it into INPUT.
    pub fn new() -> Result<Self, Error> {
        let chain = new_chain();
        iptables(&["-N", &chain])?;
        let p = Self { chain };
        iptables(&["-I", "INPUT", "1", "-j", &p.chain])?;
        Ok(p)
    }

    /// Drops all traffic between `a` and `b`, both ways.
    pub fn cut(&self, a: Ipv4Addr, b: Ipv4Addr) -> Result<(), Error> {
        for (src, dst) in [(a, b), (b, a)] {
            let (src, dst) = (src.to_string(), dst.to_string());
            iptables(&["-A", &self.chain, "-s", &src, "-d", &dst, "-j", "DROP"])?;
        }
        Ok(())
    }

    /// Cuts `member` off from every address in `others`.
    pub fn isolate(&self, member: Ipv4Addr, others: &[Ipv4Addr]) -> Result<(), Error> {
        for &o in others {
            if o != member {
                self.cut(member, o)?;
            }
        }
        Ok(())
    }

    /// Removes every cut.
    pub fn heal(&self) -> Result<(), Error> {
        iptables(&["-F", &self.chain])
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        let _ = iptables(&["-D", "INPUT", "-j", &self.chain]);
        let _ = iptables(&["-F", &self.chain]);
        let _ = iptables(&["-X", &self.chain]);
    }
}

/// TCP connections to one `address:port` from processes of any user but one are reset: the
/// port is reachable only through that user's sessions (an sshd session forwarding for it).
#[derive(Debug)]
pub struct UserFence {
    chain: String,
}

impl UserFence {
    /// Fences `address:port` for every user but `uid`.
    pub fn new(address: Ipv4Addr, port: u16, uid: u32) -> Result<Self, Error> {
        let chain = new_chain();
        iptables(&["-N", &chain])?;
        let fence = Self { chain };
        let (address, port, uid) = (address.to_string(), port.to_string(), uid.to_string());
        iptables(&[
            "-A",
            &fence.chain,
            "-p",
            "tcp",
            "-d",
            &address,
            "--dport",
            &port,
            "-m",
            "owner",
            "!",
            "--uid-owner",
            &uid,
            "-j",
            "REJECT",
            "--reject-with",
            "tcp-reset",
        ])?;
        iptables(&["-I", "OUTPUT", "1", "-j", &fence.chain])?;
        Ok(fence)
    }
}

impl Drop for UserFence {
    fn drop(&mut self) {
        let _ = iptables(&["-D", "OUTPUT", "-j", &self.chain]);
        let _ = iptables(&["-F", &self.chain]);
        let _ = iptables(&["-X", &self.chain]);
    }
}
