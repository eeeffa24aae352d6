//! Figures' values for people, by unit.

use crate::checks::bytes;
use crate::Unit;

/// `value` in `unit`: bytes as KiB/MiB, hashes in hex, and so on.
pub fn format_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Count => format!("{value:.0}"),
        Unit::Bytes => bytes(value.max(0.0) as u64),
        Unit::Percent => format!("{value:.1}%"),
        Unit::Ratio => format!("{value:.2}"),
        Unit::Milliseconds => format!("{value:.1} ms"),
        Unit::Days => format!("{value:.1} d"),
        Unit::Hours => format!("{value:.1} h"),
        Unit::PerSecond => format!("{value:.1}/s"),
        Unit::Hash => format!("{:08x}", value as u64),
    }
}
