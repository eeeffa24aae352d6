//! The cluster's certificates, kept in the inventory's `[tls] dir`: a CA (generated, or the
//! operator's own), one certificate per member used for both client and peer traffic, and
//! client certificates for the admin (etcdctl), the backup daemon, the inspector and
//! Prometheus.
//!
//! Every run checks what is already there ([`check`](crate::Pki::ensure)) and reissues only
//! what is missing, no longer signed by the CA, issued for other names, or within
//! `renew_before_days` of expiry, so a second run writes nothing and the members keep the
//! certificates they were started with. [`Renewal::AllLeaves`] reissues every member and
//! client certificate from the same CA (`cairn certs rotate`).
//!
//! `ca.pem` is what members and clients trust. It may hold more than one CA certificate while
//! a CA rotation is under way ([`rotation`]); the one signing is always the one whose key is
//! `ca-key.pem`.
//!
//! Layers, one way: [`Pki`] (`dir`) → `issue` → `check` → `report`; [`rotation`] → `issue`;
//! [`local_file`] and [`Error`] are leaves. No host, no network: the provisioner pushes what
//! this crate writes.

mod check;
mod dir;
mod error;
mod issue;
pub mod local_file;
mod phase;
mod report;
pub mod rotation;

/// The clients that get a certificate of their own (defined with their file names in the
/// client crate, which every tool reads them through).
pub use cairn_client::ClientIdentity as Client;
pub use check::bundle;
pub use dir::Pki;
pub use error::Error;
pub use issue::{generate_ca, CA_VALIDITY_DAYS, LEAF_VALIDITY_DAYS};
pub use phase::Phase;
pub use report::{Issued, Outcome, Reason, Renewal};
