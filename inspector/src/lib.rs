//! Inspection of a running etcd-style cluster (cairn-server or etcd): membership and health,
//! consistency (HashKV at one revision), database size and fragmentation, large values, key
//! counts by prefix and their growth, hot prefixes, read and disk latency, and certificate
//! expiry. Each check grades its figures pass/warn/fail against the inventory's limits; the
//! report renders as a terminal table, JSON (a stable schema) or Markdown.
//!
//! Every I/O boundary is a trait ([`Source`] for the cluster, [`Clock`], [`StateStore`]) so
//! the checks are tested without a cluster; [`EtcdSource`] is the real one.

pub mod checks;
mod error;
mod etcd;
pub mod exporter;
#[cfg(test)]
mod fake;
mod inspect;
pub mod keyspace_diff;
mod limit;
mod limits;
pub mod prefix;
pub mod render;
mod report;
pub mod scan;
mod serve;
pub mod source;
pub mod state;
mod status;

pub use cairn_client::clock::unix_seconds;
pub use cairn_client::{Clock, FakeClock, Metrics, SystemClock, TlsFiles};
pub use checks::backups::{BackupCheck, Catalog, Newest};
pub use checks::membership::Expected;
pub use error::Error;
pub use etcd::EtcdSource;
pub use inspect::{inspect, not_after, Options};
pub use limit::{Direction, Limit};
pub use limits::{Limits, ETCD_DEFAULT_QUOTA_BYTES};
pub use report::{CheckId, CheckResult, Figure, MemberView, Report, Unit, SCHEMA_VERSION};
pub use serve::{serve, Job};
pub use source::{Source, Target};
pub use state::{FileStore, MemoryStore, NoStore, Sample, State, StateStore};
pub use status::Status;
