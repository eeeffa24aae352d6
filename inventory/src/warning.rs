//! Findings that do not stop a tool but that the operator should see; the library returns
//! them and the binaries print them.

use std::fmt;

use crate::Location;

/// Something legal but probably unintended in the inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// One member: no fault tolerance at all.
    SingleMember {
        /// The host.
        at: Location,
    },
    /// An even member count tolerates no more failures than one member fewer, while a
    /// quorum needs one more vote.
    EvenMembers {
        /// The last host.
        at: Location,
        /// How many members.
        count: usize,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SingleMember { at } => write!(
                f,
                "{at}: a single member survives no failure; use 3 or 5 hosts for production"
            ),
            Self::EvenMembers { at, count } => write!(
                f,
                "{at}: {count} members tolerate no more failures than {} do; add or remove one host",
                count - 1
            ),
        }
    }
}
