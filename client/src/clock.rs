//! Where "now" comes from, behind one trait for every tool: certificate expiry, growth rates,
//! backup IDs, schedules and retention depend on it, and tests move it (a certificate near
//! its expiry, a year of backups in a moment).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;

    /// The current time in UTC, for calendars and names.
    fn now_utc(&self) -> DateTime<Utc> {
        DateTime::<Utc>::from(self.now())
    }
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock tests set and move by hand; it stands still otherwise.
#[derive(Debug)]
pub struct FakeClock(Mutex<SystemTime>);

impl FakeClock {
    /// A clock standing at `t`.
    pub fn new(t: SystemTime) -> Self {
        Self(Mutex::new(t))
    }

    /// A clock standing at the UTC time `t`.
    pub fn at_utc(t: DateTime<Utc>) -> Self {
        Self::new(t.into())
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += d;
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: SystemTime) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_clock_moves_only_when_told() {
        let c = FakeClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(100));
        assert_eq!(unix_seconds(c.now()), 100);
        c.advance(Duration::from_secs(86_400));
        assert_eq!(unix_seconds(c.now()), 86_500);
        assert_eq!(c.now_utc().timestamp(), 86_500);
        c.set(SystemTime::UNIX_EPOCH);
        assert_eq!(unix_seconds(c.now()), 0);
    }
}
