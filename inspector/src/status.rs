//! The grade every check and figure gets. Ordered so the worst of several is their `max`,
//! and numbered like the `cairn_inspection_check_status` gauge the alert rules compare.

use serde::{Deserialize, Serialize};

/// Pass, warn or fail.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Within every limit.
    #[default]
    Pass,
    /// Past a warning limit: look at it soon.
    Warn,
    /// Past a failure limit, or the check could not be made: act now.
    Fail,
}

impl Status {
    /// The gauge value (0, 1, 2) that `cairn rules`' alerts compare against.
    pub fn gauge(self) -> f64 {
        match self {
            Status::Pass => 0.0,
            Status::Warn => 1.0,
            Status::Fail => 2.0,
        }
    }

    /// The process exit code of an inspection with this overall status.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Pass => 0,
            Status::Warn => 1,
            Status::Fail => 2,
        }
    }

    /// Lower-case name, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_is_the_maximum() {
        assert_eq!(
            [Status::Pass, Status::Fail, Status::Warn].into_iter().max(),
            Some(Status::Fail)
        );
        assert_eq!(
            (
                Status::Pass.exit_code(),
                Status::Warn.exit_code(),
                Status::Fail.exit_code()
            ),
            (0, 1, 2)
        );
    }
}
