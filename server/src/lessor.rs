//! Lease deadlines: runtime state of the member that decides expiry (the leader). Which leases
//! exist is the store's business ([`crate::mvcc::LeaseTable`]); this module only knows when each
//! one runs out, renews them on keep-alive, and reports the expired ones so that their
//! revocation can be proposed through the write path like any other command.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::{Error, EtcdError};

/// etcd's largest lease TTL in seconds.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// The time source, so expiry logic can be tested without waiting.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Lease deadlines and TTL policy.
pub struct Lessor {
    clock: Arc<dyn Clock>,
    min_ttl: i64,
    id_prefix: u64,
    id_counter: AtomicU64,
    deadlines: Mutex<HashMap<i64, Deadline>>,
}

/// When a lease runs out, and whether its revocation is already under way.
#[derive(Clone, Copy, Debug)]
struct Deadline {
    at: Instant,
    expiring: bool,
}

/// Attempts at finding an unused lease ID before giving up.
const ID_ATTEMPTS: usize = 1024;

impl std::fmt::Debug for Lessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lessor")
            .field("min_ttl", &self.min_ttl)
            .finish_non_exhaustive()
    }
}

impl Lessor {
    /// A lessor for a member with these raft timings: like etcd, no lease may be shorter than
    /// 1.5 election timeouts (rounded up to whole seconds), so a leader change cannot expire it.
    pub fn new(clock: Arc<dyn Clock>, member_id: u64, heartbeat_ms: u64, election_ms: u64) -> Self {
        let heartbeat = heartbeat_ms.max(1);
        let ticks = (election_ms / heartbeat).max(1);
        let min_ms = (3 * ticks / 2) * heartbeat;
        let min_ttl = min_ms.div_ceil(1000).max(1) as i64;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        Self {
            clock,
            min_ttl,
            // etcd's ID layout: member bits on top, a time-seeded counter below.
            id_prefix: (member_id & 0x7fff) << 48,
            id_counter: AtomicU64::new((now_ms << 8) & ((1 << 48) - 1)),
            deadlines: Mutex::new(HashMap::new()),
        }
    }

    /// The shortest TTL granted, in seconds.
    #[cfg(test)]
    pub fn min_ttl(&self) -> i64 {
        self.min_ttl
    }

    /// Checks and completes a grant request before it is proposed: the TTL is raised to the
    /// minimum, and an ID is chosen when the client left it 0 (`taken` says which are in use).
    pub fn prepare_grant(
        &self,
        ttl: i64,
        id: i64,
        taken: impl Fn(i64) -> bool,
    ) -> Result<(i64, i64), Error> {
        if ttl > MAX_LEASE_TTL {
            return Err(Error::Etcd(EtcdError::LeaseTtlTooLarge));
        }
        let ttl = ttl.max(self.min_ttl);
        if id != 0 {
            return Ok((id, ttl));
        }
        for _ in 0..ID_ATTEMPTS {
            let n = self.id_counter.fetch_add(1, Ordering::Relaxed) & ((1 << 48) - 1);
            let candidate = (self.id_prefix | n) as i64;
            if candidate > 0 && !taken(candidate) {
                return Ok((candidate, ttl));
            }
        }
        Err(Error::Etcd(EtcdError::LeaseExists))
    }

    /// Lease `id` exists now (granted, or found at start): it runs out `ttl` seconds from now.
    pub fn start(&self, id: i64, ttl: i64) {
        let at = self.clock.now() + Duration::from_secs(ttl.max(0) as u64);
        self.deadlines.lock().insert(
            id,
            Deadline {
                at,
                expiring: false,
            },
        );
    }

    /// This member became the leader: every lease (`leases`: ID and granted TTL) runs out
    /// its full TTL plus `extend` from now, as etcd's lessor does on promotion, so no lease
    /// expires for want of keep-alives sent to the former leader.
    pub fn promote(&self, leases: impl IntoIterator<Item = (i64, i64)>, extend: Duration) {
        let now = self.clock.now();
        let mut deadlines = self.deadlines.lock();
        deadlines.clear();
        for (id, ttl) in leases {
            let at = now + Duration::from_secs(ttl.max(0) as u64) + extend;
            deadlines.insert(
                id,
                Deadline {
                    at,
                    expiring: false,
                },
            );
        }
    }

    /// Lease `id` is gone.
    pub fn stop(&self, id: i64) {
        self.deadlines.lock().remove(&id);
    }

    /// A keep-alive: lease `id` runs out `ttl` seconds from now again. False (and nothing
    /// renewed) when the lease is unknown, past its deadline, or being revoked: like etcd, an
    /// expired lease cannot be brought back.
    pub fn renew(&self, id: i64, ttl: i64) -> bool {
        let now = self.clock.now();
        let mut deadlines = self.deadlines.lock();
        match deadlines.get_mut(&id) {
            Some(d) if !d.expiring && d.at > now => {
                d.at = now + Duration::from_secs(ttl.max(0) as u64);
                true
            }
            _ => false,
        }
    }

    /// Whole seconds until lease `id` runs out (etcd truncates), if it is tracked.
    pub fn remaining(&self, id: i64) -> Option<i64> {
        let d = *self.deadlines.lock().get(&id)?;
        Some(d.at.saturating_duration_since(self.clock.now()).as_secs() as i64)
    }

    /// Leases past their deadline whose revocation is not yet under way; they are marked, so
    /// each is reported once (see [`Lessor::retry`]).
    pub fn take_expired(&self) -> Vec<i64> {
        let now = self.clock.now();
        let mut deadlines = self.deadlines.lock();
        let mut expired = Vec::new();
        for (id, d) in deadlines.iter_mut() {
            if !d.expiring && d.at <= now {
                d.expiring = true;
                expired.push(*id);
            }
        }
        expired.sort_unstable();
        expired
    }

    /// A revocation of expired lease `id` failed: report it again at the next check.
    pub fn retry(&self, id: i64) {
        if let Some(d) = self.deadlines.lock().get_mut(&id) {
            d.expiring = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock moved by hand.
    struct ManualClock(Mutex<Instant>);
    impl Clock for ManualClock {
        fn now(&self) -> Instant {
            *self.0.lock()
        }
    }

    #[test]
    fn min_ttl_is_one_and_a_half_election_timeouts_rounded_up() {
        let c: Arc<dyn Clock> = Arc::new(SystemClock);
        assert_eq!(Lessor::new(c.clone(), 1, 100, 1000).min_ttl(), 2);
        assert_eq!(Lessor::new(c.clone(), 1, 100, 2000).min_ttl(), 3);
        assert_eq!(Lessor::new(c, 1, 50, 500).min_ttl(), 1);
    }

    #[test]
    fn grants_choose_free_positive_ids_and_clamp_ttls() {
        let l = Lessor::new(Arc::new(SystemClock), 0xabcd, 100, 1000);
        let (id, ttl) = l.prepare_grant(1, 0, |_| false).unwrap();
        assert!(id > 0);
        assert_eq!(ttl, 2);
        let (other, _) = l.prepare_grant(60, 0, |x| x == id + 1).unwrap();
        assert_ne!(other, id + 1);
        assert_eq!(l.prepare_grant(60, 7, |_| true).unwrap(), (7, 60));
        assert!(matches!(
            l.prepare_grant(MAX_LEASE_TTL + 1, 0, |_| false),
            Err(Error::Etcd(EtcdError::LeaseTtlTooLarge))
        ));
    }

    #[test]
    fn deadlines_expire_once_and_renewals_push_them_back() {
        let clock = Arc::new(ManualClock(Mutex::new(Instant::now())));
        let l = Lessor::new(clock.clone(), 1, 100, 1000);
        l.start(1, 5);
        l.start(2, 10);
        *clock.0.lock() += Duration::from_secs(4);
        assert_eq!(l.remaining(1), Some(1));
        assert!(l.renew(1, 5));
        // Lease 1 now runs out at 9 s, lease 2 at 10 s.
        *clock.0.lock() += Duration::from_secs(5);
        assert_eq!(l.take_expired(), vec![1]);
        assert!(l.take_expired().is_empty());
        // Expired and being revoked: a keep-alive cannot bring it back.
        assert!(!l.renew(1, 5));
        l.retry(1);
        assert_eq!(l.take_expired(), vec![1]);
        l.stop(1);
        assert_eq!(l.remaining(1), None);
        assert!(!l.renew(1, 5));
        *clock.0.lock() += Duration::from_secs(1);
        assert_eq!(l.take_expired(), vec![2]);
    }
}
