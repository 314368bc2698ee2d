//! Partitions of the inbound streams (docs/cluster.md): in a cluster each of `VITALS`,
//! `CHECKINS` and `OCCUPANCY` stores its messages under a partition token that a stream subject
//! transform adds, so that a consumer can take one partition while producers keep publishing
//! the contract's subjects (contracts.md section 2):
//!
//! | stream | published | stored | partition of |
//! |---|---|---|---|
//! | `VITALS` | `vitals.{tenant}.{patient}` | `vitals.{p}.{tenant}.{patient}` | tenant and patient |
//! | `CHECKINS` | `checkin.{tenant}.{appointment}` | `checkin.{p}.{tenant}.{appointment}` | tenant |
//! | `OCCUPANCY` | `occupancy.{tenant}.{resource}` | `occupancy.{p}.{tenant}.{resource}` | tenant |
//!
//! A patient's readings all land in one partition. The practice flow of a tenant (appointments,
//! their providers, rooms and chairs, its waiting areas) meets in one set of actors, so both of
//! its streams are split by tenant alone and one owner holds all of it.
//!
//! The partition is NATS's own: `{{partition(n, ...)}}` hashes the chosen tokens, concatenated,
//! with 32-bit FNV-1a and takes the remainder by `n`. [`partition_of`] computes the same number,
//! so the engine knows which partition an alert's owner is in without asking the server
//! (`tests/partitions.rs` checks it against a real server).

use vigil_engine::{Alert, Owner};

/// Which wildcard tokens of a split stream's subject choose its partition: tenant and patient
/// for `VITALS`, the tenant for the practice streams; `None` for a stream that is not split.
fn keyed(stream: &str) -> Option<&'static str> {
    match stream {
        "VITALS" => Some("1,2"),
        "CHECKINS" | "OCCUPANCY" => Some("1"),
        _ => None,
    }
}

/// Whether a cluster splits `stream` into partitions.
pub fn splits(stream: &str) -> bool {
    keyed(stream).is_some()
}

/// The subject transform of a split stream of `partitions` partitions: `(source,
/// destination)`. `None` for a stream that is not split.
pub fn transform(stream: &str, partitions: u32) -> Option<(String, String)> {
    let keyed = keyed(stream)?;
    let prefix = crate::bus::prefix_of(stream);
    Some((
        format!("{prefix}.*.*"),
        format!(
            "{prefix}.{{{{partition({partitions},{keyed})}}}}.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}"
        ),
    ))
}

/// The partition count a stream's transform destination names (`None`: not partitioned, or a
/// transform this engine did not write).
pub fn partitions_in(destination: &str) -> Option<u32> {
    let rest = destination.split("{{partition(").nth(1)?;
    rest.split(',').next()?.trim().parse().ok()
}

/// The partition NATS's `{{partition(n, ...)}}` gives the tokens `keys`: FNV-1a (32 bits) of
/// the tokens concatenated, modulo `n`.
pub fn partition_of(keys: &[&str], partitions: u32) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let mut hash = OFFSET;
    for key in keys {
        for &b in key.as_bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash % partitions.max(1)
}

/// The partition that holds the events of a tenant's patient (`Some(patient)`: by tenant and
/// patient) or of its practice flow (`None`: by tenant alone), as the transforms split them.
pub fn partition_of_key(tenant: &str, patient: Option<&str>, partitions: u32) -> u32 {
    match patient {
        Some(patient) => partition_of(&[tenant, patient], partitions),
        None => partition_of(&[tenant], partitions),
    }
}

/// The partition that holds the events of the alert's owner ([`partition_of_owner`]); `None`
/// when the alert names no owner.
pub fn partition_of_alert(alert: &Alert, partitions: u32) -> Option<u32> {
    Some(partition_of_owner(
        &alert.tenant_id,
        &alert.owner()?,
        partitions,
    ))
}

/// The partition that holds the events of `owner` of `tenant`: a patient's, or the tenant's
/// practice flow for a waiting area, provider or resource.
pub fn partition_of_owner(tenant: &str, owner: &Owner, partitions: u32) -> u32 {
    let patient = match owner {
        Owner::Patient(patient) => Some(patient.as_str()),
        Owner::Location(_) | Owner::Provider(_) | Owner::Resource(_) => None,
    };
    partition_of_key(tenant, patient, partitions)
}

/// The contract's tokens of an inbound subject, stored as published or with a partition token:
/// `(prefix, tenant, key)` of `prefix.tenant.key` or `prefix.{p}.tenant.key`; `None` for any
/// other shape.
pub fn contract_tokens(subject: &str) -> Option<(&str, &str, &str)> {
    let t = Tokens::<4>::of(subject);
    match t.count {
        3 => Some((t.get(0)?, t.get(1)?, t.get(2)?)),
        4 => {
            let p = t.get(1)?;
            (!p.is_empty() && p.bytes().all(|d| d.is_ascii_digit())).then_some(())?;
            Some((t.get(0)?, t.get(2)?, t.get(3)?))
        }
        _ => None,
    }
}

/// The first `N` tokens of a subject, found in one pass over its bytes, and how many it has in
/// all. Every delivery's subject and reply subject are read this way: `split('.')` searches
/// for each dot afresh, which costs more than a subject's few dozen bytes.
pub(crate) struct Tokens<'a, const N: usize> {
    subject: &'a str,
    /// Where each of the first `N` tokens ends.
    ends: [usize; N],
    /// The tokens in all (one more than the dots).
    pub count: usize,
}

impl<'a, const N: usize> Tokens<'a, N> {
    pub(crate) fn of(subject: &'a str) -> Self {
        let mut ends = [subject.len(); N];
        let mut count = 1;
        for (i, b) in subject.bytes().enumerate() {
            if b == b'.' {
                if let Some(end) = ends.get_mut(count - 1) {
                    *end = i;
                }
                count += 1;
            }
        }
        Self {
            subject,
            ends,
            count,
        }
    }

    /// Token `i`; `None` past the last token or the first `N`. A dot is one byte, so every
    /// bound falls on a character boundary.
    pub(crate) fn get(&self, i: usize) -> Option<&'a str> {
        if i >= self.count {
            return None;
        }
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1)? + 1,
        };
        self.subject.get(start..*self.ends.get(i)?)
    }
}

/// The filter of partition `p` of an inbound stream's stored subjects (`vitals.3.>`).
pub fn filter(prefix: &str, p: u32) -> String {
    format!("{prefix}.{p}.>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // FNV-1a 32-bit vectors (Fowler, Noll, Vo): "" -> 0x811c9dc5, "a" -> 0xe40c292c,
        // "foobar" -> 0xbf9cf968. With n = 2^32 - 1... modulo a large prime keeps them visible.
        assert_eq!(partition_of(&[], u32::MAX), 0x811c_9dc5);
        assert_eq!(partition_of(&["a"], u32::MAX), 0xe40c_292c);
        assert_eq!(partition_of(&["foobar"], u32::MAX), 0xbf9c_f968);
        // Tokens are concatenated without a separator.
        assert_eq!(partition_of(&["foo", "bar"], u32::MAX), 0xbf9c_f968);
        assert_eq!(partition_of(&["foobar"], 16), 0xbf9c_f968 % 16);
    }

    #[test]
    fn transforms_name_their_partition_count() {
        let (src, dest) = transform("VITALS", 16).expect("VITALS is split");
        assert_eq!(src, "vitals.*.*");
        assert_eq!(
            dest,
            "vitals.{{partition(16,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}"
        );
        assert_eq!(partitions_in(&dest), Some(16));
        let (_, dest) = transform("CHECKINS", 3).expect("CHECKINS is split");
        assert_eq!(
            dest,
            "checkin.{{partition(3,1)}}.{{wildcard(1)}}.{{wildcard(2)}}"
        );
        assert_eq!(partitions_in(&dest), Some(3));
        assert!(transform("ALERTS", 16).is_none());
        assert_eq!(partitions_in("vitals.{{wildcard(1)}}"), None);
    }

    #[test]
    fn contract_tokens_of_both_stored_forms() {
        assert_eq!(contract_tokens("vitals.t.p"), Some(("vitals", "t", "p")));
        assert_eq!(contract_tokens("vitals.7.t.p"), Some(("vitals", "t", "p")));
        assert_eq!(contract_tokens("vitals.x.t.p"), None);
        assert_eq!(contract_tokens("vitals.7.t.p.q"), None);
        assert_eq!(contract_tokens("vitals.t"), None);
        assert_eq!(contract_tokens("vitals..t.p"), None);
        // Empty tokens are the caller's to refuse, as before; a partition is digits only.
        assert_eq!(contract_tokens("vitals..p"), Some(("vitals", "", "p")));
        assert_eq!(contract_tokens("vitals.t."), Some(("vitals", "t", "")));
        assert_eq!(contract_tokens(".t.p"), Some(("", "t", "p")));
        assert_eq!(contract_tokens("vitals.12.t.p"), Some(("vitals", "t", "p")));
        assert_eq!(contract_tokens("vitals.1a.t.p"), None);
        assert_eq!(contract_tokens("vitals.é.t.p"), None);
        assert_eq!(
            contract_tokens("vitals.té.pé"),
            Some(("vitals", "té", "pé"))
        );
        assert_eq!(contract_tokens("vitals"), None);
        assert_eq!(contract_tokens(""), None);
        assert_eq!(contract_tokens("a.b.c.d.e.f"), None);
    }
}
