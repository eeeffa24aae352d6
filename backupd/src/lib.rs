//! `cairn backupd`: verified, scheduled backups of an etcd-style cluster (cairn-server or
//! etcd 3.4) to S3 or a directory, with retention and restore.
//!
//! A full backup streams `Maintenance.Snapshot` from the member with the highest revision
//! through zstd (and AES-256-GCM) into a multipart upload, checking the server's SHA-256
//! trailer on the way and recording its own hash of the stored object; its manifest is
//! written last, so only complete backups are ever listed. [`Backups`] is the handle every
//! command uses; [`backup_now`] is the one-call hook for other tools (the provisioner takes a
//! backup before an upgrade).

mod backups;
mod catalog;
mod cluster;
mod codec;
mod crypto;
mod daemon;
mod error;
mod full;
mod incremental;
mod lock;
pub mod logical;
pub mod manifest;
mod metrics;
mod preflight;
mod progress;
mod replay;
mod restore;
pub mod retention;
mod schedule;
mod snapshot_restore;
pub mod store;
mod trailer;
mod verify;

pub use backups::{Backups, Retry, DEFAULT_PART_SIZE};
pub use cairn_client::TlsFiles;
pub use cairn_client::{Clock, FakeClock, SystemClock};
pub use cluster::ClusterSpec;
pub use codec::Codec;
pub use crypto::Key;
pub use daemon::{run as run_daemon, DaemonOptions};
pub use error::Error;
pub use full::{backup_now, LOCK_WAIT};
pub use incremental::Event;
pub use manifest::{Kind, Manifest};
pub use metrics::Metrics;
pub use preflight::Preflight;
pub use progress::{NoProgress, TransferProgress};
pub use restore::{RestoreMember, RestorePlan, Restored, Target};
pub use retention::Pruned;
pub use schedule::Schedule;
pub use store::{ObjectStore, S3Options};
pub use verify::Verified;
