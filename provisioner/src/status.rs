//! The cluster table `cairn provision` ends with and `cairn status` prints: every member of
//! the inventory, whether it answers, who leads, revision, database size and version.

use std::fmt;

use cairn_inventory::Inventory;
use serde::Serialize;

use crate::probe::{MemberStatus, Probe};

/// One inventory member as it answered (or why it did not).
#[derive(Clone, Debug, Serialize)]
pub struct MemberRow {
    /// Member name.
    pub name: String,
    /// Its client URL.
    pub endpoint: String,
    /// Its status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole cluster, in inventory order.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterStatus {
    /// One row per member.
    pub members: Vec<MemberRow>,
}

impl ClusterStatus {
    /// Asks every member at once.
    pub async fn query<P: Probe>(inventory: &Inventory, probe: &P) -> Self {
        let rows = inventory.hosts.iter().map(|h| async move {
            let (status, error) = match probe.status(&h.name).await {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(cairn_client::chain(&e))),
            };
            MemberRow {
                name: h.name.clone(),
                endpoint: inventory.client_url(h),
                status,
                error,
            }
        });
        Self {
            members: futures::future::join_all(rows).await,
        }
    }

    /// How many members answered.
    pub fn answering(&self) -> usize {
        self.members.iter().filter(|m| m.status.is_some()).count()
    }

    /// The leader's name, when a member that answered is it.
    pub fn leader(&self) -> Option<&str> {
        self.members
            .iter()
            .find(|m| m.status.as_ref().is_some_and(MemberStatus::is_leader))
            .map(|m| m.name.as_str())
    }
}

impl fmt::Display for ClusterStatus {
    /// A table like `etcdctl endpoint status -w table`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows = vec![[
            "NAME".to_string(),
            "ENDPOINT".into(),
            "LEADER".into(),
            "REVISION".into(),
            "DB SIZE".into(),
            "VERSION".into(),
        ]];
        for m in &self.members {
            rows.push(match (&m.status, &m.error) {
                (Some(s), _) => [
                    m.name.clone(),
                    m.endpoint.clone(),
                    if s.is_leader() { "true" } else { "false" }.into(),
                    s.revision.to_string(),
                    human_bytes(s.db_size),
                    s.version.clone(),
                ],
                (None, error) => [
                    m.name.clone(),
                    m.endpoint.clone(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("unreachable: {}", error.as_deref().unwrap_or("no answer")),
                ],
            });
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
            .collect();
        for row in rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Bytes in IEC units (`20.0 KiB`, `1.2 MiB`), as `cairn inspect` prints them.
fn human_bytes(n: i64) -> String {
    bytesize::ByteSize(u64::try_from(n).unwrap_or(0))
        .display()
        .iec()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, status: Option<(u64, u64)>) -> MemberRow {
        MemberRow {
            name: name.into(),
            endpoint: format!("https://{name}:2379"),
            status: status.map(|(member_id, leader_id)| MemberStatus {
                member_id,
                leader_id,
                revision: 42,
                db_size: 1_234_567,
                version: "3.4.23".into(),
                raft_term: 2,
            }),
            error: status.is_none().then(|| "connection refused".into()),
        }
    }

    #[test]
    fn the_table_marks_the_leader_and_unreachable_members() {
        let s = ClusterStatus {
            members: vec![
                row("a", Some((1, 2))),
                row("b", Some((2, 2))),
                row("c", None),
            ],
        };
        assert_eq!((s.answering(), s.leader()), (2, Some("b")));
        assert_eq!(
            s.to_string(),
            "NAME  ENDPOINT        LEADER  REVISION  DB SIZE  VERSION\n\
             a     https://a:2379  false   42        1.2 MiB  3.4.23\n\
             b     https://b:2379  true    42        1.2 MiB  3.4.23\n\
             c     https://c:2379  -       -         -        unreachable: connection refused\n"
        );
    }

    #[test]
    fn sizes_are_in_iec_units_like_the_inspectors() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(20_480), "20.0 KiB");
        assert_eq!(human_bytes(3_000_000_000), "2.8 GiB");
    }
}
