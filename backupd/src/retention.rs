//! Retention, restic-style: a full backup is kept when it is among the newest `keep_last`,
//! or the newest of one of the last `keep_hourly` hours (days, ISO weeks, months) that have a
//! backup. The newest full backup is always kept, and so are the increments of every kept
//! full backup; increments of a removed one go with it. Ordering is by time and revision as
//! numbers.

use std::collections::HashSet;

use cairn_inventory::Retention;
use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::manifest::{Kind, Manifest};
use crate::{Backups, Error};

/// What a prune removed (or, dry, would remove) and kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Removed IDs, oldest first.
    pub removed: Vec<String>,
    /// Kept IDs, oldest first.
    pub kept: Vec<String>,
}

/// The calendar bucket (hour, day, ISO week or month) a time falls in.
type Bucket = fn(DateTime<Utc>) -> (i32, u32, u32, u32);

/// Which of `backups` to keep (by index), whatever their order in the slice.
pub fn keep(backups: &[Manifest], policy: &Retention) -> HashSet<usize> {
    let mut fulls: Vec<usize> = (0..backups.len())
        .filter(|&i| backups[i].kind == Kind::Full)
        .collect();
    // Newest first.
    fulls.sort_by_key(|&i| std::cmp::Reverse(backups[i].order_key()));
    let mut kept: HashSet<usize> = fulls
        .iter()
        .copied()
        .take(policy.keep_last as usize)
        .collect();
    kept.extend(fulls.first().copied());
    let buckets: [(u32, Bucket); 4] = [
        (policy.keep_hourly, |t| (t.year(), t.ordinal(), t.hour(), 0)),
        (policy.keep_daily, |t| (t.year(), t.ordinal(), 0, 0)),
        (policy.keep_weekly, |t| {
            let w = t.iso_week();
            (w.year(), w.week(), 0, 0)
        }),
        (policy.keep_monthly, |t| (t.year(), t.month(), 0, 0)),
    ];
    for (count, bucket) in buckets {
        let mut seen = HashSet::new();
        for &i in &fulls {
            if seen.len() >= count as usize {
                break;
            }
            if seen.insert(bucket(backups[i].started_at)) {
                kept.insert(i);
            }
        }
    }
    let kept_ids: HashSet<&str> = kept.iter().map(|&i| backups[i].id.as_str()).collect();
    let increments: Vec<usize> = (0..backups.len())
        .filter(|&i| {
            backups[i].kind == Kind::Incremental
                && backups[i]
                    .base
                    .as_deref()
                    .is_some_and(|b| kept_ids.contains(b))
        })
        .collect();
    kept.extend(increments);
    kept
}

impl Backups {
    /// Applies the retention policy; with `dry_run`, only says what it would remove.
    pub async fn prune(&self, dry_run: bool) -> Result<Pruned, Error> {
        let backups = self.list().await?;
        let kept = keep(&backups, &self.retention);
        let mut pruned = Pruned::default();
        for (i, m) in backups.iter().enumerate() {
            if kept.contains(&i) {
                pruned.kept.push(m.id.clone());
            } else {
                if !dry_run {
                    self.delete(m).await?;
                }
                pruned.removed.push(m.id.clone());
            }
        }
        Ok(pruned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{backup_id, FORMAT};
    use cairn_inventory::{Compression, ServerKind};
    use proptest::prelude::*;

    pub(crate) fn full(t: i64, revision: i64) -> Manifest {
        let started_at = DateTime::from_timestamp(t, 0).expect("time");
        Manifest {
            format: FORMAT,
            id: backup_id(Kind::Full, started_at, revision),
            kind: Kind::Full,
            cluster: "c".into(),
            cluster_id: 1,
            member: "m".into(),
            member_id: 1,
            server: ServerKind::Cairn,
            server_version: "v".into(),
            revision,
            from_revision: None,
            base: None,
            slot: None,
            started_at,
            finished_at: started_at,
            object: "o".into(),
            plain_bytes: 0,
            plain_sha256: String::new(),
            stored_bytes: 0,
            stored_sha256: String::new(),
            compression: Compression::Zstd,
            encrypted: false,
        }
    }

    fn none() -> Retention {
        Retention {
            keep_last: 0,
            keep_hourly: 0,
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
        }
    }

    #[test]
    fn revisions_order_as_numbers_not_strings() {
        // Same second: revision 10 is newer than 9 (as strings "10" < "9").
        let backups = vec![full(1000, 10), full(1000, 9)];
        let kept = keep(&backups, &none());
        assert_eq!(kept, HashSet::from([0]));
    }

    #[test]
    fn daily_buckets_keep_the_newest_of_each_day() {
        let day = 86_400;
        let backups: Vec<_> = (0..10).map(|i| full(i * day / 4, i)).collect();
        let kept = keep(
            &backups,
            &Retention {
                keep_daily: 2,
                ..none()
            },
        );
        // Days 0..2 hold backups 0-3, 4-7, 8-9: the newest day is 9, the one before is 7.
        assert_eq!(kept, HashSet::from([9, 7]));
    }

    #[test]
    fn increments_follow_their_base() {
        let a = full(100, 1);
        let b = full(200, 5);
        let mut inc = full(150, 3);
        inc.kind = Kind::Incremental;
        inc.base = Some(a.id.clone());
        let mut inc_b = full(250, 7);
        inc_b.kind = Kind::Incremental;
        inc_b.base = Some(b.id.clone());
        let kept = keep(&[a, b, inc, inc_b], &none());
        assert_eq!(kept, HashSet::from([1, 3]));
    }

    /// A year of hourly backups, pruned after each, with a fake clock: the newest is never
    /// removed and the kept set stays bounded by the buckets.
    #[tokio::test]
    async fn a_year_of_hourly_backups_keeps_the_newest_and_a_bounded_set() {
        use crate::{Backups, ClusterSpec, Codec, FakeClock};
        use std::sync::Arc;
        let start = DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01");
        let clock = Arc::new(FakeClock::at_utc(start));
        let store = Arc::new(crate::store::MemoryStore::new());
        let spec = ClusterSpec {
            credentials: None,
            name: "c".into(),
            server: ServerKind::Cairn,
            endpoints: Vec::new(),
            tls: None,
            binary: "cairn-server".into(),
        };
        let codec = Codec {
            compression: Compression::Zstd,
            key: None,
        };
        let policy = Retention::default();
        let backups =
            Backups::new(store, "", spec, codec, clock.clone()).with_retention(policy.clone());
        let bound = (1
            + policy.keep_last
            + policy.keep_hourly
            + policy.keep_daily
            + policy.keep_weekly
            + policy.keep_monthly) as usize;
        for hour in 0..(24 * 365) {
            clock.advance(std::time::Duration::from_secs(3600));
            let mut m = full(crate::Clock::now_utc(clock.as_ref()).timestamp(), hour + 9);
            m.object = format!("c/{}/snapshot.db.zst", m.id);
            backups.write_manifest(&m).await.expect("manifest");
            // Prune daily, like a daemon on an hourly schedule would each run.
            if hour % 24 == 23 {
                let pruned = backups.prune(false).await.expect("prune");
                assert!(
                    pruned.kept.contains(&m.id),
                    "hour {hour}: the newest was removed"
                );
                assert!(!pruned.removed.contains(&m.id));
                assert!(pruned.kept.len() <= bound, "{}", pruned.kept.len());
            }
        }
        let left = backups.list().await.expect("list");
        // 24 last (within the 48 hourly), 14 daily, 8 weekly and 12 monthly overlap.
        assert!(left.len() >= 48 && left.len() <= bound, "{}", left.len());
        let months: HashSet<u32> = left.iter().map(|m| m.started_at.month()).collect();
        assert!(months.len() >= 12, "one per month: {months:?}");
    }

    proptest! {
        #[test]
        fn the_newest_full_backup_is_always_kept(
            times in proptest::collection::vec((0i64..4_000_000_000, 1i64..1_000_000_000), 1..60),
            last in 0u32..5, hourly in 0u32..5, daily in 0u32..5, weekly in 0u32..5, monthly in 0u32..5,
        ) {
            let backups: Vec<_> = times.iter().map(|&(t, r)| full(t, r)).collect();
            let policy = Retention { keep_last: last, keep_hourly: hourly, keep_daily: daily, keep_weekly: weekly, keep_monthly: monthly };
            let kept = keep(&backups, &policy);
            let newest = (0..backups.len()).max_by_key(|&i| backups[i].order_key()).expect("one");
            prop_assert!(kept.contains(&newest));
            prop_assert!(kept.len() >= (last as usize).min(backups.len()).max(1));
            let bound = 1 + last + hourly + daily + weekly + monthly;
            prop_assert!(kept.len() <= bound as usize);
        }
    }
}
