//! Backups: the age of the newest backup the store lists (a backup is listed only once it was
//! verified against the server's checksum and its manifest written) against the `[backup]`
//! schedule. Warn once it is older than one and a half scheduled gaps (a run was missed), fail
//! once it is older than `[alerts] backup_stale_after` (when CairnBackupStale fires), when
//! there is none, or when the store cannot be listed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::Error;
use crate::{CheckId, CheckResult, Figure, Limit, Status, Unit};
use cairn_client::chain;

/// Where the newest backup is looked up: the CLI lists the inventory's backup store, unit
/// tests answer from memory. The error ([`Error::Catalog`]) is shown in the check with its causes.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// The newest listed backup, or none yet.
    fn newest(&self) -> Pin<Box<dyn Future<Output = Result<Option<Newest>, Error>> + Send + '_>>;
}

/// The backups check of an inventory with a `[backup]` table.
#[derive(Clone, Debug)]
pub struct BackupCheck {
    /// The backup store.
    pub catalog: Arc<dyn Catalog>,
    /// The longest gap between two scheduled backups.
    pub every: Duration,
    /// `[alerts] backup_stale_after`.
    pub stale_after: Duration,
}

impl BackupCheck {
    /// Looks the newest backup up and grades it at `now`.
    pub async fn run(&self, now: SystemTime) -> CheckResult {
        let freshness = Freshness {
            newest: self.catalog.newest().await,
            every: self.every,
            stale_after: self.stale_after,
        };
        evaluate(&freshness, now)
    }
}

/// The newest listed backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Newest {
    /// Its ID.
    pub id: String,
    /// When it was finished.
    pub finished_at: SystemTime,
    /// The revision it holds.
    pub revision: i64,
}

/// What the backup store said, and what the schedule promises.
#[derive(Debug)]
pub struct Freshness {
    /// The newest backup, none yet, or why the store could not be listed.
    pub newest: Result<Option<Newest>, Error>,
    /// The longest gap between two scheduled backups.
    pub every: Duration,
    /// `[alerts] backup_stale_after`.
    pub stale_after: Duration,
}

/// Grades `freshness` at `now`.
pub fn evaluate(freshness: &Freshness, now: SystemTime) -> CheckResult {
    let hours = |d: Duration| d.as_secs_f64() / 3600.0;
    let warn = hours(freshness.every) * 1.5;
    let fail = hours(freshness.stale_after).max(warn);
    let fix = "see `cairn backup list` and the backup daemon's log (`cairn backupd`)";
    match &freshness.newest {
        Err(e) => CheckResult::new(
            CheckId::Backups,
            Status::Fail,
            format!("{}; {fix}", chain(e)),
            Vec::new(),
        ),
        Ok(None) => CheckResult::new(
            CheckId::Backups,
            Status::Fail,
            format!("the backup store has no backup; take one with `cairn backup now`, then {fix}"),
            Vec::new(),
        ),
        Ok(Some(newest)) => {
            let age = hours(now.duration_since(newest.finished_at).unwrap_or_default());
            let figure = Figure::graded(
                &newest.id,
                "age_hours",
                age,
                Unit::Hours,
                Limit::above(warn, fail),
            );
            let summary = match figure.status {
                Status::Pass => format!(
                    "the newest backup, {} at revision {}, is {age:.1} h old",
                    newest.id, newest.revision
                ),
                _ => format!(
                    "the newest backup, {}, is {age:.1} h old (backups are due every {:.1} h); {fix}",
                    newest.id,
                    hours(freshness.every)
                ),
            };
            CheckResult::new(CheckId::Backups, figure.status, summary, vec![figure])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn at(hours_old: u64, newest: bool) -> CheckResult {
        let now = SystemTime::UNIX_EPOCH + HOUR * 1000;
        let freshness = Freshness {
            newest: Ok(newest.then(|| Newest {
                id: "full-1".into(),
                finished_at: now - HOUR * hours_old as u32,
                revision: 42,
            })),
            every: HOUR,
            stale_after: HOUR * 3,
        };
        evaluate(&freshness, now)
    }

    #[test]
    fn grades_the_age_against_the_schedule() {
        let fresh = at(1, true);
        assert_eq!(fresh.status, Status::Pass, "{fresh:?}");
        assert_eq!(fresh.figures[0].value, 1.0);
        assert!(fresh.summary.contains("revision 42"), "{}", fresh.summary);
        // One and a half gaps: a run was missed.
        assert_eq!(at(2, true).status, Status::Warn);
        // Past backup_stale_after, as the alert.
        let stale = at(4, true);
        assert_eq!(stale.status, Status::Fail);
        assert!(stale.summary.contains("4.0 h old"), "{}", stale.summary);
    }

    #[test]
    fn no_backup_or_an_unreadable_store_fails() {
        assert_eq!(at(0, false).status, Status::Fail);
        let broken = evaluate(
            &Freshness {
                newest: Err(Error::Catalog("connection refused".into())),
                every: HOUR,
                stale_after: HOUR * 2,
            },
            SystemTime::UNIX_EPOCH,
        );
        assert_eq!(broken.status, Status::Fail);
        assert!(broken.summary.contains("connection refused"));
    }
}
