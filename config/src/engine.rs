//! `[engine]`: actor sharding, mailboxes, passivation, deduplication and the practice flow's
//! hold times.

use serde::Deserialize;

use crate::Duration;

/// Actor sharding, mailboxes, passivation and deduplication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Patient shards (one arbiter thread each); 0 means one per core.
    pub shards: usize,
    /// Capacity of each patient actor's mailbox.
    pub mailbox: usize,
    /// A patient with no event for this long and no open alert is passivated (its actor stopped).
    pub passivate_after: Duration,
    /// `(tenantId, eventId)` pairs remembered for deduplication (oldest forgotten first).
    pub dedupe_capacity: usize,
    /// Name of the built-in threshold profile, shown in every explanation.
    pub profile: String,
    /// How often each patient actor checks the rules that fire as time passes (signal loss).
    pub tick: Duration,
    /// A check-in or status change for an appointment not scheduled yet is held this long
    /// for its schedule; then a check-in counts as an unscheduled walk-in and a status change
    /// goes to the DLQ with `APPOINTMENT_UNKNOWN` (docs/practice.md).
    pub unscheduled_after: Duration,
    /// How far back `CHECKINS` and `OCCUPANCY` are replayed at start to rebuild appointments,
    /// waiting areas, providers and resources (docs/recovery.md).
    pub practice_horizon: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            mailbox: 64,
            passivate_after: Duration::from_secs(6 * 3600),
            dedupe_capacity: 262_144,
            profile: "default".into(),
            tick: Duration::from_secs(10),
            unscheduled_after: Duration::from_secs(15 * 60),
            practice_horizon: Duration::from_secs(24 * 3600),
        }
    }
}
