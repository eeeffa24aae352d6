//! One watcher: a task that delivers the events of its key range from its start revision on.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tonic::Status;

use crate::mvcc::{KeyRange, RangeOptions};
use crate::node::Node;
use crate::proto::etcdserverpb::WatchResponse;
use crate::proto::mvccpb::{event::EventType, Event};

/// Revisions looked at per step while catching up.
const REVISIONS_PER_READ: i64 = 1000;
/// Stored events read per step while catching up (a single revision is never split, so one
/// huge revision, e.g. a delete of many keys, is read whole).
const EVENTS_PER_READ: usize = 1000;

/// Which event types a watcher drops (etcd's NOPUT / NODELETE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// Drop puts.
    pub no_put: bool,
    /// Drop deletes.
    pub no_delete: bool,
}

/// What a watcher delivers.
#[derive(Clone, Debug)]
pub struct WatchSpec {
    /// Its ID within the stream.
    pub id: i64,
    /// The keys it watches.
    pub range: KeyRange,
    /// The first revision it delivers.
    pub start: i64,
    /// Event types it drops.
    pub filters: Filters,
    /// Attach each event's previous key-value.
    pub prev_kv: bool,
    /// Send an empty response when idle for a progress interval.
    pub progress_notify: bool,
    /// Split responses larger than the request limit.
    pub fragment: bool,
}

/// The sink of a watch stream.
pub type Sink = mpsc::Sender<Result<WatchResponse, Status>>;

enum Fetch {
    /// Every event of revisions `[from, .1]`.
    Events(Vec<Arc<Event>>, i64),
    Compacted(i64),
}

fn rev_of(e: &Event) -> i64 {
    e.kv.as_ref().map_or(0, |kv| kv.mod_revision)
}

/// Events from `from` on, up to `to` at most: from memory when the ring still holds them, else
/// a bounded read of stored history ending on a whole revision.
fn fetch(node: &Node, from: i64, to: i64) -> Result<Fetch, crate::Error> {
    if let Some(events) = node.events().read(from, to) {
        return Ok(Fetch::Events(events, to));
    }
    node.read(|snap| {
        let compacted = snap.store.compact_revision();
        if from < compacted {
            return Ok(Fetch::Compacted(compacted));
        }
        let mut events = snap.store.events_between(from, to, EVENTS_PER_READ)?;
        let mut upto = to;
        if events.len() == EVENTS_PER_READ {
            let last = events.last().map_or(from, rev_of);
            if last > from {
                // The read may have stopped inside revision `last`: leave it for the next step.
                events.retain(|e| rev_of(e) < last);
                upto = last - 1;
            } else {
                // One revision holds more events than a step reads: take all of it.
                events = snap.store.events_between(from, from, usize::MAX)?;
                upto = from;
            }
        }
        Ok(Fetch::Events(
            events.into_iter().map(Arc::new).collect(),
            upto,
        ))
    })
}

fn keep(spec: &WatchSpec, e: &Event) -> bool {
    let Some(kv) = &e.kv else { return false };
    let is_put = e.r#type == EventType::Put as i32;
    spec.range.contains(&kv.key)
        && !(is_put && spec.filters.no_put)
        && (is_put || !spec.filters.no_delete)
}

/// The key's value just before the event, if history still has it.
fn previous(node: &Node, e: &Event) -> Option<crate::proto::mvccpb::KeyValue> {
    let kv = e.kv.as_ref()?;
    if e.r#type == EventType::Put as i32 && kv.version == 1 {
        return None;
    }
    let opts = RangeOptions {
        rev: kv.mod_revision - 1,
        ..Default::default()
    };
    node.read(|snap| {
        snap.store
            .range(&KeyRange::Single(kv.key.clone()), &opts, snap.rev)
    })
    .ok()
    .and_then(|r| r.kvs.into_iter().next())
}

/// Splits `events` into responses no larger than `limit` bytes when fragmenting is on.
fn responses(
    spec: &WatchSpec,
    node: &Node,
    rev: i64,
    events: Vec<Event>,
    limit: usize,
) -> Vec<WatchResponse> {
    let whole = WatchResponse {
        header: Some(node.header(rev)),
        watch_id: spec.id,
        events,
        ..Default::default()
    };
    if !spec.fragment || whole.encoded_len() <= limit {
        return vec![whole];
    }
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for e in whole.events {
        let len = e.encoded_len() + 8;
        if !current.is_empty() && size + len > limit {
            out.push(std::mem::take(&mut current));
            size = 0;
        }
        size += len;
        current.push(e);
    }
    out.push(current);
    let last = out.len() - 1;
    out.into_iter()
        .enumerate()
        .map(|(i, events)| WatchResponse {
            header: Some(node.header(rev)),
            watch_id: spec.id,
            events,
            fragment: i != last,
            ..Default::default()
        })
        .collect()
}

/// Runs the watcher until the stream goes away or its history was compacted.
pub async fn run(node: Arc<Node>, spec: WatchSpec, out: Sink, progress_every: Duration) {
    let mut revisions = node.subscribe_revisions();
    let mut next = spec.start;
    let limit = node.limits().max_request_bytes;
    let mut ticker = tokio::time::interval(progress_every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut sent_since_tick = false;
    loop {
        let visible = *revisions.borrow_and_update();
        while next <= visible {
            let to = visible.min(next + REVISIONS_PER_READ - 1);
            let (events, to) = match fetch(&node, next, to) {
                Ok(Fetch::Events(events, upto)) => (events, upto),
                Ok(Fetch::Compacted(rev)) => {
                    let resp = WatchResponse {
                        header: Some(node.header(0)),
                        watch_id: spec.id,
                        compact_revision: rev,
                        canceled: true,
                        ..Default::default()
                    };
                    let _ = out.send(Ok(resp)).await;
                    return;
                }
                Err(e) => {
                    let _ = out.send(Err(e.into())).await;
                    return;
                }
            };
            let mut matching: Vec<Event> = events
                .iter()
                .filter(|e| keep(&spec, e))
                .map(|e| Event::clone(e))
                .collect();
            if spec.prev_kv {
                for e in &mut matching {
                    e.prev_kv = previous(&node, e);
                }
            }
            if !matching.is_empty() {
                for resp in responses(&spec, &node, to, matching, limit) {
                    if out.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
                sent_since_tick = true;
            }
            next = to + 1;
        }
        tokio::select! {
            changed = revisions.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticker.tick(), if spec.progress_notify => {
                if !sent_since_tick {
                    let resp = WatchResponse {
                                                // Everything up to here was delivered; nothing newer may be claimed.
                        header: Some(node.header(next - 1)),
                        watch_id: spec.id,
                        ..Default::default()
                    };
                    if out.send(Ok(resp)).await.is_err() {
                        return;
                    }
                }
                sent_since_tick = false;
            }
            () = out.closed() => return,
        }
    }
}
