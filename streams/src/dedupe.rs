//! Bounded deduplication on `(tenantId, eventId)` (contracts.md §1): the latest `capacity` pairs
//! are remembered; the oldest are forgotten first. Redeliveries and JetStream replays arrive
//! within that horizon. Pairs are kept as 128-bit fingerprints, so memory is 16 bytes plus set
//! overhead per pair and a false match needs a 2^-128-scale collision.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use rustc_hash::FxHashSet;
use xxhash_rust::xxh3::Xxh3;

/// The 128-bit fingerprint of a `(tenantId, eventId)` pair.
pub type Fingerprint = u128;

/// Computes fingerprints with a key drawn at random once per process, so nobody can craft
/// event ids that collide (a collision would drop an event as a duplicate). XXH3-128: the
/// decode tasks fingerprint every event in parallel, and SipHash twice over was a tenth of the
/// engine's ingest CPU.
#[derive(Debug, Clone, Copy)]
pub struct Fingerprinter {
    seed: u64,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self {
            seed: RandomState::new().hash_one(0x5eed_u64),
        }
    }
}

impl Fingerprinter {
    pub fn of(&self, tenant: &str, event_id: &str) -> Fingerprint {
        let mut h = Xxh3::with_seed(self.seed);
        h.update(tenant.as_bytes());
        // Tenants are tokens ([A-Za-z0-9_-]): a NUL cannot be part of one, so the pair is
        // unambiguous.
        h.update(&[0]);
        h.update(event_id.as_bytes());
        h.digest128()
    }
}

#[derive(Debug)]
pub struct Dedupe {
    /// Fingerprints are uniformly distributed already: Fx hashing of them is enough.
    seen: FxHashSet<Fingerprint>,
    order: VecDeque<Fingerprint>,
    capacity: usize,
}

impl Dedupe {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let mut seen = FxHashSet::default();
        seen.reserve(capacity);
        Self {
            seen,
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Records the pair; returns `false` when it was already seen (a duplicate).
    pub fn first_time(&mut self, fp: Fingerprint) -> bool {
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
        let f = Fingerprinter::default();
        let mut d = Dedupe::new(10);
        assert!(d.first_time(f.of("a", "e1")));
        assert!(!d.first_time(f.of("a", "e1")));
        assert!(
            d.first_time(f.of("b", "e1")),
            "same eventId in another tenant is another event"
        );
        // The pair is not a concatenation: ("a", "be1") is not ("ab", "e1").
        assert_ne!(f.of("a", "be1"), f.of("ab", "e1"));
    }

    #[test]
    fn memory_is_bounded_and_oldest_forgotten() {
        let f = Fingerprinter::default();
        let mut d = Dedupe::new(3);
        for e in ["e1", "e2", "e3", "e4"] {
            assert!(d.first_time(f.of("t", e)));
        }
        assert_eq!(d.len(), 3);
        assert!(d.first_time(f.of("t", "e1")), "e1 was forgotten");
        assert!(!d.first_time(f.of("t", "e4")));
    }

    #[test]
    fn each_process_keys_its_fingerprints() {
        let (a, b) = (Fingerprinter::default(), Fingerprinter::default());
        assert_eq!(a.of("t", "e1"), a.of("t", "e1"));
        assert_ne!(a.of("t", "e1"), b.of("t", "e1"));
    }
}
