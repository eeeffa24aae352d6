//! The report's renderings: a terminal table, JSON, Markdown and a self-contained HTML page. Values are formatted by
//! their [`crate::Unit`] the same way in all of them.

pub mod html;
pub mod json;
pub mod markdown;
pub mod table;
mod value;

pub use value::format_value;
