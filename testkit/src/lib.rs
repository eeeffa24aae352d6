//! Dev-only test kit: starts real `cairn-server` and etcd processes, and sshd test hosts to
//! provision ([`hosts`]), for integration tests and benchmarks.
//!
//! Everything here is loopback-only (127.0.0.0/8), picks free ports instead of fixed ones,
//! waits on conditions (never on fixed sleeps), and kills every process it starts when the
//! handle drops, when a test panics, and (through `PR_SET_PDEATHSIG`) when the test binary
//! itself dies.
//!
//! The API is synchronous and built on [`std::process`], so it works from plain `#[test]`s and
//! from `#[tokio::test]`s alike (in async tests, calls block the current thread while they
//! wait).
//!
//! ```no_run
//! use cairn_testkit::{Kind, Member};
//!
//! let m = Member::builder(Kind::Etcd).start()?;
//! let out = m.etcdctl(&["put", "k", "v"])?;
//! assert_eq!(out.stdout, "OK\n");
//! # Ok::<(), cairn_testkit::Error>(())
//! ```

mod background;
mod binary;
mod cluster;
mod error;
pub mod hosts;
pub mod linearizability;
mod member;
mod partition;
mod pki;
mod ports;
mod process;
pub mod s3;
mod wait;

pub use background::Background;
pub use binary::cairn_server_binary;
pub use cluster::{Cluster, ClusterBuilder};
pub use error::Error;
pub use linearizability::{CheckOptions, KvInput, KvOutput, LinearizabilityError, OpId, Recorder};
pub use member::{Kind, Member, MemberBuilder};
pub use partition::{Partition, UserFence};
pub use pki::Pki;
pub use ports::free_port;
pub(crate) use ports::reserve_port;
pub use process::{run_command, CmdOutput, Daemon};
pub use wait::{wait_until, POLL_INTERVAL};
