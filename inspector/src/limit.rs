//! A figure's limits: the values at which it becomes a warning or a failure, and in which
//! direction (database size grows towards its limit, days until expiry shrink towards it).

use serde::{Deserialize, Serialize};

use crate::Status;

/// Which side of a limit is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Values at or above the limit are bad.
    Above,
    /// Values below the limit are bad.
    Below,
}

/// Warning and failure limits of one figure; either may be absent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limit {
    /// Which side is bad.
    pub direction: Direction,
    /// Where a warning starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warn: Option<f64>,
    /// Where a failure starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail: Option<f64>,
}

impl Limit {
    /// Bad at or above `warn` / `fail`.
    pub fn above(warn: f64, fail: f64) -> Self {
        Self {
            direction: Direction::Above,
            warn: Some(warn),
            fail: Some(fail),
        }
    }

    /// Bad below `warn` / `fail`.
    pub fn below(warn: f64, fail: f64) -> Self {
        Self {
            direction: Direction::Below,
            warn: Some(warn),
            fail: Some(fail),
        }
    }

    /// Only a warning, at or above `warn`.
    pub fn warn_above(warn: f64) -> Self {
        Self {
            direction: Direction::Above,
            warn: Some(warn),
            fail: None,
        }
    }

    /// Only a warning, below `warn`.
    pub fn warn_below(warn: f64) -> Self {
        Self {
            direction: Direction::Below,
            warn: Some(warn),
            fail: None,
        }
    }

    /// Only a failure, at or above `fail`.
    pub fn fail_above(fail: f64) -> Self {
        Self {
            direction: Direction::Above,
            warn: None,
            fail: Some(fail),
        }
    }

    /// The grade of `value`.
    pub fn grade(&self, value: f64) -> Status {
        let past = |limit: Option<f64>| {
            limit.is_some_and(|l| match self.direction {
                Direction::Above => value >= l,
                Direction::Below => value < l,
            })
        };
        if past(self.fail) {
            Status::Fail
        } else if past(self.warn) {
            Status::Warn
        } else {
            Status::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn above_grades_at_the_limit_and_below_under_it() {
        let l = Limit::above(10.0, 20.0);
        assert_eq!(
            [l.grade(9.9), l.grade(10.0), l.grade(20.0)],
            [Status::Pass, Status::Warn, Status::Fail]
        );
        let l = Limit::below(30.0, 7.0);
        assert_eq!(
            [l.grade(30.0), l.grade(29.0), l.grade(6.9)],
            [Status::Pass, Status::Warn, Status::Fail]
        );
        assert_eq!(Limit::warn_above(5.0).grade(1e9), Status::Warn);
    }
}
