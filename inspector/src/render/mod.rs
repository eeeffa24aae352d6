//! The report's renderings: a terminal table, JSON and Markdown. Values are formatted by
//! their [`crate::Unit`] the same way in all of them.

pub mod json;
pub mod markdown;
pub mod table;
mod value;

pub use value::format_value;
