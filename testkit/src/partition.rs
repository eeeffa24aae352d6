//! Network partitions between loopback addresses with iptables: a chain of the test's own,
//! hooked into INPUT, holding DROP rules by source and destination address. Dropping the
//! handle removes the chain, also when the test panics. Needs root (CI runs as root) and
//! members whose peer connections come from their own address (cairn-server binds them so).

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

impl Partition {
    /// Creates the chain and hooks it into INPUT.
    pub fn new() -> Result<Self, Error> {
        let chain = format!(
            "CAIRN-T{}-{}",
            std::process::id(),
            NEXT_CHAIN.fetch_add(1, Ordering::Relaxed)
        );
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
