//! What a run of [`crate::Pki::ensure`] did with each certificate, and why (a leaf: the
//! checks and the issuing code report through these types).

use std::fmt;

use serde::Serialize;

/// Which leaves a run reissues besides those that cannot be kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Renewal {
    /// Only what is missing, damaged, renamed, not signed by the CA or expiring.
    #[default]
    AsNeeded,
    /// Every member and client certificate, signed by the same CA (`cairn certs rotate`).
    AllLeaves,
}

/// What a run did with one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    /// There was none: issued.
    Created,
    /// The existing one is kept as it is.
    Reused,
    /// The existing one could not be kept: issued again.
    Reissued(Reason),
}

/// Why an existing certificate is not kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The certificate or its key is not readable PEM.
    Unreadable,
    /// The key file does not belong to the certificate.
    KeyMismatch,
    /// Not signed by the current CA (the CA was replaced).
    NotSignedByCa,
    /// Issued for other names or addresses than the inventory now wants.
    NamesChanged,
    /// Lacks the server/client usages the member or client needs.
    UsagesChanged,
    /// Expires within `renew_before_days` (or has expired).
    Expiring {
        /// Whole days left (negative once expired).
        days_left: i64,
    },
    /// Its validity starts in the future.
    NotYetValid,
    /// A rotation of every leaf was asked for.
    Rotated,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unreadable => f.write_str("unreadable"),
            Reason::KeyMismatch => f.write_str("key does not match"),
            Reason::NotSignedByCa => f.write_str("not signed by the CA"),
            Reason::NamesChanged => f.write_str("names changed"),
            Reason::UsagesChanged => f.write_str("usages changed"),
            Reason::Expiring { days_left } if *days_left < 0 => f.write_str("expired"),
            Reason::Expiring { days_left } => write!(f, "expires in {days_left} days"),
            Reason::NotYetValid => f.write_str("not valid yet"),
            Reason::Rotated => f.write_str("rotated"),
        }
    }
}

/// One certificate of the run and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issued {
    /// `ca`, a member name, or a client's file stem.
    pub name: String,
    /// What was done.
    #[serde(flatten)]
    pub outcome: Outcome,
}
