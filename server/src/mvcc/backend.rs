//! The storage boundary of the MVCC store: an ordered byte map with atomic batches and an
//! explicit durability point. sled implements it in production; an in-memory map (`mem_backend`, tests only) lets the MVCC
//! logic be tested without disk.

use crate::Error;

/// One atomic group of writes: all of it is applied, or (after a crash) none of it.
#[derive(Debug, Default)]
pub struct WriteBatch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push((key, Some(value)));
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push((key, None));
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// The operations in order: `None` deletes.
    pub fn into_ops(self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.ops
    }
}

/// A key/value pair read from a backend.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Reads the entries of `[start, end)` in key order, `batch` per backend read, handing each
/// chunk to `f` until it breaks: a scan of any size holds one chunk in memory at a time.
pub fn scan_chunks<B>(
    backend: &dyn Backend,
    start: &[u8],
    end: &[u8],
    batch: usize,
    mut f: impl FnMut(&[Entry]) -> Result<std::ops::ControlFlow<B>, Error>,
) -> Result<Option<B>, Error> {
    let mut from = start.to_vec();
    loop {
        let chunk = backend.scan(&from, end, Some(batch))?;
        let Some((last, _)) = chunk.last() else {
            return Ok(None);
        };
        from = last.clone();
        from.push(0);
        if let std::ops::ControlFlow::Break(b) = f(&chunk)? {
            return Ok(Some(b));
        }
    }
}

/// Ordered, crash-consistent byte storage.
pub trait Backend: Send + Sync + 'static {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Entries with keys in `[start, end)`, in key order; at most `limit` of them when set.
    fn scan(&self, start: &[u8], end: &[u8], limit: Option<usize>) -> Result<Vec<Entry>, Error>;

    /// The entry with the greatest key in `[start, end)`.
    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, Error>;

    /// Applies `batch` atomically; not yet durable.
    fn write(&self, batch: WriteBatch) -> Result<(), Error>;

    /// Makes every write so far durable (one fsync shared by all of them).
    fn flush(&self) -> Result<(), Error>;

    /// Bytes the backend occupies on disk (or in memory).
    fn size(&self) -> Result<u64, Error>;

    /// Rewrites the storage so that space freed by deletions (compactions) is returned to the
    /// file system; the contents are unchanged and durable when it returns. Callers keep writers
    /// out for the duration (the store's write lock), as etcd's defragment does.
    fn defragment(&self) -> Result<(), Error>;
}
