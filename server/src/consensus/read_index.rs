//! ReadIndex rounds: which readers wait for which round, and under which raft contexts.
//!
//! raft-rs's leader keys pending read requests by their context and silently drops a request
//! whose context is already pending; a leader that has not yet committed an entry in its term
//! drops read requests too, and a forwarded request or its answer can be lost with a message.
//! So a context must be unique across the cluster and across restarts (this member's ID, its
//! start time and a counter), and a round that is not answered is asked again under a new
//! context, as etcd retries its ReadIndex every 500 ms. Any context a round was asked under
//! serves its readers: each was asked after they all joined it.

use std::collections::HashMap;

use tokio::sync::oneshot;

use crate::{Error, EtcdError};

/// Told the confirmed read index, or why none could be had.
pub type ReadWaiter = oneshot::Sender<Result<u64, Error>>;

/// The raft context of one ask: member ID, incarnation, sequence number (big-endian).
const CTX_LEN: usize = 24;

/// Readers of one round.
struct Round {
    readers: Vec<ReadWaiter>,
    /// Sequence numbers this round was asked under.
    asked: Vec<u64>,
    /// Tick of the latest ask (or, while no leader is known, of the round's start).
    last_ask: u64,
    /// Tick since which no leader has been known for this round (`None`: one is known).
    leaderless_since: Option<u64>,
}

/// Timing, in raft ticks.
#[derive(Clone, Copy, Debug)]
pub struct ReadTiming {
    /// An unanswered round is asked again after this many ticks.
    pub retry_ticks: u64,
    /// A round that has had no leader for this many ticks fails with [`EtcdError::NoLeader`].
    pub leaderless_ticks: u64,
}

/// The rounds in flight on one member.
pub struct ReadIndexRounds {
    member: u64,
    incarnation: u64,
    timing: ReadTiming,
    next_seq: u64,
    next_round: u64,
    rounds: HashMap<u64, Round>,
    /// Sequence number → round.
    seqs: HashMap<u64, u64>,
    now: u64,
}

impl ReadIndexRounds {
    /// Rounds of member `member`, started at `incarnation` (distinct for every start of the
    /// member, e.g. the start time in nanoseconds).
    pub fn new(member: u64, incarnation: u64, timing: ReadTiming) -> Self {
        Self {
            member,
            incarnation,
            timing,
            next_seq: 0,
            next_round: 0,
            rounds: HashMap::new(),
            seqs: HashMap::new(),
            now: 0,
        }
    }

    /// Starts one round for `readers`; the context to hand to raft, or `None` when no leader
    /// is known (the round waits for one, see [`Self::tick`]).
    pub fn start(&mut self, readers: Vec<ReadWaiter>, leader_known: bool) -> Option<Vec<u8>> {
        if readers.is_empty() {
            return None;
        }
        self.next_round += 1;
        let id = self.next_round;
        self.rounds.insert(
            id,
            Round {
                readers,
                asked: Vec::new(),
                last_ask: self.now,
                leaderless_since: (!leader_known).then_some(self.now),
            },
        );
        leader_known.then(|| self.ask(id))
    }

    /// A read state from raft: serves the round asked under `ctx`, if it is still waiting.
    pub fn answered(&mut self, ctx: &[u8], index: u64) {
        let Some(seq) = self.own_seq(ctx) else {
            return;
        };
        let Some(id) = self.seqs.remove(&seq) else {
            return;
        };
        if let Some(round) = self.rounds.remove(&id) {
            for s in &round.asked {
                self.seqs.remove(s);
            }
            for reader in round.readers {
                let _ = reader.send(Ok(index));
            }
        }
    }

    /// The leader has committed an entry of its term: until then it drops read requests, so
    /// the rounds asked before are asked again.
    pub fn term_committed(&mut self) -> Vec<Vec<u8>> {
        self.leader_changed(true)
    }

    /// The leader (or term) changed: answers to contexts asked before can no longer come, so
    /// every round is asked again of the new leader, or waits for one.
    pub fn leader_changed(&mut self, leader_known: bool) -> Vec<Vec<u8>> {
        self.seqs.clear();
        let now = self.now;
        let ids: Vec<u64> = self.rounds.keys().copied().collect();
        let mut ctxs = Vec::new();
        for id in ids {
            if let Some(round) = self.rounds.get_mut(&id) {
                round.asked.clear();
                if leader_known {
                    round.leaderless_since = None;
                } else {
                    round.leaderless_since.get_or_insert(now);
                    continue;
                }
            }
            ctxs.push(self.ask(id));
        }
        ctxs
    }

    /// One raft tick: rounds unanswered for too long are asked again (contexts returned),
    /// rounds without a leader for too long fail with [`EtcdError::NoLeader`].
    pub fn tick(&mut self, leader_known: bool) -> Vec<Vec<u8>> {
        self.now += 1;
        let now = self.now;
        let mut due = Vec::new();
        let mut failed = Vec::new();
        for (id, round) in &mut self.rounds {
            match round.leaderless_since {
                Some(_) if leader_known => {
                    round.leaderless_since = None;
                    due.push(*id);
                }
                Some(since) if now - since >= self.timing.leaderless_ticks => failed.push(*id),
                Some(_) => {}
                None if !leader_known => round.leaderless_since = Some(now),
                None if now - round.last_ask >= self.timing.retry_ticks => due.push(*id),
                None => {}
            }
        }
        for id in failed {
            if let Some(round) = self.rounds.remove(&id) {
                for s in &round.asked {
                    self.seqs.remove(s);
                }
                for reader in round.readers {
                    let _ = reader.send(Err(Error::Etcd(EtcdError::NoLeader)));
                }
            }
        }
        due.into_iter().map(|id| self.ask(id)).collect()
    }

    /// Rounds waiting.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rounds.len()
    }

    /// Whether no round waits.
    pub fn is_empty(&self) -> bool {
        self.rounds.is_empty()
    }

    /// A new context for round `id`.
    fn ask(&mut self, id: u64) -> Vec<u8> {
        self.next_seq += 1;
        let seq = self.next_seq;
        self.seqs.insert(seq, id);
        if let Some(round) = self.rounds.get_mut(&id) {
            round.asked.push(seq);
            round.last_ask = self.now;
        }
        let mut ctx = Vec::with_capacity(CTX_LEN);
        ctx.extend_from_slice(&self.member.to_be_bytes());
        ctx.extend_from_slice(&self.incarnation.to_be_bytes());
        ctx.extend_from_slice(&seq.to_be_bytes());
        ctx
    }

    /// The sequence number of a context this incarnation made.
    fn own_seq(&self, ctx: &[u8]) -> Option<u64> {
        if ctx.len() != CTX_LEN {
            return None;
        }
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&ctx[i * 8..(i + 1) * 8]);
            u64::from_be_bytes(b)
        };
        (word(0) == self.member && word(1) == self.incarnation).then(|| word(2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: ReadTiming = ReadTiming {
        retry_ticks: 2,
        leaderless_ticks: 5,
    };

    fn waiter() -> (ReadWaiter, oneshot::Receiver<Result<u64, Error>>) {
        oneshot::channel()
    }

    /// The cause of the multi-endpoint stall: every member numbered its rounds from 1, so the
    /// first rounds of two members reached the leader under the same context, and raft-rs
    /// dropped the second. Contexts of different members, and of one member's two starts,
    /// never collide.
    #[test]
    fn contexts_of_members_and_restarts_differ() {
        let mut a = ReadIndexRounds::new(1, 100, TIMING);
        let mut b = ReadIndexRounds::new(2, 100, TIMING);
        let mut a_again = ReadIndexRounds::new(1, 101, TIMING);
        let ca = a.start(vec![waiter().0], true).expect("ctx");
        let cb = b.start(vec![waiter().0], true).expect("ctx");
        let ca2 = a_again.start(vec![waiter().0], true).expect("ctx");
        assert_ne!(ca, cb);
        assert_ne!(ca, ca2);
        // And an answer meant for another member, or another start, serves nothing here.
        a.answered(&cb, 7);
        a.answered(&ca2, 7);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn an_answer_serves_every_reader_of_its_round_once() {
        let mut r = ReadIndexRounds::new(1, 1, TIMING);
        let (w1, mut r1) = waiter();
        let (w2, mut r2) = waiter();
        let ctx = r.start(vec![w1, w2], true).expect("ctx");
        r.answered(&ctx, 42);
        assert_eq!(r1.try_recv().expect("answer").expect("index"), 42);
        assert_eq!(r2.try_recv().expect("answer").expect("index"), 42);
        assert!(r.is_empty());
        r.answered(&ctx, 43);
        assert!(r.is_empty());
    }

    #[test]
    fn an_unanswered_round_is_asked_again_and_either_answer_serves() {
        let mut r = ReadIndexRounds::new(1, 1, TIMING);
        let (w, mut rx) = waiter();
        let first = r.start(vec![w], true).expect("ctx");
        assert!(r.tick(true).is_empty());
        let again = r.tick(true);
        assert_eq!(again.len(), 1, "asked again after retry_ticks");
        assert_ne!(again[0], first);
        // The first ask's late answer still serves (it was asked after the reader joined).
        r.answered(&first, 9);
        assert_eq!(rx.try_recv().expect("answer").expect("index"), 9);
        r.answered(&again[0], 10);
        assert!(r.is_empty());
    }

    #[test]
    fn a_leader_change_asks_every_round_again() {
        let mut r = ReadIndexRounds::new(1, 1, TIMING);
        let (w, mut rx) = waiter();
        let old = r.start(vec![w], true).expect("ctx");
        let new = r.leader_changed(true);
        assert_eq!(new.len(), 1);
        // The former leader's answer can no longer be trusted to come, nor is it awaited.
        r.answered(&old, 5);
        assert!(rx.try_recv().is_err());
        r.answered(&new[0], 6);
        assert_eq!(rx.try_recv().expect("answer").expect("index"), 6);
    }

    #[test]
    fn without_a_leader_a_round_waits_then_fails_with_no_leader() {
        let mut r = ReadIndexRounds::new(1, 1, TIMING);
        let (w, mut rx) = waiter();
        assert!(r.start(vec![w], false).is_none());
        for _ in 0..TIMING.leaderless_ticks - 1 {
            assert!(r.tick(false).is_empty());
        }
        assert!(rx.try_recv().is_err(), "still waiting for a leader");
        r.tick(false);
        assert!(matches!(
            rx.try_recv(),
            Ok(Err(Error::Etcd(EtcdError::NoLeader)))
        ));
        assert!(r.is_empty());
    }

    #[test]
    fn a_round_waiting_for_a_leader_is_asked_once_one_is_known() {
        let mut r = ReadIndexRounds::new(1, 1, TIMING);
        let (w, mut rx) = waiter();
        assert!(r.start(vec![w], false).is_none());
        r.tick(false);
        let asked = r.tick(true);
        assert_eq!(asked.len(), 1);
        r.answered(&asked[0], 3);
        assert_eq!(rx.try_recv().expect("answer").expect("index"), 3);
    }

    #[test]
    fn losing_the_leader_mid_round_starts_the_leaderless_clock() {
        let mut r = ReadIndexRounds::new(1, 1, TIMING);
        let (w, mut rx) = waiter();
        r.start(vec![w], true).expect("ctx");
        assert!(r.leader_changed(false).is_empty());
        for _ in 0..TIMING.leaderless_ticks {
            r.tick(false);
        }
        assert!(matches!(
            rx.try_recv(),
            Ok(Err(Error::Etcd(EtcdError::NoLeader)))
        ));
    }
}
