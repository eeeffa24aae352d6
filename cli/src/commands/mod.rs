//! One module per `cairn` command.

pub mod bench;
pub mod check;
pub mod destroy;
pub mod import;
pub mod inspect;
pub mod provision;
pub mod rules;
pub mod status;
