//! Which keys two members disagree on at one revision, for the consistency check once their
//! hashes differ: both keyspaces read page by page at that revision (serializable: each
//! member's own data) and merged in key order. A key differs when only one member has it, or
//! when its modification revision or value digest differs. Only the first few are kept for
//! the report; all are counted.

use std::collections::VecDeque;

use crate::source::{KeyFacts, Source};
use crate::Error;

/// Keys a page of the comparison asks for.
const PAGE: u32 = 1000;
/// Differing keys kept for the report.
pub const SHOWN: usize = 10;

/// One key two members disagree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyDiff {
    /// The key.
    pub key: Vec<u8>,
    /// Its modification revision on the reference member; `None` when it lacks the key.
    pub reference: Option<i64>,
    /// Its modification revision on the other member; `None` when it lacks the key.
    pub member: Option<i64>,
}

/// How one member's keyspace differs from the reference's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The member most others agree with.
    pub reference: String,
    /// The member compared with it.
    pub member: String,
    /// The first differing keys, in key order (at most [`SHOWN`]).
    pub first: Vec<KeyDiff>,
    /// How many keys differ in all.
    pub total: u64,
}

/// One member's keys in order, a page at a time.
struct Cursor<'a, S> {
    source: &'a S,
    target: usize,
    revision: i64,
    buffered: VecDeque<KeyFacts>,
    next: Option<Vec<u8>>,
}

impl<'a, S: Source> Cursor<'a, S> {
    fn new(source: &'a S, target: usize, revision: i64) -> Self {
        Self {
            source,
            target,
            revision,
            buffered: VecDeque::new(),
            next: Some(vec![0]),
        }
    }

    /// The next key without taking it; `None` past the last.
    async fn peek(&mut self) -> Result<Option<&KeyFacts>, Error> {
        while self.buffered.is_empty() {
            let Some(from) = self.next.take() else {
                return Ok(None);
            };
            let page = self
                .source
                .page(self.target, &from, None, self.revision, PAGE)
                .await?;
            if page.more {
                self.next = page.keys.last().map(|k| {
                    let mut after = k.key.clone();
                    after.push(0);
                    after
                });
            }
            self.buffered.extend(page.keys);
        }
        Ok(self.buffered.front())
    }

    fn take(&mut self) -> Option<KeyFacts> {
        self.buffered.pop_front()
    }
}

/// Compares member `member`'s keyspace with member `reference`'s at `revision`.
pub async fn compare<S: Source>(
    source: &S,
    reference: usize,
    member: usize,
    revision: i64,
) -> Result<Divergence, Error> {
    let targets = source.targets();
    let mut out = Divergence {
        reference: targets[reference].name.clone(),
        member: targets[member].name.clone(),
        first: Vec::new(),
        total: 0,
    };
    let mut a = Cursor::new(source, reference, revision);
    let mut b = Cursor::new(source, member, revision);
    loop {
        let order = match (a.peek().await?, b.peek().await?) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.key.cmp(&y.key),
        };
        let diff = match order {
            std::cmp::Ordering::Less => a.take().map(|x| KeyDiff {
                key: x.key,
                reference: Some(x.mod_revision),
                member: None,
            }),
            std::cmp::Ordering::Greater => b.take().map(|y| KeyDiff {
                key: y.key,
                reference: None,
                member: Some(y.mod_revision),
            }),
            std::cmp::Ordering::Equal => match (a.take(), b.take()) {
                (Some(x), Some(y))
                    if x.mod_revision != y.mod_revision || x.value_digest != y.value_digest =>
                {
                    Some(KeyDiff {
                        key: x.key,
                        reference: Some(x.mod_revision),
                        member: Some(y.mod_revision),
                    })
                }
                _ => None,
            },
        };
        if let Some(diff) = diff {
            out.total += 1;
            if out.first.len() < SHOWN {
                out.first.push(diff);
            }
        }
    }
    Ok(out)
}

impl Divergence {
    /// `m3 differs from m1 in 2 keys at revision 100: /a/3 (only on m3, revision 7), ...`.
    pub fn describe(&self, revision: i64) -> String {
        let keys: Vec<String> = self
            .first
            .iter()
            .map(|d| {
                let key = String::from_utf8_lossy(&d.key);
                match (d.reference, d.member) {
                    (Some(r), None) => {
                        format!("{key} (only on {}, revision {r})", self.reference)
                    }
                    (None, Some(m)) => format!("{key} (only on {}, revision {m})", self.member),
                    (Some(r), Some(m)) if r == m => {
                        format!("{key} (other value at the same revision {r})",)
                    }
                    (r, m) => format!(
                        "{key} ({} revision {}, {} revision {})",
                        self.reference,
                        r.unwrap_or_default(),
                        self.member,
                        m.unwrap_or_default()
                    ),
                }
            })
            .collect();
        let more = self.total.saturating_sub(self.first.len() as u64);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!(
            "{} differs from {} in {} key(s) at revision {revision}: {}{tail}",
            self.member,
            self.reference,
            self.total,
            keys.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeCluster;

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn differing_keys_are_named_with_their_revisions_across_pages() {
        // More keys than a page holds, so the merge crosses page boundaries on both sides.
        let keys: Vec<(String, u64)> = (0..2500).map(|i| (format!("/k/{i:05}"), 10)).collect();
        let named: Vec<(&str, u64)> = keys.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        let mut c = FakeCluster::healthy(3, &named);
        let m3 = &mut c.members[2].keys;
        m3.remove(b"/k/01200".as_slice());
        m3.insert(b"/k/01500x".to_vec(), (10, 4));
        m3.insert(b"/k/02000".to_vec(), (99, 1));
        let d = run(compare(&c, 0, 2, 100)).expect("compare");
        assert_eq!(d.total, 3, "{d:?}");
        let keys: Vec<String> = d
            .first
            .iter()
            .map(|k| String::from_utf8_lossy(&k.key).into_owned())
            .collect();
        assert_eq!(keys, ["/k/01200", "/k/01500x", "/k/02000"]);
        assert_eq!(
            d.describe(100),
            "m3 differs from m1 in 3 key(s) at revision 100: /k/01200 (only on m1, revision 1), \
             /k/01500x (only on m3, revision 4), /k/02000 (other value at the same revision 1)"
        );
        let same = run(compare(&c, 0, 1, 100)).expect("compare");
        assert_eq!((same.total, same.first.len()), (0, 0));
    }

    #[test]
    fn only_the_first_keys_are_kept_but_all_are_counted() {
        let mut c = FakeCluster::healthy(2, &[]);
        for i in 0..25 {
            c.members[1]
                .keys
                .insert(format!("/x/{i:02}").into_bytes(), (1, 1));
        }
        let d = run(compare(&c, 0, 1, 100)).expect("compare");
        assert_eq!((d.total, d.first.len()), (25, SHOWN));
        assert!(
            d.describe(100).ends_with(" and 15 more"),
            "{}",
            d.describe(100)
        );
    }
}
