//! The SSH options of the commands that change hosts (`provision`, `certs rotate`, `destroy`),
//! defined once.

use clap::Args;

/// How hosts are reached; flatten it into a command's arguments.
#[derive(Clone, Debug, Args)]
pub struct SshArgs {
    /// Trust hosts that known_hosts does not list yet and record their keys.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Hosts handled at once (writes and plans; restarts are always one at a time).
    #[arg(long = "parallel", default_value_t = 8, value_name = "N")]
    parallel: usize,
}

impl SshArgs {
    /// Hosts handled at once, at least one.
    pub fn parallel(&self) -> usize {
        self.parallel.max(1)
    }
}
