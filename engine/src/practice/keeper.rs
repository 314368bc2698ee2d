//! A practice actor's state, as one type: a location's waiting area, a provider, or a chair or
//! room, each with its delay rule, its alerts' lifecycle (escalation, commands, recovery) and
//! the live view the front desk sees (`resource` frames). The actors hold a [`Keeper`] and a
//! timer for [`Keeper::next_deadline`]; everything else is here, pure.

use serde::Serialize;

use crate::alert::{Alert, AlertCommand, CommandError};
use crate::owner::{Reconciled, StateOwner};
use crate::practice::appointment::{Effect, OccupancyUpdate, ProviderUpdate};
use crate::practice::{Occupancy, ProviderDelays, ProviderStatus, ResourceStatus, WaitingArea};
use crate::settings::Settings;
use crate::time::Timestamp;

const MINUTE: i64 = 60_000;

/// A provider's bookings scheduled longer ago than this are forgotten.
const BOOKINGS_KEPT_MS: i64 = 24 * 60 * MINUTE;

/// Which kind of practice actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeeperKind {
    /// A location's waiting area (`delay.waiting`).
    Location,
    /// A provider (`delay.provider`).
    Provider,
    /// A chair or room (`delay.resource_overrun`).
    Resource,
}

impl KeeperKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeeperKind::Location => "location",
            KeeperKind::Provider => "provider",
            KeeperKind::Resource => "resource",
        }
    }
}

/// What a practice actor is told.
#[derive(Debug, Clone, PartialEq)]
pub enum KeeperInput {
    /// An effect of an appointment change, for a waiting area or a provider.
    Effect(Effect),
    Provider(ProviderUpdate),
    /// An occupancy update; `at` is the event's `occurredAt` (the update has no time of its own).
    Occupancy {
        update: OccupancyUpdate,
        at: Timestamp,
    },
}

impl KeeperInput {
    /// The actor it is for; `None` for a flow update (that goes to `FLOW`).
    pub fn keeper(&self) -> Option<(KeeperKind, &str)> {
        match self {
            KeeperInput::Effect(e) => match e {
                Effect::Waiting { location, .. } | Effect::DoneWaiting { location, .. } => {
                    Some((KeeperKind::Location, location))
                }
                Effect::Booked { provider, .. }
                | Effect::Started { provider, .. }
                | Effect::Dropped { provider, .. } => Some((KeeperKind::Provider, provider)),
                Effect::Flow(_) => None,
            },
            KeeperInput::Provider(u) => Some((KeeperKind::Provider, &u.provider)),
            KeeperInput::Occupancy { update, .. } => Some((KeeperKind::Resource, &update.resource)),
        }
    }
}

/// The most waiting patients a waiting area's `resource` frame lists (it counts them all).
pub const WAITING_LISTED: usize = 50;

/// The `resource` frame of the WebSocket (contracts.md §5), with additive fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    #[serde(skip)]
    pub tenant: String,
    pub resource_id: String,
    pub kind: KeeperKind,
    /// The location: tokens scoped to units see the resources of their locations.
    pub unit_id: Option<String>,
    /// A resource's occupancy status, a provider's status (`unknown` until one is reported),
    /// or for a waiting area `waiting` / `empty`.
    pub status: &'static str,
    pub current_appointment_id: Option<String>,
    pub expected_free_at: Option<Timestamp>,
    /// Minutes past `expectedFreeAt`; a provider's average start delay; a waiting area's
    /// longest current wait.
    pub delay_minutes: i64,
    /// Patients waiting (waiting areas only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<usize>,
    /// Who waits, the longest wait first, at most [`WAITING_LISTED`] (waiting areas only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_patients: Option<Vec<super::WaitingPatient>>,
    pub at: Timestamp,
}

#[derive(Debug, Clone)]
enum State {
    Location(WaitingArea),
    Provider {
        delays: ProviderDelays,
        status: Option<ProviderStatus>,
    },
    Resource(Occupancy),
}

/// One practice actor's state.
#[derive(Debug, Clone)]
pub struct Keeper {
    pub tenant: String,
    pub id: String,
    /// The location its alerts are scoped to: a waiting area's own id; a provider's latest
    /// booked appointment's (else its status update's); a resource's occupancy update's.
    location: Option<String>,
    state: State,
}

impl Keeper {
    pub fn new(kind: KeeperKind, tenant: &str, id: &str) -> Self {
        let (state, location) = match kind {
            KeeperKind::Location => (State::Location(WaitingArea::default()), Some(id.into())),
            KeeperKind::Provider => (
                State::Provider {
                    delays: ProviderDelays::default(),
                    status: None,
                },
                None,
            ),
            KeeperKind::Resource => (State::Resource(Occupancy::default()), None),
        };
        Self {
            tenant: tenant.into(),
            id: id.into(),
            location,
            state,
        }
    }

    pub fn kind(&self) -> KeeperKind {
        match self.state {
            State::Location(_) => KeeperKind::Location,
            State::Provider { .. } => KeeperKind::Provider,
            State::Resource(_) => KeeperKind::Resource,
        }
    }

    pub fn location(&self) -> Option<&str> {
        self.location.as_deref()
    }

    /// Applies one input, then lets the rule and the alerts' deadlines look at `now` (the wall
    /// clock live). Returns every alert transition, in order. An input for another kind of
    /// keeper is ignored (the router never sends one).
    pub fn apply(&mut self, input: &KeeperInput, now: Timestamp, s: &Settings) -> Vec<Alert> {
        let mut out = Vec::new();
        let Keeper {
            location, state, ..
        } = self;
        match (state, input) {
            (State::Location(w), KeeperInput::Effect(e)) => match e {
                Effect::Waiting {
                    appointment,
                    patient,
                    checked_in,
                    scheduled,
                    ..
                } => w.checked_in(appointment, patient, *checked_in, *scheduled),
                Effect::DoneWaiting {
                    appointment,
                    status,
                    ..
                } => out.extend(w.done(appointment, *status, now)),
                _ => {}
            },
            (State::Provider { delays, .. }, KeeperInput::Effect(e)) => match e {
                Effect::Booked {
                    appointment,
                    start,
                    location: at_location,
                    ..
                } => {
                    delays.scheduled(appointment, *start);
                    delays.prune(now.plus_millis(-BOOKINGS_KEPT_MS));
                    location.clone_from(&Some(at_location.clone()));
                }
                Effect::Started {
                    appointment, at, ..
                } => delays.started(appointment, *at),
                Effect::Dropped { appointment, .. } => delays.dropped(appointment),
                _ => {}
            },
            (State::Provider { status, .. }, KeeperInput::Provider(u)) => {
                *status = Some(u.status);
                if location.is_none() {
                    location.clone_from(&u.location);
                }
            }
            (State::Resource(o), KeeperInput::Occupancy { update, .. }) => {
                if update.location.is_some() {
                    location.clone_from(&update.location);
                }
                out.extend(o.update(
                    update.status,
                    update.appointment.clone(),
                    update.expected_free_at,
                    now,
                ));
            }
            _ => {}
        }
        out.extend(self.advance(now, s));
        out
    }

    /// The rule as time passes, then each alert's own deadlines (escalation, snooze end,
    /// acknowledgement expiry, page resend). Returns every transition, in order.
    pub fn advance(&mut self, now: Timestamp, s: &Settings) -> Vec<Alert> {
        let Keeper {
            tenant,
            id,
            location,
            state,
        } = self;
        let location = location.as_deref();
        let mut out = Vec::new();
        match state {
            State::Location(w) => {
                out.extend(w.advance(tenant, id, now, s));
                // Every alert here belongs to someone still waiting: the condition holds.
                for a in w.alerts_mut() {
                    out.extend(a.advance(now, true));
                }
            }
            State::Provider { delays, .. } => {
                out.extend(delays.advance(tenant, id, location, now, s));
                // Only with an alert to escalate: the average costs a pass over the bookings.
                let holds = delays.slot().alert().is_some_and(Alert::is_active)
                    && delays
                        .average(now, s)
                        .is_some_and(|avg| avg > s.provider.clear_below_ms);
                if let Some(a) = delays.slot_mut().alert_mut() {
                    out.extend(a.advance(now, holds));
                }
            }
            State::Resource(o) => {
                out.extend(o.advance(tenant, id, location, now, s));
                let holds = o.status == ResourceStatus::Occupied;
                if let Some(a) = o.slot_mut().alert_mut() {
                    out.extend(a.advance(now, holds));
                }
            }
        }
        out
    }

    /// When the actor must next look: the rule's next threshold or its alerts' next deadline.
    pub fn next_deadline(&self, now: Timestamp, s: &Settings) -> Option<Timestamp> {
        let rule = match &self.state {
            State::Location(w) => w.next_deadline(s),
            State::Provider { delays, .. } => delays.next_deadline(now, s),
            State::Resource(o) => o.next_deadline(s),
        };
        self.alerts()
            .filter_map(Alert::next_deadline)
            .chain(rule)
            .min()
    }

    /// Every alert kept here, resolved ones included.
    pub fn alerts(&self) -> Box<dyn Iterator<Item = &Alert> + '_> {
        match &self.state {
            State::Location(w) => Box::new(w.alerts()),
            State::Provider { delays, .. } => Box::new(delays.slot().alert().into_iter()),
            State::Resource(o) => Box::new(o.slot().alert().into_iter()),
        }
    }

    pub fn has_active_alert(&self) -> bool {
        self.alerts().any(Alert::is_active)
    }

    /// Applies a person's command to one of this keeper's alerts. Returns the alert and
    /// whether the command changed it. A resolve by a person keeps the rule from raising the
    /// same delay again: a waiting patient's alert is raised once per wait, a provider's not
    /// again until the average has cleared, a resource's not until it is freed.
    ///
    /// # Errors
    /// `NotFound` when no alert here has that id; otherwise as [`Alert::apply`].
    pub fn command(&mut self, c: &AlertCommand) -> Result<(Alert, bool), CommandError> {
        let not_found = || CommandError::NotFound(c.alert_id.clone());
        let (alert, changed) = match &mut self.state {
            State::Location(w) => {
                let a = w
                    .alerts_mut()
                    .find(|a| a.alert_id == c.alert_id)
                    .ok_or_else(not_found)?;
                let changed = a.apply(c)?;
                (a.clone(), changed)
            }
            State::Provider { delays, .. } => delays.slot_mut().command(c)?,
            State::Resource(o) => o.slot_mut().command(c)?,
        };
        Ok((alert, changed))
    }

    /// Recovery after the streams were replayed into this keeper: installs the alerts
    /// `ALERTS` holds for it (see `WaitingArea::reconcile` and `reconcile_slot` in
    /// practice.rs), then lets the rules look at `now`. Returns the transitions to publish:
    /// alerts the replay found new, and stored ones whose condition is gone.
    pub fn reconcile(&mut self, stored: Vec<Alert>, now: Timestamp, s: &Settings) -> Vec<Alert> {
        let mut out = match &mut self.state {
            State::Location(w) => w.reconcile(stored, now),
            State::Provider { delays, .. } => delays.slot_mut().reconcile(stored),
            State::Resource(o) => o.slot_mut().reconcile(stored),
        };
        out.extend(self.advance(now, s));
        out
    }

    /// The live view for `resource` frames at `now`.
    pub fn view(&self, now: Timestamp, s: &Settings) -> ResourceView {
        let mut v = ResourceView {
            tenant: self.tenant.clone(),
            resource_id: self.id.clone(),
            kind: self.kind(),
            unit_id: self.location.clone(),
            status: "",
            current_appointment_id: None,
            expected_free_at: None,
            delay_minutes: 0,
            waiting: None,
            waiting_patients: None,
            at: now,
        };
        match &self.state {
            State::Location(w) => {
                v.status = if w.waiting() > 0 { "waiting" } else { "empty" };
                v.delay_minutes = w.longest_wait(now).div_euclid(MINUTE);
                v.waiting = Some(w.waiting());
                v.waiting_patients = Some(w.waiters(now, WAITING_LISTED));
            }
            State::Provider { delays, status } => {
                v.status = status.map_or("unknown", ProviderStatus::as_str);
                v.delay_minutes = delays.average(now, s).unwrap_or(0).div_euclid(MINUTE);
            }
            State::Resource(o) => {
                v.status = o.status.as_str();
                v.current_appointment_id.clone_from(&o.appointment);
                v.expected_free_at = o.expected_free_at;
                v.delay_minutes = o.delay_minutes(now);
            }
        }
        v
    }
}

impl StateOwner for Keeper {
    type Input<'a> = KeeperInput;
    type Applied = Vec<Alert>;

    fn apply(&mut self, input: &KeeperInput, now: Timestamp, s: &Settings) -> Vec<Alert> {
        Keeper::apply(self, input, now, s)
    }

    fn command(&mut self, c: &AlertCommand) -> Result<(Alert, bool), CommandError> {
        Keeper::command(self, c)
    }

    fn advance(&mut self, now: Timestamp, s: &Settings) -> Vec<Alert> {
        Keeper::advance(self, now, s)
    }

    fn next_deadline(&self, now: Timestamp, s: &Settings) -> Option<Timestamp> {
        Keeper::next_deadline(self, now, s)
    }

    /// `ALERTS` is the keeper's whole truth at recovery: `is_open` adds nothing to `stored`.
    fn reconcile(
        &mut self,
        stored: Vec<Alert>,
        _: &dyn Fn(&str) -> bool,
        now: Timestamp,
        s: &Settings,
    ) -> Reconciled {
        let publish = Keeper::reconcile(self, stored, now, s);
        Reconciled {
            installed: self.alerts().filter(|a| a.is_active()).count(),
            publish,
        }
    }

    fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts().filter(|a| a.is_active())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::alert::{AlertState, CommandKind, Owner};
    use crate::practice::AppointmentStatus;
    use vigil_config::Role;

    const T: &str = "clinic-abc";

    fn hm(h: u32, m: u32) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, h, m, 0)
    }

    fn waiting(appointment: &str, at: Timestamp) -> KeeperInput {
        KeeperInput::Effect(Effect::Waiting {
            location: "loc-1".into(),
            appointment: appointment.into(),
            patient: format!("p-{appointment}"),
            checked_in: at,
            scheduled: at,
        })
    }

    fn resolve(id: &str, owner: Owner, at: Timestamp) -> AlertCommand {
        AlertCommand {
            tenant: T.into(),
            owner,
            alert_id: id.into(),
            kind: CommandKind::Resolve,
            page_id: String::new(),
            role: Role::Coordinator,
            by: "desk-1".into(),
            reason: "seen to".into(),
            at,
        }
    }

    #[test]
    fn a_waiting_area_fires_on_its_deadline_escalates_and_clears_when_the_patient_is_seen() {
        let s = Settings::default();
        let mut k = Keeper::new(KeeperKind::Location, T, "loc-1");
        assert!(k.apply(&waiting("a1", hm(9, 0)), hm(9, 0), &s).is_empty());
        assert_eq!(k.next_deadline(hm(9, 0), &s), Some(hm(9, 30)));
        assert!(k.advance(hm(9, 29), &s).is_empty());
        let fired = k.advance(hm(9, 30), &s);
        assert_eq!(fired.len(), 1);
        let a = &fired[0];
        assert_eq!(
            (a.rule.name(), a.unit_id.as_deref()),
            ("delay.waiting", Some("loc-1"))
        );
        assert_eq!(a.escalation.targets, ["role:coordinator@loc-1"]);
        // The page is re-sent when nobody receipts it within a minute; delay-default pages
        // the manager after 15 minutes without acknowledgement.
        assert_eq!(k.next_deadline(hm(9, 30), &s), Some(hm(9, 31)));
        let escalated = k.advance(hm(9, 45), &s);
        let last = escalated.last().unwrap();
        assert_eq!(last.escalation.targets, ["role:manager@loc-1"]);
        assert_eq!(last.escalation.level, 2);
        let view = k.view(hm(9, 50), &s);
        assert_eq!(
            (view.status, view.delay_minutes, view.waiting),
            ("waiting", 50, Some(1))
        );
        let done = KeeperInput::Effect(Effect::DoneWaiting {
            location: "loc-1".into(),
            appointment: "a1".into(),
            status: AppointmentStatus::InProgress,
            at: hm(9, 52),
        });
        let cleared = k.apply(&done, hm(9, 52), &s);
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].state, AlertState::Resolved);
        assert!(!k.has_active_alert());
        assert_eq!(k.next_deadline(hm(9, 52), &s), None);
    }

    #[test]
    fn a_person_resolving_a_wait_does_not_bring_it_back() {
        let s = Settings::default();
        let mut k = Keeper::new(KeeperKind::Location, T, "loc-1");
        k.apply(&waiting("a1", hm(9, 0)), hm(9, 0), &s);
        let id = k.advance(hm(9, 30), &s)[0].alert_id.clone();
        let (a, changed) = k
            .command(&resolve(&id, Owner::Location("loc-1".into()), hm(9, 31)))
            .unwrap();
        assert!(changed);
        assert_eq!(a.state, AlertState::Resolved);
        assert!(k.advance(hm(10, 30), &s).is_empty(), "once per wait");
        let again = k.command(&resolve(&id, Owner::Location("loc-1".into()), hm(9, 32)));
        assert_eq!(again.unwrap_err().code(), "INVALID_TRANSITION");
        let unknown = k.command(&resolve("nope", Owner::Location("loc-1".into()), hm(9, 32)));
        assert_eq!(unknown.unwrap_err().code(), "ALERT_NOT_FOUND");
    }

    fn occupied(appointment: &str, free_at: Timestamp) -> KeeperInput {
        KeeperInput::Occupancy {
            update: OccupancyUpdate {
                resource: "chair-12".into(),
                status: ResourceStatus::Occupied,
                appointment: Some(appointment.into()),
                expected_free_at: Some(free_at),
                location: Some("loc-1".into()),
            },
            at: hm(9, 0),
        }
    }

    #[test]
    fn a_resource_overrun_resolved_by_a_person_stays_quiet_until_the_chair_is_freed() {
        let s = Settings::default();
        let mut k = Keeper::new(KeeperKind::Resource, T, "chair-12");
        k.apply(&occupied("a1", hm(9, 55)), hm(9, 0), &s);
        assert_eq!(k.next_deadline(hm(9, 0), &s), Some(hm(10, 5)));
        let view = k.view(hm(10, 2), &s);
        assert_eq!(
            (view.status, view.delay_minutes, view.unit_id.as_deref()),
            ("occupied", 7, Some("loc-1"))
        );
        let fired = k.advance(hm(10, 5), &s);
        assert_eq!(fired[0].rule.name(), "delay.resource_overrun");
        let id = fired[0].alert_id.clone();
        k.command(&resolve(&id, Owner::Resource("chair-12".into()), hm(10, 6)))
            .unwrap();
        assert!(k.advance(hm(10, 30), &s).is_empty());
        assert_eq!(k.next_deadline(hm(10, 30), &s), None);
        // Freed, then a new visit that overruns: a new alert.
        let free = KeeperInput::Occupancy {
            update: OccupancyUpdate {
                resource: "chair-12".into(),
                status: ResourceStatus::Free,
                appointment: None,
                expected_free_at: None,
                location: None,
            },
            at: hm(10, 40),
        };
        assert!(
            k.apply(&free, hm(10, 40), &s).is_empty(),
            "nothing active to clear"
        );
        k.apply(&occupied("a2", hm(11, 0)), hm(10, 41), &s);
        assert_eq!(k.advance(hm(11, 10), &s).len(), 1);
    }

    #[test]
    fn a_provider_takes_the_location_of_its_appointments() {
        let s = Settings::default();
        assert_eq!(
            serde_json::to_value(KeeperKind::Provider).unwrap(),
            KeeperKind::Provider.as_str(),
            "the wire name and as_str agree"
        );
        let mut k = Keeper::new(KeeperKind::Provider, T, "prov-77");
        let status = KeeperInput::Provider(ProviderUpdate {
            provider: "prov-77".into(),
            status: ProviderStatus::Busy,
            at: hm(8, 0),
            location: Some("room-3".into()),
            note: None,
        });
        k.apply(&status, hm(8, 0), &s);
        assert_eq!(k.location(), Some("room-3"));
        for (i, start) in [hm(9, 0), hm(9, 30), hm(10, 0)].into_iter().enumerate() {
            let booked = KeeperInput::Effect(Effect::Booked {
                provider: "prov-77".into(),
                location: "loc-1".into(),
                appointment: format!("a{i}"),
                start,
            });
            k.apply(&booked, hm(8, 0), &s);
        }
        assert_eq!(k.location(), Some("loc-1"));
        assert_eq!(k.view(hm(8, 0), &s).status, "busy");
        // Nothing started: at 10:30 the three are 90, 60 and 30 min late (average 60).
        let fired = k.advance(hm(10, 30), &s);
        assert_eq!(fired[0].rule.name(), "delay.provider");
        assert_eq!(fired[0].unit_id.as_deref(), Some("loc-1"));
        assert_eq!(k.view(hm(10, 30), &s).delay_minutes, 60);
    }

    #[test]
    fn recovery_keeps_stored_alerts_publishes_new_ones_and_resolves_stale_ones() {
        let s = Settings::default();
        // Before the crash: a1 waited and was alerted at 09:30.
        let mut before = Keeper::new(KeeperKind::Location, T, "loc-1");
        before.apply(&waiting("a1", hm(9, 0)), hm(9, 0), &s);
        let stored = before.advance(hm(9, 30), &s).remove(0);
        // After: the replay rebuilds a1 waiting (re-opening its alert at 10:00, unpublished),
        // a2 waiting past its threshold with no stored alert; a0's stored alert has no waiter.
        let mut k = Keeper::new(KeeperKind::Location, T, "loc-1");
        k.apply(&waiting("a1", hm(9, 0)), hm(10, 0), &s);
        k.apply(&waiting("a2", hm(9, 20)), hm(10, 0), &s);
        let mut gone = stored.clone();
        gone.alert_id = "stale".into();
        gone.related_appointments = vec!["a0".into()];
        let out = k.reconcile(vec![stored.clone(), gone], hm(10, 0), &s);
        let ids: Vec<(&str, AlertState)> = out
            .iter()
            .take(2)
            .map(|a| (a.related_appointments[0].as_str(), a.state))
            .collect();
        assert_eq!(
            ids,
            [("a2", AlertState::Open), ("a0", AlertState::Resolved)]
        );
        // Then the stored alert's deadlines that passed while down (page resend at 09:31,
        // the manager at 09:45) fire at once, on the stored alert itself.
        let late = &out[2..];
        assert!(late.iter().all(|a| a.alert_id == stored.alert_id));
        assert_eq!(late.last().unwrap().escalation.level, 2);
        let kept: Vec<&str> = k.alerts().map(|a| a.alert_id.as_str()).collect();
        assert!(
            kept.contains(&stored.alert_id.as_str()),
            "the stored alert, not a duplicate"
        );
        assert_eq!(k.alerts().count(), 2);
    }

    #[test]
    fn recovery_keeps_a_persons_resolve_of_a_provider_delay() {
        let s = Settings::default();
        let booked = |i: usize, start| {
            KeeperInput::Effect(Effect::Booked {
                provider: "prov-1".into(),
                location: "loc-1".into(),
                appointment: format!("a{i}"),
                start,
            })
        };
        let mut before = Keeper::new(KeeperKind::Provider, T, "prov-1");
        for (i, start) in [hm(9, 0), hm(9, 10), hm(9, 20)].into_iter().enumerate() {
            before.apply(&booked(i, start), hm(8, 0), &s);
        }
        let id = before.advance(hm(10, 0), &s)[0].alert_id.clone();
        let (resolved, _) = before
            .command(&resolve(&id, Owner::Provider("prov-1".into()), hm(10, 1)))
            .unwrap();
        let mut k = Keeper::new(KeeperKind::Provider, T, "prov-1");
        for (i, start) in [hm(9, 0), hm(9, 10), hm(9, 20)].into_iter().enumerate() {
            k.apply(&booked(i, start), hm(10, 5), &s);
        }
        assert!(
            k.has_active_alert(),
            "the replay re-opened it (unpublished)"
        );
        assert!(k.reconcile(vec![resolved], hm(10, 5), &s).is_empty());
        assert!(!k.has_active_alert());
        assert!(
            k.advance(hm(11, 0), &s).is_empty(),
            "disarmed until the delay clears"
        );
    }
}
