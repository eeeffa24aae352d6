//! cairn-server: an etcd-v3-compatible key-value server.
//!
//! Requests arrive through the gRPC services in `api`, are checked and turned into commands,
//! ordered by the write path (`standalone` for a single member, `replicated` through raft), and applied by the
//! single function `kv::apply` to the MVCC store in `mvcc`, which persists in sled.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod config;
pub(crate) mod consensus;
mod data_dir;
pub(crate) mod error;
pub(crate) mod fatal;
pub(crate) mod gateway;
pub(crate) mod http;
pub(crate) mod identity;
pub(crate) mod json_api;
pub(crate) mod kv;
pub(crate) mod lessor;
pub(crate) mod maintenance;
pub(crate) mod metrics;
pub(crate) mod mvcc;
pub(crate) mod node;
pub mod proto;
pub(crate) mod replicated;
pub(crate) mod server;
pub(crate) mod shared;
pub(crate) mod standalone;
pub(crate) mod start;
pub(crate) mod tls;
pub(crate) mod watch;

// The library's surface: what `main` and the benches use. Everything else is the server's own.
pub use config::{exit_for_args_error, Config};
pub use error::{chain, Error, EtcdError};
pub use fatal::wait_for_failure;
pub use gateway::gateway_main;
pub use identity::member_id;
pub use kv::{apply, range, Snapshot};
pub use maintenance::cli::snapshot_main;
pub use mvcc::{Backend, MvccStore, SledBackend};
pub use server::run;
