//! The in-memory key index: for every key, the revisions at which it changed, grouped into
//! generations (a generation runs from a key's creation to its deletion). This is etcd's
//! `treeIndex`; it is rebuilt from the backend on start, so it is never persisted itself.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use super::revision::Revision;

/// Start and end bounds over keys, as `BTreeMap::range` takes them.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Which keys a request addresses, decoded from etcd's `key`/`range_end` convention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRange {
    /// Exactly one key (`range_end` empty).
    Single(Vec<u8>),
    /// Every key `>= start` (`range_end` is `"\0"`).
    From(Vec<u8>),
    /// Keys in `[start, end)`.
    Between(Vec<u8>, Vec<u8>),
}

impl KeyRange {
    /// Decodes etcd's convention: empty `range_end` is one key, `"\0"` means "to the end".
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        match range_end {
            [] => Self::Single(key.to_vec()),
            [0] => Self::From(key.to_vec()),
            end => Self::Between(key.to_vec(), end.to_vec()),
        }
    }

    /// Whether `key` falls inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            Self::Single(k) => k.as_slice() == key,
            Self::From(s) => key >= s.as_slice(),
            Self::Between(s, e) => key >= s.as_slice() && key < e.as_slice(),
        }
    }

    fn bounds(&self) -> Option<KeyBounds<'_>> {
        match self {
            Self::Single(k) => Some((Bound::Included(k), Bound::Included(k))),
            Self::From(s) => Some((Bound::Included(s), Bound::Unbounded)),
            Self::Between(s, e) if s < e => Some((Bound::Included(s), Bound::Excluded(e))),
            Self::Between(..) => None,
        }
    }
}

/// One life of a key: created at `created`, changed at each of `revs`; a closed generation's last
/// revision is its deletion (tombstone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Generation {
    ver: i64,
    created: Revision,
    revs: Vec<Revision>,
}

impl Generation {
    /// Index of the last revision `<= at`, if any.
    fn last_at_or_before(&self, at: i64) -> Option<usize> {
        self.revs.iter().rposition(|r| r.main <= at)
    }
}

/// Where a key stood at some revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAt {
    /// The revision holding the key's value at that point.
    pub modified: Revision,
    /// When this generation of the key was created.
    pub created: Revision,
    /// Number of changes since creation, counting the creation as 1.
    pub version: i64,
}

/// All generations of one key; the last one is open (empty after a deletion).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct KeyIndex {
    generations: Vec<Generation>,
}

impl KeyIndex {
    fn put(&mut self, rev: Revision) {
        if self.generations.is_empty() {
            self.generations.push(Generation::default());
        }
        let g = self.generations.last_mut().expect("non-empty");
        if g.revs.is_empty() {
            g.created = rev;
        }
        g.revs.push(rev);
        g.ver += 1;
    }

    /// Rebuilds from a stored record: a generation whose start was compacted away takes its
    /// creation revision and version from the record itself.
    fn restore(&mut self, rev: Revision, created: i64, version: i64) {
        if self.generations.is_empty() {
            self.generations.push(Generation::default());
        }
        let g = self.generations.last_mut().expect("non-empty");
        if g.revs.is_empty() {
            g.created = Revision::new(created, 0);
            g.ver = version - 1;
        }
        g.revs.push(rev);
        g.ver += 1;
    }

    /// Whether the key exists at the newest revision.
    fn is_live(&self) -> bool {
        self.generations.last().is_some_and(|g| !g.revs.is_empty())
    }

    /// Records a deletion; false (and no change) when the key is not live.
    fn tombstone(&mut self, rev: Revision) -> bool {
        match self.generations.last() {
            Some(g) if !g.revs.is_empty() => {}
            _ => return false,
        }
        self.put(rev);
        self.generations.push(Generation::default());
        true
    }

    /// The generation alive at `at`, following etcd's `findGeneration`.
    fn generation_at(&self, at: i64) -> Option<&Generation> {
        let last = self.generations.len().checked_sub(1)?;
        for (i, g) in self.generations.iter().enumerate().rev() {
            let Some(first) = g.revs.first() else {
                continue;
            };
            if i != last {
                let tomb = g.revs.last().expect("non-empty").main;
                if tomb <= at {
                    return None;
                }
            }
            if first.main <= at {
                return Some(g);
            }
        }
        None
    }

    fn get(&self, at: i64) -> Option<KeyAt> {
        let g = self.generation_at(at)?;
        let n = g.last_at_or_before(at)?;
        Some(KeyAt {
            modified: g.revs[n],
            created: g.created,
            version: g.ver - (g.revs.len() - n - 1) as i64,
        })
    }

    /// Where a compaction at `at` cuts this key (etcd's `doCompact`): the first generation
    /// still open at `at` (its tombstone is after `at`) or else the last one, and in it the
    /// last revision at or before `at`.
    fn cut(&self, at: i64) -> (usize, Option<usize>) {
        let last = self.generations.len() - 1;
        let gi = (0..last)
            .find(|&i| self.generations[i].revs.last().map_or(i64::MIN, |r| r.main) > at)
            .unwrap_or(last);
        (gi, self.generations[gi].last_at_or_before(at))
    }

    /// Compacts history at `at`, keeping for the key only what a read at `>= at` can reach;
    /// the kept revisions `<= at` are added to `keep`.
    fn compact(&mut self, at: i64, keep: &mut HashSet<Revision>) {
        if self.generations.is_empty() {
            return;
        }
        let last = self.generations.len() - 1;
        let (mut gi, n) = self.cut(at);
        let g = &mut self.generations[gi];
        if let Some(n) = n {
            keep.insert(g.revs[n]);
            g.revs.drain(..n);
            // A closed generation reduced to its tombstone is gone entirely.
            if g.revs.len() == 1 && gi != last {
                keep.remove(&g.revs[0]);
                gi += 1;
            }
        }
        self.generations.drain(..gi);
    }

    /// What [`KeyIndex::compact`] would keep at `at`, without compacting (etcd's `keep`).
    fn keep(&self, at: i64, keep: &mut HashSet<Revision>) {
        if self.generations.is_empty() {
            return;
        }
        let last = self.generations.len() - 1;
        let (gi, n) = self.cut(at);
        let g = &self.generations[gi];
        if let Some(n) = n {
            // A closed generation that would be reduced to its tombstone keeps nothing.
            if !(n == g.revs.len() - 1 && gi != last) {
                keep.insert(g.revs[n]);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.generations.len() == 1 && self.generations[0].revs.is_empty()
    }
}

/// Every key's revision history, ordered by key.
#[derive(Debug, Default)]
pub struct Index {
    keys: BTreeMap<Vec<u8>, KeyIndex>,
    /// Keys live at the newest revision (etcd's `keys_total`), kept up to date by every change.
    live: usize,
}

impl Index {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a put of `key` at `rev`.
    pub fn put(&mut self, key: &[u8], rev: Revision) {
        match self.keys.get_mut(key) {
            Some(ki) => {
                if !ki.is_live() {
                    self.live += 1;
                }
                ki.put(rev);
            }
            None => {
                self.live += 1;
                let mut ki = KeyIndex::default();
                ki.put(rev);
                self.keys.insert(key.to_vec(), ki);
            }
        }
    }

    /// Records a stored put of `key` at `rev` while rebuilding the index from the backend.
    pub fn restore(&mut self, key: &[u8], rev: Revision, created: i64, version: i64) {
        let ki = self.keys.entry(key.to_vec()).or_default();
        if !ki.is_live() {
            self.live += 1;
        }
        ki.restore(rev, created, version);
    }

    /// Records a deletion of `key` at `rev`; false when the key was not live.
    pub fn tombstone(&mut self, key: &[u8], rev: Revision) -> bool {
        let deleted = self.keys.get_mut(key).is_some_and(|ki| ki.tombstone(rev));
        if deleted {
            self.live -= 1;
        }
        deleted
    }

    /// Number of keys live at the newest revision.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Where `key` stood at revision `at`, if it was live.
    pub fn get(&self, key: &[u8], at: i64) -> Option<KeyAt> {
        self.keys.get(key)?.get(at)
    }

    /// The keys of `range` live at `at`, in key order, with where each stood.
    pub fn range(&self, range: &KeyRange, at: i64) -> Vec<(&[u8], KeyAt)> {
        let Some(bounds) = range.bounds() else {
            return Vec::new();
        };
        self.keys
            .range::<[u8], _>(bounds)
            .filter_map(|(k, ki)| ki.get(at).map(|a| (k.as_slice(), a)))
            .collect()
    }

    /// How many keys of `range` are live at `at`.
    pub fn count(&self, range: &KeyRange, at: i64) -> usize {
        let Some(bounds) = range.bounds() else {
            return 0;
        };
        self.keys
            .range::<[u8], _>(bounds)
            .filter(|(_, ki)| ki.get(at).is_some())
            .count()
    }

    /// Drops history before `at`; returns the revisions `<= at` that must stay in the backend.
    pub fn compact(&mut self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        self.keys.retain(|_, ki| {
            ki.compact(at, &mut keep);
            !ki.is_empty() && !ki.generations.is_empty()
        });
        keep
    }

    /// The revisions `<= at` that a compaction at `at` would keep, leaving the index as it is
    /// (what HashKV needs to skip revisions a pending compaction will delete).
    pub fn keep(&self, at: i64) -> HashSet<Revision> {
        let mut keep = HashSet::new();
        for ki in self.keys.values() {
            ki.keep(at, &mut keep);
        }
        keep
    }

    /// Number of keys with any retained history (live or not yet compacted away).
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_is_what_compact_keeps() {
        let mut idx = Index::new();
        idx.put(b"a", r(2));
        idx.put(b"b", r(3));
        idx.tombstone(b"a", r(4));
        idx.put(b"a", r(5));
        idx.put(b"c", r(6));
        idx.tombstone(b"c", r(7));
        idx.put(b"b", r(8));
        for at in 1..=9 {
            let mut copy = Index::new();
            copy.keys = idx.keys.clone();
            let want = copy.compact(at);
            assert_eq!(idx.keep(at), want, "at {at}");
        }
    }

    fn r(main: i64) -> Revision {
        Revision::new(main, 0)
    }

    #[test]
    fn versions_and_generations_follow_etcd() {
        let mut idx = Index::new();
        idx.put(b"a", r(2));
        idx.put(b"a", r(3));
        assert!(idx.tombstone(b"a", r(4)));
        idx.put(b"a", r(5));
        let at3 = idx.get(b"a", 3).unwrap();
        assert_eq!((at3.modified, at3.created, at3.version), (r(3), r(2), 2));
        assert_eq!(idx.get(b"a", 4), None);
        let at5 = idx.get(b"a", 5).unwrap();
        assert_eq!((at5.created, at5.version), (r(5), 1));
        assert_eq!(idx.get(b"a", 1), None);
        assert!(!idx.tombstone(b"b", r(6)));
    }

    #[test]
    fn compaction_keeps_what_reads_at_or_after_can_see() {
        let mut idx = Index::new();
        idx.put(b"a", r(2));
        idx.put(b"a", r(3));
        idx.put(b"b", r(4));
        assert!(idx.tombstone(b"b", r(5)));
        idx.put(b"c", r(6));
        let keep = idx.compact(5);
        assert_eq!(keep, HashSet::from([r(3)]));
        assert_eq!(
            idx.len(),
            2,
            "b's only generation ended at the compaction point"
        );
        assert_eq!(idx.get(b"a", 5).unwrap().version, 2);
        assert_eq!(idx.get(b"c", 6).unwrap().modified, r(6));
    }

    #[test]
    fn live_keys_follow_puts_deletions_and_restores() {
        let mut idx = Index::new();
        idx.put(b"a", r(2));
        idx.put(b"a", r(3));
        idx.put(b"b", r(4));
        assert_eq!(idx.live(), 2);
        assert!(idx.tombstone(b"a", r(5)));
        assert!(!idx.tombstone(b"a", r(6)));
        assert_eq!(idx.live(), 1);
        idx.put(b"a", r(7));
        assert_eq!(idx.live(), 2);
        idx.compact(7);
        assert_eq!(idx.live(), 2);

        let mut restored = Index::new();
        restored.restore(b"a", r(2), 2, 1);
        restored.tombstone(b"a", r(3));
        restored.restore(b"b", r(4), 4, 1);
        assert_eq!(restored.live(), 1);
    }

    #[test]
    fn ranges_follow_etcd_conventions() {
        let mut idx = Index::new();
        for (i, k) in [&b"a"[..], b"ab", b"b", b"c"].iter().enumerate() {
            idx.put(k, r(i as i64 + 2));
        }
        let keys = |kr: KeyRange| -> Vec<Vec<u8>> {
            idx.range(&kr, 10)
                .into_iter()
                .map(|(k, _)| k.to_vec())
                .collect()
        };
        assert_eq!(
            keys(KeyRange::new(b"a", b"b")),
            vec![b"a".to_vec(), b"ab".to_vec()]
        );
        assert_eq!(keys(KeyRange::new(b"b", b"\0")).len(), 2);
        assert_eq!(keys(KeyRange::new(b"ab", b"")), vec![b"ab".to_vec()]);
        assert!(keys(KeyRange::new(b"c", b"a")).is_empty());
        assert_eq!(idx.count(&KeyRange::new(b"\0", b"\0"), 10), 4);
    }
}
