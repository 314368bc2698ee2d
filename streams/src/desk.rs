//! The check-in desk: the engine's appointment book behind the `CHECKINS` and `OCCUPANCY`
//! consumers, and the events held for a schedule that has not arrived.
//!
//! A check-in or status change for an appointment not scheduled yet (a walk-in, streams
//! reordered by a producer) is held and applied when the schedule arrives. After
//! `engine.unscheduled_after` a held check-in becomes an unscheduled walk-in and a held status
//! change is refused (`APPOINTMENT_UNKNOWN`, to the DLQ from the copy kept). Nothing is
//! dropped. The `OCCUPANCY` consumer asks the desk for an appointment's location while
//! `CHECKINS` changes it, so the book and the held events share one lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use vigil_engine::Timestamp;
use vigil_engine::practice::appointment::{AppointmentBook, Effect, PracticeChange, Refused};

use crate::envelope::{RejectCode, Rejection, reject};
use crate::output::Stored;

/// Where an event came from: what its flow update and a late dead letter need.
#[derive(Debug, Clone)]
pub struct Origin {
    pub event_id: String,
    pub occurred_at: Timestamp,
    pub correlation_id: Option<String>,
    pub stored: Stored,
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

/// An event waiting for its appointment's schedule.
struct Held {
    change: PracticeChange,
    origin: Origin,
    /// Wall-clock time it was held.
    since: Timestamp,
}

#[derive(Default)]
struct State {
    book: AppointmentBook,
    /// `(tenant, appointment)` -> events waiting for its schedule, in arrival order.
    held: HashMap<(String, String), Vec<Held>>,
}

/// The appointment book and the events held for a schedule.
pub struct Desk {
    state: Mutex<State>,
    hold_for_ms: i64,
    /// Appointments scheduled longer ago than this are forgotten (`engine.practice_horizon`).
    keep_ms: i64,
}

fn unknown(tenant: &str, appointment: &str) -> Refusal {
    Refusal(reject(
        RejectCode::AppointmentUnknown,
        format!("appointment {tenant}.{appointment} is not known"),
    ))
}

impl Desk {
    pub fn new(hold_for_ms: i64, keep_ms: i64) -> Self {
        Self {
            state: Mutex::default(),
            hold_for_ms,
            keep_ms,
        }
    }

    /// Every operation leaves the state whole, so a panic elsewhere while the lock was held
    /// (a bug) does not take the practice flow down with it.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets appointments scheduled more than the practice horizon before `now` (what a
    /// restart would not rebuild either), so the book stays bounded. Returns how many.
    pub fn evict(&self, now: Timestamp) -> usize {
        self.lock()
            .book
            .forget_before(now.plus_millis(-self.keep_ms))
    }

    /// Forgets the appointments and the held events of the tenants `gone` names: a cluster
    /// member that handed their partition over, as a restart would (the new owner rebuilds
    /// both from the streams). Returns how many appointments.
    pub fn forget_tenants(&self, gone: &dyn Fn(&str) -> bool) -> usize {
        let mut state = self.lock();
        state.held.retain(|(tenant, _), _| !gone(tenant));
        state.book.forget_tenants(gone)
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
        let Some(appointment) = change.appointment() else {
            return (Some((origin, Ok(Vec::new()))), Vec::new());
        };
        let key = (tenant.to_string(), appointment.to_string());
        let mut state = self.lock();
        let State { book, held } = &mut *state;
        match book.apply(tenant, &change) {
            None => {
                held.entry(key).or_default().push(Held {
                    change,
                    origin,
                    since: now,
                });
                (None, Vec::new())
            }
            Some(result) => {
                let released = match change {
                    PracticeChange::Scheduled(_) => held
                        .remove(&key)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|h| {
                            let result = book.apply(tenant, &h.change);
                            (h.origin, settle(result, tenant, &key.1))
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (
                    Some((origin, settle(Some(result), tenant, &key.1))),
                    released,
                )
            }
        }
    }

    /// Held events older than the hold time at `now`: a held check-in becomes an unscheduled
    /// walk-in (so the waiting rule watches it) and the rest apply to it in order; status
    /// changes with no check-in to anchor them are refused with `APPOINTMENT_UNKNOWN`.
    /// Returns `(tenant, outcome)` for each.
    pub fn expire(&self, now: Timestamp) -> Vec<(String, Outcome)> {
        let mut state = self.lock();
        let State { book, held } = &mut *state;
        let due: Vec<(String, String)> = held
            .iter()
            .filter(|(_, events)| {
                events
                    .first()
                    .is_some_and(|h| now.since(h.since) >= self.hold_for_ms)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in due {
            let (tenant, appointment) = &key;
            for h in held.remove(&key).unwrap_or_default() {
                let result = match (book.knows(tenant, appointment), &h.change) {
                    (true, change) => settle(book.apply(tenant, change), tenant, appointment),
                    (false, PracticeChange::CheckIn(c)) => {
                        book.walk_in(tenant, c).map_err(Refusal::from)
                    }
                    (false, _) => Err(Refusal(reject(
                        RejectCode::AppointmentUnknown,
                        format!(
                            "no schedule or check-in for appointment {appointment} within {} s",
                            self.hold_for_ms / 1000
                        ),
                    ))),
                };
                out.push((tenant.clone(), (h.origin, result)));
            }
        }
        out
    }

    /// The location of a known appointment.
    pub fn location_of(&self, tenant: &str, appointment: &str) -> Option<String> {
        self.lock()
            .book
            .location_of(tenant, appointment)
            .map(str::to_string)
    }

    /// Events waiting for a schedule.
    pub fn held(&self) -> usize {
        self.lock().held.values().map(Vec::len).sum()
    }
}

/// The book's answer as an outcome: a refused change or an unknown appointment is a refusal.
fn settle(
    result: Option<Result<Vec<Effect>, Refused>>,
    tenant: &str,
    appointment: &str,
) -> Result<Vec<Effect>, Refusal> {
    match result {
        Some(r) => r.map_err(Refusal::from),
        None => Err(unknown(tenant, appointment)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use vigil_engine::practice::AppointmentStatus;
    use vigil_engine::practice::appointment::{Booking, CheckIn, StatusChange};

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
        assert_eq!(
            r.message,
            "no schedule or check-in for appointment a2 within 60 s"
        );
        assert_eq!(desk.held(), 0);
    }
}
