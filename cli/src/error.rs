//! The operator binary's one library error type.

/// What can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A check or benchmark failed to run.
    #[error(transparent)]
    Bench(#[from] cairn_bench::Error),
    /// The inventory could not be read or failed its checks.
    #[error(transparent)]
    Inventory(#[from] cairn_inventory::Error),
    /// Generating alert rules and their companions failed.
    #[error(transparent)]
    Rules(#[from] cairn_rules::Error),
    /// A result could not be printed as JSON.
    #[error("cannot print the result as JSON: {0}")]
    Json(#[from] serde_json::Error),
}
