//! `cairn provision`'s library: converges the hosts of a `cairn.toml` inventory to a running
//! TLS cluster (certificates, the server binary, an etcd env file and a systemd unit on each
//! host) over SSH, idempotently, restarting members one at a time and the leader last.
//!
//! A run ([`Session`]):
//! 1. [`cairn_pki`]: the CA and every certificate are checked and, where needed, issued into a
//!    scratch copy of `[tls] dir` (copied back only when the plans are applied);
//! 2. [`ssh`] (or [`local_host`]): the running cluster's member list read (if one runs), one
//!    connection per selected host (`--limit`) and per member the inventory no longer lists,
//!    each login from `[ssh]` and `~/.ssh/config` ([`login`], [`ssh_config`]), through its
//!    bastions, by ssh-agent or key file ([`ssh_auth`]), host keys checked against
//!    known_hosts ([`known_hosts`]), `sudo -n` for a non-root login;
//! 3. [`plan`]: each host's files ([`desired`], [`render`], [`layout`]) compared with what is
//!    there (a unified diff for text, hashes for binaries and keys) and the unit's state read;
//!    a host that cannot be reached or read stops the run before anything is written;
//! 4. [`converge`]: files written on every host in parallel, new members started together,
//!    hosts new to a running cluster joined one at a time ([`scale`]: MemberAdd, first start
//!    with `initial-cluster-state=existing`, caught up before the next; half-done joins
//!    resumed), running members whose files or binary changed rolled one at a time
//!    ([`upgrade`]: pushed just before their restart, leader last after MoveLeader, stopped
//!    at the first failure), then members the inventory dropped removed (`--allow-remove`,
//!    never below a healthy majority);
//! 5. [`status`]: the cluster table, from each member ([`probe`]).
//!
//! [`restore`] puts restored data directories on the hosts and starts a new cluster on them,
//! [`destroy`] tears the cluster down, [`import`] writes an inventory for a running cluster,
//! [`disk_check`] reuses the transport for `cairn check disk` on every host, and [`local`]
//! runs a `transport = "local"` inventory's members on this machine (`cairn up`, with
//! [`supervisor`]); every command above also works on such an inventory, through
//! [`transport`] and [`local_host`], while `cairn up` runs.
//!
//! Hosts, the cluster and the clock are traits ([`host::Host`], [`probe::Probe`], [`Clock`]):
//! the unit tests run plans, idempotence and restart order in memory; the integration tests
//! run real sshd hosts in mount namespaces.

pub mod auth;
pub mod cert_status;

pub mod converge;
pub mod desired;
pub mod destroy;
pub mod disk_check;
mod error;
#[cfg(test)]
mod fake;
pub mod host;
pub mod import;
pub mod known_hosts;
pub mod layout;
pub mod local;
pub mod local_control;
pub mod local_host;
pub mod login;
pub mod plan;
pub mod probe;
pub mod provision;
pub mod render;
pub mod restore;
pub mod rotate;
pub mod scale;
pub mod ssh;
pub mod ssh_auth;
pub mod ssh_config;
pub mod status;
pub mod steps;
pub mod supervisor;
pub mod transport;
pub mod upgrade;

pub use cairn_client::{Clock, FakeClock, SystemClock};
pub use error::Error;
pub use provision::{Options, Report, Session};
