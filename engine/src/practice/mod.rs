//! Practice flow (contracts.md §3, scoring.md's delay rules): appointment statuses, the
//! patient's flow stages, and the three delay rules, each kept by the state it watches:
//!
//! - [`WaitingArea`] (one per location): `delay.waiting`, per checked-in patient;
//! - [`ProviderDelays`] (one per provider): `delay.provider`, the average start delay;
//! - [`Occupancy`] (one per chair or room): `delay.resource_overrun`.
//!
//! Pure like the rest of the engine: time is a parameter. Each keeper says when it next needs
//! to look ([`WaitingArea::next_deadline`] and friends), so its actor's timer fires the rule as
//! time passes, not only on the next event. Their alerts have the same lifecycle and escalation
//! as clinical ones (category `delay`, policy `delay-default`).

pub mod appointment;
pub mod keeper;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::alert::{
    Alert, AlertCommand, AlertHolder, AlertState, CommandError, ENGINE, Escalation, Explanation,
    Meta, Rule, alert_id,
};
use crate::settings::{RuleSettings, Settings};
use crate::time::Timestamp;

const MINUTE: i64 = 60_000;

/// Appointment statuses of `appointment.status.changed.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppointmentStatus {
    Scheduled,
    CheckedIn,
    InProgress,
    Completed,
    Cancelled,
    NoShow,
}

impl AppointmentStatus {
    pub const ALL: [AppointmentStatus; 6] = [
        AppointmentStatus::Scheduled,
        AppointmentStatus::CheckedIn,
        AppointmentStatus::InProgress,
        AppointmentStatus::Completed,
        AppointmentStatus::Cancelled,
        AppointmentStatus::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Scheduled => "scheduled",
            AppointmentStatus::CheckedIn => "checked_in",
            AppointmentStatus::InProgress => "in_progress",
            AppointmentStatus::Completed => "completed",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::NoShow => "no_show",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether an appointment may go from `self` to `to` (docs/practice.md): forward through
    /// check-in and treatment, cancelled or no-show before it ends, and a late arrival after a
    /// no-show. `completed` and `cancelled` are final. Anything else is `INVALID_TRANSITION`.
    pub fn allows(self, to: AppointmentStatus) -> bool {
        use AppointmentStatus::*;
        matches!(
            (self, to),
            (Scheduled, CheckedIn | InProgress | Cancelled | NoShow)
                | (CheckedIn, InProgress | Cancelled | NoShow)
                | (InProgress, Completed | Cancelled)
                | (NoShow, CheckedIn)
        )
    }
}

/// Stages of `patient.flow.update.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    CheckedIn,
    Waiting,
    Called,
    InProgress,
    Completed,
    Left,
}

impl Stage {
    /// The stage a status change moves the patient to, if any: `in_progress` and `completed`
    /// as such; `cancelled` or `no_show` after check-in means the patient left.
    pub fn after(from: AppointmentStatus, to: AppointmentStatus) -> Option<Stage> {
        use AppointmentStatus::*;
        match to {
            CheckedIn => Some(Stage::CheckedIn),
            InProgress => Some(Stage::InProgress),
            Completed => Some(Stage::Completed),
            Cancelled | NoShow if matches!(from, CheckedIn | InProgress) => Some(Stage::Left),
            _ => None,
        }
    }
}

/// Provider statuses of `provider.status.update.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Available,
    Busy,
    Break,
    Offline,
}

impl ProviderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderStatus::Available => "available",
            ProviderStatus::Busy => "busy",
            ProviderStatus::Break => "break",
            ProviderStatus::Offline => "offline",
        }
    }
}

/// Resource statuses of `resource.occupancy.update.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    Free,
    Occupied,
    Cleaning,
    OutOfService,
}

impl ResourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceStatus::Free => "free",
            ResourceStatus::Occupied => "occupied",
            ResourceStatus::Cleaning => "cleaning",
            ResourceStatus::OutOfService => "out_of_service",
        }
    }
}

/// The delay rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayRule {
    Waiting,
    Provider,
    ResourceOverrun,
}

impl DelayRule {
    /// Its entry in the rule catalogue (name, category, level, owner).
    pub fn rule(self) -> Rule {
        match self {
            DelayRule::Waiting => Rule::DelayWaiting,
            DelayRule::Provider => Rule::DelayProvider,
            DelayRule::ResourceOverrun => Rule::DelayResourceOverrun,
        }
    }

    pub fn name(self) -> &'static str {
        self.rule().name()
    }

    pub fn settings(self, s: &Settings) -> &RuleSettings {
        s.rule(self.rule())
    }
}

/// Who and what a delay alert is about.
struct DelaySubject<'a> {
    tenant: &'a str,
    /// The location (the unit staff tokens are scoped to), when known.
    location: Option<&'a str>,
    patient: Option<&'a str>,
    provider: Option<&'a str>,
    resource: Option<&'a str>,
    related: Vec<String>,
}

/// The words and figures of a delay alert.
struct Words {
    message: String,
    why: String,
    why_now: String,
    meta: Meta,
}

fn open(
    rule: DelayRule,
    subject: DelaySubject<'_>,
    words: Words,
    at: Timestamp,
    s: &Settings,
) -> Alert {
    let key = subject
        .patient
        .or(subject.provider)
        .or(subject.resource)
        .unwrap_or_default();
    let rule = rule.rule();
    let id = alert_id(subject.tenant, key, rule, at);
    let policy = s.policies.select(rule.level(), rule.category());
    Alert {
        escalation: Escalation::start(policy, &id, subject.location, at, 0),
        alert_id: id,
        tenant_id: subject.tenant.to_string(),
        message: words.message,
        patient_id: subject.patient.map(str::to_string),
        unit_id: subject.location.map(str::to_string),
        resource_id: subject.resource.map(str::to_string),
        provider_id: subject.provider.map(str::to_string),
        related_appointments: subject.related,
        meta: words.meta,
        explanation: Explanation {
            why: words.why,
            why_now: words.why_now,
            profile: s.profile.clone(),
            ..Explanation::default()
        },
        ..Alert::opening(rule, at, at)
    }
}

/// The one delay alert of a provider or a resource, and whether a person's resolve has
/// disarmed its rule until the condition goes away (a provider's average clears, a resource
/// is freed).
#[derive(Debug, Clone, Default)]
pub struct AlertSlot {
    alert: AlertHolder,
    disarmed: bool,
}

impl AlertSlot {
    pub fn alert(&self) -> Option<&Alert> {
        self.alert.get()
    }

    pub fn alert_mut(&mut self) -> Option<&mut Alert> {
        self.alert.get_mut()
    }

    fn active(&self) -> bool {
        self.alert.is_active()
    }

    /// The rule may not raise a new alert: one is active, or a person's resolve disarmed it.
    fn holds_back(&self) -> bool {
        self.active() || self.disarmed
    }

    /// Keeps a newly opened alert; returns it.
    fn opened(&mut self, alert: Alert) -> Alert {
        self.alert.open(alert)
    }

    /// Applies a person's command to the alert, if it is the one named. A resolve disarms
    /// the rule. Returns the alert and whether the command changed it.
    ///
    /// # Errors
    /// `NotFound` when the slot holds no alert of that id; otherwise as [`Alert::apply`].
    pub fn command(&mut self, c: &AlertCommand) -> Result<(Alert, bool), CommandError> {
        let (a, changed) = self.alert.command(c)?;
        if a.state == AlertState::Resolved {
            self.disarmed = true;
        }
        Ok((a, changed))
    }

    /// Recovery. `stored` are the alerts `ALERTS` holds for this keeper; the slot holds what
    /// replaying the streams opened (never published). The newest stored alert wins when it
    /// is active or a person resolved it (then the rule stays disarmed); an alert the replay
    /// opened after an engine resolve is new and returned for publishing.
    pub fn reconcile(&mut self, stored: Vec<Alert>) -> Vec<Alert> {
        let newest = stored.into_iter().max_by_key(|a| a.opened_at);
        let replayed = self.alert.take().filter(Alert::is_active);
        match (newest, replayed) {
            (Some(a), _) if a.is_active() => self.alert.set(Some(a)),
            (Some(a), _) if a.resolved_by_person() => {
                self.alert.set(Some(a));
                self.disarmed = true;
            }
            (_, Some(r)) => return vec![self.alert.open(r)],
            (newest, None) => self.alert.set(newest),
        }
        Vec::new()
    }
}

/// A delay in words: whole minutes (`30m`) from a minute up, seconds (`45s`) below, so
/// thresholds configured in seconds read right too.
fn span(ms: i64) -> String {
    if ms >= MINUTE {
        format!("{}m", minutes(ms))
    } else {
        format!("{}s", ms.max(0) / 1000)
    }
}

fn minutes(ms: i64) -> i64 {
    ms.div_euclid(MINUTE)
}

/// A patient in a waiting area as the practice view lists it (in the waiting area's
/// `resource` frame): waiting since the later of check-in and the scheduled start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitingPatient {
    pub patient_id: String,
    pub appointment_id: String,
    pub checked_in_at: Timestamp,
    pub scheduled_start: Timestamp,
    /// Whole minutes waited.
    pub waited_minutes: i64,
}

/// One checked-in patient the waiting rule watches.
#[derive(Debug, Clone)]
struct Waiter {
    patient: String,
    checked_in: Timestamp,
    scheduled: Timestamp,
    alert: AlertHolder,
}

impl Waiter {
    /// The later of check-in and scheduled start: the wait counts from here.
    fn since(&self) -> Timestamp {
        self.checked_in.max(self.scheduled)
    }
}

/// A location's waiting area: `delay.waiting` for every checked-in appointment not yet started.
#[derive(Debug, Clone, Default)]
pub struct WaitingArea {
    waiting: BTreeMap<String, Waiter>,
}

impl WaitingArea {
    /// A patient checked in for `appointment` (scheduled at `scheduled`).
    pub fn checked_in(
        &mut self,
        appointment: &str,
        patient: &str,
        checked_in: Timestamp,
        scheduled: Timestamp,
    ) {
        self.waiting
            .entry(appointment.to_string())
            .and_modify(|w| {
                w.checked_in = checked_in;
                w.scheduled = scheduled;
            })
            .or_insert(Waiter {
                patient: patient.to_string(),
                checked_in,
                scheduled,
                alert: AlertHolder::default(),
            });
    }

    /// The appointment started, was cancelled, or the patient left: no longer waiting. Returns
    /// its delay alert, resolved at `now` (the engine's clock), if it had one.
    pub fn done(
        &mut self,
        appointment: &str,
        status: AppointmentStatus,
        now: Timestamp,
    ) -> Option<Alert> {
        let mut w = self.waiting.remove(appointment)?;
        let reason = match status {
            AppointmentStatus::InProgress => "appointment started".to_string(),
            AppointmentStatus::Cancelled => "appointment cancelled".to_string(),
            _ => "patient left".to_string(),
        };
        w.alert.clear(now, reason)
    }

    /// Fires `delay.waiting` for every patient waiting at least the rule's window at `now`.
    pub fn advance(
        &mut self,
        tenant: &str,
        location: &str,
        now: Timestamp,
        s: &Settings,
    ) -> Vec<Alert> {
        let r = &s.waiting;
        if !r.enabled {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (appointment, w) in &mut self.waiting {
            // Once per wait: an alert a person resolved is not raised again for the same wait.
            if !w.alert.is_empty() || now.since(w.since()) < r.window_ms {
                continue;
            }
            let waited_ms = now.since(w.since());
            let waited = minutes(waited_ms);
            let base = if w.checked_in >= w.scheduled {
                format!("checked in at {}", w.checked_in.hhmm())
            } else {
                format!(
                    "scheduled for {} (checked in at {})",
                    w.scheduled.hhmm(),
                    w.checked_in.hhmm()
                )
            };
            let words = Words {
                message: format!(
                    "Patient waiting {} past the later of check-in and start",
                    span(waited_ms)
                ),
                why: format!(
                    "checked in and not in progress {} after {base} (threshold profile {})",
                    span(r.window_ms),
                    s.profile
                ),
                why_now: format!(
                    "{} since {} and not yet started",
                    span(waited_ms),
                    w.since().hhmm()
                ),
                meta: Meta {
                    waited_minutes: Some(waited),
                    ..Meta::default()
                },
            };
            let subject = DelaySubject {
                tenant,
                location: Some(location),
                patient: Some(&w.patient),
                provider: None,
                resource: None,
                related: vec![appointment.clone()],
            };
            out.push(
                w.alert
                    .open(open(DelayRule::Waiting, subject, words, now, s)),
            );
        }
        out
    }

    /// When the next patient reaches the waiting threshold.
    pub fn next_deadline(&self, s: &Settings) -> Option<Timestamp> {
        if !s.waiting.enabled {
            return None;
        }
        self.waiting
            .values()
            .filter(|w| w.alert.is_empty())
            .map(|w| w.since().plus_millis(s.waiting.window_ms))
            .min()
    }

    /// Every alert kept here (commands and recovery reach them through this).
    pub fn alerts_mut(&mut self) -> impl Iterator<Item = &mut Alert> {
        self.waiting.values_mut().filter_map(|w| w.alert.get_mut())
    }

    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.waiting.values().filter_map(|w| w.alert.get())
    }

    /// Recovery: `stored` are the alerts `ALERTS` holds for this location; the waiters were
    /// rebuilt by replaying the streams, and any alert the replay opened was never published.
    /// Per appointment the newest stored alert wins, whatever its state (once per wait); an
    /// alert the replay opened with none stored is new and returned for publishing; a stored
    /// active alert whose patient no longer waits is resolved now and returned too.
    pub fn reconcile(&mut self, stored: Vec<Alert>, now: Timestamp) -> Vec<Alert> {
        let mut by_appointment: BTreeMap<String, Alert> = BTreeMap::new();
        for a in stored {
            let Some(appointment) = a.related_appointments.first().cloned() else {
                continue;
            };
            if by_appointment
                .get(&appointment)
                .is_none_or(|b| a.opened_at > b.opened_at)
            {
                by_appointment.insert(appointment, a);
            }
        }
        let mut publish = Vec::new();
        for (appointment, w) in &mut self.waiting {
            let replayed = w.alert.take().filter(Alert::is_active);
            match by_appointment.remove(appointment) {
                Some(a) => w.alert.set(Some(a)),
                None => {
                    publish.extend(replayed.clone());
                    w.alert.set(replayed);
                }
            }
        }
        for (_, mut a) in by_appointment {
            if a.is_active() {
                let reason = "patient no longer waiting (seen on recovery)".to_string();
                a.transition(AlertState::Resolved, ENGINE, now, reason);
                publish.push(a);
            }
        }
        publish
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// The patients waiting at `now`, the longest wait first, at most `limit` of them.
    pub fn waiters(&self, now: Timestamp, limit: usize) -> Vec<WaitingPatient> {
        let mut v: Vec<WaitingPatient> = self
            .waiting
            .iter()
            .map(|(appointment, w)| WaitingPatient {
                patient_id: w.patient.clone(),
                appointment_id: appointment.clone(),
                checked_in_at: w.checked_in,
                scheduled_start: w.scheduled,
                waited_minutes: minutes(now.since(w.since()).max(0)),
            })
            .collect();
        v.sort_by(|a, b| {
            b.waited_minutes
                .cmp(&a.waited_minutes)
                .then_with(|| a.appointment_id.cmp(&b.appointment_id))
        });
        v.truncate(limit);
        v
    }

    /// The longest current wait at `now`, in ms (0 with nobody waiting).
    pub fn longest_wait(&self, now: Timestamp) -> i64 {
        self.waiting
            .values()
            .map(|w| now.since(w.since()).max(0))
            .max()
            .unwrap_or(0)
    }
}

/// One appointment as its provider's delay counts it.
#[derive(Debug, Clone)]
struct Booked {
    scheduled: Timestamp,
    started: Option<Timestamp>,
    /// Cancelled or no-show: never counts.
    dropped: bool,
}

/// A provider's appointments and `delay.provider`.
#[derive(Debug, Clone, Default)]
pub struct ProviderDelays {
    booked: BTreeMap<String, Booked>,
    slot: AlertSlot,
}

impl ProviderDelays {
    pub fn scheduled(&mut self, appointment: &str, scheduled: Timestamp) {
        let b = self
            .booked
            .entry(appointment.to_string())
            .or_insert(Booked {
                scheduled,
                started: None,
                dropped: false,
            });
        b.scheduled = scheduled;
        // Booked again (a late arrival after a no-show, a rebooking): it counts again.
        b.dropped = false;
    }

    /// Forgets bookings scheduled before `before` (a day ago, live): they no longer count,
    /// and a provider's memory stays bounded.
    pub fn prune(&mut self, before: Timestamp) {
        self.booked.retain(|_, b| b.scheduled >= before);
    }

    pub fn started(&mut self, appointment: &str, at: Timestamp) {
        if let Some(b) = self.booked.get_mut(appointment) {
            b.started.get_or_insert(at);
        }
    }

    pub fn dropped(&mut self, appointment: &str) {
        if let Some(b) = self.booked.get_mut(appointment) {
            b.dropped = true;
        }
    }

    /// The latest `n` started or due appointments at `now` (latest scheduled first) with each
    /// one's start delay: a started one by when it started, a due one by how late it is now.
    fn counted(&self, now: Timestamp, n: usize) -> Vec<(&str, i64)> {
        // The top `n` by (scheduled, id), newest first, kept in order as the bookings pass:
        // no sort of the whole day per event.
        let mut top: Vec<(&str, Timestamp, i64)> = Vec::with_capacity(n + 1);
        for (id, b) in &self.booked {
            if b.dropped || (b.started.is_none() && b.scheduled > now) {
                continue;
            }
            let key = (b.scheduled, id.as_str());
            let at = top.partition_point(|(tid, ts, _)| (*ts, *tid) > key);
            if at < n {
                let delay = b.started.unwrap_or(now).since(b.scheduled).max(0);
                top.insert(at, (id.as_str(), b.scheduled, delay));
                top.truncate(n);
            }
        }
        top.into_iter().map(|(id, _, d)| (id, d)).collect()
    }

    /// The start delays (ms) of the counted appointments, summed, with their ids. Compared as
    /// sums (`sum > window * count`) so that no rounding moves an edge.
    fn delays(&self, now: Timestamp, s: &Settings) -> (i64, Vec<&str>) {
        let counted = self.counted(now, s.provider.sustain.max(1) as usize);
        let sum = counted.iter().map(|(_, d)| d).sum();
        (sum, counted.into_iter().map(|(id, _)| id).collect())
    }

    /// The average start delay in ms over the counted appointments (`None` with none).
    pub fn average(&self, now: Timestamp, s: &Settings) -> Option<i64> {
        let (sum, ids) = self.delays(now, s);
        (!ids.is_empty()).then(|| sum / ids.len() as i64)
    }

    /// Fires `delay.provider` when the average exceeds the rule's window, and resolves it once
    /// the average is at or below `clear_below`.
    pub fn advance(
        &mut self,
        tenant: &str,
        provider: &str,
        location: Option<&str>,
        now: Timestamp,
        s: &Settings,
    ) -> Option<Alert> {
        let r = &s.provider;
        let (sum, related) = self.delays(now, s);
        let count = related.len().max(1) as i64;
        let avg = sum / count;
        let cleared = sum <= r.clear_below_ms * count;
        if self.slot.disarmed {
            self.slot.disarmed = !cleared;
            return None;
        }
        if self.slot.active() {
            if !cleared {
                return None;
            }
            let reason = format!(
                "average start delay {} <= {}",
                span(avg),
                span(r.clear_below_ms)
            );
            return self.slot.alert.clear(now, reason);
        }
        if !r.enabled || related.is_empty() || sum <= r.window_ms * count {
            return None;
        }
        let avg_min = sum as f64 / count as f64 / MINUTE as f64;
        let rounded = (avg_min * 10.0).round() / 10.0;
        let words = Words {
            message: format!("Provider running >{} behind", span(r.window_ms)),
            why: format!(
                "average start delay over the latest {} started or due appointments {} > {} \
                 (threshold profile {})",
                related.len(),
                span(avg),
                span(r.window_ms),
                s.profile
            ),
            why_now: format!("average reached {} at {}", span(avg), now.hhmm()),
            meta: Meta {
                avg_delay_minutes: Some(rounded),
                ..Meta::default()
            },
        };
        let subject = DelaySubject {
            tenant,
            location,
            patient: None,
            provider: Some(provider),
            resource: None,
            related: related.into_iter().map(str::to_string).collect(),
        };
        Some(
            self.slot
                .opened(open(DelayRule::Provider, subject, words, now, s)),
        )
    }

    /// When the average next crosses the rule's threshold (or the clear level), or the next
    /// appointment becomes due: the average of due appointments grows with the clock.
    pub fn next_deadline(&self, now: Timestamp, s: &Settings) -> Option<Timestamp> {
        let r = &s.provider;
        let n = r.sustain.max(1) as usize;
        let next_due = self
            .booked
            .values()
            .filter(|b| !b.dropped && b.started.is_none() && b.scheduled > now)
            .map(|b| b.scheduled)
            .min();
        let counted = self.counted(now, n);
        let growing = counted
            .iter()
            .filter(|(id, _)| self.booked[*id].started.is_none())
            .count() as i64;
        let crossing = (growing > 0 && r.enabled && !self.slot.holds_back()).then(|| {
            // Sum of delays must exceed window * count: it grows by `growing` ms per ms.
            let sum: i64 = counted.iter().map(|(_, d)| d).sum();
            let target = r.window_ms * counted.len() as i64;
            let wait = (target - sum).div_euclid(growing) + 1;
            now.plus_millis(wait.max(1))
        });
        [next_due, crossing].into_iter().flatten().min()
    }

    /// The provider's delay alert: commands and recovery reach it through this.
    pub fn slot(&self) -> &AlertSlot {
        &self.slot
    }

    pub fn slot_mut(&mut self) -> &mut AlertSlot {
        &mut self.slot
    }
}

/// A chair or room: its occupancy and `delay.resource_overrun`.
#[derive(Debug, Clone)]
pub struct Occupancy {
    pub status: ResourceStatus,
    pub appointment: Option<String>,
    pub expected_free_at: Option<Timestamp>,
    slot: AlertSlot,
}

impl Default for Occupancy {
    /// Free, until told otherwise.
    fn default() -> Self {
        Self {
            status: ResourceStatus::Free,
            appointment: None,
            expected_free_at: None,
            slot: AlertSlot::default(),
        }
    }
}

impl Occupancy {
    /// Applies an occupancy update; returns the overrun alert, resolved at `now` (the engine's
    /// clock), when the resource was freed (any status but `occupied`).
    pub fn update(
        &mut self,
        status: ResourceStatus,
        appointment: Option<String>,
        expected_free_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<Alert> {
        let same_visit = appointment == self.appointment;
        self.status = status;
        self.appointment = appointment;
        self.expected_free_at = expected_free_at;
        if status == ResourceStatus::Occupied {
            self.slot.disarmed &= same_visit;
            return None;
        }
        self.slot.disarmed = false;
        self.slot.alert.clear(now, "resource freed".into())
    }

    /// Minutes past `expectedFreeAt` while occupied (0 otherwise): the `resource` frame's delay.
    pub fn delay_minutes(&self, now: Timestamp) -> i64 {
        match (self.status, self.expected_free_at) {
            (ResourceStatus::Occupied, Some(free)) if now > free => minutes(now.since(free)),
            _ => 0,
        }
    }

    /// Fires `delay.resource_overrun` once the resource is still occupied the rule's window
    /// past `expectedFreeAt`.
    pub fn advance(
        &mut self,
        tenant: &str,
        resource: &str,
        location: Option<&str>,
        now: Timestamp,
        s: &Settings,
    ) -> Option<Alert> {
        let r = &s.overrun;
        if self.status != ResourceStatus::Occupied {
            return self.slot.alert.clear(now, "resource freed".into());
        }
        let free = self.expected_free_at?;
        if !r.enabled
            || self.status != ResourceStatus::Occupied
            || self.slot.holds_back()
            || now.since(free) < r.window_ms
        {
            return None;
        }
        let over_ms = now.since(free);
        let over = minutes(over_ms);
        let words = Words {
            message: format!(
                "{resource} occupied {} past its expected free time",
                span(over_ms)
            ),
            why: format!(
                "still occupied {} or more after expectedFreeAt {} (threshold profile {})",
                span(r.window_ms),
                free.hhmm(),
                s.profile
            ),
            why_now: format!(
                "expected free at {}, still occupied at {}",
                free.hhmm(),
                now.hhmm()
            ),
            meta: Meta {
                overrun_minutes: Some(over),
                ..Meta::default()
            },
        };
        let subject = DelaySubject {
            tenant,
            location,
            patient: None,
            provider: None,
            resource: Some(resource),
            related: self.appointment.iter().cloned().collect(),
        };
        Some(
            self.slot
                .opened(open(DelayRule::ResourceOverrun, subject, words, now, s)),
        )
    }

    pub fn next_deadline(&self, s: &Settings) -> Option<Timestamp> {
        if !s.overrun.enabled || self.slot.holds_back() || self.status != ResourceStatus::Occupied {
            return None;
        }
        Some(self.expected_free_at?.plus_millis(s.overrun.window_ms))
    }

    /// The overrun alert: commands and recovery reach it through this. An active overrun of
    /// a resource the replay saw freed resolves on the next [`Occupancy::advance`].
    pub fn slot(&self) -> &AlertSlot {
        &self.slot
    }

    pub fn slot_mut(&mut self) -> &mut AlertSlot {
        &mut self.slot
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::alert::{Category, Level};
    use AppointmentStatus::*;

    const T: &str = "clinic-abc";

    /// 2025-11-27 at `h:m:s.ms`.
    fn at(h: u32, m: u32, s: u32, ms: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, h, m, s).plus_millis(ms)
    }

    fn hm(h: u32, m: u32) -> Timestamp {
        at(h, m, 0, 0)
    }

    #[test]
    fn status_names_round_trip_and_the_transition_table_is_exactly_as_documented() {
        for st in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(st.as_str()), Some(st));
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
        }
        assert_eq!(AppointmentStatus::parse("done"), None);
        let allowed = [
            (Scheduled, CheckedIn),
            (Scheduled, InProgress),
            (Scheduled, Cancelled),
            (Scheduled, NoShow),
            (CheckedIn, InProgress),
            (CheckedIn, Cancelled),
            (CheckedIn, NoShow),
            (InProgress, Completed),
            (InProgress, Cancelled),
            (NoShow, CheckedIn),
        ];
        for from in AppointmentStatus::ALL {
            for to in AppointmentStatus::ALL {
                assert_eq!(
                    from.allows(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn flow_stages_follow_status_changes() {
        assert_eq!(Stage::after(Scheduled, CheckedIn), Some(Stage::CheckedIn));
        assert_eq!(Stage::after(CheckedIn, InProgress), Some(Stage::InProgress));
        assert_eq!(Stage::after(InProgress, Completed), Some(Stage::Completed));
        assert_eq!(Stage::after(CheckedIn, NoShow), Some(Stage::Left));
        assert_eq!(Stage::after(InProgress, Cancelled), Some(Stage::Left));
        assert_eq!(Stage::after(Scheduled, Cancelled), None, "never arrived");
        assert_eq!(Stage::after(Scheduled, NoShow), None);
    }

    #[test]
    fn waiting_fires_at_thirty_minutes_after_the_later_of_check_in_and_start() {
        let s = Settings::default();
        let mut area = WaitingArea::default();
        // Contract example: scheduled 09:00, checked in 09:04:30 ("running 5 minutes late").
        area.checked_in("appt-456", "patient-123", at(9, 4, 30, 0), hm(9, 0));
        // Early arrival: the wait counts from the scheduled start.
        area.checked_in("appt-457", "patient-124", hm(9, 50), hm(10, 0));
        assert_eq!(area.next_deadline(&s), Some(at(9, 34, 30, 0)));
        assert!(area.advance(T, "loc-1", at(9, 34, 29, 999), &s).is_empty());
        let fired = area.advance(T, "loc-1", at(9, 34, 30, 0), &s);
        assert_eq!(fired.len(), 1);
        let a = &fired[0];
        assert_eq!(
            (a.rule.name(), a.category, a.level),
            ("delay.waiting", Category::Delay, Level::Warning)
        );
        assert_eq!(a.patient_id.as_deref(), Some("patient-123"));
        assert_eq!(a.unit_id.as_deref(), Some("loc-1"));
        assert_eq!(a.related_appointments, ["appt-456"]);
        assert_eq!(a.meta.waited_minutes, Some(30));
        assert_eq!(a.escalation.policy, "delay-default");
        assert_eq!(a.escalation.targets, ["role:coordinator@loc-1"]);
        assert!(
            a.explanation.why.contains("checked in at 09:04"),
            "{}",
            a.explanation.why
        );
        // Fired once; the next deadline is the early arrival's.
        assert!(area.advance(T, "loc-1", hm(9, 40), &s).is_empty());
        assert_eq!(area.next_deadline(&s), Some(hm(10, 30)));
        assert!(area.advance(T, "loc-1", at(10, 29, 59, 999), &s).is_empty());
        assert_eq!(area.advance(T, "loc-1", hm(10, 30), &s).len(), 1);
        // Started: resolved with the reason; a cancelled wait ends too.
        let done = area.done("appt-456", InProgress, hm(10, 31)).unwrap();
        assert_eq!(done.state, AlertState::Resolved);
        assert_eq!(done.transition.reason, "appointment started");
        let left = area.done("appt-457", NoShow, hm(10, 32)).unwrap();
        assert_eq!(left.transition.reason, "patient left");
        assert_eq!(area.waiting(), 0);
        assert_eq!(area.next_deadline(&s), None);
    }

    #[test]
    fn waiters_are_listed_longest_wait_first_from_the_later_of_check_in_and_start() {
        let mut area = WaitingArea::default();
        area.checked_in("appt-456", "patient-123", at(9, 4, 30, 0), hm(9, 0));
        area.checked_in("appt-457", "patient-124", hm(9, 50), hm(10, 0));
        area.checked_in("appt-458", "patient-125", hm(9, 0), hm(9, 0));
        let listed = area.waiters(at(10, 4, 29, 999), 10);
        let waited: Vec<(&str, i64)> = listed
            .iter()
            .map(|w| (w.patient_id.as_str(), w.waited_minutes))
            .collect();
        // 64 min 29.999 s, 59 min 59.999 s (from 09:04:30), 4 min 29.999 s (from 10:00).
        assert_eq!(
            waited,
            [("patient-125", 64), ("patient-123", 59), ("patient-124", 4)]
        );
        assert_eq!(listed[1].appointment_id, "appt-456");
        assert_eq!(listed[1].checked_in_at, at(9, 4, 30, 0));
        assert_eq!(listed[2].scheduled_start, hm(10, 0));
        assert_eq!(area.waiters(hm(10, 5), 2).len(), 2, "at most the limit");
        // Not yet at the scheduled start: 0 minutes, never negative.
        assert_eq!(area.waiters(hm(9, 55), 10)[2].waited_minutes, 0);
    }

    #[test]
    fn waiting_ended_before_the_threshold_never_fires_and_a_disabled_rule_is_silent() {
        let mut s = Settings::default();
        let mut area = WaitingArea::default();
        area.checked_in("a1", "p1", hm(9, 0), hm(9, 0));
        assert!(area.done("a1", Cancelled, hm(9, 10)).is_none());
        assert!(area.advance(T, "loc-1", hm(11, 0), &s).is_empty());
        s.waiting.enabled = false;
        area.checked_in("a2", "p2", hm(9, 0), hm(9, 0));
        assert!(area.advance(T, "loc-1", hm(11, 0), &s).is_empty());
        assert_eq!(area.next_deadline(&s), None);
    }

    /// prov-77's morning: 09:00 started 09:30, 09:30 started 10:05, 10:00 not started.
    fn behind() -> ProviderDelays {
        let mut p = ProviderDelays::default();
        for (id, h, m) in [("a1", 9, 0), ("a2", 9, 30), ("a3", 10, 0), ("a4", 11, 0)] {
            p.scheduled(id, hm(h, m));
        }
        p.started("a1", hm(9, 30));
        p.started("a2", hm(10, 5));
        p
    }

    #[test]
    fn provider_fires_above_thirty_minutes_average_over_the_last_three() {
        let s = Settings::default();
        let mut p = behind();
        // At 10:25 the delays are 30, 35 and 25: average exactly 30, not above it.
        assert_eq!(p.average(hm(10, 25), &s), Some(30 * MINUTE));
        assert!(
            p.advance(T, "prov-77", Some("loc-1"), hm(10, 25), &s)
                .is_none()
        );
        // The due appointment's delay grows with the clock: one millisecond later it is above.
        assert_eq!(p.next_deadline(hm(10, 25), &s), Some(at(10, 25, 0, 1)));
        let a = p
            .advance(T, "prov-77", Some("loc-1"), at(10, 25, 0, 1), &s)
            .unwrap();
        assert_eq!(a.rule.name(), "delay.provider");
        assert_eq!(a.message, "Provider running >30m behind");
        assert_eq!(a.provider_id.as_deref(), Some("prov-77"));
        assert_eq!(a.meta.avg_delay_minutes, Some(30.0));
        assert_eq!(a.related_appointments, ["a3", "a2", "a1"]);
        // Held while the average stays above 15 min.
        assert!(
            p.advance(T, "prov-77", Some("loc-1"), hm(10, 40), &s)
                .is_none()
        );
        // a3 starts at 10:26; a4 (11:00) starts on time: delays 0, 26, 35 → 20.3, still held.
        p.started("a3", hm(10, 26));
        p.started("a4", hm(11, 0));
        assert!(
            p.advance(T, "prov-77", Some("loc-1"), hm(11, 1), &s)
                .is_none()
        );
        // Two more on time: 0, 0, 0 → cleared (<= 15).
        for (id, h) in [("a5", 12), ("a6", 13)] {
            p.scheduled(id, hm(h, 0));
            p.started(id, hm(h, 0));
        }
        let cleared = p
            .advance(T, "prov-77", Some("loc-1"), hm(13, 1), &s)
            .unwrap();
        assert_eq!(cleared.state, AlertState::Resolved);
        assert!(cleared.transition.reason.contains("<= 15m"));
    }

    #[test]
    fn provider_clears_at_exactly_fifteen_and_not_above() {
        let s = Settings::default();
        let mut p = ProviderDelays::default();
        for (id, m, started) in [("a1", 0, 40), ("a2", 5, 45), ("a3", 10, 50)] {
            p.scheduled(id, hm(9, m));
            p.started(id, hm(9, started));
        }
        assert!(
            p.advance(T, "prov-1", Some("loc-1"), hm(10, 0), &s)
                .is_some()
        );
        // Three later appointments with delays 15, 15 and 16 min: average 15.33, held.
        for (id, h, late) in [("b1", 11, 15), ("b2", 12, 15), ("b3", 13, 16)] {
            p.scheduled(id, hm(h, 0));
            p.started(id, hm(h, late));
        }
        assert!(
            p.advance(T, "prov-1", Some("loc-1"), hm(13, 30), &s)
                .is_none()
        );
        // b3 re-timed: it started at 13:15; 15, 15, 15 → cleared at exactly 15.
        let mut q = p.clone();
        q.booked.get_mut("b3").unwrap().started = Some(hm(13, 15));
        assert!(
            q.advance(T, "prov-1", Some("loc-1"), hm(13, 30), &s)
                .is_some()
        );
    }

    #[test]
    fn cancelled_and_future_appointments_do_not_count() {
        let s = Settings::default();
        let mut p = behind();
        p.dropped("a3");
        // Counted at 10:25: a2 (35) and a1 (30) only; a4 is not due.
        assert_eq!(p.average(hm(10, 25), &s), Some(32 * MINUTE + 30_000));
        assert_eq!(
            p.next_deadline(hm(10, 25), &s),
            Some(hm(11, 0)),
            "a4 becomes due"
        );
        assert_eq!(ProviderDelays::default().average(hm(10, 0), &s), None);
    }

    #[test]
    fn overrun_fires_ten_minutes_past_expected_free_and_clears_when_freed() {
        let s = Settings::default();
        let mut chair = Occupancy::default();
        // Contract example: chair-12 occupied by appt-456, expected free at 09:55.
        chair.update(
            ResourceStatus::Occupied,
            Some("appt-456".into()),
            Some(hm(9, 55)),
            hm(9, 15),
        );
        assert_eq!(chair.next_deadline(&s), Some(hm(10, 5)));
        assert_eq!(chair.delay_minutes(hm(9, 54)), 0);
        assert_eq!(chair.delay_minutes(hm(10, 2)), 7);
        assert!(
            chair
                .advance(T, "chair-12", Some("loc-1"), at(10, 4, 59, 999), &s)
                .is_none()
        );
        let a = chair
            .advance(T, "chair-12", Some("loc-1"), hm(10, 5), &s)
            .unwrap();
        assert_eq!(a.rule.name(), "delay.resource_overrun");
        assert_eq!(a.resource_id.as_deref(), Some("chair-12"));
        assert_eq!(a.related_appointments, ["appt-456"]);
        assert_eq!(a.meta.overrun_minutes, Some(10));
        assert_eq!(chair.next_deadline(&s), None, "fired once");
        assert!(
            chair
                .advance(T, "chair-12", Some("loc-1"), hm(10, 30), &s)
                .is_none()
        );
        // A later expected time while still occupied does not clear it; freeing does.
        assert!(
            chair
                .update(
                    ResourceStatus::Occupied,
                    Some("appt-456".into()),
                    Some(hm(10, 40)),
                    hm(10, 31)
                )
                .is_none()
        );
        let freed = chair
            .update(ResourceStatus::Cleaning, None, None, hm(10, 35))
            .unwrap();
        assert_eq!(freed.state, AlertState::Resolved);
        assert_eq!(freed.transition.reason, "resource freed");
        assert_eq!(chair.delay_minutes(hm(10, 36)), 0);
    }

    #[test]
    fn delay_thresholds_are_configured_per_location_through_profiles() {
        let text = r#"
[rules."delay.waiting"]
window = "45m"

[[profiles]]
name = "infusion"
units = ["loc-infusion"]
[profiles.rules."delay.resource_overrun"]
window = "20m"
[profiles.rules."delay.provider"]
enabled = false
"#;
        let c = vigil_config::Config::from_toml(text, "v.toml").unwrap();
        let profiles = crate::Profiles::from_config(&c);
        let clinic = profiles.for_unit(T, "loc-1");
        let infusion = profiles.for_unit(T, "loc-infusion");
        assert_eq!(clinic.waiting.window_ms, 45 * MINUTE);
        assert_eq!(infusion.waiting.window_ms, 45 * MINUTE, "inherits the base");
        assert_eq!(clinic.overrun.window_ms, 10 * MINUTE);
        assert_eq!(infusion.overrun.window_ms, 20 * MINUTE);
        let mut chair = Occupancy::default();
        chair.update(ResourceStatus::Occupied, None, Some(hm(9, 55)), hm(9, 15));
        assert!(
            chair
                .advance(T, "c1", Some("loc-infusion"), hm(10, 5), infusion)
                .is_none()
        );
        let a = chair
            .advance(T, "c1", Some("loc-infusion"), hm(10, 15), infusion)
            .unwrap();
        assert_eq!(a.explanation.profile, "infusion");
        assert!(
            behind()
                .advance(T, "p", Some("loc-infusion"), hm(11, 0), infusion)
                .is_none()
        );
    }

    #[test]
    fn delays_read_in_minutes_from_a_minute_and_in_seconds_below() {
        assert_eq!(span(59_999), "59s");
        assert_eq!(span(60_000), "1m");
        assert_eq!(span(30 * MINUTE + 59_000), "30m");
        assert_eq!(span(-5), "0s");
    }

    #[test]
    fn a_providers_old_bookings_are_forgotten() {
        let s = Settings::default();
        let mut p = ProviderDelays::default();
        p.scheduled("old", hm(9, 0));
        assert_eq!(p.average(hm(10, 0), &s), Some(60 * MINUTE));
        p.prune(hm(9, 0));
        assert!(p.average(hm(10, 0), &s).is_some(), "kept at the edge");
        p.prune(at(9, 0, 0, 1));
        assert_eq!(p.average(hm(10, 0), &s), None);
    }
}
