//! Membership changes on a running cluster: a member added to a loaded cluster catches up
//! through a snapshot streamed from the leader; learners are promoted; any member, the leader
//! included, can be removed. etcdctl drives everything, as an operator would.

use std::time::Duration;

use cairn_testkit::wait_until;

use super::cluster::{cairn_cluster, LEADER_TIMEOUT};

/// Writes `n` keys `prefix/NNNNN`, 20 per etcdctl txn (one raft entry each).
fn load(c: &cairn_testkit::Cluster, prefix: &str, n: usize) {
    const PER_TXN: usize = 20;
    for batch in 0..n.div_ceil(PER_TXN) {
        // No compares, the puts as the success branch, no failure branch.
        let mut txn = String::from("\n");
        for i in batch * PER_TXN..((batch + 1) * PER_TXN).min(n) {
            txn.push_str(&format!("put {prefix}/{i:05} value-{i}\n"));
        }
        txn.push_str("\n\n");
        let out = c
            .member(0)
            .etcdctl_stdin(&["txn"], txn.as_bytes())
            .expect("txn");
        assert!(
            out.success() && out.stdout.starts_with("SUCCESS"),
            "{out:?}"
        );
    }
}

/// Member `i`'s keys under `prefix`, read locally.
fn local_keys(c: &cairn_testkit::Cluster, i: usize, prefix: &str) -> Option<String> {
    let out = c
        .member(i)
        .etcdctl(&["get", prefix, "--prefix", "--consistency=s", "-w", "simple"])
        .ok()?;
    out.success().then_some(out.stdout)
}

#[test]
fn a_member_added_to_a_loaded_cluster_catches_up_through_a_snapshot() {
    // A small snapshot count, so the log the new member would need is compacted away.
    let mut c = cairn_cluster()
        .arg("--snapshot-count=100")
        .start()
        .expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    // 300 txns of 20 puts: more entries than the log keeps.
    load(&c, "/big", 6_000);
    let want = local_keys(&c, 0, "/big").expect("keys");
    assert_eq!(want.lines().count(), 12_000);

    let learner = c.add_member(true).expect("add a learner");
    wait_until(
        "the learner to hold the same keys",
        Duration::from_secs(60),
        || local_keys(&c, learner, "/big").as_deref() == Some(want.as_str()),
    )
    .expect("caught up");
    let log = c.member(learner).log();
    assert!(
        log.contains("installed the leader's snapshot"),
        "the learner caught up without a snapshot; log:\n{log}"
    );
    let list = c.etcdctl(&["member", "list"]).expect("list");
    assert!(
        list.stdout.contains(", m4, ") && list.stdout.contains(", true"),
        "{list:?}"
    );

    // Promote it: the leader checks it is in sync.
    let id = c.member_id(learner).expect("id");
    let hex = format!("{id:x}");
    let promote = wait_until("the promotion to succeed", Duration::from_secs(30), || {
        c.etcdctl(&["member", "promote", &hex])
            .is_ok_and(|o| o.success())
    });
    promote.expect("promoted");
    // Every member applies the promotion (a member that lags may list it a moment later).
    wait_until(
        "four voters in every member's list",
        Duration::from_secs(20),
        || {
            (0..c.len()).all(|i| {
                c.member(i)
                    .etcdctl(&["member", "list"])
                    .is_ok_and(|l| l.stdout.lines().filter(|l| l.ends_with(", false")).count() == 4)
            })
        },
    )
    .expect("promoted everywhere");
    // Four voters commit writes, and the new one serves them.
    let put = c
        .member(learner)
        .etcdctl(&["put", "/after", "x"])
        .expect("put");
    assert_eq!(put.stdout, "OK\n", "{put:?}");
}

#[test]
fn members_are_removed_the_leader_among_them() {
    let mut c = cairn_cluster()
        .size(4)
        .arg("--heartbeat-interval=50")
        .arg("--election-timeout=500")
        .start()
        .expect("cluster");
    let leader = c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let leader_id = c.member_id(leader).expect("id");
    let removed = c.remove_member(leader_id).expect("remove the leader");
    assert!(removed.success(), "{removed:?}");
    assert!(
        removed
            .stdout
            // etcdctl pads the ID to 16 characters.
            .contains(&format!("Member {leader_id:16x} removed")),
        "{removed:?}"
    );
    // The removed leader stops by itself, saying why.
    wait_until(
        "the removed leader to exit",
        Duration::from_secs(20),
        || !c.member_mut(leader).is_running(),
    )
    .expect("removed member exits");
    assert!(
        c.member(leader).log().contains("removed from the cluster"),
        "{}",
        c.member(leader).log()
    );
    let next = c.wait_leader(LEADER_TIMEOUT).expect("a new leader");
    assert_ne!(next, leader);
    let put = c.etcdctl_running(&["put", "k", "v"]).expect("put");
    assert_eq!(put.stdout, "OK\n", "{put:?}");

    // Then a follower.
    let follower = (0..4)
        .find(|&i| i != leader && i != next)
        .expect("a follower");
    let follower_id = c.member_id(follower).expect("id");
    let removed = c.remove_member(follower_id).expect("remove a follower");
    assert!(removed.success(), "{removed:?}");
    wait_until(
        "the removed follower to exit",
        Duration::from_secs(20),
        || !c.member_mut(follower).is_running(),
    )
    .expect("removed member exits");
    let list = c.etcdctl_running(&["member", "list"]).expect("list");
    assert_eq!(list.stdout.lines().count(), 2, "{list:?}");
    let put = c.etcdctl_running(&["put", "k2", "v"]).expect("put");
    assert_eq!(put.stdout, "OK\n", "{put:?}");
    // A removed member does not come back.
    let err = c.member_mut(follower).restart().expect_err("must refuse");
    assert!(err.to_string().contains("removed"), "{err}");
}
