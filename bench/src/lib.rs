//! The checks and load generators operators run before trusting a machine or a cluster with
//! etcd: the disk's fdatasync latency today; load generation and `check perf` build on it.

pub mod disk;
pub mod error;

pub use error::Error;
