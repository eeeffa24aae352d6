//! The phases of a CA rotation (a leaf: errors name the phase under way).

use std::fmt;

use serde::Serialize;

/// One phase of a CA rotation, each rolled out to every member before the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Members trust the old and the new CA; certificates are still the old CA's.
    TrustBoth,
    /// Every certificate is reissued by the new CA; both CAs are still trusted.
    NewLeaves,
    /// Only the new CA is trusted.
    DropOld,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 3] = [Phase::TrustBoth, Phase::NewLeaves, Phase::DropOld];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::TrustBoth => "trust-both",
            Phase::NewLeaves => "new-leaves",
            Phase::DropOld => "drop-old",
        }
    }

    /// The phases left to roll out when `current` is under way (all of them when none is).
    pub fn remaining(current: Option<Phase>) -> Vec<Phase> {
        Phase::ALL
            .into_iter()
            .filter(|p| current.is_none_or(|c| *p >= c))
            .collect()
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
