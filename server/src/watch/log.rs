//! The recent-event ring: every applied change, in revision order, kept in memory up to a bound
//! so that watchers that keep up read events without touching storage. A watcher that falls
//! behind the ring reads history from the store instead; writers never wait for watchers.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::proto::mvccpb::Event;

#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<Event>>,
    /// Every event with a revision >= this is in `events`.
    complete_from: i64,
}

/// Recent events, shared by the write loop (pushes) and watchers (read).
#[derive(Debug)]
pub struct EventLog {
    ring: RwLock<Ring>,
    capacity: usize,
}

fn rev_of(e: &Event) -> i64 {
    e.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

impl EventLog {
    /// An empty log for a store at revision `current`: it holds every event after it.
    pub fn new(current: i64, capacity: usize) -> Self {
        Self {
            ring: RwLock::new(Ring {
                events: VecDeque::new(),
                complete_from: current + 1,
            }),
            capacity: capacity.max(1),
        }
    }

    /// Appends applied events (revision order), dropping the oldest beyond capacity.
    pub fn push(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let mut ring = self.ring.write();
        ring.events.extend(events.into_iter().map(Arc::new));
        while ring.events.len() > self.capacity {
            let dropped = ring.events.pop_front().expect("over capacity");
            ring.complete_from = ring.complete_from.max(rev_of(&dropped) + 1);
        }
    }

    /// Forgets every event: the store was replaced by one at revision `current` (a snapshot
    /// from the leader), and watchers read older history from it.
    pub fn reset(&self, current: i64) {
        let mut ring = self.ring.write();
        ring.events.clear();
        ring.complete_from = current + 1;
    }

    /// Events with revisions in `[from, to]`, or `None` when some of them are no longer held
    /// (read them from the store).
    pub fn read(&self, from: i64, to: i64) -> Option<Vec<Arc<Event>>> {
        let ring = self.ring.read();
        if from < ring.complete_from {
            return None;
        }
        let start = ring.events.partition_point(|e| rev_of(e) < from);
        Some(
            ring.events
                .range(start..)
                .take_while(|e| rev_of(e) <= to)
                .cloned()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::mvccpb::KeyValue;

    fn ev(rev: i64) -> Event {
        Event {
            kv: Some(KeyValue {
                mod_revision: rev,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_it_holds_and_refuses_what_it_dropped() {
        let log = EventLog::new(1, 3);
        assert_eq!(log.read(2, 10).map(|v| v.len()), Some(0));
        log.push(vec![ev(2), ev(3), ev(3)]);
        assert_eq!(log.read(3, 3).map(|v| v.len()), Some(2));
        log.push(vec![ev(4)]);
        // Revision 2 fell out: reading from it must go to the store.
        assert!(log.read(2, 4).is_none());
        assert_eq!(log.read(3, 4).map(|v| v.len()), Some(3));
        log.push(vec![ev(5)]);
        // One event of revision 3 is gone, so revision 3 is incomplete.
        assert!(log.read(3, 5).is_none());
        assert_eq!(log.read(4, 5).map(|v| v.len()), Some(2));
    }
}
