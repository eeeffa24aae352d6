//! One module per `cairn` command.

pub mod check;
