//! The manifest: a JSON file written beside a backup's object, last, so that a backup exists
//! exactly when its manifest does. Everything `list`, `verify`, `prune` and `restore` need.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use cairn_inventory::{Compression, ServerKind};

/// This version's manifest format.
pub const FORMAT: u32 = 1;
/// The manifest's name inside a backup's directory.
pub const FILE: &str = "manifest.json";

/// Full snapshot or watch-based increment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `Maintenance.Snapshot`.
    Full,
    /// Events of a revision range.
    Incremental,
}

/// One backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The backup's ID (its directory in the store).
    pub id: String,
    /// Full or incremental.
    pub kind: Kind,
    /// `[cluster] name`.
    pub cluster: String,
    /// The cluster ID the server reported.
    pub cluster_id: u64,
    /// The member the data came from (its client URL).
    pub member: String,
    /// That member's ID.
    pub member_id: u64,
    /// Which server ran.
    pub server: ServerKind,
    /// Its version, as it reported it.
    pub server_version: String,
    /// Full: the revision when the snapshot started (the snapshot holds at least this).
    /// Incremental: the last revision covered.
    pub revision: i64,
    /// Incremental: the first revision covered.
    pub from_revision: Option<i64>,
    /// Incremental: the full backup the chain starts from.
    pub base: Option<String>,
    /// The schedule slot this backup ran for (a restarted daemon skips slots done).
    pub slot: Option<DateTime<Utc>>,
    /// When the backup started.
    pub started_at: DateTime<Utc>,
    /// When its object was stored.
    pub finished_at: DateTime<Utc>,
    /// The object's key, relative to the store.
    pub object: String,
    /// Size of the data before encoding.
    pub plain_bytes: u64,
    /// SHA-256 of the data before encoding (for a snapshot, including its trailer).
    pub plain_sha256: String,
    /// Size of the stored object.
    pub stored_bytes: u64,
    /// SHA-256 of the stored object.
    pub stored_sha256: String,
    /// How the object is compressed.
    pub compression: Compression,
    /// Whether it is encrypted (AES-256-GCM, `[backup] encryption_key_file`).
    pub encrypted: bool,
}

impl Manifest {
    /// Newest-last order: by start time, then revision, as numbers.
    pub fn order_key(&self) -> (DateTime<Utc>, i64) {
        (self.started_at, self.revision)
    }
}

/// A backup's ID: its start time and revision, readable and unique per cluster.
pub fn backup_id(kind: Kind, started: DateTime<Utc>, revision: i64) -> String {
    let kind = match kind {
        Kind::Full => "full",
        Kind::Incremental => "incr",
    };
    format!(
        "{}-{kind}-r{revision}",
        started.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let t = DateTime::from_timestamp(1_795_300_000, 0).expect("time");
        Manifest {
            format: FORMAT,
            id: backup_id(Kind::Incremental, t, 42),
            kind: Kind::Incremental,
            cluster: "main".into(),
            cluster_id: 0x1234,
            member: "https://10.0.0.1:2379".into(),
            member_id: 0x99,
            server: ServerKind::Cairn,
            server_version: "3.5.0".into(),
            revision: 42,
            from_revision: Some(30),
            base: Some("20261118T000000.000Z-full-r29".into()),
            slot: None,
            started_at: t,
            finished_at: t + chrono::Duration::seconds(2),
            object: "main/x/events.jsonl.zst".into(),
            plain_bytes: 100,
            plain_sha256: "ab".repeat(32),
            stored_bytes: 60,
            stored_sha256: "cd".repeat(32),
            compression: Compression::Zstd,
            encrypted: true,
        }
    }

    /// The stored format is an interface: old backups must stay readable.
    #[test]
    fn golden_manifest() {
        let text = serde_json::to_string_pretty(&sample()).expect("json");
        let golden = include_str!("../tests/golden/manifest.json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/manifest.json"),
                format!("{text}\n"),
            )
            .expect("write golden");
            return;
        }
        assert_eq!(text.trim_end(), golden.trim_end());
        let back: Manifest = serde_json::from_str(golden).expect("parse");
        assert_eq!(back, sample());
    }

    #[test]
    fn ids_sort_like_their_times() {
        let t = DateTime::from_timestamp(1_795_300_000, 0).expect("time");
        assert_eq!(backup_id(Kind::Full, t, 7), "20261121T222640.000Z-full-r7");
    }
}
