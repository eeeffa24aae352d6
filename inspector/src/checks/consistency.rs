//! Consistency: every member's hash of the keyspace at one common revision (the lowest every
//! member has applied) must be equal; so must their key counts at that revision. When hashes
//! differ, the keys that differ are named ([`crate::keyspace_diff`], run by the inspection for
//! the members [`diverged`] names). Revision and raft index spreads show members falling
//! behind.

use std::collections::BTreeMap;

use super::{summarize, Statuses};
use crate::keyspace_diff::Divergence;
use crate::source::{HashKv, Target};
use crate::Error;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};
use cairn_client::chain;

/// Members grouped by the hash they gave, largest group last among equals as
/// [`evaluate`] takes it.
fn hash_groups(hashes: &[Option<Result<HashKv, Error>>]) -> BTreeMap<(u32, i64), Vec<usize>> {
    let mut groups: BTreeMap<(u32, i64), Vec<usize>> = BTreeMap::new();
    for (t, h) in hashes.iter().enumerate() {
        if let Some(Ok(h)) = h {
            groups
                .entry((h.hash, h.compact_revision))
                .or_default()
                .push(t);
        }
    }
    groups
}

/// When hashes differ: a member of the largest group (the reference) and every member
/// outside it, to compare key by key.
pub fn diverged(hashes: &[Option<Result<HashKv, Error>>]) -> Option<(usize, Vec<usize>)> {
    let groups = hash_groups(hashes);
    if groups.len() < 2 {
        return None;
    }
    let (_, majority) = groups.iter().max_by_key(|(_, members)| members.len())?;
    let others = groups
        .values()
        .filter(|g| *g != majority)
        .flatten()
        .copied()
        .collect();
    Some((*majority.first()?, others))
}

/// Grades consistency at `revision`; `hashes` and `counts` are per target (`None` for
/// members without a status); `divergences` are the key comparisons of the members
/// [`diverged`] named, or why one could not be made (member name and error).
pub fn evaluate(
    targets: &[Target],
    statuses: &Statuses,
    revision: i64,
    hashes: &[Option<Result<HashKv, Error>>],
    counts: &[Option<Result<u64, Error>>],
    divergences: &[Result<Divergence, (String, Error)>],
    limits: &Limits,
) -> CheckResult {
    let mut figures = Vec::new();
    let mut findings = Vec::new();
    // Members grouped by hash; the largest group is taken as the cluster's view.
    let mut groups: BTreeMap<(u32, i64), Vec<&str>> = BTreeMap::new();
    for (t, h) in targets.iter().zip(hashes) {
        match h {
            Some(Ok(h)) => groups
                .entry((h.hash, h.compact_revision))
                .or_default()
                .push(&t.name),
            Some(Err(e)) => findings.push(format!(
                "{} did not hash revision {revision}: {}",
                t.name,
                chain(e)
            )),
            None => {}
        }
    }
    let majority = groups
        .iter()
        .max_by_key(|(_, members)| members.len())
        .map(|(k, _)| *k);
    for (t, h) in targets.iter().zip(hashes) {
        if let Some(Ok(h)) = h {
            let agrees = Some((h.hash, h.compact_revision)) == majority;
            figures.push(Figure::judged(
                &t.name,
                "hash",
                f64::from(h.hash),
                Unit::Hash,
                if agrees && groups.len() == 1 {
                    Status::Pass
                } else {
                    Status::Fail
                },
            ));
        }
    }
    if groups.len() > 1 {
        // The majority first, so the members named last are the ones that differ.
        let mut ordered: Vec<_> = groups.iter().collect();
        ordered.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
        let described: Vec<String> = ordered
            .iter()
            .map(|((hash, _), members)| format!("{} hash {hash:08x}", members.join(", ")))
            .collect();
        findings.push(format!(
            "members disagree at revision {revision}: {}; their data has diverged",
            described.join(" vs ")
        ));
        for d in divergences {
            findings.push(match d {
                Ok(d) => d.describe(revision),
                Err((member, e)) => format!(
                    "the keys of {member} could not be compared at revision {revision}: {}",
                    chain(e)
                ),
            });
        }
    }
    let mut count_groups: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (t, c) in targets.iter().zip(counts) {
        match c {
            Some(Ok(n)) => count_groups.entry(*n).or_default().push(&t.name),
            Some(Err(e)) => {
                findings.push(format!("{} did not count its keys: {}", t.name, chain(e)))
            }
            None => {}
        }
    }
    for (t, c) in targets.iter().zip(counts) {
        if let Some(Ok(n)) = c {
            figures.push(Figure::judged(
                &t.name,
                "keys",
                *n as f64,
                Unit::Count,
                if count_groups.len() == 1 {
                    Status::Pass
                } else {
                    Status::Fail
                },
            ));
        }
    }
    if count_groups.len() > 1 {
        let mut ordered: Vec<_> = count_groups.iter().collect();
        ordered.sort_by_key(|(_, members)| std::cmp::Reverse(members.len()));
        let described: Vec<String> = ordered
            .iter()
            .map(|(n, members)| format!("{} {n} keys", members.join(", ")))
            .collect();
        findings.push(format!(
            "key counts at revision {revision} differ: {}",
            described.join(" vs ")
        ));
    }
    let limit = Limit::above(
        limits.inspection.index_spread_warn as f64,
        limits.inspection.index_spread_fail as f64,
    );
    let answering: Vec<_> = statuses.iter().filter_map(|s| s.as_ref().ok()).collect();
    let spread = |f: &dyn Fn(&crate::source::MemberStatus) -> u64| {
        let v: Vec<u64> = answering.iter().map(|s| f(s)).collect();
        v.iter().max().copied().unwrap_or(0) - v.iter().min().copied().unwrap_or(0)
    };
    for (name, value) in [
        ("revision_spread", spread(&|s| s.revision.max(0) as u64)),
        ("raft_index_spread", spread(&|s| s.raft_index)),
        ("applied_index_spread", spread(&|s| s.raft_applied_index)),
    ] {
        let f = Figure::graded("cluster", name, value as f64, Unit::Count, limit);
        if f.status != Status::Pass {
            findings.push(format!("{name} is {value}: a member is falling behind"));
        }
        figures.push(f);
    }
    figures.push(Figure::info(
        "cluster",
        "revision",
        revision as f64,
        Unit::Count,
    ));
    let floor = if hashes.iter().flatten().any(Result::is_err) {
        Status::Fail
    } else {
        Status::Pass
    };
    let checked = hashes.iter().flatten().filter(|h| h.is_ok()).count();
    // A member that does not answer is not known to agree: two agreeing members out of three
    // is not a pass.
    let silent: Vec<&str> = targets
        .iter()
        .zip(hashes)
        .filter(|(_, h)| h.is_none())
        .map(|(t, _)| t.name.as_str())
        .collect();
    let floor = if silent.is_empty() {
        floor
    } else {
        findings.push(format!(
            "only {} of {} members compared at revision {revision}: {} did not answer (see membership)",
            targets.len() - silent.len(),
            targets.len(),
            silent.join(", ")
        ));
        floor.max(Status::Warn)
    };
    let fine = format!("{checked} members agree at revision {revision}");
    CheckResult::new(
        CheckId::Consistency,
        floor,
        summarize(&findings, fine),
        figures,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MemberStatus;

    fn targets() -> Vec<Target> {
        (1..=3)
            .map(|i| Target {
                name: format!("m{i}"),
                endpoint: String::new(),
                metrics: None,
            })
            .collect()
    }

    fn statuses() -> Vec<Result<MemberStatus, Error>> {
        (1..=3)
            .map(|i| {
                Ok(MemberStatus {
                    member_id: i,
                    revision: 100,
                    raft_index: 200 + i,
                    raft_applied_index: 200,
                    ..MemberStatus::default()
                })
            })
            .collect()
    }

    fn h(hash: u32) -> Option<Result<HashKv, Error>> {
        Some(Ok(HashKv {
            hash,
            compact_revision: -1,
        }))
    }

    #[test]
    fn equal_hashes_pass() {
        let r = evaluate(
            &targets(),
            &statuses(),
            100,
            &[h(7), h(7), h(7)],
            &[Some(Ok(5)), Some(Ok(5)), Some(Ok(5))],
            &[],
            &Limits::default(),
        );
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert_eq!(r.summary, "3 members agree at revision 100");
        let spread = r
            .figures
            .iter()
            .find(|f| f.name == "raft_index_spread")
            .expect("spread");
        assert_eq!(spread.value, 2.0);
    }

    #[test]
    fn a_diverged_member_fails_by_name() {
        let r = evaluate(
            &targets(),
            &statuses(),
            100,
            &[h(7), h(7), h(9)],
            &[Some(Ok(5)), Some(Ok(5)), Some(Ok(6))],
            &[Ok(Divergence {
                reference: "m1".into(),
                member: "m3".into(),
                first: vec![crate::keyspace_diff::KeyDiff {
                    key: b"/a/3".to_vec(),
                    reference: None,
                    member: Some(7),
                }],
                total: 1,
            })],
            &Limits::default(),
        );
        assert!(
            r.summary.contains(
                "m3 differs from m1 in 1 key(s) at revision 100: /a/3 (only on m3, revision 7)"
            ),
            "{}",
            r.summary
        );
        assert_eq!(diverged(&[h(7), h(7), h(9)]), Some((0, vec![2])));
        assert_eq!(diverged(&[h(7), h(7), h(7)]), None);
        assert_eq!(r.status, Status::Fail);
        assert!(
            r.summary.starts_with(
                "members disagree at revision 100: m1, m2 hash 00000007 vs m3 hash 00000009;"
            ),
            "{}",
            r.summary
        );
        assert!(
            r.summary
                .contains("key counts at revision 100 differ: m1, m2 5 keys vs m3 6 keys"),
            "{}",
            r.summary
        );
        let m3 = r
            .figures
            .iter()
            .find(|f| f.subject == "m3" && f.name == "hash")
            .expect("m3");
        assert_eq!(m3.status, Status::Fail);
    }

    /// A paused member: the two that answer agree, which says nothing about the third.
    #[test]
    fn a_member_that_does_not_answer_is_not_counted_as_agreeing() {
        let mut statuses = statuses();
        statuses[1] = Err(Error::NoEndpoints);
        let r = evaluate(
            &targets(),
            &statuses,
            100,
            &[h(7), None, h(7)],
            &[Some(Ok(5)), None, Some(Ok(5))],
            &[],
            &Limits::default(),
        );
        assert_eq!(r.status, Status::Warn, "{r:?}");
        assert_eq!(
            r.summary,
            "only 2 of 3 members compared at revision 100: m2 did not answer (see membership)"
        );
    }
}
