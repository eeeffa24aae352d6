//! etcd's KV semantics on top of the MVCC store: request checks, Range, Put, DeleteRange, Txn and
//! Compact. [`apply::apply`] is the one function every committed write goes through.

pub mod apply;
pub mod quota;
pub mod range;
pub mod txn;
pub mod validate;
pub mod view;

pub use apply::{apply, Applied};
pub use view::Snapshot;

#[cfg(test)]
mod model_test;
