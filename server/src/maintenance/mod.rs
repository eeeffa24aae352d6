//! Operations on the member as a whole, behind etcd's Maintenance service: checksums of the
//! keyspace ([`hash`]), point-in-time snapshots and their offline status/restore
//! ([`snapshot`], [`cli`]), and automatic compaction ([`auto_compaction`]). Alarms, quota and
//! defragmentation live with the state they change (the apply function, [`crate::node`], the
//! backend).

pub mod auto_compaction;
pub mod cli;
pub mod hash;
pub mod snapshot;

pub use crate::config::ETCD_VERSION as API_VERSION;
