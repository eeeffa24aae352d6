//! Replication groundwork: the raft log's durable storage. The raft node, the peer transport and
//! membership build on it (replication issue).

pub mod log_store;

pub use log_store::RaftLogStore;
