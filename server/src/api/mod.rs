//! gRPC services, one per file, each a thin translation between etcd's API and the [`Node`].
//!
//! [`Node`]: crate::node::Node

pub mod auth;
pub mod cluster;
pub mod kv;
pub mod lease;
pub mod maintenance;
pub mod watch;
