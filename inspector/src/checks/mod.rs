//! One file per check. Each is a pure function from what was gathered to a
//! [`crate::CheckResult`], so every grade is unit-tested without a cluster.

pub mod backups;
pub mod certificates;
pub mod consistency;
pub mod database;
pub mod hot_prefixes;
pub mod key_counts;
pub mod large_values;
pub mod latency;
pub mod membership;

use crate::source::{MemberStatus, Target};
use crate::Error;

/// Each target's status, or why it has none.
pub type Statuses = [Result<MemberStatus, Error>];

/// The name of the member with `id`, from the targets' statuses; the hex ID when no target
/// has it.
pub fn member_name(targets: &[Target], statuses: &Statuses, id: u64) -> String {
    statuses
        .iter()
        .zip(targets)
        .find(|(s, _)| s.as_ref().is_ok_and(|s| s.member_id == id))
        .map(|(_, t)| t.name.clone())
        .unwrap_or_else(|| format!("{id:x}"))
}

/// Joins findings into one summary line, or gives `fine` when there are none.
pub fn summarize(findings: &[String], fine: String) -> String {
    if findings.is_empty() {
        fine
    } else {
        findings.join("; ")
    }
}

/// Bytes for people, in IEC units as `cairn status` prints them: `1.2 MiB`.
pub fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}
