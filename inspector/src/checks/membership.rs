//! Membership and health: the member list is the expected one, every member answers and
//! knows the leader, exactly one member leads, learners keep up, no alarm is active.

use super::{member_name, summarize, Statuses};
use crate::source::{Alarm, ListedMember, Target};
use crate::Error;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};
use cairn_client::chain;

/// A member the operator expects: by name (inventory) or, without one, by client URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The inventory's host name.
    pub name: Option<String>,
    /// Its client URL.
    pub client_url: String,
}

impl Expected {
    fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.client_url)
    }

    fn matches(&self, m: &ListedMember) -> bool {
        match &self.name {
            Some(n) => *n == m.name,
            None => {
                let bare = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
                m.client_urls
                    .iter()
                    .any(|u| bare(u) == bare(&self.client_url))
            }
        }
    }
}

/// Grades membership and health.
pub fn evaluate(
    targets: &[Target],
    expected: &[Expected],
    statuses: &Statuses,
    list: &Result<Vec<ListedMember>, Error>,
    alarms: &Result<Vec<Alarm>, Error>,
    limits: &Limits,
) -> CheckResult {
    let mut figures = Vec::new();
    let mut findings = Vec::new();
    for (t, s) in targets.iter().zip(statuses) {
        let healthy = match s {
            Err(e) => {
                findings.push(format!("{} does not answer: {}", t.name, chain(e)));
                false
            }
            Ok(s) if s.leader_id == 0 => {
                findings.push(format!("{} knows no leader", t.name));
                false
            }
            Ok(_) => true,
        };
        let status = if healthy { Status::Pass } else { Status::Fail };
        figures.push(Figure::judged(
            &t.name,
            "healthy",
            f64::from(u8::from(healthy)),
            Unit::Count,
            status,
        ));
    }
    let answering: Vec<_> = statuses.iter().filter_map(|s| s.as_ref().ok()).collect();
    let leaders: std::collections::BTreeSet<u64> = answering
        .iter()
        .map(|s| s.leader_id)
        .filter(|&l| l != 0)
        .collect();
    let claiming = answering
        .iter()
        .filter(|s| s.leader_id != 0 && s.leader_id == s.member_id)
        .count();
    let one_leader = leaders.len() == 1 && claiming <= 1;
    if leaders.len() > 1 {
        let names: Vec<String> = leaders
            .iter()
            .map(|&l| member_name(targets, statuses, l))
            .collect();
        findings.push(format!(
            "members disagree on the leader ({})",
            names.join(", ")
        ));
    } else if claiming > 1 {
        findings.push(format!("{claiming} members claim to lead"));
    } else if leaders.is_empty() && !answering.is_empty() {
        findings.push("no member knows a leader".into());
    }
    figures.push(Figure::judged(
        "cluster",
        "leaders",
        leaders.len() as f64,
        Unit::Count,
        if one_leader {
            Status::Pass
        } else {
            Status::Fail
        },
    ));
    let leader = leaders.iter().next().copied();
    let leader_index = answering
        .iter()
        .find(|s| Some(s.member_id) == leader)
        .map(|s| s.raft_index)
        .unwrap_or_else(|| answering.iter().map(|s| s.raft_index).max().unwrap_or(0));
    let spread = Limit::above(
        limits.inspection.index_spread_warn as f64,
        limits.inspection.index_spread_fail as f64,
    );
    for (t, s) in targets.iter().zip(statuses) {
        if let Ok(s) = s {
            if s.is_learner {
                let lag = leader_index.saturating_sub(s.raft_applied_index);
                let f = Figure::graded(&t.name, "learner_lag", lag as f64, Unit::Count, spread);
                if f.status != Status::Pass {
                    findings.push(format!(
                        "learner {} is {lag} entries behind the leader",
                        t.name
                    ));
                }
                figures.push(f);
            }
        }
    }
    match list {
        Err(e) => findings.push(format!("no member list: {}", chain(e))),
        Ok(list) => {
            figures.push(Figure::info(
                "cluster",
                "members",
                list.len() as f64,
                Unit::Count,
            ));
            if !expected.is_empty() {
                for e in expected {
                    if !list.iter().any(|m| e.matches(m)) {
                        findings.push(format!("{} is not in the member list", e.label()));
                        figures.push(Figure::judged(
                            e.label(),
                            "listed",
                            0.0,
                            Unit::Count,
                            Status::Fail,
                        ));
                    }
                }
                for m in list {
                    if !expected.iter().any(|e| e.matches(m)) {
                        let label = if m.name.is_empty() {
                            format!("{:x}", m.id)
                        } else {
                            m.name.clone()
                        };
                        let by_url = m.client_urls.join(", ");
                        findings.push(if expected.iter().all(|e| e.name.is_none()) {
                            format!(
                                "member {label} ({}) is not among the --endpoints",
                                if by_url.is_empty() {
                                    "no client URL yet"
                                } else {
                                    &by_url
                                }
                            )
                        } else {
                            format!("member {label} is not in the inventory")
                        });
                        figures.push(Figure::judged(
                            label,
                            "expected",
                            0.0,
                            Unit::Count,
                            Status::Fail,
                        ));
                    }
                }
            }
        }
    }
    match alarms {
        Err(e) => findings.push(format!("no alarm list: {}", chain(e))),
        Ok(alarms) => {
            for a in alarms {
                let who = member_name(targets, statuses, a.member_id);
                findings.push(format!("alarm {} on {who}", a.kind));
                figures.push(Figure::judged(
                    who,
                    &format!("alarm_{}", a.kind.to_lowercase()),
                    1.0,
                    Unit::Count,
                    Status::Fail,
                ));
            }
        }
    }
    let floor = if list.is_err() || alarms.is_err() {
        Status::Fail
    } else {
        Status::Pass
    };
    let fine = format!(
        "{} members, all healthy, leader {}, no alarms",
        targets.len(),
        leader.map_or_else(|| "none".into(), |l| member_name(targets, statuses, l))
    );
    CheckResult::new(
        CheckId::Membership,
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
                endpoint: format!("http://127.0.0.{i}:2379"),
                metrics: None,
            })
            .collect()
    }

    fn status(id: u64, leader: u64) -> Result<MemberStatus, Error> {
        Ok(MemberStatus {
            member_id: id,
            leader_id: leader,
            raft_index: 10,
            raft_applied_index: 10,
            ..MemberStatus::default()
        })
    }

    fn listed(names: &[&str]) -> Result<Vec<ListedMember>, Error> {
        Ok(names
            .iter()
            .enumerate()
            .map(|(i, n)| ListedMember {
                id: i as u64 + 1,
                name: n.to_string(),
                client_urls: vec![],
                is_learner: false,
            })
            .collect())
    }

    fn expected(names: &[&str]) -> Vec<Expected> {
        names
            .iter()
            .map(|n| Expected {
                name: Some(n.to_string()),
                client_url: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_healthy_cluster_passes() {
        let r = evaluate(
            &targets(),
            &expected(&["m1", "m2", "m3"]),
            &[status(1, 1), status(2, 1), status(3, 1)],
            &listed(&["m1", "m2", "m3"]),
            &Ok(vec![]),
            &Limits::default(),
        );
        assert_eq!(r.status, Status::Pass, "{r:?}");
        assert_eq!(r.summary, "3 members, all healthy, leader m1, no alarms");
    }

    #[test]
    fn a_silent_member_an_extra_member_and_an_alarm_fail() {
        let r = evaluate(
            &targets(),
            &expected(&["m1", "m2", "m3"]),
            &[
                status(1, 1),
                Err(cairn_client::Error::Unreachable {
                    endpoint: "https://m2:2379".into(),
                    source: std::io::ErrorKind::ConnectionRefused.into(),
                }
                .into()),
                status(3, 1),
            ],
            &listed(&["m1", "m2", "m3", "m4"]),
            &Ok(vec![Alarm {
                member_id: 3,
                kind: "NOSPACE".into(),
            }]),
            &Limits::default(),
        );
        assert_eq!(r.status, Status::Fail);
        assert_eq!(
            r.summary,
            "m2 does not answer: cannot reach https://m2:2379 (is the member running, and is the endpoint right?): connection refused; member m4 is not in the inventory; alarm NOSPACE on m3"
        );
    }

    /// `inspect --endpoints`: members are known by URL; a member of the list answers to its
    /// URL however it is spelled, and one that is not given is named as not among them.
    #[test]
    fn with_endpoints_members_are_matched_by_url() {
        let expected: Vec<Expected> = ["https://127.0.0.1:2379/", "https://127.0.0.1:22379"]
            .iter()
            .map(|u| Expected {
                name: None,
                client_url: u.to_string(),
            })
            .collect();
        let mut list = listed(&["e1", "e2", "e3"]).expect("list");
        list[0].client_urls = vec!["https://127.0.0.1:2379".into()];
        list[1].client_urls = vec!["HTTPS://127.0.0.1:22379".into()];
        list[2].client_urls = vec!["https://127.0.0.1:32379".into()];
        let r = evaluate(
            &targets()[..2],
            &expected,
            &[status(1, 1), status(2, 1)],
            &Ok(list),
            &Ok(vec![]),
            &Limits::default(),
        );
        assert_eq!(
            r.summary,
            "member e3 (https://127.0.0.1:32379) is not among the --endpoints"
        );
    }

    #[test]
    fn two_leaders_fail_and_a_lagging_learner_is_graded() {
        let mut learner = status(3, 1).expect("status");
        learner.is_learner = true;
        learner.raft_applied_index = 0;
        let mut limits = Limits::default();
        limits.inspection.index_spread_warn = 5;
        limits.inspection.index_spread_fail = 50;
        let r = evaluate(
            &targets(),
            &[],
            &[status(1, 1), status(2, 2), Ok(learner)],
            &listed(&["m1", "m2", "m3"]),
            &Ok(vec![]),
            &limits,
        );
        assert_eq!(r.status, Status::Fail);
        assert!(
            r.summary
                .contains("members disagree on the leader (m1, m2)"),
            "{}",
            r.summary
        );
        let lag = r
            .figures
            .iter()
            .find(|f| f.name == "learner_lag")
            .expect("lag");
        assert_eq!((lag.value, lag.status), (10.0, Status::Warn));
    }
}
