//! Multi-version concurrency control: etcd's revisioned keyspace over a [`backend::Backend`].

pub mod backend;
pub mod index;
pub mod lease;
pub mod revision;
pub mod sled_backend;
pub mod store;

pub use backend::{Backend, MemBackend, WriteBatch};
pub use index::KeyRange;
pub use lease::{Lease, LeaseTable};
pub use revision::Revision;
pub use sled_backend::SledBackend;
pub use store::{CompactionJob, MvccStore, RangeOptions, RangeResult, WriteTxn};
