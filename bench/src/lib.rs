//! The checks and load generators operators run before trusting a machine or a cluster with
//! etcd: the disk's fdatasync latency ([`disk`]) and etcd benchmark's workloads ([`load`],
//! reported by [`report`]).

pub mod disk;
pub mod error;
pub mod load;
pub mod report;

pub use error::Error;
