//! A read view: the store as of one revision, either committed state or inside a write txn.

use crate::mvcc::{KeyRange, MvccStore, RangeOptions, RangeResult, WriteTxn};
use crate::Error;

/// What Range and Txn compares read from.
pub trait ReadView {
    /// Reads `range` with `opts`.
    fn range(&self, range: &KeyRange, opts: &RangeOptions) -> Result<RangeResult, Error>;
    /// The newest revision visible in this view.
    fn revision(&self) -> i64;
    /// The store's compaction point.
    fn compact_revision(&self) -> i64;
    /// Whether lease `id` exists.
    fn lease_exists(&self, id: i64) -> bool;
}

/// Committed state up to `rev`: what clients may see (only durable writes).
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// The store.
    pub store: &'a MvccStore,
    /// The newest revision readers may see.
    pub rev: i64,
}

impl ReadView for Snapshot<'_> {
    fn range(&self, range: &KeyRange, opts: &RangeOptions) -> Result<RangeResult, Error> {
        self.store.range(range, opts, self.rev)
    }
    fn revision(&self) -> i64 {
        self.rev
    }
    fn compact_revision(&self) -> i64 {
        self.store.compact_revision()
    }
    fn lease_exists(&self, id: i64) -> bool {
        self.store.leases().contains(id)
    }
}

impl ReadView for WriteTxn<'_> {
    fn range(&self, range: &KeyRange, opts: &RangeOptions) -> Result<RangeResult, Error> {
        WriteTxn::range(self, range, opts)
    }
    fn revision(&self) -> i64 {
        self.read_revision()
    }
    fn compact_revision(&self) -> i64 {
        WriteTxn::compact_revision(self)
    }
    fn lease_exists(&self, id: i64) -> bool {
        self.leases().contains(id)
    }
}
