//! Replication: the raft log's durable storage, the raft node, the peer transport, the
//! membership, bootstrapping a member and catching up through snapshots.

pub mod bootstrap;
pub mod log_store;
pub mod membership;
pub mod raft_node;
pub mod read_index;
pub mod snapshot_install;
pub mod transport;

pub use log_store::RaftLogStore;
pub use raft_node::{RaftConfig, RaftHandle, RaftParts, RaftStatus, StateMachine};
pub use transport::{LeaderState, PeerService, Peers, TransportConfig};
