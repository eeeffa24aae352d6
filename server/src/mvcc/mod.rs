//! Multi-version concurrency control: etcd's revisioned keyspace over a [`backend::Backend`].

pub mod auth;
pub mod backend;
pub mod index;
pub mod lease;
#[cfg(test)]
mod mem_backend;
pub mod revision;
pub mod sled_backend;
pub mod store;

pub use backend::{Backend, WriteBatch};
pub use index::KeyRange;
#[cfg(test)]
pub use mem_backend::MemBackend;
pub use sled_backend::SledBackend;
pub use store::{CompactionJob, MvccStore, RangeOptions, RangeResult, WriteTxn};
