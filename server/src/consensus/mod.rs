//! Replication groundwork: the raft log's durable storage and the peer transport. The raft node
//! and membership build on them (replication issue).

pub mod log_store;
pub mod raft_node;
pub mod transport;

pub use log_store::RaftLogStore;
pub use raft_node::{RaftConfig, RaftHandle, RaftParts, RaftStatus, StateMachine};
pub use transport::{PeerService, Peers, TransportConfig};
