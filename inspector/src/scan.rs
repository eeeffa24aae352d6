//! The streamed scan of the whole keyspace behind the large-values and key-count checks.
//! Keys come in pages at one revision (a consistent view however long the scan takes); each
//! page is folded into a [`Scanner`] and dropped. The scanner keeps only the top N values, the
//! keys past the limits (at most [`MAX_LISTED`]) and one count per prefix, and pages shrink
//! when values are large so one page never holds more than `scan_page_bytes` of values:
//! memory stays bounded whatever the keyspace's size.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use serde::Serialize;

use crate::prefix::prefix_of;
use crate::source::{KeyFacts, Source};
use crate::{Error, Limits};

/// At most this many keys past a limit (large values, many versions) are listed; the rest
/// are only counted.
pub const MAX_LISTED: usize = 1000;

/// What the scan found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScanSummary {
    /// The revision scanned.
    pub revision: i64,
    /// Keys seen.
    pub keys: u64,
    /// Sum of their value sizes.
    pub value_bytes: u64,
    /// Pages read.
    pub pages: u64,
    /// The largest values, largest first.
    pub top: Vec<(String, u64)>,
    /// Keys with values at or above the warn limit, largest first.
    pub large: Vec<(String, u64)>,
    /// How many values are at or above the warn limit (may exceed `large.len()`).
    pub large_count: u64,
    /// Keys with at least `versions_warn` versions, most first.
    pub many_versions: Vec<(String, i64)>,
    /// How many keys have that many versions.
    pub many_versions_count: u64,
    /// Keys by prefix.
    pub prefixes: BTreeMap<String, u64>,
}

/// Folds pages into a [`ScanSummary`].
#[derive(Debug)]
pub struct Scanner {
    top_n: usize,
    warn_bytes: u64,
    versions_warn: i64,
    depth: usize,
    page_keys: u32,
    page_bytes: u64,
    largest_value: u64,
    top: BinaryHeap<Reverse<(u64, Vec<u8>)>>,
    summary: ScanSummary,
}

fn show(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

impl Scanner {
    /// A scanner with the inspection's limits.
    pub fn new(limits: &Limits, revision: i64) -> Self {
        let i = &limits.inspection;
        Self {
            top_n: i.top,
            warn_bytes: i.large_value_warn_bytes,
            versions_warn: i.versions_warn,
            depth: i.prefix_depth,
            page_keys: i.scan_page_keys,
            page_bytes: i.scan_page_bytes,
            largest_value: 0,
            top: BinaryHeap::new(),
            summary: ScanSummary {
                revision,
                ..ScanSummary::default()
            },
        }
    }

    /// How many keys the next page may hold: as many as fit `scan_page_bytes` if every
    /// value were as large as the largest seen so far.
    pub fn next_limit(&self) -> u32 {
        let fit = self.page_bytes / self.largest_value.max(1);
        fit.clamp(1, u64::from(self.page_keys)) as u32
    }

    /// Counts one key.
    pub fn add(&mut self, k: &KeyFacts) {
        let s = &mut self.summary;
        s.keys += 1;
        s.value_bytes += k.value_size;
        self.largest_value = self.largest_value.max(k.value_size);
        *s.prefixes.entry(prefix_of(&k.key, self.depth)).or_default() += 1;
        if k.value_size >= self.warn_bytes {
            s.large_count += 1;
            if s.large.len() < MAX_LISTED {
                s.large.push((show(&k.key), k.value_size));
            }
        }
        if k.version >= self.versions_warn {
            s.many_versions_count += 1;
            if s.many_versions.len() < MAX_LISTED {
                s.many_versions.push((show(&k.key), k.version));
            }
        }
        let smallest = self.top.peek().map(|Reverse((size, _))| *size);
        if self.top.len() < self.top_n {
            self.top.push(Reverse((k.value_size, k.key.clone())));
        } else if smallest.is_some_and(|m| k.value_size > m) {
            self.top.pop();
            self.top.push(Reverse((k.value_size, k.key.clone())));
        }
    }

    /// The summary, lists sorted largest first.
    pub fn finish(mut self) -> ScanSummary {
        let mut top: Vec<(u64, Vec<u8>)> = self.top.into_iter().map(|Reverse(t)| t).collect();
        top.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        self.summary.top = top.into_iter().map(|(n, k)| (show(&k), n)).collect();
        self.summary
            .large
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.summary
            .many_versions
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        self.summary
    }
}

/// The smallest key above every key starting with `prefix`; `None` when that is the end
/// of the keyspace (an empty or all-0xff prefix).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Scans member `t`'s whole keyspace at `revision`, one page at a time.
///
/// etcd 3.4 (and cairn-server, which answers as etcd does) walks its whole index range on
/// every range request to count it, whatever the limit: paging `[from, end of keyspace)`
/// would cost O(keys²/page). So each request is bounded to the keys sharing a prefix with
/// `from`, its length learnt from the previous page (the common prefix of its first and last
/// key, where about one page of keys lives), narrowed when a range holds more than a page and
/// widened when it holds few. Every key is still read exactly once: the next request starts
/// right after the last key read, or at the end of a range that was read to its end.
pub async fn scan<S: Source>(
    source: &S,
    t: usize,
    revision: i64,
    limits: &Limits,
) -> Result<ScanSummary, Error> {
    let mut scanner = Scanner::new(limits, revision);
    // The empty key is where etcd's keyspace starts.
    let mut from = vec![0u8];
    let mut depth = 0;
    loop {
        let end = prefix_end(&from[..depth.min(from.len())]);
        let limit = scanner.next_limit();
        let page = source
            .page(t, &from, end.as_deref(), revision, limit)
            .await?;
        scanner.summary.pages += 1;
        for k in &page.keys {
            scanner.add(k);
        }
        match (page.keys.first(), page.keys.last()) {
            (Some(first), Some(last)) if page.more => {
                depth = if page.keys.len() >= 2 {
                    common_prefix(&first.key, &last.key)
                } else {
                    last.key.len()
                };
                from = last.key.clone();
                from.push(0);
            }
            _ => {
                let Some(end) = end else { break };
                from = end;
                if (page.keys.len() as u64) < u64::from(limit).div_ceil(4) {
                    depth = depth.saturating_sub(1);
                }
            }
        }
    }
    Ok(scanner.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(key: &str, size: u64, version: i64) -> KeyFacts {
        KeyFacts {
            key: key.into(),
            value_size: size,
            version,
            mod_revision: version,
            value_digest: size,
        }
    }

    #[test]
    fn keeps_the_top_n_the_large_and_the_prefix_counts() {
        let mut limits = Limits::default();
        limits.inspection.top = 2;
        limits.inspection.versions_warn = 5;
        let mut s = Scanner::new(&limits, 9);
        for (i, size) in [10u64, 300_000, 5, 2_000_000, 20].into_iter().enumerate() {
            s.add(&k(&format!("/a/b/{i}"), size, 1));
        }
        s.add(&k("/c/x", 1, 7));
        let sum = s.finish();
        assert_eq!(sum.keys, 6);
        assert_eq!(
            sum.top,
            [
                ("/a/b/3".to_string(), 2_000_000),
                ("/a/b/1".to_string(), 300_000)
            ]
        );
        assert_eq!(sum.large_count, 2);
        assert_eq!(sum.large[0], ("/a/b/3".to_string(), 2_000_000));
        assert_eq!(sum.many_versions, [("/c/x".to_string(), 7)]);
        assert_eq!(sum.prefixes["/a/b/"], 5);
        assert_eq!(sum.prefixes["/c/"], 1);
    }

    #[test]
    fn prefix_ends_bound_every_key_with_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
        assert_eq!(common_prefix(b"/reg/a1", b"/reg/b"), 5);
    }

    fn scan_fake(keys: &[Vec<u8>], page_keys: u32) -> (ScanSummary, usize, u64) {
        let mut c = crate::fake::FakeCluster::healthy(1, &[]);
        c.members[0].keys = keys.iter().map(|k| (k.clone(), (1, 1))).collect();
        let mut limits = Limits::default();
        limits.inspection.scan_page_keys = page_keys;
        limits.inspection.prefix_depth = 1;
        let summary = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(scan(&c, 0, 1, &limits))
            .expect("scan");
        let requests = c.pages.lock().expect("pages").len();
        let walked = c.walked.load(std::sync::atomic::Ordering::Relaxed);
        (summary, requests, walked)
    }

    #[test]
    fn bounded_ranges_read_every_key_once_and_walk_little_more_than_the_keyspace() {
        let mut keys: Vec<Vec<u8>> = (0..20_000u32)
            .map(|i| format!("/registry/kind{}/obj{i:08}", i % 10).into_bytes())
            .collect();
        // Odd keys: 0xff bytes, a lone short key, a key below every other.
        keys.extend([
            b"\x01".to_vec(),
            b"z\xff\xff".to_vec(),
            b"z\xff\xff\x00".to_vec(),
            b"k".to_vec(),
        ]);
        let n = keys.len() as u64;
        for page in [1000, 7, 1] {
            let (s, requests, walked) = scan_fake(&keys, page);
            assert_eq!(s.keys, n, "page {page}");
            assert_eq!(s.prefixes.values().sum::<u64>(), n);
            assert_eq!(s.prefixes["/registry/"], 20_000);
            // A few requests per page, and ranges that span a few pages each: the index walk
            // stays linear (paging to the keyspace's end would walk n²/2/page keys).
            assert!(
                requests as u64 <= 4 * n / u64::from(page) + 200,
                "page {page}: {requests} requests"
            );
            assert!(walked <= 20 * n, "page {page}: walked {walked}");
        }
    }

    #[test]
    fn pages_shrink_to_keep_large_values_within_the_byte_budget() {
        let mut limits = Limits::default();
        limits.inspection.scan_page_keys = 1000;
        limits.inspection.scan_page_bytes = 4 << 20;
        let mut s = Scanner::new(&limits, 1);
        assert_eq!(s.next_limit(), 1000);
        s.add(&k("a", 1 << 20, 1));
        assert_eq!(s.next_limit(), 4);
        s.add(&k("b", 8 << 20, 1));
        assert_eq!(s.next_limit(), 1);
    }
}
