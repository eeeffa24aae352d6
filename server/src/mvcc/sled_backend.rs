//! The production backend: one sled tree, batches applied atomically, flush = fsync.
//!
//! sled never gives the space of deleted entries back to the file system, so
//! [`Backend::defragment`] copies the live entries into a fresh database next to the current one
//! and swaps the directories. The swap is crash-safe: [`SledBackend::open`] finishes or discards
//! an interrupted one (see [`recover_swap`]).

use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use super::backend::{Backend, Entry, WriteBatch};
use crate::Error;

/// Entries copied per batch while defragmenting.
const DEFRAG_BATCH: usize = 10_000;

/// sled 0.34 behind the [`Backend`] trait.
#[derive(Debug)]
pub struct SledBackend {
    /// `None` only for the instant of a defragment swap, or after a swap failed half-way.
    db: RwLock<Option<sled::Db>>,
    /// The database directory; `None` for a temporary database (which is never swapped).
    path: Option<PathBuf>,
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Finishes or discards a defragment swap a crash interrupted. The new copy (`<db>.defrag`) is
/// only renamed into place once complete and flushed, so: with `<db>` present, a leftover copy
/// is incomplete and removed; without `<db>`, the copy is complete and takes its place. A
/// leftover `<db>.old` is the replaced database and is removed.
pub fn recover_swap(path: &Path) -> Result<(), Error> {
    let copy = sibling(path, ".defrag");
    let old = sibling(path, ".old");
    if copy.exists() {
        if path.exists() {
            std::fs::remove_dir_all(&copy).map_err(file_err(&copy))?;
        } else {
            std::fs::rename(&copy, path).map_err(file_err(path))?;
            sync_parent(path)?;
        }
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(file_err(&old))?;
    }
    Ok(())
}

/// Makes renames inside `path`'s parent durable.
fn sync_parent(path: &Path) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(file_err(parent))
}

/// How long to wait for a just-closed database to release its file lock.
const LOCK_RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn open_db(path: &Path) -> Result<sled::Db, Error> {
    // sled releases its file lock when the last of its background threads lets go of a closed
    // database, shortly after the handle is dropped (e.g. just after a defragment's swap):
    // wait for that, bounded, instead of failing.
    let started = std::time::Instant::now();
    loop {
        let opened = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(256 * 1024 * 1024)
            // Durability comes from our explicit flush after each group of writes.
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_RELEASE_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return Ok(other?),
        }
    }
}

impl SledBackend {
    /// Opens (or creates) the database in directory `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        recover_swap(path)?;
        Ok(Self {
            db: RwLock::new(Some(open_db(path)?)),
            path: Some(path.to_path_buf()),
        })
    }

    /// A database in a temporary directory that is removed on drop.
    pub fn temporary() -> Result<Self, Error> {
        let db = sled::Config::new()
            .temporary(true)
            .flush_every_ms(None)
            .open()?;
        Ok(Self {
            db: RwLock::new(Some(db)),
            path: None,
        })
    }

    fn with_db<T>(&self, f: impl FnOnce(&sled::Db) -> Result<T, Error>) -> Result<T, Error> {
        let guard = self.db.read();
        f(guard.as_ref().ok_or(Error::BackendClosed)?)
    }
}

fn copy_all(from: &sled::Db, to: &sled::Db) -> Result<(), Error> {
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for item in from.iter() {
        let (k, v) = item?;
        batch.insert(k, v);
        n += 1;
        if n == DEFRAG_BATCH {
            to.apply_batch(std::mem::take(&mut batch))?;
            n = 0;
        }
    }
    to.apply_batch(batch)?;
    to.flush()?;
    Ok(())
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.with_db(|db| Ok(db.get(key)?.map(|v| v.to_vec())))
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: Option<usize>) -> Result<Vec<Entry>, Error> {
        self.with_db(|db| {
            let mut out = Vec::new();
            for item in db.range(start..end) {
                if limit.is_some_and(|n| out.len() >= n) {
                    break;
                }
                let (k, v) = item?;
                out.push((k.to_vec(), v.to_vec()));
            }
            Ok(out)
        })
    }

    fn last_in(&self, start: &[u8], end: &[u8]) -> Result<Option<Entry>, Error> {
        self.with_db(|db| {
            Ok(db
                .range(start..end)
                .next_back()
                .transpose()?
                .map(|(k, v)| (k.to_vec(), v.to_vec())))
        })
    }

    fn write(&self, batch: WriteBatch) -> Result<(), Error> {
        let mut ops = batch.into_ops();
        if ops.len() == 1 {
            // One key is atomic by itself. sled seals and writes its I/O buffer twice for every
            // multi-key batch (to place the batch's manifest), which costs each small write
            // (a raft commit index, a conf state) two disk writes and thread hand-offs.
            let (k, v) = ops.pop().expect("one op");
            return self.with_db(|db| {
                match v {
                    Some(v) => db.insert(k, v)?,
                    None => db.remove(k)?,
                };
                Ok(())
            });
        }
        let mut b = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.with_db(|db| Ok(db.apply_batch(b)?))
    }

    fn flush(&self) -> Result<(), Error> {
        self.with_db(|db| {
            db.flush()?;
            Ok(())
        })
    }

    fn size(&self) -> Result<u64, Error> {
        self.with_db(|db| Ok(db.size_on_disk()?))
    }

    fn defragment(&self) -> Result<(), Error> {
        let Some(path) = &self.path else {
            // A temporary database lives for one test: nothing worth reclaiming.
            return Ok(());
        };
        let copy_path = sibling(path, ".defrag");
        let old_path = sibling(path, ".old");
        let mut guard = self.db.write();
        let current = guard.as_ref().ok_or(Error::BackendClosed)?;
        current.flush()?;
        if copy_path.exists() {
            std::fs::remove_dir_all(&copy_path).map_err(file_err(&copy_path))?;
        }
        {
            let copy = open_db(&copy_path)?;
            copy_all(current, &copy)?;
        }
        // From here the copy is complete and durable: close the old database and swap.
        drop(guard.take());
        std::fs::rename(path, &old_path).map_err(file_err(path))?;
        std::fs::rename(&copy_path, path).map_err(file_err(path))?;
        sync_parent(path)?;
        *guard = Some(open_db(path)?);
        std::fs::remove_dir_all(&old_path).map_err(file_err(&old_path))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_many(b: &SledBackend, prefix: u8, n: usize) {
        for chunk in 0..n / 100 {
            let mut batch = WriteBatch::new();
            for i in 0..100 {
                let k = [prefix, (chunk >> 8) as u8, chunk as u8, i as u8];
                batch.put(k.to_vec(), vec![i as u8; 4096]);
            }
            b.write(batch).unwrap();
        }
        b.flush().unwrap();
    }

    #[test]
    fn defragment_keeps_contents_and_returns_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let b = SledBackend::open(&path).unwrap();
        put_many(&b, b'a', 5000);
        put_many(&b, b'b', 100);
        let mut batch = WriteBatch::new();
        for (k, _) in b.scan(b"a", b"b", None).unwrap() {
            batch.delete(k);
        }
        b.write(batch).unwrap();
        b.flush().unwrap();
        let before = b.size().unwrap();
        let kept = b.scan(b"", b"\xff", None).unwrap();
        b.defragment().unwrap();
        assert_eq!(b.scan(b"", b"\xff", None).unwrap(), kept);
        let after = b.size().unwrap();
        assert!(after * 2 <= before, "{before} -> {after}");
        drop(b);
        let b = SledBackend::open(&path).unwrap();
        assert_eq!(b.scan(b"", b"\xff", None).unwrap(), kept);
        assert!(!sibling(&path, ".defrag").exists() && !sibling(&path, ".old").exists());
    }

    #[test]
    fn an_interrupted_swap_is_finished_or_discarded_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let write = |p: &Path, v: &[u8]| {
            let b = SledBackend::open(p).unwrap();
            let mut batch = WriteBatch::new();
            batch.put(b"k".to_vec(), v.to_vec());
            b.write(batch).unwrap();
            b.flush().unwrap();
        };
        // Crash while copying: the original stays, the partial copy goes.
        write(&path, b"original");
        write(&sibling(&path, ".defrag"), b"partial");
        let b = SledBackend::open(&path).unwrap();
        assert_eq!(b.get(b"k").unwrap().unwrap(), b"original");
        assert!(!sibling(&path, ".defrag").exists());
        drop(b);
        // Crash between the two renames: the complete copy takes the original's place.
        std::fs::rename(&path, sibling(&path, ".old")).unwrap();
        write(&sibling(&path, ".defrag"), b"copy");
        let b = SledBackend::open(&path).unwrap();
        assert_eq!(b.get(b"k").unwrap().unwrap(), b"copy");
        assert!(!sibling(&path, ".old").exists());
    }
}
