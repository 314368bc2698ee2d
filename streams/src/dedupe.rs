//! Bounded deduplication on `(tenantId, eventId)` (contracts.md §1): the latest `capacity` pairs
//! are remembered; the oldest are forgotten first. Redeliveries and JetStream replays arrive
//! within that horizon. Pairs are kept as 128-bit fingerprints, so memory is 16 bytes plus set
//! overhead per pair and a false match needs a 2^-128-scale collision.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};

#[derive(Debug)]
pub struct Dedupe {
    seen: HashSet<u128>,
    order: VecDeque<u128>,
    capacity: usize,
}

fn fingerprint(tenant: &str, event_id: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = std::hash::DefaultHasher::new();
        salt.hash(&mut h);
        tenant.hash(&mut h);
        event_id.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            seen: HashSet::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Records the pair; returns `false` when it was already seen (a duplicate).
    pub fn first_time(&mut self, tenant: &str, event_id: &str) -> bool {
        let fp = fingerprint(tenant, event_id);
        if !self.seen.insert(fp) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(fp);
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_caught_per_tenant() {
        let mut d = Dedupe::new(10);
        assert!(d.first_time("a", "e1"));
        assert!(!d.first_time("a", "e1"));
        assert!(
            d.first_time("b", "e1"),
            "same eventId in another tenant is another event"
        );
    }

    #[test]
    fn memory_is_bounded_and_oldest_forgotten() {
        let mut d = Dedupe::new(3);
        for e in ["e1", "e2", "e3", "e4"] {
            assert!(d.first_time("t", e));
        }
        assert_eq!(d.len(), 3);
        assert!(d.first_time("t", "e1"), "e1 was forgotten");
        assert!(!d.first_time("t", "e4"));
    }
}
