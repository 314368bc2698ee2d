//! Appointments: the status machine of contracts.md §3 and what each accepted change means for
//! the location's waiting area, the provider's delays and the patient's flow.
//!
//! Pure: [`Appointment::check_in`] and [`Appointment::change`] either refuse a change (the
//! record stays as it was) or apply it and return its [`Effect`]s, which the caller hands to the
//! actors that keep the delay rules and to the `FLOW` stream. [`AppointmentBook`] is the index
//! of every known appointment that applies events to the right one.

use std::collections::HashMap;

use serde::Serialize;

use crate::practice::{AppointmentStatus, ProviderStatus, ResourceStatus, Stage};
use crate::time::Timestamp;

/// `appointment.scheduled.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub appointment: String,
    pub patient: String,
    pub provider: String,
    pub location: String,
    pub resource: Option<String>,
    pub start: Timestamp,
    pub duration_minutes: u32,
}

/// `patient.checkin.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckIn {
    pub appointment: String,
    pub patient: String,
    pub location: String,
    pub at: Timestamp,
    pub method: Option<String>,
    pub notes: Option<String>,
}

/// `appointment.status.changed.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub appointment: String,
    pub previous: AppointmentStatus,
    pub status: AppointmentStatus,
    pub at: Timestamp,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

/// `provider.status.update.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderUpdate {
    pub provider: String,
    pub status: ProviderStatus,
    pub at: Timestamp,
    pub location: Option<String>,
    pub note: Option<String>,
}

/// `resource.occupancy.update.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct OccupancyUpdate {
    pub resource: String,
    pub status: ResourceStatus,
    pub appointment: Option<String>,
    pub expected_free_at: Option<Timestamp>,
    pub location: Option<String>,
}

/// One practice event's data, decoded and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum PracticeChange {
    Scheduled(Booking),
    CheckIn(CheckIn),
    Status(StatusChange),
    Provider(ProviderUpdate),
    Occupancy(OccupancyUpdate),
}

impl PracticeChange {
    pub fn event_type(&self) -> &'static str {
        match self {
            PracticeChange::Scheduled(_) => "appointment.scheduled.v1",
            PracticeChange::CheckIn(_) => "patient.checkin.v1",
            PracticeChange::Status(_) => "appointment.status.changed.v1",
            PracticeChange::Provider(_) => "provider.status.update.v1",
            PracticeChange::Occupancy(_) => "resource.occupancy.update.v1",
        }
    }

    /// The appointment a schedule, check-in or status change is about; `None` for provider
    /// and occupancy updates.
    pub fn appointment(&self) -> Option<&str> {
        match self {
            PracticeChange::Scheduled(b) => Some(&b.appointment),
            PracticeChange::CheckIn(c) => Some(&c.appointment),
            PracticeChange::Status(s) => Some(&s.appointment),
            PracticeChange::Provider(_) | PracticeChange::Occupancy(_) => None,
        }
    }
}

/// `patient.flow.update.v1` data.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowUpdate {
    pub patient_id: String,
    pub appointment_id: String,
    pub stage: Stage,
    pub stage_entered_at: Timestamp,
    pub notes: Option<String>,
}

/// What an accepted change means for the actors that keep the delay rules, and for `FLOW`.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The patient is in the location's waiting area from `checked_in`.
    Waiting {
        location: String,
        appointment: String,
        patient: String,
        checked_in: Timestamp,
        scheduled: Timestamp,
    },
    /// The patient no longer waits (started, cancelled, left).
    DoneWaiting {
        location: String,
        appointment: String,
        status: AppointmentStatus,
        at: Timestamp,
    },
    /// The provider's delay counts this appointment.
    Booked {
        provider: String,
        location: String,
        appointment: String,
        start: Timestamp,
    },
    Started {
        provider: String,
        appointment: String,
        at: Timestamp,
    },
    /// Cancelled or no-show: the provider's delay no longer counts it.
    Dropped {
        provider: String,
        appointment: String,
    },
    Flow(FlowUpdate),
}

/// Why a change was refused (`INVALID_TRANSITION`); the record is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// One appointment as Vigil knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Appointment {
    pub patient: String,
    /// `None` for a walk-in nobody scheduled (see [`Appointment::unscheduled`]).
    pub provider: Option<String>,
    pub location: String,
    pub resource: Option<String>,
    pub start: Timestamp,
    pub duration_minutes: u32,
    pub status: AppointmentStatus,
    pub checked_in_at: Option<Timestamp>,
}

impl Appointment {
    /// A newly scheduled appointment, and its effect: the provider counts it.
    pub fn book(b: &Booking) -> (Self, Vec<Effect>) {
        let a = Self {
            patient: b.patient.clone(),
            provider: Some(b.provider.clone()),
            location: b.location.clone(),
            resource: b.resource.clone(),
            start: b.start,
            duration_minutes: b.duration_minutes,
            status: AppointmentStatus::Scheduled,
            checked_in_at: None,
        };
        let effects = a.booked(&b.appointment).into_iter().collect();
        (a, effects)
    }

    /// A check-in nobody scheduled (a walk-in, or a schedule that never came): an appointment
    /// with no provider, starting at the check-in, so that the waiting rule still watches it.
    pub fn unscheduled(c: &CheckIn) -> Self {
        Self {
            patient: c.patient.clone(),
            provider: None,
            location: c.location.clone(),
            resource: None,
            start: c.at,
            duration_minutes: 0,
            status: AppointmentStatus::Scheduled,
            checked_in_at: None,
        }
    }

    fn booked(&self, id: &str) -> Option<Effect> {
        let counts = !matches!(
            self.status,
            AppointmentStatus::Cancelled | AppointmentStatus::NoShow
        );
        Some(Effect::Booked {
            provider: self.provider.clone().filter(|_| counts)?,
            location: self.location.clone(),
            appointment: id.to_string(),
            start: self.start,
        })
    }

    /// A schedule for an appointment already known (rescheduled, or the schedule of a walk-in
    /// arriving late): takes the new provider, place and time; the status is kept.
    pub fn rebook(&mut self, b: &Booking) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some(old) = &self.provider
            && *old != b.provider
        {
            effects.push(Effect::Dropped {
                provider: old.clone(),
                appointment: b.appointment.clone(),
            });
        }
        self.patient.clone_from(&b.patient);
        self.provider = Some(b.provider.clone());
        self.location.clone_from(&b.location);
        self.resource.clone_from(&b.resource);
        self.start = b.start;
        self.duration_minutes = b.duration_minutes;
        effects.extend(self.booked(&b.appointment));
        if self.status == AppointmentStatus::CheckedIn
            && let Some(checked_in) = self.checked_in_at
        {
            // The wait now counts from the new start, if later.
            effects.push(self.waiting(&b.appointment, checked_in));
        }
        effects
    }

    fn waiting(&self, id: &str, checked_in: Timestamp) -> Effect {
        Effect::Waiting {
            location: self.location.clone(),
            appointment: id.to_string(),
            patient: self.patient.clone(),
            checked_in,
            scheduled: self.start,
        }
    }

    /// `patient.checkin.v1`: from `scheduled` (or `no_show`, a late arrival) to `checked_in`,
    /// in the check-in's location. A repeated check-in changes nothing.
    ///
    /// # Errors
    /// [`Refused`] once the appointment is in progress, completed or cancelled.
    pub fn check_in(&mut self, id: &str, c: &CheckIn) -> Result<Vec<Effect>, Refused> {
        if self.status == AppointmentStatus::CheckedIn {
            return Ok(Vec::new());
        }
        if !self.status.allows(AppointmentStatus::CheckedIn) {
            return Err(Refused(format!(
                "appointment {id} is {}: a check-in cannot follow",
                self.status.as_str()
            )));
        }
        self.location.clone_from(&c.location);
        Ok(self.move_to(id, AppointmentStatus::CheckedIn, c.at, c.notes.clone()))
    }

    /// `appointment.status.changed.v1`, checked against Vigil's own record of the status (a
    /// `previousStatus` that differs from it is noted in the flow update, not refused). A
    /// change to the status the appointment already has changes nothing (booking systems send
    /// one beside a check-in).
    ///
    /// # Errors
    /// [`Refused`] when the contract's status list does not allow the change.
    pub fn change(&mut self, id: &str, s: &StatusChange) -> Result<Vec<Effect>, Refused> {
        let from = self.status;
        if s.status == from {
            return Ok(Vec::new());
        }
        if !from.allows(s.status) {
            return Err(Refused(format!(
                "appointment {id} is {}: it cannot become {}",
                from.as_str(),
                s.status.as_str()
            )));
        }
        let mut notes: Vec<String> = s.reason.iter().cloned().collect();
        if s.previous != from {
            notes.push(format!(
                "previousStatus {} differs from Vigil's record ({})",
                s.previous.as_str(),
                from.as_str()
            ));
        }
        let notes = (!notes.is_empty()).then(|| notes.join("; "));
        Ok(self.move_to(id, s.status, s.at, notes))
    }

    /// Applies an allowed change and says what it means.
    fn move_to(
        &mut self,
        id: &str,
        to: AppointmentStatus,
        at: Timestamp,
        notes: Option<String>,
    ) -> Vec<Effect> {
        use AppointmentStatus::*;
        let from = self.status;
        self.status = to;
        let mut effects = Vec::new();
        if from == CheckedIn {
            effects.push(Effect::DoneWaiting {
                location: self.location.clone(),
                appointment: id.to_string(),
                status: to,
                at,
            });
        }
        match to {
            CheckedIn => {
                self.checked_in_at = Some(at);
                if from == NoShow {
                    // A late arrival counts for the provider again.
                    effects.extend(self.booked(id));
                }
                effects.push(self.waiting(id, at));
            }
            InProgress => effects.extend(self.provider.clone().map(|provider| Effect::Started {
                provider,
                appointment: id.to_string(),
                at,
            })),
            Cancelled | NoShow => {
                effects.extend(self.provider.clone().map(|provider| Effect::Dropped {
                    provider,
                    appointment: id.to_string(),
                }))
            }
            Scheduled | Completed => {}
        }
        if let Some(stage) = Stage::after(from, to) {
            effects.push(Effect::Flow(FlowUpdate {
                patient_id: self.patient.clone(),
                appointment_id: id.to_string(),
                stage,
                stage_entered_at: at,
                notes,
            }));
        }
        effects
    }
}

/// Every appointment the practice knows, by tenant and appointment id, and the one place
/// practice events are applied to them. Pure and single-owner: holding an event that arrives
/// before its appointment's schedule is the ingest's business (`vigil_streams::desk`).
#[derive(Debug, Default)]
pub struct AppointmentBook {
    appointments: HashMap<(String, String), Appointment>,
}

fn book_key(tenant: &str, appointment: &str) -> (String, String) {
    (tenant.to_string(), appointment.to_string())
}

impl AppointmentBook {
    pub fn knows(&self, tenant: &str, appointment: &str) -> bool {
        self.appointments
            .contains_key(&book_key(tenant, appointment))
    }

    /// Applies one practice event of `tenant`: a schedule books or rebooks its appointment; a
    /// check-in or a status change goes through the status machine of its appointment.
    /// `None` when that appointment is not known; provider and occupancy updates have no
    /// appointment effects (`Some(Ok([]))`).
    pub fn apply(
        &mut self,
        tenant: &str,
        change: &PracticeChange,
    ) -> Option<Result<Vec<Effect>, Refused>> {
        if let PracticeChange::Scheduled(b) = change {
            return Some(Ok(self.schedule(tenant, b)));
        }
        let Some(id) = change.appointment() else {
            return Some(Ok(Vec::new()));
        };
        let a = self.appointments.get_mut(&book_key(tenant, id))?;
        Some(match change {
            PracticeChange::CheckIn(c) => a.check_in(id, c),
            PracticeChange::Status(s) => a.change(id, s),
            _ => Ok(Vec::new()),
        })
    }

    /// Books a new appointment, or rebooks a known one (rescheduled, or a walk-in's late
    /// schedule).
    fn schedule(&mut self, tenant: &str, b: &Booking) -> Vec<Effect> {
        let key = book_key(tenant, &b.appointment);
        if let Some(a) = self.appointments.get_mut(&key) {
            return a.rebook(b);
        }
        let (a, effects) = Appointment::book(b);
        self.appointments.insert(key, a);
        effects
    }

    /// A check-in whose appointment was never scheduled: recorded as an unscheduled walk-in
    /// ([`Appointment::unscheduled`]), then applied, so the waiting rule watches it.
    pub fn walk_in(&mut self, tenant: &str, c: &CheckIn) -> Result<Vec<Effect>, Refused> {
        let a = self
            .appointments
            .entry(book_key(tenant, &c.appointment))
            .or_insert_with(|| Appointment::unscheduled(c));
        a.check_in(&c.appointment, c)
    }

    /// Where a known appointment takes place.
    pub fn location_of(&self, tenant: &str, appointment: &str) -> Option<&str> {
        self.appointments
            .get(&book_key(tenant, appointment))
            .map(|a| a.location.as_str())
    }

    /// Forgets the appointments that start before `cutoff`; returns how many.
    pub fn forget_before(&mut self, cutoff: Timestamp) -> usize {
        let before = self.appointments.len();
        self.appointments.retain(|_, a| a.start >= cutoff);
        before - self.appointments.len()
    }

    /// Forgets every appointment of the tenants `gone` names (a cluster member that handed
    /// their partition over; the new owner rebuilds them from the streams). Returns how many.
    pub fn forget_tenants(&mut self, gone: &dyn Fn(&str) -> bool) -> usize {
        let before = self.appointments.len();
        self.appointments.retain(|(tenant, _), _| !gone(tenant));
        before - self.appointments.len()
    }

    pub fn len(&self) -> usize {
        self.appointments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.appointments.is_empty()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use AppointmentStatus::*;

    fn hm(h: u32, m: u32) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, h, m, 0)
    }

    fn booking() -> Booking {
        Booking {
            appointment: "appt-1".into(),
            patient: "p1".into(),
            provider: "prov-1".into(),
            location: "loc-1".into(),
            resource: Some("chair-1".into()),
            start: hm(9, 0),
            duration_minutes: 30,
        }
    }

    fn check_in(at: Timestamp) -> CheckIn {
        CheckIn {
            appointment: "appt-1".into(),
            patient: "p1".into(),
            location: "loc-1".into(),
            at,
            method: None,
            notes: Some("running late".into()),
        }
    }

    fn change(
        previous: AppointmentStatus,
        status: AppointmentStatus,
        at: Timestamp,
    ) -> StatusChange {
        StatusChange {
            appointment: "appt-1".into(),
            previous,
            status,
            at,
            actor: None,
            reason: None,
        }
    }

    fn stages(effects: &[Effect]) -> Vec<Stage> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Flow(f) => Some(f.stage),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_visit_from_booking_to_completion_has_each_effect_once() {
        let (mut a, effects) = Appointment::book(&booking());
        assert!(matches!(&effects[..], [Effect::Booked { provider, .. }] if provider == "prov-1"));
        let effects = a.check_in("appt-1", &check_in(hm(9, 4))).unwrap();
        assert_eq!(a.status, CheckedIn);
        assert!(
            matches!(&effects[0], Effect::Waiting { checked_in, scheduled, .. }
            if *checked_in == hm(9, 4) && *scheduled == hm(9, 0))
        );
        assert_eq!(stages(&effects), [Stage::CheckedIn]);
        let Effect::Flow(f) = &effects[1] else {
            panic!("flow")
        };
        assert_eq!(f.notes.as_deref(), Some("running late"));
        // The booking system's own status change beside the check-in changes nothing.
        assert!(
            a.change("appt-1", &change(Scheduled, CheckedIn, hm(9, 4)))
                .unwrap()
                .is_empty()
        );
        let effects = a
            .change("appt-1", &change(CheckedIn, InProgress, hm(9, 15)))
            .unwrap();
        assert!(matches!(
            &effects[0],
            Effect::DoneWaiting {
                status: InProgress,
                ..
            }
        ));
        assert!(matches!(&effects[1], Effect::Started { at, .. } if *at == hm(9, 15)));
        assert_eq!(stages(&effects), [Stage::InProgress]);
        let effects = a
            .change("appt-1", &change(InProgress, Completed, hm(9, 45)))
            .unwrap();
        assert_eq!(stages(&effects), [Stage::Completed]);
        assert_eq!(effects.len(), 1);
    }

    #[test]
    fn disallowed_changes_are_refused_and_change_nothing() {
        let (mut a, _) = Appointment::book(&booking());
        a.change("appt-1", &change(Scheduled, InProgress, hm(9, 0)))
            .unwrap();
        a.change("appt-1", &change(InProgress, Completed, hm(9, 30)))
            .unwrap();
        let before = a.clone();
        let err = a
            .change("appt-1", &change(Completed, InProgress, hm(9, 40)))
            .unwrap_err();
        assert_eq!(
            err.0,
            "appointment appt-1 is completed: it cannot become in_progress"
        );
        assert_eq!(a, before);
        let err = a.check_in("appt-1", &check_in(hm(9, 41))).unwrap_err();
        assert_eq!(
            err.0,
            "appointment appt-1 is completed: a check-in cannot follow"
        );
        assert_eq!(a, before);
    }

    #[test]
    fn a_check_in_for_a_cancelled_appointment_is_refused() {
        let (mut a, _) = Appointment::book(&booking());
        let effects = a
            .change("appt-1", &change(Scheduled, Cancelled, hm(8, 0)))
            .unwrap();
        assert!(
            matches!(&effects[..], [Effect::Dropped { .. }]),
            "no flow: never arrived"
        );
        assert!(a.check_in("appt-1", &check_in(hm(9, 0))).is_err());
        assert_eq!(a.status, Cancelled);
    }

    #[test]
    fn leaving_and_a_late_arrival_after_no_show() {
        let (mut a, _) = Appointment::book(&booking());
        a.check_in("appt-1", &check_in(hm(8, 55))).unwrap();
        let effects = a
            .change("appt-1", &change(CheckedIn, NoShow, hm(9, 40)))
            .unwrap();
        assert!(matches!(
            &effects[0],
            Effect::DoneWaiting { status: NoShow, .. }
        ));
        assert!(matches!(&effects[1], Effect::Dropped { .. }));
        assert_eq!(stages(&effects), [Stage::Left]);
        let effects = a.check_in("appt-1", &check_in(hm(9, 50))).unwrap();
        assert!(matches!(&effects[0], Effect::Booked { .. }), "counts again");
        assert!(
            matches!(&effects[1], Effect::Waiting { checked_in, .. } if *checked_in == hm(9, 50))
        );
        assert_eq!(stages(&effects), [Stage::CheckedIn]);
    }

    #[test]
    fn a_previous_status_that_disagrees_is_noted_not_refused() {
        let (mut a, _) = Appointment::book(&booking());
        a.check_in("appt-1", &check_in(hm(8, 55))).unwrap();
        let mut c = change(Scheduled, InProgress, hm(9, 5));
        c.reason = Some("patient moved to chair".into());
        let effects = a.change("appt-1", &c).unwrap();
        let Some(Effect::Flow(f)) = effects.last() else {
            panic!("flow")
        };
        assert_eq!(
            f.notes.as_deref(),
            Some(
                "patient moved to chair; previousStatus scheduled differs from Vigil's record (checked_in)"
            )
        );
    }

    #[test]
    fn rebooking_moves_the_appointment_to_the_new_provider() {
        let (mut a, _) = Appointment::book(&booking());
        a.check_in("appt-1", &check_in(hm(8, 50))).unwrap();
        let mut b = booking();
        b.provider = "prov-2".into();
        b.start = hm(9, 30);
        let effects = a.rebook(&b);
        assert!(matches!(&effects[0], Effect::Dropped { provider, .. } if provider == "prov-1"));
        assert!(matches!(&effects[1], Effect::Booked { provider, start, .. }
            if provider == "prov-2" && *start == hm(9, 30)));
        assert!(
            matches!(&effects[2], Effect::Waiting { scheduled, .. } if *scheduled == hm(9, 30))
        );
    }

    #[test]
    fn an_unscheduled_walk_in_waits_without_a_provider() {
        let c = check_in(hm(10, 0));
        let mut a = Appointment::unscheduled(&c);
        let effects = a.check_in("appt-1", &c).unwrap();
        assert!(
            matches!(&effects[0], Effect::Waiting { scheduled, .. } if *scheduled == hm(10, 0))
        );
        let effects = a
            .change("appt-1", &change(CheckedIn, InProgress, hm(10, 20)))
            .unwrap();
        assert!(
            !effects.iter().any(|e| matches!(e, Effect::Started { .. })),
            "no provider to count it"
        );
    }

    #[test]
    fn the_book_applies_events_to_their_own_appointment_by_tenant() {
        let mut book = AppointmentBook::default();
        let early = PracticeChange::CheckIn(check_in(hm(8, 55)));
        assert_eq!(book.apply("t", &early), None, "not scheduled yet");
        let booked = book.apply("t", &PracticeChange::Scheduled(booking()));
        assert!(matches!(booked, Some(Ok(ref e)) if matches!(e[..], [Effect::Booked { .. }])));
        assert!(book.knows("t", "appt-1") && !book.knows("other", "appt-1"));
        assert_eq!(book.apply("other", &early), None, "tenants apart");
        let Some(Ok(effects)) = book.apply("t", &early) else {
            panic!("checked in")
        };
        assert_eq!(stages(&effects), vec![Stage::CheckedIn]);
        // The status machine refuses, and the record stays as it was.
        let back = PracticeChange::Status(change(CheckedIn, Scheduled, hm(9, 1)));
        assert!(matches!(book.apply("t", &back), Some(Err(_))));
        assert_eq!(book.location_of("t", "appt-1"), Some("loc-1"));
        let provider = PracticeChange::Provider(ProviderUpdate {
            provider: "prov-1".into(),
            status: ProviderStatus::Available,
            at: hm(9, 0),
            location: None,
            note: None,
        });
        assert_eq!(book.apply("t", &provider), Some(Ok(Vec::new())));
        assert_eq!(book.forget_before(hm(9, 0)), 0, "starts at 09:00: kept");
        assert_eq!(book.forget_before(hm(9, 1)), 1);
        assert!(book.is_empty());
    }

    #[test]
    fn a_walk_in_nobody_scheduled_is_watched_from_its_check_in() {
        let mut book = AppointmentBook::default();
        let c = check_in(hm(10, 0));
        let effects = book.walk_in("t", &c).unwrap();
        assert!(effects.iter().any(|e| matches!(e, Effect::Waiting { .. })));
        assert_eq!(book.len(), 1);
        assert_eq!(book.location_of("t", "appt-1"), Some("loc-1"));
    }
}
