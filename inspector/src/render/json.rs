//! `--format json`: the [`crate::Report`] as pretty JSON; the schema is the report's serde
//! form, documented in `docs/inspection.md`.

use crate::{Error, Report};

/// The report as JSON, ending in a newline.
pub fn render(report: &Report) -> Result<String, Error> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}
