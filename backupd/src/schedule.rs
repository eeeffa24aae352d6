//! When full backups run: the inventory's crontab line, in UTC.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::Error;

/// A parsed `[backup] schedule`.
#[derive(Clone, Debug)]
pub struct Schedule(cron::Schedule);

impl Schedule {
    /// Parses a 5-field crontab line, a 6-field one (seconds first) or `@hourly` and friends.
    pub fn parse(expression: &str) -> Result<Self, Error> {
        cron::Schedule::from_str(&cairn_inventory::cron_expression(expression))
            .map(Self)
            .map_err(|source| Error::Schedule {
                expression: expression.to_string(),
                source,
            })
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.after(&t).next()
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
}
