//! `file:line:column` for a byte span of the inventory, or for the value under a key path, so
//! every error points at the text to change.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// A position in an inventory file (line and column count from 1; columns in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The inventory file.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Location {
    /// The start of `span` in `source`; the file's start without a span.
    pub fn of_span(file: &Path, source: &str, span: Option<Range<usize>>) -> Self {
        let offset = span.map_or(0, |s| s.start.min(source.len()));
        let before = &source[..floor_char_boundary(source, offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            file: file.to_path_buf(),
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// The value under `path` (table keys, and array indices as decimal strings:
    /// `["hosts", "1", "address"]`); the deepest part of the path that exists when the rest is
    /// missing (a default was used), the file's start when nothing does.
    pub fn of_key(file: &Path, source: &str, path: &[&str]) -> Self {
        Self::of_span(file, source, key_span(source, path))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

fn key_span(source: &str, path: &[&str]) -> Option<Range<usize>> {
    let root = DeTable::parse(source).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut found = None;
    let mut rest = path.iter().peekable();
    while let Some(key) = rest.next() {
        let Some((_, mut value)) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *key) else {
            return found;
        };
        found = Some(value.span());
        // Array elements are addressed by the next path part.
        if let DeValue::Array(items) = value.get_ref() {
            match rest.peek().and_then(|i| i.parse::<usize>().ok()) {
                Some(i) => {
                    rest.next();
                    let Some(item) = items.get(i) else {
                        return found;
                    };
                    value = item;
                    found = Some(value.span());
                }
                None => return found,
            }
        }
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return found,
        }
    }
    found
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "[cluster]\nname = \"main\"\n\n[[hosts]]\nname = \"a\"\n\n[[hosts]]\nname = \"b\"\naddress = \"é\"\n";

    #[test]
    fn spans_count_lines_and_characters_from_one() {
        let at = Location::of_span(Path::new("c.toml"), "ab\ncé d", Some(7..8));
        assert_eq!((at.line, at.column), (2, 4));
        assert_eq!(at.to_string(), "c.toml:2:4");
    }

    #[test]
    fn key_paths_reach_into_arrays_of_tables() {
        let at = Location::of_key(Path::new("c.toml"), DOC, &["hosts", "1", "address"]);
        assert_eq!((at.line, at.column), (9, 11));
        let at = Location::of_key(Path::new("c.toml"), DOC, &["cluster", "name"]);
        assert_eq!((at.line, at.column), (2, 8));
    }

    #[test]
    fn a_missing_key_points_at_the_start() {
        let at = Location::of_key(Path::new("c.toml"), DOC, &["alerts", "job"]);
        assert_eq!((at.line, at.column), (1, 1));
    }
}
