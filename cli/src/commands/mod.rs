//! One module per `cairn` command.

pub mod backup;
pub mod backupd;
pub mod bench;
pub mod certs;
pub mod check;
pub mod completions;
pub mod destroy;
pub mod import;
pub mod inspect;
pub mod man;
pub mod provision;
pub mod rules;
pub mod status;
pub mod up;
