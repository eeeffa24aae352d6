//! Operations on the member as a whole, behind etcd's Maintenance service: checksums of the
//! keyspace ([`hash`]), point-in-time snapshots and their offline status/restore
//! ([`snapshot`], [`cli`]), and automatic compaction ([`auto_compaction`]). Alarms, quota and
//! defragmentation live with the state they change (the apply function, [`crate::node`], the
//! backend).

pub mod auto_compaction;
pub mod cli;
pub mod hash;
pub mod snapshot;

/// The etcd API level cairn-server implements, reported by Status (etcd 3.4's API).
pub const API_VERSION: &str = "3.4.0";
