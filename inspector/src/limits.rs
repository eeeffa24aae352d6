//! Every limit the checks grade against, gathered from the inventory: its `[inspection]`
//! table, plus the `[alerts]` thresholds that already exist for the same measurements (quota,
//! fragmentation, certificate expiry, fsync and commit p99), so an inspection and an alert
//! never disagree about the same number.

use std::time::Duration;

use cairn_inventory::{Alerts, Inspection, Inventory};

/// Limits and sizes of one inspection.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// `[inspection]`.
    pub inspection: Inspection,
    /// `[alerts]`.
    pub alerts: Alerts,
    /// `[inspection] hot_prefix_window`, parsed.
    pub hot_prefix_window: Duration,
    /// The backend quota in bytes when the members do not report it (etcd's default, 2 GiB).
    pub default_quota_bytes: u64,
}

/// etcd's default `--quota-backend-bytes`.
pub const ETCD_DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

impl Limits {
    /// The inventory's limits.
    pub fn from_inventory(inventory: &Inventory) -> Self {
        Self {
            inspection: inventory.inspection.clone(),
            alerts: inventory.alerts.clone(),
            hot_prefix_window: inventory.schedule.hot_prefix_window,
            default_quota_bytes: ETCD_DEFAULT_QUOTA_BYTES,
        }
    }
}

impl Default for Limits {
    /// The defaults of an inventory that sets nothing (for `--endpoints` without one).
    fn default() -> Self {
        Self {
            inspection: Inspection::default(),
            alerts: Alerts::default(),
            hot_prefix_window: Duration::from_secs(10),
            default_quota_bytes: ETCD_DEFAULT_QUOTA_BYTES,
        }
    }
}
