//! Practice flow wiring: the appointment index ([`Desk`]) between the `CHECKINS` and
//! `OCCUPANCY` consumers and the practice actors, and the sinks that feed them.
//!
//! The desk keeps every appointment's status (the contract's status machine, in
//! `vigil_engine::appointment`) in a concurrent map, so the `OCCUPANCY` consumer can look up an
//! appointment's location while `CHECKINS` updates it. A check-in or status change for an
//! appointment not scheduled yet is held (walk-ins, streams reordered by a producer) and applied
//! when the schedule arrives; after `engine.unscheduled_after` a held check-in becomes an
//! unscheduled walk-in and a held status change goes to the DLQ (`APPOINTMENT_UNKNOWN`).
//! Nothing is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use vigil_actors::{PatientShards, PracticeInput};
use vigil_engine::appointment::{Appointment, Effect, PracticeChange, Refused};
use vigil_engine::keeper::KeeperInput;
use vigil_engine::{PracticeEvent, Timestamp};
use vigil_streams::envelope::{RejectCode, reject};
use vigil_streams::output::{Stored, dead_letter_stored, flow_message};
use vigil_streams::{Delivery, EventSink, IngestMetrics, OutMessage, Outbox, Receipt, Rejection};

/// Where an event came from: what its flow update and a late dead letter need.
#[derive(Debug, Clone)]
pub struct Origin {
    pub event_id: String,
    pub occurred_at: Timestamp,
    pub correlation_id: Option<String>,
    pub stored: Stored,
}

/// An event waiting for its appointment's schedule.
struct Held {
    change: PracticeChange,
    origin: Origin,
    /// Wall-clock time it was held.
    since: Timestamp,
}

/// One event's outcome: its effects, or why it was refused.
pub type Outcome = (Origin, Result<Vec<Effect>, Refusal>);

/// Why the desk refused an event (the DLQ code and message).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal(pub Rejection);

impl From<Refused> for Refusal {
    fn from(r: Refused) -> Self {
        Refusal(reject(RejectCode::InvalidTransition, r.0))
    }
}

/// The appointment index and the events held for a schedule.
pub struct Desk {
    /// `{tenant}.{appointment}` (both are subject tokens: no dot inside) -> appointment.
    appointments: DashMap<String, Appointment>,
    /// Same key -> events waiting for the schedule, in arrival order. Every change to an
    /// appointment happens under this lock, so the expiry sweep and the consumer never
    /// interleave on one appointment.
    held: Mutex<HashMap<String, Vec<Held>>>,
    hold_for_ms: i64,
    /// Appointments scheduled longer ago than this are forgotten (`engine.practice_horizon`).
    keep_ms: i64,
}

fn key(tenant: &str, appointment: &str) -> String {
    format!("{tenant}.{appointment}")
}

impl Desk {
    pub fn new(hold_for_ms: i64, keep_ms: i64) -> Self {
        Self {
            appointments: DashMap::new(),
            held: Mutex::new(HashMap::new()),
            hold_for_ms,
            keep_ms,
        }
    }

    /// Forgets appointments scheduled more than the practice horizon before `now` (what a
    /// restart would not rebuild either), so the index stays bounded. Returns how many.
    pub fn evict(&self, now: Timestamp) -> usize {
        let cutoff = now.plus_millis(-self.keep_ms);
        let before = self.appointments.len();
        self.appointments.retain(|_, a| a.start >= cutoff);
        before - self.appointments.len()
    }

    /// Applies a `CHECKINS` event at wall-clock `now`. Returns this event's outcome (`None`
    /// when it was held) and the outcomes of held events a schedule released, in order.
    pub fn apply(
        &self,
        tenant: &str,
        change: PracticeChange,
        origin: Origin,
        now: Timestamp,
    ) -> (Option<Outcome>, Vec<Outcome>) {
        let Ok(mut held) = self.held.lock() else {
            let refusal = Refusal(reject(
                RejectCode::InvalidTransition,
                "appointment index unavailable",
            ));
            return (Some((origin, Err(refusal))), Vec::new());
        };
        let appointment = match &change {
            PracticeChange::Scheduled(b) => &b.appointment,
            PracticeChange::CheckIn(c) => &c.appointment,
            PracticeChange::Status(s) => &s.appointment,
            PracticeChange::Provider(_) | PracticeChange::Occupancy(_) => {
                return (Some((origin, Ok(Vec::new()))), Vec::new());
            }
        };
        let k = key(tenant, appointment);
        if let PracticeChange::Scheduled(b) = &change {
            let effects = match self.appointments.get_mut(&k) {
                Some(mut a) => a.rebook(b),
                None => {
                    let (a, effects) = Appointment::book(b);
                    self.appointments.insert(k.clone(), a);
                    effects
                }
            };
            let released = held
                .remove(&k)
                .unwrap_or_default()
                .into_iter()
                .map(|h| (h.origin, self.change(&k, &h.change)))
                .collect();
            return (Some((origin, Ok(effects))), released);
        }
        if !self.appointments.contains_key(&k) {
            held.entry(k).or_default().push(Held {
                change,
                origin,
                since: now,
            });
            return (None, Vec::new());
        }
        let outcome = self.change(&k, &change);
        (Some((origin, outcome)), Vec::new())
    }

    /// A check-in or status change of a known appointment.
    fn change(&self, k: &str, change: &PracticeChange) -> Result<Vec<Effect>, Refusal> {
        let Some(mut a) = self.appointments.get_mut(k) else {
            return Err(Refusal(reject(
                RejectCode::AppointmentUnknown,
                format!("appointment {k} is not known"),
            )));
        };
        let id = k.split_once('.').map_or(k, |(_, id)| id);
        match change {
            PracticeChange::CheckIn(c) => Ok(a.check_in(id, c)?),
            PracticeChange::Status(s) => Ok(a.change(id, s)?),
            _ => Ok(Vec::new()),
        }
    }

    /// Held events older than the hold time at `now`: a held check-in becomes an unscheduled
    /// walk-in (so the waiting rule watches it) and the rest apply to it in order; status
    /// changes with no check-in to anchor them are refused with `APPOINTMENT_UNKNOWN`.
    /// Returns `(tenant, outcome)` for each.
    pub fn expire(&self, now: Timestamp) -> Vec<(String, Outcome)> {
        let Ok(mut held) = self.held.lock() else {
            return Vec::new();
        };
        let due: Vec<String> = held
            .iter()
            .filter(|(_, events)| {
                events
                    .first()
                    .is_some_and(|h| now.since(h.since) >= self.hold_for_ms)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in due {
            let events = held.remove(&k).unwrap_or_default();
            let tenant = k.split_once('.').map_or("", |(t, _)| t).to_string();
            for h in events {
                let outcome = if self.appointments.contains_key(&k) {
                    self.change(&k, &h.change)
                } else if let PracticeChange::CheckIn(c) = &h.change {
                    self.appointments
                        .insert(k.clone(), Appointment::unscheduled(c));
                    self.change(&k, &h.change)
                } else {
                    Err(Refusal(reject(
                        RejectCode::AppointmentUnknown,
                        format!(
                            "no schedule or check-in for appointment {} within {} s",
                            k.split_once('.').map_or(k.as_str(), |(_, a)| a),
                            self.hold_for_ms / 1000
                        ),
                    )))
                };
                out.push((tenant.clone(), (h.origin, outcome)));
            }
        }
        out
    }

    /// The location of a known appointment.
    pub fn location_of(&self, tenant: &str, appointment: &str) -> Option<String> {
        self.appointments
            .get(&key(tenant, appointment))
            .map(|a| a.location.clone())
    }

    /// Events waiting for a schedule.
    pub fn held(&self) -> usize {
        self.held
            .lock()
            .map_or(0, |h| h.values().map(Vec::len).sum())
    }
}

/// What one batch of practice events produced, to publish and hand on.
#[derive(Default)]
struct Pending {
    inputs: Vec<PracticeInput>,
    /// Flow updates and late dead letters; receipts are attached at dispatch.
    out: Vec<OutMessage>,
}

impl Pending {
    /// Queues one event's effects: flow updates to `FLOW`, the rest to the actors.
    fn effects(&mut self, tenant: &str, origin: &Origin, effects: Vec<Effect>, m: &IngestMetrics) {
        let occurred_at = origin.occurred_at;
        for e in effects {
            match e {
                Effect::Flow(flow) => {
                    m.flow_updates.fetch_add(1, Relaxed);
                    self.out.push(flow_message(
                        tenant,
                        &flow,
                        &origin.event_id,
                        origin.correlation_id.as_deref(),
                        None,
                    ));
                }
                e => self.inputs.push(PracticeInput {
                    tenant: tenant.to_string(),
                    input: KeeperInput::Effect(e),
                    occurred_at,
                }),
            }
        }
    }

    /// Queues a held event's outcome (its original message was acknowledged long ago: a
    /// refusal is dead-lettered from the copy kept).
    fn released(&mut self, stream: &str, tenant: &str, outcome: Outcome, m: &IngestMetrics) {
        let (origin, result) = outcome;
        match result {
            Ok(effects) => self.effects(tenant, &origin, effects, m),
            Err(Refusal(rejection)) => {
                m.dead_letter(rejection.code);
                self.out
                    .push(dead_letter_stored(stream, &origin.stored, &rejection, None));
            }
        }
    }

    async fn flush(self, shards: &PatientShards, outbox: &Outbox, receipt: Option<Receipt>) {
        for mut msg in self.out {
            msg.receipt.clone_from(&receipt);
            outbox.send(msg).await;
        }
        if !self.inputs.is_empty() {
            let receipt = receipt.unwrap_or_else(|| Arc::new(()));
            if !shards.deliver_practice(self.inputs, receipt.clone()).await {
                vigil_streams::receipt::fail(&receipt);
            }
        }
    }
}

/// The sink of the `CHECKINS` or `OCCUPANCY` consumer.
pub struct PracticeSink {
    pub stream: &'static str,
    pub desk: Arc<Desk>,
    pub shards: PatientShards,
    pub outbox: Outbox,
    pub metrics: Arc<IngestMetrics>,
    /// Recovery: rebuild state only; publish nothing (it was published before the restart).
    pub history: bool,
    pending: Pending,
}

impl PracticeSink {
    pub fn new(
        stream: &'static str,
        desk: Arc<Desk>,
        shards: PatientShards,
        outbox: Outbox,
        metrics: Arc<IngestMetrics>,
    ) -> Self {
        Self {
            stream,
            desk,
            shards,
            outbox,
            metrics,
            history: false,
            pending: Pending::default(),
        }
    }
}

impl EventSink for PracticeSink {
    type Event = PracticeEvent;

    fn accept(&mut self, event: PracticeEvent, origin: &Delivery) -> Result<(), Rejection> {
        let PracticeEvent { meta, change } = event;
        let tenant = meta.tenant_id.into_owned();
        let input = match change {
            PracticeChange::Provider(update) => KeeperInput::Provider(update),
            PracticeChange::Occupancy(mut update) => {
                if update.location.is_none() {
                    update.location = update
                        .appointment
                        .as_deref()
                        .and_then(|a| self.desk.location_of(&tenant, a));
                }
                KeeperInput::Occupancy {
                    update,
                    at: meta.occurred_at,
                }
            }
            change => {
                let origin = Origin {
                    event_id: meta.event_id.into_owned(),
                    occurred_at: meta.occurred_at,
                    correlation_id: meta.correlation_id.map(std::borrow::Cow::into_owned),
                    stored: Stored::of(origin),
                };
                let now = vigil_streams::wall_clock();
                let (outcome, released) = self.desk.apply(&tenant, change, origin, now);
                // Counting held events takes the desk's lock: only when this event changed them.
                if outcome.is_none() || !released.is_empty() {
                    self.metrics
                        .practice_held
                        .store(self.desk.held() as u64, Relaxed);
                }
                for r in released {
                    self.pending
                        .released(self.stream, &tenant, r, &self.metrics);
                }
                return match outcome {
                    None => Ok(()),
                    Some((origin, Ok(effects))) => {
                        self.pending
                            .effects(&tenant, &origin, effects, &self.metrics);
                        Ok(())
                    }
                    Some((_, Err(Refusal(rejection)))) => Err(rejection),
                };
            }
        };
        self.pending.inputs.push(PracticeInput {
            tenant,
            input,
            occurred_at: meta.occurred_at,
        });
        Ok(())
    }

    fn dispatch(&mut self, receipt: Receipt) -> impl Future<Output = ()> + Send {
        let pending = std::mem::take(&mut self.pending);
        let (shards, outbox, history) = (self.shards.clone(), self.outbox.clone(), self.history);
        async move {
            if history {
                if !shards
                    .deliver_practice_history(pending.inputs, receipt.clone())
                    .await
                {
                    vigil_streams::receipt::fail(&receipt);
                }
            } else {
                pending.flush(&shards, &outbox, Some(receipt)).await;
            }
        }
    }
}

/// Applies held events whose schedule did not come in time, every second, and forgets
/// appointments older than the practice horizon, every minute, until `stop`.
pub async fn sweep_held(
    desk: Arc<Desk>,
    shards: PatientShards,
    outbox: Outbox,
    metrics: Arc<IngestMetrics>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    for tick in 0u64.. {
        tokio::select! {
            () = &mut stop => return,
            _ = every.tick() => {}
        }
        if tick % 60 == 0 {
            desk.evict(vigil_streams::wall_clock());
        }
        let expired = desk.expire(vigil_streams::wall_clock());
        if expired.is_empty() {
            continue;
        }
        metrics
            .practice_unscheduled
            .fetch_add(expired.len() as u64, Relaxed);
        metrics.practice_held.store(desk.held() as u64, Relaxed);
        let mut pending = Pending::default();
        for (tenant, outcome) in expired {
            pending.released("CHECKINS", &tenant, outcome, &metrics);
        }
        pending.flush(&shards, &outbox, None).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use vigil_engine::appointment::{Booking, CheckIn, StatusChange};
    use vigil_engine::practice::AppointmentStatus;

    fn t(min: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, 9, 0, 0).plus_millis(min * 60_000)
    }

    fn origin(id: &str) -> Origin {
        Origin {
            event_id: id.into(),
            occurred_at: t(0),
            correlation_id: None,
            stored: Stored {
                subject: "checkin.t.a1".into(),
                payload: bytes::Bytes::from_static(b"{}"),
                content_type: None,
                seq: 7,
            },
        }
    }

    fn booking() -> PracticeChange {
        PracticeChange::Scheduled(Booking {
            appointment: "a1".into(),
            patient: "p1".into(),
            provider: "prov-1".into(),
            location: "loc-1".into(),
            resource: None,
            start: t(0),
            duration_minutes: 30,
        })
    }

    fn check_in() -> PracticeChange {
        PracticeChange::CheckIn(CheckIn {
            appointment: "a1".into(),
            patient: "p1".into(),
            location: "loc-1".into(),
            at: t(-5),
            method: None,
            notes: None,
        })
    }

    fn status(to: AppointmentStatus) -> PracticeChange {
        PracticeChange::Status(StatusChange {
            appointment: "a1".into(),
            previous: AppointmentStatus::CheckedIn,
            status: to,
            at: t(10),
            actor: None,
            reason: None,
        })
    }

    #[test]
    fn a_check_in_before_its_schedule_is_held_and_applied_when_the_schedule_comes() {
        let desk = Desk::new(60_000, 3_600_000);
        let (outcome, released) = desk.apply("t", check_in(), origin("e1"), t(0));
        assert!(outcome.is_none() && released.is_empty());
        assert_eq!(desk.held(), 1);
        let (outcome, released) = desk.apply("t", booking(), origin("e2"), t(0));
        assert!(
            matches!(outcome, Some((_, Ok(ref e))) if matches!(e[..], [Effect::Booked { .. }]))
        );
        assert_eq!(released.len(), 1);
        let (o, effects) = &released[0];
        assert_eq!(o.event_id, "e1", "the held event keeps its own id");
        assert!(matches!(
            effects.as_ref().unwrap()[0],
            Effect::Waiting { .. }
        ));
        assert_eq!(desk.held(), 0);
        assert_eq!(desk.location_of("t", "a1").as_deref(), Some("loc-1"));
        assert!(desk.location_of("other", "a1").is_none(), "tenants apart");
        assert_eq!(desk.evict(t(60)), 0, "scheduled an hour ago: kept");
        assert_eq!(desk.evict(t(60).plus_millis(1)), 1, "then forgotten");
        assert!(desk.location_of("t", "a1").is_none());
    }

    #[test]
    fn an_invalid_transition_is_refused_with_its_code() {
        let desk = Desk::new(60_000, 3_600_000);
        desk.apply("t", booking(), origin("e1"), t(0));
        desk.apply(
            "t",
            status(AppointmentStatus::Cancelled),
            origin("e2"),
            t(0),
        );
        let (outcome, _) = desk.apply("t", check_in(), origin("e3"), t(0));
        let Some((_, Err(Refusal(r)))) = outcome else {
            panic!("refused")
        };
        assert_eq!(r.code.as_str(), "INVALID_TRANSITION");
        assert_eq!(
            r.message,
            "appointment a1 is cancelled: a check-in cannot follow"
        );
    }

    #[test]
    fn held_events_expire_into_a_walk_in_or_the_dlq() {
        let desk = Desk::new(60_000, 3_600_000);
        desk.apply("t", check_in(), origin("e1"), t(0));
        desk.apply(
            "t",
            status(AppointmentStatus::InProgress),
            origin("e2"),
            t(0),
        );
        assert!(desk.expire(t(0).plus_millis(59_999)).is_empty());
        let expired = desk.expire(t(1));
        assert_eq!(expired.len(), 2);
        assert!(matches!(
            expired[0].1.1.as_ref().unwrap()[0],
            Effect::Waiting { .. }
        ));
        assert!(
            expired[1]
                .1
                .1
                .as_ref()
                .unwrap()
                .iter()
                .any(|e| matches!(e, Effect::DoneWaiting { .. })),
            "then started, in order"
        );
        // A status change alone has nothing to anchor an appointment to.
        let mut lone = status(AppointmentStatus::Cancelled);
        if let PracticeChange::Status(s) = &mut lone {
            s.appointment = "a2".into();
        }
        desk.apply("t", lone, origin("e3"), t(2));
        let expired = desk.expire(t(3));
        let Err(Refusal(r)) = &expired[0].1.1 else {
            panic!("refused")
        };
        assert_eq!(r.code.as_str(), "APPOINTMENT_UNKNOWN");
        assert_eq!(desk.held(), 0);
    }
}
