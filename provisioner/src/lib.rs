//! `cairn provision`'s library: converges the hosts of a `cairn.toml` inventory to a running
//! TLS cluster (certificates, the server binary, an etcd env file and a systemd unit on each
//! host) over SSH, idempotently, restarting members one at a time and the leader last.

mod clock;
pub mod converge;
pub mod desired;
mod error;
#[cfg(test)]
mod fake;
pub mod host;
pub mod known_hosts;
pub mod layout;
mod local_file;
pub mod pki;
pub mod plan;
pub mod probe;
pub mod provision;
pub mod render;
pub mod ssh;
pub mod status;

pub use clock::{Clock, FixedClock, SystemClock};
pub use error::Error;
pub use pki::Pki;
pub use provision::{Options, Report, Session};
