//! The `cairn.toml` inventory: one file describing a cluster (its members, how to reach them
//! over SSH, TLS, alert thresholds, backup and inspection schedules), the single source of
//! truth for every cairn tool. [`Inventory::load`] reads and checks it; every error names the
//! file, line and column to change and says how.
//!
//! ```no_run
//! let inventory = cairn_inventory::Inventory::load("cairn.toml".as_ref())?;
//! for w in inventory.warnings() {
//!     eprintln!("warning: {w}");
//! }
//! println!("--initial-cluster {}", inventory.initial_cluster());
//! # Ok::<(), cairn_inventory::Error>(())
//! ```

#[cfg(feature = "clap")]
mod arg;
mod error;
mod inventory;
mod jump;
mod location;
pub mod model;
mod paths;
mod topology;
mod validate;
mod warning;

pub use inventory::{Inventory, Schedule, DEFAULT_FILE};
pub use topology::host_port;

#[cfg(feature = "clap")]
pub use arg::InventoryArg;
pub use error::Error;
pub use location::Location;
pub use model::{
    cron_expression, Access, Alerts, Auth, AuthPermission, AuthRole, AuthUser, Backup, Cluster,
    Compression, Host, Inspection, Jump, Retention, ServerKind, Ssh, SshTarget, Tls, Transport,
    DEFAULT_RUNBOOK_URL,
};
pub use warning::Warning;
