//! One module per `cairn` command.

pub mod bench;
pub mod check;
pub mod rules;
