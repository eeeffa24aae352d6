//! When full backups run: the inventory's crontab line, in its time zone (UTC by default).

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::Error;

/// A parsed `[backup] schedule` with its `timezone`.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: cron::Schedule,
    zone: chrono_tz::Tz,
}

impl Schedule {
    /// Parses a 5-field crontab line, a 6-field one (seconds first) or `@hourly` and friends,
    /// read in UTC.
    pub fn parse(expression: &str) -> Result<Self, Error> {
        Self::parse_in(expression, None)
    }

    /// Parses `expression` read in the IANA zone `timezone` (UTC when `None`).
    pub fn parse_in(expression: &str, timezone: Option<&str>) -> Result<Self, Error> {
        let zone = match timezone {
            None => chrono_tz::UTC,
            Some(name) => name.parse().map_err(|_| Error::TimeZone {
                name: name.to_string(),
            })?,
        };
        let cron = cron::Schedule::from_str(&cairn_inventory::cron_expression(expression))
            .map_err(|source| Error::Schedule {
                expression: expression.to_string(),
                source,
            })?;
        Ok(Self { cron, zone })
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&t.with_timezone(&self.zone))
            .next()
            .map(|n| n.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_write_five_fields_or_macros() {
        let t = DateTime::from_timestamp(1_795_300_000, 0).expect("time"); // 22:26:40
        let hourly = Schedule::parse("@hourly").expect("hourly");
        assert_eq!(
            hourly.next_after(t).map(|n| n.timestamp()),
            Some(1_795_302_000)
        );
        let five = Schedule::parse("*/15 * * * *").expect("5 fields");
        assert_eq!(
            five.next_after(t).map(|n| n.timestamp()),
            Some(1_795_300_200)
        );
        assert!(Schedule::parse("every hour").is_err());
    }

    #[test]
    fn a_local_time_stays_local_across_daylight_saving() {
        let berlin = Schedule::parse_in("0 3 * * *", Some("Europe/Berlin")).expect("berlin");
        // 2026-03-28 12:00 UTC: 03:00 CET is 02:00 UTC, the next day 03:00 CEST is 01:00 UTC.
        let t = DateTime::parse_from_rfc3339("2026-03-28T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let first = berlin.next_after(t).expect("first");
        assert_eq!(first.to_rfc3339(), "2026-03-29T01:00:00+00:00");
        let before = DateTime::parse_from_rfc3339("2026-03-27T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            berlin.next_after(before).map(|n| n.to_rfc3339()),
            Some("2026-03-28T02:00:00+00:00".into())
        );
        assert!(Schedule::parse_in("0 3 * * *", Some("Mars/Olympus")).is_err());
    }
}
