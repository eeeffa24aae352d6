//! cairn-server: an etcd-v3-compatible key-value server.
//!
//! Requests arrive through the gRPC services in [`api`], are checked and turned into commands,
//! ordered by the write path ([`standalone`] for a single member, [`replicated`] through raft), and applied by the
//! single function [`kv::apply`] to the MVCC store in [`mvcc`], which persists in sled.

pub mod api;
pub mod config;
pub mod consensus;
mod data_dir;
pub mod error;
pub mod fatal;
pub mod http;
pub mod identity;
pub mod kv;
pub mod lessor;
pub mod maintenance;
pub mod metrics;
pub mod mvcc;
pub mod node;
pub mod proto;
pub mod replicated;
pub mod server;
pub mod shared;
pub mod standalone;
pub mod start;
pub mod tls;
pub mod watch;

pub use config::Config;
pub use error::{Error, EtcdError};
pub use server::run;
