//! One patient's state: the window of observations and labs, the NEWS2 risk family and the
//! other rules, each with at most one open alert. Owned by exactly one actor (or one replay
//! thread), so every change to it is serialized.

pub mod conditions;
pub mod features;
pub mod model;
pub mod risk;
pub mod view;
pub mod window;

use crate::alert::Subject;
use crate::alert::{Alert, AlertCommand, AlertState, CommandError, Rule};
use crate::event::{Reading, ReadingBody};
use crate::observation::{Admission, LabResult, Vitals};
use crate::owner::{Reconciled, StateOwner};
use crate::patient::conditions::{
    AlertOwner, Condition, Finding, Opening, Track, model_opening, qsofa_opening,
    signal_loss_opening, sirs_lactate_opening, trend_opening,
};
use crate::patient::features::Carry;
use crate::patient::risk::News2Risk;
use crate::patient::window::{Placement, Window};
use crate::scores::news2::News2;
use crate::scores::sepsis::{CriteriaScore, Labs, qsofa, sirs};
use crate::settings::Settings;
use crate::time::Timestamp;

/// What one observation produced.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The new score, or `None` when the observation scored nothing: it was late (beyond the
    /// lateness bound), or older than the last score without changing any latest reading.
    pub score: Option<News2>,
    /// qSOFA and SIRS at the same time as `score` (or, for a lab, at the patient's newest time).
    pub qsofa: Option<CriteriaScore>,
    pub sirs: Option<CriteriaScore>,
    /// The alert after each transition this observation caused, in order.
    pub alerts: Vec<Alert>,
    /// True when the event was older than the lateness bound: history only, no alerts.
    pub late: bool,
}

/// The latest NEWS2 of a patient, without its components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastScore {
    pub at: Timestamp,
    pub total: u8,
    /// Some parameter had no fresh value.
    pub partial: bool,
    /// Some parameter scored 3 on its own (scoring.md's `news2.single3`; the RCP chart's
    /// red-score mark).
    pub single3: bool,
}

/// A patient's live status as dashboards show it: the latest scores and vitals. Identifiers are
/// shared (`Arc<str>`), so an update per reading copies no strings.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientStatus {
    pub tenant: std::sync::Arc<str>,
    pub patient_id: std::sync::Arc<str>,
    pub unit_id: std::sync::Arc<str>,
    /// The bed the newest vitals named.
    pub bed_id: Option<std::sync::Arc<str>>,
    pub at: Timestamp,
    pub news2: Option<u8>,
    pub qsofa: Option<u8>,
    pub sirs: Option<u8>,
    /// The NEWS2 had missing parameters.
    pub partial: bool,
    /// A parameter of the NEWS2 scored 3 on its own.
    pub single3: bool,
    /// The sepsis model's latest risk (0..1), when the model is on and has scored.
    pub sepsis_risk: Option<f64>,
    pub vitals: Vitals,
}

/// How many owners of alerts a patient has: the NEWS2 risk family and each other rule.
const OWNERS: usize = 1 + Condition::ALL.len();

#[derive(Debug, Clone)]
pub struct Patient {
    pub tenant: String,
    pub patient_id: String,
    /// The unit of the latest observation.
    pub unit_id: String,
    /// The bed of the newest vitals that named one (`bedId`).
    pub bed_id: Option<String>,
    pub window: Window,
    /// The latest NEWS2: what dashboards show and what orders the next reading. The whole score
    /// (with its components) goes out in [`Observed`]; keeping only this avoids a copy per
    /// reading.
    pub last_score: Option<LastScore>,
    /// The latest qSOFA and SIRS with their time (for `whyNow`).
    pub last_qsofa: Option<(CriteriaScore, Timestamp)>,
    pub last_sirs: Option<(CriteriaScore, Timestamp)>,
    /// The latest admission event (`patient.admitted.v1`) and its `occurredAt`, if any.
    pub admission: Option<(Admission, Timestamp)>,
    /// The sepsis model's latest risk (0..1) and the time it was evaluated at.
    pub last_risk: Option<(f64, Timestamp)>,
    /// What the model's next evaluation reuses of this one's reading of the window.
    carry: Carry,
    risk: News2Risk,
    trend: Track,
    qsofa: Track,
    sirs_lactate: Track,
    model: Track,
    signal_loss: Track,
    /// Alerts `ALERTS` holds resolved that the readings applied since a restart may derive
    /// again (see [`Patient::reconcile`]): each is kept until its rule derives it again (then
    /// nothing of it is published, and the stored alert takes its place once the rule is done
    /// with it) or the readings pass its trigger time. Empty except after a recovery.
    resolved_earlier: Vec<Alert>,
}

impl Patient {
    pub fn new(tenant: &str, patient_id: &str, unit_id: &str) -> Self {
        Self {
            tenant: tenant.into(),
            patient_id: patient_id.into(),
            unit_id: unit_id.into(),
            bed_id: None,
            window: Window::default(),
            last_score: None,
            last_qsofa: None,
            last_sirs: None,
            admission: None,
            last_risk: None,
            carry: Carry::default(),
            risk: News2Risk::default(),
            trend: Track::default(),
            qsofa: Track::default(),
            sirs_lactate: Track::default(),
            model: Track::default(),
            signal_loss: Track::default(),
            resolved_earlier: Vec::new(),
        }
    }

    fn track_mut(&mut self, rule: Condition) -> &mut Track {
        match rule {
            Condition::Trend => &mut self.trend,
            Condition::Qsofa => &mut self.qsofa,
            Condition::SirsLactate => &mut self.sirs_lactate,
            Condition::Model => &mut self.model,
            Condition::SignalLoss => &mut self.signal_loss,
        }
    }

    /// The bed the newest vitals named (a late reading does not move the patient back).
    fn set_bed(&mut self, bed: &str) {
        if self.bed_id.as_deref() != Some(bed) {
            self.bed_id = Some(bed.to_string());
        }
    }

    fn set_unit(&mut self, unit: &str) {
        if self.unit_id != unit {
            self.unit_id = unit.to_string();
        }
    }

    /// Applies one of this patient's readings: the one dispatch of live ingest and replay.
    /// `now` is the engine's clock (see [`Patient::observe`]).
    pub fn apply(
        &mut self,
        reading: &Reading<'_>,
        now: Timestamp,
        settings: &Settings,
    ) -> Observed {
        let unit = &reading.unit_id;
        let at = reading.meta.occurred_at;
        let mut out = match &reading.body {
            ReadingBody::Vitals(vitals) => {
                if let Some(bed) = reading.bed_id.as_deref()
                    && reading.meta.occurred_at >= self.window.newest_vitals().unwrap_or(at)
                {
                    self.set_bed(bed);
                }
                self.observe(unit, vitals, at, now, settings)
            }
            ReadingBody::Lab { lab, collected_at } => {
                self.record_lab(unit, lab, *collected_at, now, settings)
            }
            ReadingBody::Admission(admission) => {
                self.admit(unit, admission.clone(), at);
                Observed::default()
            }
        };
        self.screen_earlier(&mut out.alerts);
        out
    }

    /// Records a vitals observation made at `at` (its `occurredAt`); scores and evaluates every
    /// rule unless the observation is late (docs/window.md). Rules run on the readings' times;
    /// `now` is the engine's clock (the wall clock live, the replay clock in a replay): it stamps
    /// every transition and escalation counts from it, so a late reading pages level 1 first.
    pub fn observe(
        &mut self,
        unit: &str,
        vitals: &Vitals,
        at: Timestamp,
        now: Timestamp,
        settings: &Settings,
    ) -> Observed {
        let (placement, changed) = self.window.record(vitals, at, settings.window);
        let mut out = Observed::default();
        // Data flows again: a signal-loss alert clears, a disarmed rule re-arms.
        let flowing = self.window.newest_vitals().unwrap_or(at);
        let subject = Subject {
            tenant: &self.tenant,
            patient: &self.patient_id,
            unit: &self.unit_id,
            bed: self.bed_id.as_deref(),
        };
        let quiet = Finding {
            holds: false,
            active: false,
        };
        if let Some(alert) = self.signal_loss.step(
            Condition::SignalLoss,
            subject,
            quiet,
            flowing,
            now,
            settings,
            Opening::none,
        ) {
            out.alerts.push(alert);
        }
        if placement != Placement::Current {
            out.late = true;
            return out;
        }
        let score_at = match &self.last_score {
            Some(last) if at < last.at => {
                if !changed {
                    return out;
                }
                last.at
            }
            _ => at,
        };
        self.set_unit(unit);
        let score = News2::score(&self.window.chart, score_at, settings.freshness);
        self.window
            .note_score(score_at, score.total, settings.window);
        let subject = Subject {
            tenant: &self.tenant,
            patient: &self.patient_id,
            unit: &self.unit_id,
            bed: self.bed_id.as_deref(),
        };
        out.alerts
            .extend(self.risk.evaluate(subject, &score, now, settings));

        // news2.trend: the rise over the lowest score of the trend window. A score below the
        // threshold cannot have risen by it, so most scores need no scan of the window (the
        // score just noted is in it, so a baseline always exists).
        let baseline = if score.total < settings.trend.threshold {
            None
        } else {
            let from = score_at.plus_millis(-settings.trend.window_ms);
            self.window.lowest_news2_since(from)
        };
        let holds =
            baseline.is_some_and(|b| score.total.saturating_sub(b.0) >= settings.trend.threshold);
        let finding = Finding {
            holds,
            active: holds,
        };
        let open = || baseline.map_or_else(Opening::none, |b| trend_opening(&score, b, settings));
        if let Some(alert) = self.trend.step(
            Condition::Trend,
            subject,
            finding,
            score_at,
            now,
            settings,
            open,
        ) {
            out.alerts.push(alert);
        }

        let q = qsofa(&self.window.chart, score_at, settings.sepsis);
        let holds = q.total >= settings.qsofa.threshold;
        let previous = self.last_qsofa.map(|(q, at)| (q.total, at));
        let chart = &self.window.chart;
        if let Some(alert) = self.qsofa.step(
            Condition::Qsofa,
            subject,
            Finding {
                holds,
                active: holds,
            },
            score_at,
            now,
            settings,
            || qsofa_opening(chart, q, previous, score_at, settings),
        ) {
            out.alerts.push(alert);
        }
        self.last_qsofa = Some((q, score_at));
        let s = self.evaluate_sirs_lactate(score_at, now, settings, &mut out.alerts);
        self.evaluate_model(score_at, now, settings, &mut out.alerts);
        self.last_score = Some(LastScore {
            at: score.at,
            total: score.total,
            partial: score.partial(),
            single3: score.components.iter().any(|c| c.points == 3),
        });
        out.score = Some(score);
        out.qsofa = Some(q);
        out.sirs = Some(s);
        out
    }

    /// SIRS at `at` and the `sepsis.sirs_lactate` rule (transitions stamped `now`).
    fn evaluate_sirs_lactate(
        &mut self,
        at: Timestamp,
        now: Timestamp,
        settings: &Settings,
        alerts: &mut Vec<Alert>,
    ) -> CriteriaScore {
        let s = sirs(&self.window.chart, &self.window, at, settings.sepsis);
        let r = &settings.sirs_lactate;
        let lactate = self
            .window
            .lab("lactate")
            .filter(|l| at.since(l.at) <= settings.sepsis.lactate_ms && l.at <= at);
        let active = s.total >= r.threshold;
        let holds = active && lactate.is_some_and(|l| l.value >= r.lactate);
        let subject = Subject {
            tenant: &self.tenant,
            patient: &self.patient_id,
            unit: &self.unit_id,
            bed: self.bed_id.as_deref(),
        };
        let (chart, window) = (&self.window.chart, &self.window);
        if let Some(alert) = self.sirs_lactate.step(
            Condition::SirsLactate,
            subject,
            Finding { holds, active },
            at,
            now,
            settings,
            || {
                let l = lactate.map_or((0.0, at), |l| (l.value, l.at));
                sirs_lactate_opening(chart, window, s, l, at, settings)
            },
        ) {
            alerts.push(alert);
        }
        self.last_sirs = Some((s, at));
        s
    }

    /// Records an admission (`patient.admitted.v1`, whose `occurredAt` is `at`) to `unit`. A
    /// later event replaces an earlier one (a transfer carries the new unit); one older than
    /// the admission held changes nothing, so a redelivered or reordered event cannot undo a
    /// transfer. Returns whether it was taken. It opens no alert by itself.
    pub fn admit(&mut self, unit: &str, admission: Admission, at: Timestamp) -> bool {
        if self.admission.as_ref().is_some_and(|(_, held)| at < *held) {
            return false;
        }
        self.set_unit(unit);
        self.admission = Some((admission, at));
        true
    }

    /// Records a lab result collected at `collected_at`. Unknown codes are stored, not scored.
    /// A current result re-evaluates SIRS and `sepsis.sirs_lactate` at the patient's newest
    /// time (NEWS2 rules move only on vitals, so a lab never counts as a consecutive score).
    /// `now` is the engine's clock, as in [`Patient::observe`].
    pub fn record_lab(
        &mut self,
        unit: &str,
        lab: &LabResult,
        collected_at: Timestamp,
        now: Timestamp,
        settings: &Settings,
    ) -> Observed {
        self.record_row_lab(unit, lab, collected_at, now, settings, true)
    }

    /// As [`Patient::record_lab`], for one result of a charted row whose other results and
    /// vitals are applied at the same instant (`vigil replay --psv`): the sepsis model is
    /// evaluated only when `last` (the row's last reading), on everything the row holds, so a
    /// row is one evaluation, as training simulates it, instead of one per result.
    pub fn record_row_lab(
        &mut self,
        unit: &str,
        lab: &LabResult,
        collected_at: Timestamp,
        now: Timestamp,
        settings: &Settings,
        last: bool,
    ) -> Observed {
        let placement = self.window.record_lab(lab, collected_at, settings.window);
        let mut out = Observed::default();
        if placement != Placement::Current {
            out.late = true;
            return out;
        }
        self.set_unit(unit);
        let at = self.window.newest().unwrap_or(collected_at);
        if matches!(lab.code.as_str(), "lactate" | "wbc" | "bands" | "paco2") {
            out.sirs = Some(self.evaluate_sirs_lactate(at, now, settings, &mut out.alerts));
        }
        if last {
            self.evaluate_model(at, now, settings, &mut out.alerts);
        }
        out
    }

    /// `sepsis.model`: evaluates the model at `at` (the readings' time) when it is due: at
    /// most once per the rule's interval, and again for readings at the instant of the last
    /// evaluation (a row's labs and vitals arrive one by one: the risk reads them all).
    fn evaluate_model(
        &mut self,
        at: Timestamp,
        now: Timestamp,
        settings: &Settings,
        alerts: &mut Vec<Alert>,
    ) {
        let r = &settings.model_rule;
        if !r.enabled && self.model.active_alert().is_none() {
            return;
        }
        if let Some((_, last)) = self.last_risk
            && (at < last || (at != last && at.since(last) < r.interval_ms))
        {
            return;
        }
        let model = &settings.model;
        let admission = self.admission.as_ref().map(|(a, _)| a);
        let risk = model.evaluate_carried(&self.window, admission, at, Some(&mut self.carry));
        let thresholds = settings.model_thresholds();
        let previous = self.last_risk.filter(|(_, when)| *when < at);
        let subject = Subject {
            tenant: &self.tenant,
            patient: &self.patient_id,
            unit: &self.unit_id,
            bed: self.bed_id.as_deref(),
        };
        if let Some(alert) = self.model.step(
            Condition::Model,
            subject,
            Finding {
                holds: risk.risk >= thresholds.open,
                active: risk.risk >= thresholds.clear,
            },
            at,
            now,
            settings,
            || model_opening(model, &risk, previous, thresholds.open, settings),
        ) {
            alerts.push(alert);
        }
        self.last_risk = Some((risk.risk, at));
    }

    /// Time passes with no event: fires `technical.signal_loss` once a monitored patient has
    /// been silent for the rule's window. `heard` is when its latest vitals arrived: live, the
    /// actor's receive time on the wall clock (so a backlog drained after downtime does not
    /// look like silence); in replay, the latest `occurredAt`. Driven by the owning actor's
    /// timer (live) or by the replay clock.
    pub fn tick(&mut self, now: Timestamp, heard: Timestamp, settings: &Settings) -> Option<Alert> {
        let r = &settings.signal_loss;
        self.window.newest_vitals()?;
        let last = heard;
        if !r.enabled || now.since(last) < r.window_ms || self.signal_loss.active_alert().is_some()
        {
            return None;
        }
        let subject = Subject {
            tenant: &self.tenant,
            patient: &self.patient_id,
            unit: &self.unit_id,
            bed: self.bed_id.as_deref(),
        };
        let silent = Finding {
            holds: true,
            active: true,
        };
        // Opened on the engine's clock: never an alert `ALERTS` holds from before a restart.
        self.signal_loss.step(
            Condition::SignalLoss,
            subject,
            silent,
            now,
            now,
            settings,
            || signal_loss_opening(last, now, settings),
        )
    }

    /// When the next [`Patient::tick`] could fire, if signal loss is armed.
    pub fn next_tick(&self, settings: &Settings) -> Option<Timestamp> {
        let r = &settings.signal_loss;
        if !r.enabled || self.signal_loss.active_alert().is_some() {
            return None;
        }
        self.window
            .newest_vitals()
            .map(|last| last.plus_millis(r.window_ms))
    }

    pub fn lab(&self, code: &str) -> Option<crate::scores::news2::Reading<f64>> {
        self.window.lab(code)
    }

    /// Every alert of this patient that is not resolved (one that `ALERTS` holds resolved,
    /// while its rule derives it again after a restart, is not).
    pub fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.unresolved()
            .filter(|a| !self.resolved_earlier(&a.alert_id))
    }

    /// Every alert its rules hold unresolved, those derived again after a restart that
    /// `ALERTS` holds resolved included.
    fn unresolved(&self) -> impl Iterator<Item = &Alert> {
        (0..OWNERS).filter_map(|i| self.owner(i).active_alert())
    }

    /// `ALERTS` holds the alert `id` resolved and its rule may derive it again (see
    /// [`Patient::reconcile`]).
    fn resolved_earlier(&self, id: &str) -> bool {
        self.resolved_earlier.iter().any(|s| s.alert_id == id)
    }

    /// Takes out of `alerts` every transition of an alert `ALERTS` already holds resolved: the
    /// readings since a restart derive it again, and it must be neither published twice nor
    /// refused by its fence (docs/reliability.md). The rule goes through the alert's life as
    /// it did before; once it is done with it (the engine's resolve again; a person's resolve
    /// at once, as then) the stored alert takes its place. Then forgets the stored alerts
    /// whose trigger time the readings have passed: nothing can derive them any more.
    fn screen_earlier(&mut self, alerts: &mut Vec<Alert>) {
        if self.resolved_earlier.is_empty() {
            return;
        }
        let mut i = 0;
        while i < alerts.len() {
            let id = &alerts[i].alert_id;
            let Some(k) = self.resolved_earlier.iter().position(|s| s.alert_id == *id) else {
                i += 1;
                continue;
            };
            let derived = alerts.remove(i);
            let stored = &self.resolved_earlier[k];
            if derived.state != AlertState::Resolved && !stored.resolved_by_person() {
                continue;
            }
            let stored = self.resolved_earlier.swap_remove(k);
            if let Some(o) = Self::owner_of(stored.rule) {
                self.install_stored(o, stored);
            }
        }
        let Some(newest) = self.window.newest() else {
            return;
        };
        let mut earlier = std::mem::take(&mut self.resolved_earlier);
        earlier.retain(|s| {
            s.triggered_at.is_none_or(|t| t >= newest)
                || self.unresolved().any(|a| a.alert_id == s.alert_id)
        });
        self.resolved_earlier = earlier;
    }

    /// Makes `alert`, read back from `ALERTS`, owner `i`'s alert; one a person resolved
    /// disarms the rule as the resolve did.
    fn install_stored(&mut self, i: usize, alert: Alert) {
        let (person, at) = (alert.resolved_by_person(), alert.transition.at);
        let owner = self.owner_mut(i);
        owner.install(Some(alert));
        if person {
            owner.resolved_by_person(at);
        }
    }

    /// The owner of alerts: 0 is the NEWS2 risk family, then each rule of `Condition::ALL`.
    fn owner(&self, i: usize) -> &dyn AlertOwner {
        match i {
            0 => &self.risk,
            i => self.track(Condition::ALL[i - 1]),
        }
    }

    fn owner_mut(&mut self, i: usize) -> &mut dyn AlertOwner {
        match i {
            0 => &mut self.risk,
            i => self.track_mut(Condition::ALL[i - 1]),
        }
    }

    /// Which owner raises alerts of `rule`.
    fn owner_of(rule: Rule) -> Option<usize> {
        if rule.is_news2_risk() {
            return Some(0);
        }
        Condition::ALL
            .iter()
            .position(|c| c.rule() == rule)
            .map(|i| i + 1)
    }

    pub fn has_active_alert(&self) -> bool {
        self.active_alerts().next().is_some()
    }

    /// The NEWS2 risk family's alert when it is not resolved.
    pub fn active_alert(&self) -> Option<&Alert> {
        self.risk.active_alert()
    }

    /// Applies a person's command to one of this patient's alerts. Returns the alert and
    /// whether the command changed it (a second receipt of a delivered page changes nothing).
    ///
    /// # Errors
    /// `NotFound` when the patient has no such alert; otherwise as [`Alert::command`],
    /// [`Alert::receipt`] and [`Alert::decline`].
    pub fn command(
        &mut self,
        c: &crate::alert::AlertCommand,
    ) -> Result<(Alert, bool), CommandError> {
        if let Some(stored) = self
            .resolved_earlier
            .iter()
            .find(|s| s.alert_id == c.alert_id)
        {
            // Answered as the stored alert answers: resolved; nothing changes.
            return stored.clone().apply(c).map(|_| (stored.clone(), false));
        }
        let not_found = || CommandError::NotFound(c.alert_id.clone());
        let owner = (0..OWNERS)
            .find(|&i| {
                self.owner(i)
                    .alert()
                    .is_some_and(|a| a.alert_id == c.alert_id)
            })
            .ok_or_else(not_found)?;
        let owner = self.owner_mut(owner);
        let (alert, changed) = owner.holder_mut().command(c)?;
        if alert.state == AlertState::Resolved {
            owner.resolved_by_person(c.at);
        }
        Ok((alert, changed))
    }

    /// Applies every escalation, snooze, acknowledgement-expiry and page-resend deadline that has
    /// passed by `now` (wall clock live, the replay clock in replay); returns each transition.
    pub fn advance(&mut self, now: Timestamp) -> Vec<Alert> {
        let mut out = Vec::new();
        for i in 0..OWNERS {
            let owner = self.owner_mut(i);
            let holds = owner.condition_present();
            if let Some(a) = owner.alert_mut() {
                out.extend(a.advance(now, holds));
            }
        }
        self.screen_earlier(&mut out);
        out
    }

    /// Recovery after a restart, once the window has been rebuilt from the `VITALS` readings
    /// acknowledged before it. `restored` is what `ALERTS` holds for this patient: its open
    /// alerts (`is_open` tells an id is one) and those resolved within the horizon.
    ///
    /// - An alert the rebuild left open is kept only if `ALERTS` says it is still open;
    ///   otherwise it was resolved (or superseded) before the restart and is forgotten, unless
    ///   the engine resolved it on readings the rebuild has not seen: then the rule is still in
    ///   that alert's episode and the readings redelivered next will clear it again, so it is
    ///   kept, with nothing of it published, until they do ([`Patient::screen_earlier`]).
    /// - A resolved alert triggered after the rebuild's newest reading is one the redelivered
    ///   readings will derive again (a crash before they were acknowledged, or a consumer that
    ///   reads the stream again from its start): it is kept aside, so that deriving it again
    ///   publishes nothing and is not refused by its fence.
    /// - Per owner, the newest of the other stored alerts decides: an open one is installed
    ///   as stored, with its level, policy snapshot, page and deadlines (a deadline that passed
    ///   meanwhile fires on the next [`Patient::advance`]); one a person resolved disarms the
    ///   rule as the resolve did before the restart (so the rebuilt window does not re-open
    ///   the condition at once); one the engine resolved changes nothing.
    ///
    /// Returns the number of alerts installed open.
    pub fn reconcile(&mut self, restored: Vec<Alert>, is_open: impl Fn(&str) -> bool) -> usize {
        let rebuilt = self.window.newest();
        // Signal loss is triggered on the engine's clock, after the last reading by its nature:
        // no reading derives it again, and a person's resolve of it must disarm the rule below.
        let (mut earlier, restored): (Vec<Alert>, Vec<Alert>) =
            restored.into_iter().partition(|a| {
                !a.is_active()
                    && a.rule != Rule::TechnicalSignalLoss
                    && a.triggered_at
                        .is_some_and(|t| rebuilt.is_none_or(|newest| t > newest))
            });
        for i in 0..OWNERS {
            let owner = self.owner_mut(i);
            let Some(id) = owner
                .active_alert()
                .filter(|a| !is_open(&a.alert_id))
                .map(|a| a.alert_id.clone())
            else {
                continue;
            };
            match restored
                .iter()
                .find(|s| s.alert_id == id && !s.is_active() && !s.resolved_by_person())
            {
                Some(stored) => earlier.push(stored.clone()),
                None => owner.install(None),
            }
        }
        self.resolved_earlier = earlier;
        let mut newest: [Option<Alert>; OWNERS] = std::array::from_fn(|_| None);
        for alert in restored {
            let Some(i) = Self::owner_of(alert.rule) else {
                continue;
            };
            if newest[i]
                .as_ref()
                .is_none_or(|n| alert.opened_at > n.opened_at)
            {
                newest[i] = Some(alert);
            }
        }
        let mut installed = 0;
        for (i, alert) in newest.into_iter().enumerate() {
            let Some(alert) = alert else { continue };
            if alert.is_active() {
                if let Some(unit) = &alert.unit_id {
                    self.set_unit(unit);
                }
                self.install_stored(i, alert);
                installed += 1;
            } else if alert.resolved_by_person() && self.owner(i).active_alert().is_none() {
                self.install_stored(i, alert);
            }
        }
        installed
    }

    /// The earliest alert deadline of this patient (what the owner's timer wakes for).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.active_alerts().filter_map(Alert::next_deadline).min()
    }

    fn track(&self, rule: Condition) -> &Track {
        match rule {
            Condition::Trend => &self.trend,
            Condition::Qsofa => &self.qsofa,
            Condition::SirsLactate => &self.sirs_lactate,
            Condition::Model => &self.model,
            Condition::SignalLoss => &self.signal_loss,
        }
    }
}

impl AsRef<[Alert]> for Observed {
    fn as_ref(&self) -> &[Alert] {
        &self.alerts
    }
}

impl StateOwner for Patient {
    type Input<'a> = Reading<'a>;
    type Applied = Observed;

    fn apply(&mut self, input: &Reading<'_>, now: Timestamp, s: &Settings) -> Observed {
        Patient::apply(self, input, now, s)
    }

    fn command(&mut self, c: &AlertCommand) -> Result<(Alert, bool), CommandError> {
        Patient::command(self, c)
    }

    fn advance(&mut self, now: Timestamp, _: &Settings) -> Vec<Alert> {
        Patient::advance(self, now)
    }

    /// Its alerts' deadlines. Signal loss, the one rule that fires on silence, is checked by
    /// the actor's own tick ([`Patient::tick`]).
    fn next_deadline(&self, _: Timestamp, _: &Settings) -> Option<Timestamp> {
        Patient::next_deadline(self)
    }

    fn reconcile(
        &mut self,
        stored: Vec<Alert>,
        is_open: &dyn Fn(&str) -> bool,
        _: Timestamp,
        _: &Settings,
    ) -> Reconciled {
        Reconciled {
            installed: Patient::reconcile(self, stored, is_open),
            // A deadline that passed meanwhile fires on the next `advance`.
            publish: Vec::new(),
        }
    }

    fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        Patient::active_alerts(self)
    }

    /// Also while a rule is in the episode of an alert `ALERTS` holds resolved (derived again
    /// after a restart, not cleared yet): a new actor would open it again under a new id. A
    /// stored alert not derived yet does not keep it: a patient idle for the passivation time
    /// (6 h by default) after a restart has nothing left to redeliver.
    fn must_stay(&self) -> bool {
        self.unresolved().next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{CommandKind, ENGINE, Level, Owner};
    use crate::observation::Consciousness;
    use vigil_config::Role;

    impl Patient {
        /// The positional form of [`Patient::command`], for the tests of ack and resolve.
        fn cmd(
            &mut self,
            id: &str,
            kind: CommandKind,
            role: Role,
            by: &str,
            reason: &str,
            at: Timestamp,
        ) -> Result<Alert, CommandError> {
            let c = crate::alert::AlertCommand {
                tenant: self.tenant.clone(),
                owner: Owner::Patient(self.patient_id.clone()),
                alert_id: id.into(),
                kind,
                page_id: String::new(),
                role,
                by: by.into(),
                reason: reason.into(),
                at,
            };
            self.command(&c).map(|(a, _)| a)
        }
    }

    fn t(min: i64) -> Timestamp {
        Timestamp::from_civil(2025, 11, 27, 9, 0, 0).plus_millis(min * 60_000)
    }

    fn base() -> Vitals {
        Vitals {
            hr: Some(70.0),
            rr: Some(16.0),
            spo2: Some(98.0),
            on_oxygen: Some(false),
            temp: Some(37.0),
            sbp: Some(120.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        }
    }

    /// Full vitals whose NEWS2 is exactly `target` (0..=8) with no parameter scoring 3.
    fn v(target: u8) -> Vitals {
        let mut v = base();
        let mut left = target;
        type Step = (u8, fn(&mut Vitals));
        let steps: [Step; 5] = [
            (2, |v| v.rr = Some(22.0)),
            (2, |v| v.sbp = Some(95.0)),
            (2, |v| v.on_oxygen = Some(true)),
            (1, |v| v.hr = Some(95.0)),
            (1, |v| v.temp = Some(38.5)),
        ];
        for (pts, apply) in steps {
            if left >= pts {
                apply(&mut v);
                left -= pts;
            }
        }
        assert_eq!(left, 0, "cannot build score {target}");
        v
    }

    /// Full vitals scoring `target` (3..=11) where SpO2 91 scores 3.
    fn s3(target: u8) -> Vitals {
        Vitals {
            spo2: Some(91.0),
            ..v(target - 3)
        }
    }

    fn run(p: &mut Patient, s: &Settings, readings: &[(i64, Vitals)]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (min, vitals) in readings {
            let o = p.observe("icu-3", vitals, t(*min), t(*min), s);
            assert!(o.score.is_some());
            out.extend(o.alerts);
        }
        out
    }

    /// The NEWS2 risk family alone (the other rules have their own tests below).
    fn news2_only() -> Settings {
        let mut s = Settings::default();
        s.trend.enabled = false;
        s.qsofa.enabled = false;
        s.sirs_lactate.enabled = false;
        s.model_rule.enabled = false;
        s
    }

    fn patient() -> Patient {
        Patient::new("clinic-abc", "patient-123", "icu-3")
    }

    /// Two NEWS2 8 readings taken at 09:00 and 09:01 that reach the engine 15 minutes late.
    fn late_high(p: &mut Patient, s: &Settings) -> Alert {
        let lag = 15;
        for min in [0, 1] {
            let o = p.observe("icu-3", &v(8), t(min), t(min + lag), s);
            if let Some(a) = o.alerts.into_iter().next() {
                return a;
            }
        }
        panic!("news2.high did not fire");
    }

    /// Drives any owner through the trait only: what the actors do.
    fn through_the_trait<O: StateOwner>(
        owner: &mut O,
        inputs: &[O::Input<'_>],
        now: Timestamp,
        s: &Settings,
    ) -> Vec<Alert> {
        inputs
            .iter()
            .flat_map(|i| owner.apply(i, now, s).as_ref().to_vec())
            .collect()
    }

    /// patient-123's vitals scoring NEWS2 8, observed at minute `min`, from `bed`.
    fn news2_8_reading(min: i64, bed: Option<&'static str>) -> Reading<'static> {
        Reading {
            meta: crate::event::EventMeta {
                event_id: format!("e{min}").into(),
                tenant_id: "clinic-abc".into(),
                occurred_at: t(min),
                correlation_id: None,
            },
            patient_id: "patient-123".into(),
            unit_id: "icu-3".into(),
            bed_id: bed.map(Into::into),
            body: ReadingBody::Vitals(v(8)),
        }
    }

    #[test]
    fn the_bed_of_the_newest_vitals_goes_on_the_alert_and_a_late_reading_does_not_move_it() {
        let s = news2_only();
        let mut p = patient();
        let reading = news2_8_reading;
        assert!(
            p.apply(&reading(0, Some("b12")), t(0), &s)
                .alerts
                .is_empty()
        );
        let opened = p.apply(&reading(1, None), t(1), &s).alerts;
        assert_eq!(opened[0].bed_id.as_deref(), Some("b12"), "{opened:?}");
        // Moved to b14; a reading from before the move, arriving late, names b12 again.
        p.apply(&reading(5, Some("b14")), t(5), &s);
        p.apply(&reading(3, Some("b12")), t(6), &s);
        assert_eq!(p.bed_id.as_deref(), Some("b14"));
        assert_eq!(p.view(s.window.horizon_ms).bed_id.as_deref(), Some("b14"));
        let json = serde_json::to_value(&opened[0]).expect("json");
        assert_eq!(json["bedId"], "b12");
        // An alert without a bed has no `bedId` at all (the contract's shape).
        let mut none = opened[0].clone();
        none.bed_id = None;
        assert!(
            serde_json::to_value(&none)
                .expect("json")
                .get("bedId")
                .is_none()
        );
    }

    #[test]
    fn a_patient_driven_as_a_state_owner_alerts_escalates_and_recovers() {
        let s = news2_only();
        let mut p = patient();
        let reading = |min: i64| news2_8_reading(min, None);
        let opened = through_the_trait(&mut p, &[reading(0), reading(1)], t(1), &s);
        assert_eq!(opened.len(), 1, "{opened:?}");
        let a = &opened[0];
        assert_eq!(p.active_alerts().count(), 1);
        assert!(StateOwner::has_active_alert(&p));
        // The first deadline: the page is sent again unless receipted within 60 s.
        assert_eq!(StateOwner::next_deadline(&p, t(1), &s), Some(t(2)));
        // Level 2 of critical-default is paged 5 minutes after the opening.
        let due = StateOwner::advance(&mut p, t(6), &s);
        let latest = due.last().expect("transitions").clone();
        assert_eq!(latest.escalation.level, 2, "{due:?}");
        // A restart: the rebuilt patient takes its alert back as stored, open.
        let mut rebuilt = patient();
        let r = StateOwner::reconcile(&mut rebuilt, vec![latest], &|id| id == a.alert_id, t(7), &s);
        assert_eq!((r.installed, r.publish.len()), (1, 0));
        assert_eq!(
            StateOwner::active_alerts(&rebuilt)
                .next()
                .map(|x| x.escalation.level),
            Some(2)
        );
    }

    #[test]
    fn a_reading_fifteen_minutes_late_opens_at_level_one_and_escalates_five_minutes_later() {
        let s = news2_only();
        let mut p = patient();
        let a = late_high(&mut p, &s);
        assert_eq!(a.rule.name(), "news2.high");
        // The engine's clock opens it and starts escalation; the readings keep their own times.
        assert_eq!(a.opened_at, t(16));
        assert_eq!(a.emitted_at, t(16));
        assert_eq!(a.transition.at, t(16));
        assert_eq!(a.triggered_at, Some(t(1)));
        assert_eq!(a.escalation.level, 1);
        assert_eq!(a.escalation.targets, ["role:nurse@icu-3"]);
        assert_eq!(a.escalation.next_at, Some(t(21)));
        assert_eq!(a.escalation.page.as_ref().map(|pg| pg.sent_at), Some(t(16)));
        assert!(
            a.explanation
                .components
                .iter()
                .all(|c| c.observed_at == t(1))
        );
        assert!(
            a.explanation.why_now.contains("09:01"),
            "{}",
            a.explanation.why_now
        );
        // Nothing is due when it opens. The unreceipted page is sent again a minute after it
        // was sent (not after the reading), and level 1 holds until five minutes have passed.
        assert!(p.advance(t(16)).is_empty());
        assert!(p.advance(t(17).plus_millis(-1)).is_empty());
        let resent = p.advance(t(17));
        assert_eq!(resent.len(), 1);
        assert_eq!(
            resent[0].escalation.page.as_ref().map(|pg| pg.attempts),
            Some(2)
        );
        let before = p.advance(t(21).plus_millis(-1));
        assert!(before.iter().all(|a| a.escalation.level == 1), "{before:?}");
        let up = p.advance(t(21));
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].escalation.level, 2);
        assert_eq!(up[0].escalation.targets, ["role:charge_nurse@icu-3"]);
        assert_eq!(up[0].transition.at, t(21));
        assert_eq!(up[0].escalation.next_at, Some(t(26)));
    }

    #[test]
    fn a_late_alert_keeps_the_id_its_readings_give_it() {
        // The id comes from the readings' times, so a replay (where the engine's clock is the
        // readings' clock) and recovery name the same alert as the live run did.
        let s = news2_only();
        let mut live = patient();
        let late = late_high(&mut live, &s);
        let mut replayed = patient();
        let on_time = run(&mut replayed, &s, &[(0, v(8)), (1, v(8))]);
        assert_eq!(on_time[0].alert_id, late.alert_id);
        assert_eq!(on_time[0].opened_at, t(1));
    }

    #[test]
    fn a_late_clearing_resolves_on_the_engine_clock() {
        let s = news2_only();
        let mut p = patient();
        late_high(&mut p, &s);
        // Below 7 for the 15-minute clear period, by the readings' clock; received 15 min late.
        let mut resolved = None;
        for min in 2..=40 {
            let o = p.observe("icu-3", &v(2), t(min), t(min + 15), &s);
            if let Some(a) = o
                .alerts
                .into_iter()
                .find(|a| a.state == AlertState::Resolved)
            {
                resolved = Some((min, a));
                break;
            }
        }
        let (min, a) = resolved.expect("resolves once clear for 15 min");
        assert_eq!(min, 17, "the clear period runs on the readings' times");
        assert_eq!(a.transition.at, t(32));
    }

    #[test]
    fn an_admission_is_kept_and_a_later_one_replaces_it() {
        use crate::observation::Sex;
        let mut p = patient();
        assert!(p.admission.is_none(), "scored as before without one");
        let first = Admission {
            admitted_at: t(-60),
            hospital_admitted_at: Some(t(-600)),
            age: Some(67),
            sex: Some(Sex::Female),
        };
        assert!(p.admit("icu-3", first.clone(), t(0)));
        assert_eq!(p.admission.as_ref().map(|(a, _)| a), Some(&first));
        // A transfer: the new unit, the new admission.
        let transfer = Admission {
            admitted_at: t(30),
            ..first.clone()
        };
        assert!(p.admit("ward-9", transfer.clone(), t(30)));
        assert_eq!(p.unit_id, "ward-9");
        // An older event arriving late does not undo the transfer.
        assert!(!p.admit("icu-3", first, t(10)));
        assert_eq!(p.unit_id, "ward-9");
        assert_eq!(p.admission.as_ref().map(|(a, _)| a), Some(&transfer));
        // Scoring goes on as before.
        let o = p.observe("ward-9", &v(3), t(31), t(31), &news2_only());
        assert_eq!(o.score.map(|s| s.total), Some(3));
    }

    #[test]
    fn high_needs_two_consecutive_scores() {
        let s = news2_only();
        let mut p = patient();
        assert!(
            run(&mut p, &s, &[(0, v(4)), (2, v(8))])
                .iter()
                .all(|a| a.rule != "news2.high")
        );
        // 8 then 4 then 8: not consecutive.
        let mut q = patient();
        let a = run(&mut q, &s, &[(0, v(8)), (1, v(4)), (2, v(8))]);
        assert!(a.is_empty(), "{a:?}");
        let a = run(&mut q, &s, &[(3, v(7))]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].rule.name(), a[0].level, a[0].state),
            ("news2.high", Level::Critical, AlertState::Open)
        );
    }

    #[test]
    fn contract_example_explanation() {
        let s = Settings {
            profile: "icu-default".into(),
            ..news2_only()
        };
        let mut p = patient();
        run(&mut p, &s, &[(2, v(4))]);
        let v = Vitals {
            hr: Some(112.0),
            rr: Some(26.0),
            spo2: Some(91.0),
            on_oxygen: Some(false),
            temp: Some(37.0),
            sbp: Some(120.0),
            consciousness: Some(Consciousness::A),
            ..Vitals::default()
        };
        assert!(
            p.observe("icu-3", &v, t(12), t(12), &s)
                .alerts
                .iter()
                .all(|a| a.rule != "news2.high")
        );
        let a = p.observe("icu-3", &v, t(14), t(14), &s).alerts;
        let a = a.last().expect("alert");
        assert_eq!(a.rule.name(), "news2.high");
        assert_eq!(
            a.message,
            "NEWS2 8 (high): RR 26 (3), SpO2 91 (3), HR 112 (2)"
        );
        assert_eq!(
            a.explanation.why,
            "NEWS2 aggregate 8 >= 7 (threshold profile icu-default)"
        );
        assert_eq!(
            a.explanation.why_now,
            "rose from 4 at 09:02 to 8 at 09:14; sustained over 2 readings"
        );
        assert_eq!(a.explanation.components.len(), 7);
        assert_eq!(a.meta.news2, Some(8));
        assert_eq!(a.escalation.policy, "critical-default");
        assert_eq!(a.escalation.targets, vec!["role:nurse@icu-3".to_string()]);
    }

    #[test]
    fn medium_fires_on_two_scores_of_five_or_more() {
        let s = news2_only();
        let mut p = patient();
        assert!(run(&mut p, &s, &[(0, v(5))]).is_empty());
        let a = run(&mut p, &s, &[(1, v(6))]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].rule.name(), a[0].level),
            ("news2.medium", Level::Warning)
        );
        // 6 then 8: medium at once (both >= 5), high once 8 is sustained: an upgrade, same alert.
        let mut q = patient();
        let a = run(&mut q, &s, &[(0, v(6)), (1, v(8)), (2, v(8))]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].rule.name(), "news2.medium");
        assert_eq!(a[1].rule.name(), "news2.high");
        assert_eq!(a[0].alert_id, a[1].alert_id, "one alert per patient");
        assert_eq!(
            a[1].transition.reason,
            "upgraded from news2.medium to news2.high: paged under critical-default level 1 \
             (role:nurse@icu-3)"
        );
        assert_eq!(a[0].escalation.policy, "warning-default");
        assert_eq!(a[1].escalation.policy, "critical-default");
        assert_eq!(
            a[1].escalation.next_at,
            Some(t(2).plus_millis(5 * 60_000)),
            "the upgrade restarts escalation under the critical policy"
        );
        assert_ne!(
            a[0].escalation.page.as_ref().map(|p| &p.page_id),
            a[1].escalation.page.as_ref().map(|p| &p.page_id),
            "and pages again"
        );
        assert_eq!(a[1].transition.to, AlertState::Open);
        assert_eq!(a[1].version, 2);
    }

    #[test]
    fn single3_fires_on_one_score_below_five() {
        let s = news2_only();
        let mut p = patient();
        let a = run(&mut p, &s, &[(0, s3(3))]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].rule.name(), "news2.single3");
        assert!(
            a[0].explanation
                .why
                .starts_with("SpO2 91 scores 3 with NEWS2 aggregate 3 < 5")
        );
        // A 4 without any parameter at 3 does not fire.
        let mut q = patient();
        assert!(run(&mut q, &s, &[(0, v(4))]).is_empty());
    }

    #[test]
    fn single3_upgrades_to_medium_when_sustained() {
        let s = news2_only();
        let mut p = patient();
        let a = run(&mut p, &s, &[(0, s3(3)), (1, s3(6))]);
        assert_eq!(a.len(), 1);
        let b = run(&mut p, &s, &[(2, s3(6))]);
        assert_eq!(b.len(), 1);
        assert_eq!(
            (b[0].rule.name(), b[0].alert_id.as_str()),
            ("news2.medium", a[0].alert_id.as_str())
        );
    }

    #[test]
    fn high_clears_after_fifteen_minutes_below_seven_and_downgrades() {
        let s = news2_only();
        let mut p = patient();
        run(&mut p, &s, &[(0, v(8)), (1, v(8))]);
        // Below 7 from minute 2; at minute 16 only 14 min have passed.
        assert!(run(&mut p, &s, &[(2, v(6)), (10, v(6)), (16, v(6))]).is_empty());
        let a = run(&mut p, &s, &[(17, v(6))]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].rule.name(), a[0].state),
            ("news2.medium", AlertState::Open)
        );
        assert_eq!(
            a[0].transition.reason,
            "downgraded from news2.high to news2.medium"
        );
    }

    #[test]
    fn a_high_reading_restarts_the_clear_period() {
        let s = news2_only();
        let mut p = patient();
        run(&mut p, &s, &[(0, v(8)), (1, v(8)), (2, v(2)), (10, v(8))]);
        // Absent again from 11: 15 min later is 26.
        assert!(run(&mut p, &s, &[(11, v(2)), (25, v(2))]).is_empty());
        let a = run(&mut p, &s, &[(26, v(2))]);
        assert_eq!(a[0].state, AlertState::Resolved);
        assert_eq!(
            a[0].transition.reason,
            "condition cleared: news2.high absent for 15 min"
        );
    }

    #[test]
    fn medium_resolves_after_fifteen_minutes_below_five() {
        let s = news2_only();
        let mut p = patient();
        run(&mut p, &s, &[(0, v(5)), (1, v(5))]);
        assert!(run(&mut p, &s, &[(5, v(4)), (19, v(2))]).is_empty());
        let a = run(&mut p, &s, &[(20, v(0))]);
        assert_eq!(a[0].state, AlertState::Resolved);
        assert!(p.active_alert().is_none());
        // A new condition opens a new alert with a new id.
        let b = run(&mut p, &s, &[(30, v(6)), (31, v(6))]);
        assert_eq!(b.len(), 1);
        assert_ne!(b[0].alert_id, a[0].alert_id);
    }

    #[test]
    fn single3_clears_when_no_parameter_scores_three_for_fifteen_minutes() {
        let s = news2_only();
        let mut p = patient();
        run(&mut p, &s, &[(0, s3(3))]);
        assert!(run(&mut p, &s, &[(1, v(2)), (15, v(2))]).is_empty());
        let a = run(&mut p, &s, &[(16, v(2))]);
        assert_eq!(a[0].state, AlertState::Resolved);
    }

    #[test]
    fn acknowledge_then_resolve_and_refusals() {
        let s = news2_only();
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, v(7)), (1, v(7))])[0].alert_id.clone();
        let err = p
            .cmd(&id, CommandKind::Ack, Role::Viewer, "u1", "", t(2))
            .expect_err("viewer");
        assert_eq!(err.code(), "FORBIDDEN");
        assert_eq!(
            p.active_alert().map(|a| a.version),
            Some(1),
            "refusal changes nothing"
        );
        let a = p
            .cmd(&id, CommandKind::Ack, Role::Nurse, "u1", "at bedside", t(2))
            .expect("ack");
        assert_eq!(a.state, AlertState::Acknowledged);
        assert_eq!(a.transition.from, Some(AlertState::Open));
        assert_eq!(a.transition.by, "u1");
        assert_eq!(a.transition.reason, "at bedside");
        let err = p
            .cmd(&id, CommandKind::Ack, Role::Nurse, "u2", "", t(3))
            .expect_err("twice");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        let a = p
            .cmd(
                &id,
                CommandKind::Resolve,
                Role::Nurse,
                "u1",
                "treated",
                t(4),
            )
            .expect("resolve");
        assert_eq!((a.state, a.version), (AlertState::Resolved, 3));
        let err = p
            .cmd(&id, CommandKind::Ack, Role::Nurse, "u1", "", t(5))
            .expect_err("resolved");
        assert_eq!(err.code(), "INVALID_TRANSITION");
        let err = p
            .cmd("alert-nope", CommandKind::Ack, Role::Nurse, "u1", "", t(5))
            .expect_err("404");
        assert_eq!(err.code(), "ALERT_NOT_FOUND");
    }

    #[test]
    fn an_alert_reads_back_from_its_envelope_exactly() {
        let s = news2_only();
        let mut p = patient();
        let mut a = run(&mut p, &s, &[(0, v(7)), (1, v(7))])[0].clone();
        a.command(CommandKind::Ack, Role::Nurse, "u1", "at bedside", t(2))
            .expect("ack");
        let envelope = serde_json::json!({"eventId": "x", "data": a});
        let bytes = serde_json::to_vec(&envelope).expect("json");
        let back = Alert::from_envelope(&bytes).expect("reads back");
        assert_eq!(back, a);
        assert!(
            back.explanation
                .components
                .iter()
                .any(|c| c.value == crate::scores::news2::ComponentValue::Text("oxygen"))
        );
        let err = Alert::from_envelope(br#"{"data": {"alertId": "a"}}"#).expect_err("partial");
        assert!(err.contains("missing field"), "{err}");
        let mut bad = serde_json::to_value(&a).expect("value");
        bad["rule"] = "news2.unknown".into();
        let bytes = serde_json::to_vec(&serde_json::json!({"data": bad})).expect("json");
        assert!(
            Alert::from_envelope(&bytes)
                .expect_err("rule")
                .contains("unknown rule")
        );
    }

    #[test]
    fn reconcile_keeps_what_alerts_says_is_open_and_installs_it_as_stored() {
        let s = news2_only();
        // Before the crash: the alert opened and was acknowledged.
        let mut before = patient();
        let opened = run(&mut before, &s, &[(0, v(7)), (1, v(7))])[0].clone();
        let acked = before
            .cmd(
                &opened.alert_id,
                CommandKind::Ack,
                Role::Nurse,
                "u1",
                "",
                t(2),
            )
            .expect("ack");
        // After: the window is rebuilt from the same readings (outputs not published), which
        // re-opens the same alert id, then ALERTS' stored state is installed over it.
        let mut after = patient();
        let rebuilt = run(&mut after, &s, &[(0, v(7)), (1, v(7))]);
        assert_eq!(rebuilt[0].alert_id, opened.alert_id, "stable alert ids");
        let n = after.reconcile(vec![acked.clone()], |id| id == acked.alert_id);
        assert_eq!(n, 1);
        assert_eq!(after.active_alert(), Some(&acked));
        // It goes on as if nothing happened: no duplicate on the next high score.
        assert!(run(&mut after, &s, &[(3, v(7))]).is_empty());
        // An alert the rebuild re-opened that ALERTS says is not open is forgotten.
        let mut other = patient();
        run(&mut other, &s, &[(0, v(7)), (1, v(7))]);
        assert_eq!(other.reconcile(Vec::new(), |_| false), 0);
        assert!(!other.has_active_alert());
    }

    /// news2.high opened by scores of 8 at 0 and 1 min, resolved by a nurse at 2 min.
    fn opened_then_resolved(p: &mut Patient, s: &Settings) -> Alert {
        let id = run(p, s, &[(0, v(8)), (1, v(8))])[0].alert_id.clone();
        p.cmd(
            &id,
            CommandKind::Resolve,
            Role::Nurse,
            "u1",
            "treated",
            t(2),
        )
        .expect("resolve")
    }

    #[test]
    fn a_resolve_by_a_person_before_a_restart_still_needs_a_fresh_sustained_run() {
        let s = news2_only();
        // Before the crash: opened at 0-1, resolved by a nurse at 2, one more high score at 3.
        let mut before = patient();
        let resolved = opened_then_resolved(&mut before, &s);
        let id = resolved.alert_id.clone();
        assert!(run(&mut before, &s, &[(3, v(8))]).is_empty());
        // After: the rebuild re-opens the same alert id from the same readings; ALERTS has it
        // resolved by a person, so the rule is disarmed as of the resolve, not re-opened.
        let mut after = patient();
        assert_eq!(
            run(&mut after, &s, &[(0, v(8)), (1, v(8)), (3, v(8))])[0].alert_id,
            id
        );
        assert_eq!(after.reconcile(vec![resolved.clone()], |_| false), 0);
        assert!(!after.has_active_alert());
        // Exactly as without the restart: the score at 3 counts, so 4 completes a fresh run.
        let a = run(&mut after, &s, &[(4, v(8))]);
        assert_eq!(a.len(), 1, "a new sustained run opens a new alert");
        assert_ne!(a[0].alert_id, id);
        // Without the score at 3, the first score after the restart is not sustained.
        let mut late = patient();
        run(&mut late, &s, &[(0, v(8)), (1, v(8))]);
        late.reconcile(vec![resolved.clone()], |_| false);
        assert!(run(&mut late, &s, &[(4, v(8))]).is_empty(), "no duplicate");
        assert_eq!(run(&mut late, &s, &[(5, v(8))]).len(), 1);
        // An alert the engine resolved (the condition cleared) does not disarm the rule; the
        // rebuild that left it open has not seen the readings that cleared it, so the rule
        // stays in its episode until they come (see
        // `an_alert_resolved_on_readings_the_rebuild_did_not_see_...`).
        let mut cleared = resolved;
        cleared.transition.by = ENGINE.into();
        let mut other = patient();
        run(&mut other, &s, &[(0, v(8)), (1, v(8))]);
        other.reconcile(vec![cleared], |_| false);
        assert!(run(&mut other, &s, &[(4, v(8))]).is_empty());
        assert_eq!(other.active_alerts().count(), 0);
    }

    /// As the actors apply readings (through [`Patient::apply`], which keeps back what
    /// `ALERTS` already holds), each observed and applied at its minute.
    fn live(p: &mut Patient, s: &Settings, readings: &[(i64, Vitals)]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (min, vitals) in readings {
            let reading = Reading {
                body: ReadingBody::Vitals(vitals.clone()),
                ..news2_8_reading(*min, None)
            };
            out.extend(p.apply(&reading, t(*min), s).alerts);
        }
        out
    }

    /// news2.high opens at minute 1 on two scores of 8 and the engine resolves it at minute 17,
    /// 15 minutes after the first score of 0; the readings and the stored resolved alert.
    fn opened_and_cleared(s: &Settings) -> (Vec<(i64, Vitals)>, Alert) {
        let readings = vec![(0, v(8)), (1, v(8)), (2, v(0)), (17, v(0))];
        let mut before = patient();
        let trail = live(&mut before, s, &readings);
        assert_eq!(
            trail.iter().map(|a| a.state).collect::<Vec<_>>(),
            [AlertState::Open, AlertState::Resolved]
        );
        (readings, trail[1].clone())
    }

    /// The fencing gap of stop 40 (docs/reliability.md): readings redelivered after a restart
    /// (never acknowledged before it, or a consumer reading the stream again) derive again an
    /// alert `ALERTS` holds resolved. Nothing of it is published again, a person's command on
    /// it is answered as the stored alert answers, and once the rule has cleared it again the
    /// stored alert is the patient's; the next deterioration is a new alert.
    #[test]
    fn readings_redelivered_after_a_restart_publish_nothing_of_an_alert_already_resolved() {
        let s = news2_only();
        let (readings, stored) = opened_and_cleared(&s);
        let mut after = patient();
        assert_eq!(after.reconcile(vec![stored.clone()], |_| false), 0);
        assert!(!StateOwner::must_stay(&after), "nothing derived yet");
        assert!(
            live(&mut after, &s, &readings[..2]).is_empty(),
            "not opened again"
        );
        assert_eq!(after.active_alerts().count(), 0, "not shown as open");
        assert!(
            StateOwner::must_stay(&after),
            "its rule is in the stored alert's episode"
        );
        assert!(
            StateOwner::advance(&mut after, t(40), &s).is_empty(),
            "nor escalated"
        );
        let ack = after.cmd(
            &stored.alert_id,
            CommandKind::Ack,
            Role::Nurse,
            "u1",
            "",
            t(3),
        );
        assert!(
            matches!(ack, Err(CommandError::InvalidTransition { .. })),
            "{ack:?}"
        );
        assert!(
            live(&mut after, &s, &readings[2..]).is_empty(),
            "nor resolved again"
        );
        assert_eq!(after.risk.alert(), Some(&stored));
        assert!(!StateOwner::must_stay(&after));
        let next = live(&mut after, &s, &[(20, v(8)), (21, v(8))]);
        assert_eq!(next.len(), 1);
        assert_ne!(next[0].alert_id, stored.alert_id);
    }

    /// The rebuild saw the alert open (its opening readings were acknowledged), the readings
    /// that cleared it were not: the rule is still in that alert's episode, so a high score
    /// redelivered next does not open a second alert for it, and the clearing publishes nothing.
    #[test]
    fn an_alert_resolved_on_readings_the_rebuild_did_not_see_is_neither_opened_again_nor_resolved_again()
     {
        let s = news2_only();
        let readings = [(0, v(8)), (1, v(8)), (2, v(8)), (3, v(0)), (18, v(0))];
        let mut before = patient();
        let trail = live(&mut before, &s, &readings);
        let stored = trail.last().expect("resolved").clone();
        assert_eq!((trail.len(), stored.state), (2, AlertState::Resolved));
        let mut after = patient();
        assert_eq!(run(&mut after, &s, &readings[..2]).len(), 1, "the rebuild");
        assert_eq!(after.reconcile(vec![stored.clone()], |_| false), 0);
        assert_eq!(after.active_alerts().count(), 0);
        assert!(live(&mut after, &s, &readings[2..]).is_empty());
        assert_eq!(after.risk.alert(), Some(&stored));
        // Without the stored alert the rebuilt rule opens a second alert at minute 2.
        let mut forgetful = patient();
        run(&mut forgetful, &s, &readings[..2]);
        forgetful.reconcile(Vec::new(), |_| false);
        assert_eq!(live(&mut forgetful, &s, &readings[2..3]).len(), 1);
    }

    /// A stored alert a person resolved, derived again: kept resolved, and the rule disarmed
    /// as the resolve left it (a fresh sustained run opens the next).
    #[test]
    fn a_persons_resolve_holds_when_the_redelivered_readings_derive_the_alert_again() {
        let s = news2_only();
        let mut before = patient();
        let resolved = opened_then_resolved(&mut before, &s);
        let mut after = patient();
        after.reconcile(vec![resolved.clone()], |_| false);
        assert!(live(&mut after, &s, &[(0, v(8)), (1, v(8))]).is_empty());
        assert_eq!(after.risk.alert(), Some(&resolved));
        assert!(
            live(&mut after, &s, &[(3, v(8))]).is_empty(),
            "not sustained"
        );
        assert_eq!(live(&mut after, &s, &[(4, v(8))]).len(), 1);
    }

    /// A stored news2.medium alert upgraded to news2.high, its readings delivered again: the
    /// calm 16 minutes between its opening and its upgrade are older than what its present
    /// state was decided on, so they do not move it down (and the upgrade back is not
    /// published again).
    #[test]
    fn readings_older_than_an_installed_alerts_last_move_do_not_move_it() {
        let s = news2_only();
        let readings = [
            (0, v(5)),
            (1, v(5)),
            (2, v(5)),
            (18, v(5)),
            (20, v(7)),
            (21, v(7)),
        ];
        let mut before = patient();
        let trail = live(&mut before, &s, &readings);
        let stored = trail.last().expect("upgraded").clone();
        assert_eq!(
            (trail.len(), stored.rule.name(), stored.triggered_at),
            (2, "news2.high", Some(t(1)))
        );
        let mut after = patient();
        let id = stored.alert_id.clone();
        assert_eq!(after.reconcile(vec![stored.clone()], |x| x == id), 1);
        assert!(
            live(&mut after, &s, &readings).is_empty(),
            "no transition at all"
        );
        assert_eq!(after.active_alert(), Some(&stored));
    }

    /// A stored resolved alert the readings have passed without deriving it again is let go.
    #[test]
    fn a_stored_alert_the_readings_pass_without_deriving_it_is_forgotten() {
        let s = news2_only();
        let (_, stored) = opened_and_cleared(&s);
        let mut after = patient();
        after.reconcile(vec![stored.clone()], |_| false);
        assert!(live(&mut after, &s, &[(1, v(0))]).is_empty());
        assert_eq!(
            after.resolved_earlier.len(),
            1,
            "minute 1 can still derive it"
        );
        assert!(live(&mut after, &s, &[(2, v(0))]).is_empty());
        assert!(after.resolved_earlier.is_empty());
        // A stored alert the rebuild's readings already passed is not kept at all.
        let mut rebuilt = patient();
        run(&mut rebuilt, &s, &[(0, v(0)), (30, v(0))]);
        rebuilt.reconcile(vec![stored], |_| false);
        assert!(rebuilt.resolved_earlier.is_empty());
    }

    /// An open alert recovery installed whose opening readings were not acknowledged: the
    /// readings redelivered before them neither clear it (the NEWS2 family's 15 minutes, qSOFA's
    /// 30, both seen in them) nor open it twice.
    #[test]
    fn readings_older_than_an_installed_alerts_trigger_neither_clear_nor_reopen_it() {
        let s = news2_only();
        let readings = [(0, v(0)), (16, v(0)), (30, v(8)), (31, v(8))];
        let mut before = patient();
        let opened = live(&mut before, &s, &readings);
        assert_eq!(opened.len(), 1);
        let mut after = patient();
        let id = opened[0].alert_id.clone();
        assert_eq!(after.reconcile(opened.clone(), |x| x == id), 1);
        assert!(
            live(&mut after, &s, &readings).is_empty(),
            "no transition at all"
        );
        assert_eq!(after.active_alert(), Some(&opened[0]));
        // The same for a rule of one alert.
        let s = only(Settings::default(), "sepsis.qsofa");
        let readings = [
            (0, q(16.0, 120.0)),
            (31, q(16.0, 120.0)),
            (40, q(22.0, 100.0)),
        ];
        let mut before = patient();
        let opened = live(&mut before, &s, &readings);
        assert_eq!(rules_of(&opened), [("sepsis.qsofa", AlertState::Open)]);
        let mut after = patient();
        let id = opened[0].alert_id.clone();
        assert_eq!(after.reconcile(opened.clone(), |x| x == id), 1);
        assert!(
            live(&mut after, &s, &readings).is_empty(),
            "no transition at all"
        );
        assert_eq!(after.active_alerts().next(), Some(&opened[0]));
    }

    #[test]
    fn a_manual_resolve_needs_a_fresh_sustained_run() {
        let s = news2_only();
        let mut p = patient();
        let id = opened_then_resolved(&mut p, &s).alert_id;
        assert!(
            run(&mut p, &s, &[(3, v(8))]).is_empty(),
            "one new score is not sustained"
        );
        let a = run(&mut p, &s, &[(4, v(8))]);
        assert_eq!(a.len(), 1);
        assert_ne!(a[0].alert_id, id);
    }

    #[test]
    fn acknowledged_alert_still_upgrades_and_auto_resolves() {
        let s = news2_only();
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, v(5)), (1, v(5))])[0].alert_id.clone();
        p.cmd(&id, CommandKind::Ack, Role::Nurse, "u1", "", t(2))
            .expect("ack");
        let a = run(&mut p, &s, &[(3, v(7)), (4, v(7))]);
        assert_eq!(
            (a[0].rule.name(), a[0].state),
            ("news2.high", AlertState::Acknowledged)
        );
    }

    #[test]
    fn late_reading_updates_chart_without_scoring() {
        let s = news2_only();
        let mut p = patient();
        run(&mut p, &s, &[(10, v(0))]);
        let o = p.observe("icu-3", &s3(9), t(5), t(5), &s);
        assert!(o.score.is_none() && o.alerts.is_empty());
    }

    #[test]
    fn disabled_rule_never_fires() {
        let mut s = news2_only();
        s.single3.enabled = false;
        let mut p = patient();
        assert!(run(&mut p, &s, &[(0, s3(3)), (1, s3(3))]).is_empty());
    }

    #[test]
    fn observations_carry_qsofa_and_sirs_using_labs() {
        let s = news2_only();
        let mut p = patient();
        p.record_lab(
            "icu-3",
            &LabResult {
                code: "wbc".into(),
                value: 14.0,
                unit: None,
            },
            t(0),
            t(0),
            &s,
        );
        let v = Vitals {
            rr: Some(24.0),
            sbp: Some(95.0),
            hr: Some(110.0),
            temp: Some(38.6),
            ..base()
        };
        let o = p.observe("icu-3", &v, t(5), t(5), &s);
        assert_eq!(o.qsofa.map(|q| q.total), Some(2));
        assert_eq!(o.sirs.map(|q| (q.total, q.partial)), Some((4, false)));
    }

    fn rules_of(alerts: &[Alert]) -> Vec<(&'static str, AlertState)> {
        alerts.iter().map(|a| (a.rule.name(), a.state)).collect()
    }

    fn only(mut s: Settings, keep: &str) -> Settings {
        s.single3.enabled = keep == "news2";
        s.medium.enabled = keep == "news2";
        s.high.enabled = keep == "news2";
        s.trend.enabled = keep == "news2.trend";
        s.qsofa.enabled = keep == "sepsis.qsofa";
        s.sirs_lactate.enabled = keep == "sepsis.sirs_lactate";
        s.model_rule.enabled = keep == "sepsis.model";
        s
    }

    #[test]
    fn trend_fires_on_a_rise_of_three_within_sixty_minutes() {
        let s = only(Settings::default(), "news2.trend");
        let mut p = patient();
        // 1 -> 3: a rise of 2 is not enough.
        assert!(run(&mut p, &s, &[(0, v(1)), (20, v(3))]).is_empty());
        // 1 at minute 0 -> 4 at minute 60: the baseline's minute is still in the window.
        let a = run(&mut p, &s, &[(60, v(4))]);
        assert_eq!(rules_of(&a), vec![("news2.trend", AlertState::Open)]);
        assert_eq!(a[0].meta.news2_rise, Some(3));
        assert_eq!(
            a[0].explanation.why,
            "NEWS2 rose by 3 >= 3 within 60 min (threshold profile default)"
        );
        assert_eq!(
            a[0].explanation.why_now,
            "NEWS2 1 at 09:00 rose to 4 at 10:00"
        );
        assert!(
            a[0].explanation
                .components
                .iter()
                .any(|c| c.name == crate::scores::news2::Input::News2 && c.points == 1)
        );
        // No clear period: it stays open while the score falls.
        assert!(run(&mut p, &s, &[(90, v(0)), (200, v(0))]).is_empty());
        assert!(p.active_alerts().any(|a| a.rule == "news2.trend"));
    }

    #[test]
    fn trend_baseline_older_than_the_window_does_not_count() {
        let s = only(Settings::default(), "news2.trend");
        let mut p = patient();
        assert!(run(&mut p, &s, &[(0, v(1)), (40, v(3)), (61, v(4))]).is_empty());
    }

    #[test]
    fn trend_resolved_by_a_person_rearms_only_after_the_rise_is_gone() {
        let s = only(Settings::default(), "news2.trend");
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, v(1)), (10, v(4))])[0]
            .alert_id
            .clone();
        p.cmd(&id, CommandKind::Resolve, Role::Nurse, "u1", "seen", t(11))
            .expect("resolve");
        assert!(
            run(&mut p, &s, &[(12, v(4)), (13, v(5))]).is_empty(),
            "disarmed"
        );
        // Past the window the rise is gone (baseline 4); a new rise of 3 fires again.
        assert!(run(&mut p, &s, &[(80, v(4))]).is_empty());
        let a = run(&mut p, &s, &[(90, v(7))]);
        assert_eq!(rules_of(&a), vec![("news2.trend", AlertState::Open)]);
        assert_ne!(a[0].alert_id, id);
    }

    fn q(rr: f64, sbp: f64) -> Vitals {
        Vitals {
            rr: Some(rr),
            sbp: Some(sbp),
            ..base()
        }
    }

    #[test]
    fn a_late_qsofa_opens_on_the_engine_clock_at_level_one() {
        let s = only(Settings::default(), "sepsis.qsofa");
        let mut p = patient();
        // Taken at 09:02, received at 09:30.
        let o = p.observe("icu-3", &q(22.0, 100.0), t(2), t(30), &s);
        let a = &o.alerts[0];
        assert_eq!(
            (a.rule.name(), a.opened_at, a.triggered_at),
            ("sepsis.qsofa", t(30), Some(t(2)))
        );
        assert_eq!(a.escalation.level, 1);
        assert_eq!(a.escalation.next_at, Some(t(35)));
        assert!(p.advance(t(30)).is_empty());
    }

    #[test]
    fn qsofa_fires_at_two_and_clears_after_thirty_minutes() {
        let s = only(Settings::default(), "sepsis.qsofa");
        let mut p = patient();
        // RR 21 and SBP 101: neither edge met. RR 22 alone: 1.
        assert!(run(&mut p, &s, &[(0, q(21.0, 101.0)), (1, q(22.0, 101.0))]).is_empty());
        let a = run(&mut p, &s, &[(2, q(22.0, 100.0))]);
        assert_eq!(rules_of(&a), vec![("sepsis.qsofa", AlertState::Open)]);
        assert_eq!(a[0].level, Level::Critical);
        assert_eq!(a[0].message, "qSOFA 2: RR 22, SBP 100");
        assert_eq!(
            a[0].explanation.why,
            "qSOFA 2 >= 2 (threshold profile default)"
        );
        assert_eq!(
            a[0].explanation.why_now,
            "qSOFA rose from 1 at 09:01 to 2 at 09:02"
        );
        let names: Vec<_> = a[0]
            .explanation
            .components
            .iter()
            .map(|c| (c.name, c.points))
            .collect();
        use crate::scores::news2::Input;
        assert_eq!(
            names,
            vec![(Input::Rr, 1), (Input::Sbp, 1), (Input::Consciousness, 0)]
        );
        // Below 2 from minute 3: not cleared at 32, cleared at 33.
        assert!(run(&mut p, &s, &[(3, q(16.0, 100.0)), (32, q(16.0, 120.0))]).is_empty());
        let a = run(&mut p, &s, &[(33, q(16.0, 120.0))]);
        assert_eq!(rules_of(&a), vec![("sepsis.qsofa", AlertState::Resolved)]);
        assert_eq!(
            a[0].transition.reason,
            "condition cleared: qSOFA below threshold for 30 min"
        );
    }

    #[test]
    fn qsofa_altered_mentation_counts_gcs_below_fifteen() {
        let s = only(Settings::default(), "sepsis.qsofa");
        let mut p = patient();
        let gcs = |g: f64| Vitals {
            gcs: Some(g),
            ..q(22.0, 120.0)
        };
        assert!(run(&mut p, &s, &[(0, gcs(15.0))]).is_empty());
        let a = run(&mut p, &s, &[(1, gcs(14.0))]);
        assert_eq!(rules_of(&a), vec![("sepsis.qsofa", AlertState::Open)]);
    }

    fn lab(code: &str, value: f64) -> LabResult {
        LabResult {
            code: code.into(),
            value,
            unit: None,
        }
    }

    /// SIRS 2: temperature 38.1 and HR 91 (both just over their edges).
    fn sirs2() -> Vitals {
        Vitals {
            temp: Some(38.1),
            hr: Some(91.0),
            ..base()
        }
    }

    #[test]
    fn sirs_lactate_needs_both_and_fires_on_the_lab() {
        let s = only(Settings::default(), "sepsis.sirs_lactate");
        let mut p = patient();
        assert!(
            run(&mut p, &s, &[(0, sirs2())]).is_empty(),
            "no lactate yet"
        );
        let o = p.record_lab("icu-3", &lab("lactate", 1.9), t(1), t(1), &s);
        assert!(o.alerts.is_empty(), "1.9 is below 2.0");
        let o = p.record_lab("icu-3", &lab("lactate", 2.0), t(2), t(2), &s);
        assert_eq!(
            rules_of(&o.alerts),
            vec![("sepsis.sirs_lactate", AlertState::Open)]
        );
        let a = &o.alerts[0];
        assert_eq!(a.meta.sirs, Some(2));
        assert_eq!(a.meta.lactate, Some(2.0));
        assert_eq!(
            a.explanation.why,
            "SIRS 2 >= 2 and lactate 2.0 >= 2.0 mmol/L within 6 h (threshold profile default); \
             partial score, missing paco2, wbc, bands"
        );
        assert!(
            a.explanation
                .why_now
                .starts_with("lactate 2.0 collected at 09:02")
        );
        assert!(
            a.explanation
                .components
                .iter()
                .any(|c| c.name == crate::scores::news2::Input::Lactate)
        );
        // SIRS 1 (HR 90) from minute 5: cleared after 30 min.
        let one = Vitals {
            hr: Some(90.0),
            ..sirs2()
        };
        assert!(run(&mut p, &s, &[(5, one.clone()), (34, one.clone())]).is_empty());
        let a = run(&mut p, &s, &[(35, one)]);
        assert_eq!(
            rules_of(&a),
            vec![("sepsis.sirs_lactate", AlertState::Resolved)]
        );
    }

    #[test]
    fn sirs_lactate_ignores_lactate_older_than_six_hours() {
        let s = only(Settings::default(), "sepsis.sirs_lactate");
        let mut p = patient();
        p.record_lab("icu-3", &lab("lactate", 4.0), t(0), t(0), &s);
        assert!(run(&mut p, &s, &[(361, sirs2())]).is_empty());
        let mut q = patient();
        q.record_lab("icu-3", &lab("lactate", 4.0), t(0), t(0), &s);
        let a = run(&mut q, &s, &[(360, sirs2())]);
        assert_eq!(
            rules_of(&a),
            vec![("sepsis.sirs_lactate", AlertState::Open)]
        );
    }

    #[test]
    fn sirs_uses_paco2_wbc_and_bands_from_labs() {
        let s = Settings::default();
        let mut p = patient();
        p.record_lab("icu-3", &lab("paco2", 31.0), t(0), t(0), &s);
        p.record_lab("icu-3", &lab("bands", 11.0), t(0), t(0), &s);
        let o = p.observe("icu-3", &base(), t(1), t(1), &s);
        assert_eq!(o.sirs.map(|x| x.total), Some(2));
        // Unknown codes are stored, not scored.
        let o = p.record_lab("icu-3", &lab("ferritin", 900.0), t(2), t(2), &s);
        assert!(o.sirs.is_none() && o.alerts.is_empty());
        assert_eq!(p.lab("ferritin").map(|r| r.value), Some(900.0));
    }

    #[test]
    fn signal_loss_fires_after_five_silent_minutes_and_clears_on_data() {
        let s = news2_only();
        let mut p = patient();
        assert!(p.tick(t(100), t(0), &s).is_none(), "never monitored");
        run(&mut p, &s, &[(0, base())]);
        assert_eq!(p.next_tick(&s), Some(t(5)));
        assert!(p.tick(t(5).plus_millis(-1), t(0), &s).is_none());
        let a = p.tick(t(5), t(0), &s).expect("signal loss");
        assert_eq!(
            (a.rule.name(), a.category, a.level),
            (
                "technical.signal_loss",
                crate::alert::Category::Technical,
                Level::Warning
            )
        );
        assert_eq!(a.message, "No observations for 5 min (last at 09:00)");
        assert!(p.tick(t(6), t(0), &s).is_none(), "one alert");
        assert_eq!(p.next_tick(&s), None);
        let a = run(&mut p, &s, &[(7, base())]);
        assert_eq!(
            rules_of(&a),
            vec![("technical.signal_loss", AlertState::Resolved)]
        );
        assert_eq!(
            a[0].transition.reason,
            "condition cleared: observations flowing again"
        );
        // Signal loss is triggered on the engine's clock: readings the monitor took before
        // that (a buffer it sends when the link is back) are data flowing again too.
        let mut p = patient();
        run(&mut p, &s, &[(0, base())]);
        assert!(p.tick(t(9), t(0), &s).is_some());
        let a = run(&mut p, &s, &[(2, base())]);
        assert_eq!(
            rules_of(&a),
            vec![("technical.signal_loss", AlertState::Resolved)]
        );
    }

    /// A nurse resolved a signal loss (the patient is off the ward): the rule stays disarmed
    /// across a restart, so the same silence pages nobody again. Its trigger is the engine's
    /// clock, after the rebuilt window's newest reading: it is not one the readings delivered
    /// again can derive (`Patient::reconcile` keeps only those aside).
    #[test]
    fn a_persons_resolve_of_signal_loss_holds_across_a_restart() {
        let s = news2_only();
        let mut before = patient();
        run(&mut before, &s, &[(0, base())]);
        let a = before.tick(t(5), t(0), &s).expect("signal loss");
        let resolved = before
            .cmd(
                &a.alert_id,
                CommandKind::Resolve,
                Role::Nurse,
                "u1",
                "off the ward for a scan",
                t(6),
            )
            .expect("resolve");
        assert!(before.tick(t(7), t(0), &s).is_none(), "disarmed");
        let mut after = patient();
        run(&mut after, &s, &[(0, base())]);
        after.reconcile(vec![resolved], |_| false);
        assert!(after.tick(t(8), t(0), &s).is_none(), "still disarmed");
        assert!(after.resolved_earlier.is_empty());
    }

    #[test]
    fn signal_loss_is_off_in_the_charted_profile() {
        let s = crate::settings::profiles::charted(&Settings::default());
        let mut p = patient();
        run(&mut p, &s, &[(0, base())]);
        assert!(p.tick(t(600), t(0), &s).is_none());
    }

    #[test]
    fn late_events_update_history_without_alerts() {
        let s = Settings::default();
        let mut p = patient();
        run(&mut p, &s, &[(30, base())]);
        // 11 minutes older than the newest: late. It scores nothing, fires nothing.
        let o = p.observe("icu-3", &q(30.0, 80.0), t(19), t(19), &s);
        assert!(o.late && o.score.is_none() && o.alerts.is_empty());
        let minute = t(19).millis() / 60_000;
        assert_eq!(
            p.window
                .sample(crate::patient::window::Field::Rr, minute)
                .map(|x| x.0),
            Some(30)
        );
    }

    #[test]
    fn a_late_reading_within_the_bound_is_scored_at_the_newest_time() {
        let s = Settings::default();
        let mut p = patient();
        let no_temp = Vitals {
            temp: None,
            ..base()
        };
        run(&mut p, &s, &[(30, no_temp)]);
        let temp = Vitals {
            temp: Some(39.5),
            ..Vitals::default()
        };
        let o = p.observe("icu-3", &temp, t(25), t(25), &s);
        let score = o.score.expect("scored");
        assert_eq!(score.at, t(30));
        assert_eq!(score.points(crate::scores::news2::Param::Temp), Some(2));
        assert!(!o.late);
    }

    #[test]
    fn commands_reach_every_rule_and_disarm_it() {
        let s = only(Settings::default(), "sepsis.qsofa");
        let mut p = patient();
        let id = run(&mut p, &s, &[(0, q(22.0, 100.0))])[0].alert_id.clone();
        let a = p
            .cmd(
                &id,
                CommandKind::Resolve,
                Role::Nurse,
                "u1",
                "treated",
                t(1),
            )
            .expect("resolve");
        assert_eq!(a.state, AlertState::Resolved);
        assert!(!p.has_active_alert());
        assert!(
            run(&mut p, &s, &[(2, q(22.0, 100.0))]).is_empty(),
            "disarmed"
        );
        run(&mut p, &s, &[(3, base())]);
        assert_eq!(run(&mut p, &s, &[(4, q(22.0, 100.0))]).len(), 1, "re-armed");
    }

    #[test]
    fn six_hours_at_one_hertz_fit_in_sixteen_kib() {
        let s = Settings::default();
        let mut p = patient();
        let start = t(0);
        for sec in 0..(7 * 3600) {
            let at = start.plus_millis(sec * 1000);
            p.observe("icu-3", &base(), at, at, &s);
            if sec % 3600 == 0 {
                p.record_lab("icu-3", &lab("lactate", 1.2), at, at, &s);
            }
        }
        let bytes = std::mem::size_of::<Patient>()
            + p.window.heap_bytes()
            + p.carry.heap_bytes()
            + p.tenant.len()
            + p.patient_id.len()
            + p.unit_id.len();
        assert!(bytes <= 16 * 1024, "{bytes} bytes per patient");
        assert!(p.window.rows() <= 363);
        let carry = p.carry.heap_bytes() + std::mem::size_of::<Carry>();
        eprintln!("{bytes} bytes per patient, {carry} of them the model's carry");
    }

    /// The two-feature test model (model.rs) as the only rule.
    fn model_only() -> Settings {
        let mut s = only(Settings::default(), "sepsis.model");
        s.model = std::sync::Arc::new(crate::patient::model::test_model());
        s
    }

    fn logistic(logit: f64) -> f64 {
        1.0 / (1.0 + (-logit).exp())
    }

    fn hr(v: f64) -> Vitals {
        Vitals {
            hr: Some(v),
            ..Vitals::default()
        }
    }

    #[test]
    fn the_sepsis_model_opens_at_its_risk_clears_below_the_clear_risk_and_explains() {
        let s = model_only();
        let mut p = patient();
        // HR 125 alone: -2 + 1.0, risk 0.269 < 0.3.
        assert!(run(&mut p, &s, &[(0, hr(125.0))]).is_empty());
        assert_eq!(p.last_risk.map(|(r, _)| r), Some(logistic(-1.0)));
        // Lactate 3.1 at the same instant re-evaluates: + 0.6, risk 0.401: open.
        let o = p.record_lab("icu-3", &lab("lactate", 3.1), t(0), t(0), &s);
        assert_eq!(o.alerts.len(), 1, "{:?}", o.alerts);
        let a = &o.alerts[0];
        assert_eq!((a.rule.name(), a.state), ("sepsis.model", AlertState::Open));
        assert_eq!(a.level, crate::alert::Level::Warning);
        assert_eq!(a.meta.sepsis_risk, Some(0.4013));
        assert_eq!(a.meta.model.as_deref(), Some("t 1"));
        let e = &a.explanation;
        assert!(
            e.why.starts_with("sepsis model t 1 risk 40% >= 30%"),
            "{}",
            e.why
        );
        assert!(
            e.why
                .contains("HR 125.0 /min, +1.30; lactate 3.1 mmol/L, +0.30"),
            "{}",
            e.why
        );
        // The lab came at the instant of the HR: no earlier risk to rise from.
        assert_eq!(
            e.why_now,
            "risk 40% at 09:00: HR 125.0 /min, +1.30; lactate 3.1 mmol/L, +0.30"
        );
        let parts: Vec<(&str, Option<f64>)> = e
            .components
            .iter()
            .map(|c| (c.name.name(), c.contribution))
            .collect();
        assert_eq!(
            parts,
            [("hr.latest", Some(1.3)), ("lactate.latest", Some(0.3))]
        );
        // Stored and read back (recovery) with its feature names.
        let back: Alert =
            serde_json::from_str(&serde_json::to_string(a).expect("json")).expect("reads back");
        assert_eq!(&back, a);

        // Within the interval (1 min) nothing is evaluated; a minute on, HR 100 with lactate
        // 3.1: -2 + 0.4 + 0.6 = -1.0, risk 0.269: below open, at or above clear: stays open.
        assert!(run(&mut p, &s, &[(0, hr(100.0))]).is_empty());
        assert!(run(&mut p, &s, &[(1, hr(100.0))]).is_empty());
        assert!(p.has_active_alert());
        // HR 95: -2 + 0.4 + 0.2, risk 0.198 < 0.2: clears at once (clear period 0).
        let cleared = run(&mut p, &s, &[(2, hr(95.0))]);
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].state, AlertState::Resolved);
        // Back to 0.269: does not reopen below the open risk; HR 125 a minute on does.
        assert!(run(&mut p, &s, &[(3, hr(100.0))]).is_empty());
        let again = run(&mut p, &s, &[(4, hr(125.0))]);
        assert_eq!(again.len(), 1);
        assert_eq!(
            again[0].explanation.why_now,
            "risk rose from 27% at 09:03 to 40% at 09:04: HR 125.0 /min, +1.30; lactate 3.1 mmol/L, +0.30"
        );
    }

    #[test]
    fn a_charted_row_evaluates_the_model_once_after_its_last_reading() {
        let s = model_only();
        let mut p = patient();
        // A row's lactate first, not the last reading: nothing is evaluated yet.
        let o = p.record_row_lab("icu-3", &lab("lactate", 3.1), t(0), t(0), &s, false);
        assert!(o.alerts.is_empty());
        assert_eq!(p.last_risk, None);
        // Its vitals evaluate once, on both: -2 + 1.0 + 0.6 (pair halves included), open.
        let a = run(&mut p, &s, &[(0, hr(125.0))]);
        assert_eq!(a.len(), 1);
        assert_eq!(p.last_risk.map(|(r, _)| r), Some(logistic(-0.4)));
        // A row of labs alone: its last result evaluates.
        let mut q = patient();
        q.record_row_lab("icu-3", &lab("wbc", 5.0), t(0), t(0), &s, false);
        assert_eq!(q.last_risk, None);
        q.record_row_lab("icu-3", &lab("lactate", 3.1), t(0), t(0), &s, true);
        assert!(q.last_risk.is_some());
    }

    #[test]
    fn readings_of_one_instant_are_one_evaluation_toward_sustain() {
        let mut s = model_only();
        s.model_rule.sustain = 2;
        let mut p = patient();
        // 09:00: lactate 3.1 alone (risk 0.13), then HR 125 (0.40, holds: one), then another
        // result of the same instant (holds again: still one).
        assert!(
            p.record_lab("icu-3", &lab("lactate", 3.1), t(0), t(0), &s)
                .alerts
                .is_empty()
        );
        assert!(run(&mut p, &s, &[(0, hr(125.0))]).is_empty());
        let o = p.record_lab("icu-3", &lab("wbc", 9.0), t(0), t(0), &s);
        assert!(
            o.alerts.is_empty(),
            "one instant counted twice: {:?}",
            o.alerts
        );
        assert_eq!(p.last_risk.map(|(r, _)| r), Some(logistic(-0.4)));
        // 09:01 holds again: the second evaluation, it opens.
        let opened = run(&mut p, &s, &[(1, hr(125.0))]);
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].state, AlertState::Open);
    }

    #[test]
    fn model_features_read_in_clinical_words() {
        use crate::patient::features::Feature;
        let w = |name: &str, value: Option<f64>| {
            crate::patient::conditions::feature_words(&Feature::parse(name).expect(name), value)
        };
        assert_eq!(w("lactate.latest", Some(3.1)), "lactate 3.1 mmol/L");
        assert_eq!(w("rr.delta_6h", Some(6.0)), "RR change over 6 h +6.0 /min");
        assert_eq!(
            w("sbp.delta_6h", Some(-20.0)),
            "SBP change over 6 h -20.0 mmHg"
        );
        assert_eq!(
            w("hr.max_6h", Some(131.0)),
            "HR highest over 6 h 131.0 /min"
        );
        assert_eq!(w("wbc.hours_since", Some(2.5)), "WBC measured 2.5 h ago");
        assert_eq!(w("bun.latest", None), "BUN not measured");
        assert_eq!(w("o2.latest", Some(1.0)), "on oxygen");
        assert_eq!(w("male.value", Some(0.0)), "female");
        assert_eq!(
            w("icu_hours.value", Some(48.0)),
            "time since admission 48.0 h"
        );
        assert_eq!(w("age.value", Some(67.0)), "age 67.0 years");
    }

    #[test]
    fn the_sepsis_model_risk_edges_open_and_hold_at_equality() {
        // Open exactly at the risk HR 100 with lactate gives (0.269); clear exactly at the risk
        // of HR 95 with lactate (0.198).
        let mut s = model_only();
        // Summed as the model sums: the intercept, then each term in order.
        s.model_rule.risk = Some(logistic(-2.0 + 0.4 + 0.6));
        s.model_rule.clear_risk = Some(logistic(-2.0 + 0.4 + 0.2));
        let mut p = patient();
        p.record_lab("icu-3", &lab("lactate", 3.1), t(0), t(0), &s);
        let just_below = run(&mut p, &s, &[(0, hr(99.0))]);
        assert!(just_below.is_empty(), "risk {:?}", p.last_risk);
        assert_eq!(
            run(&mut p, &s, &[(1, hr(100.0))]).len(),
            1,
            "opens at equality"
        );
        assert!(
            run(&mut p, &s, &[(2, hr(95.0))]).is_empty(),
            "holds at the clear risk"
        );
        assert!(p.has_active_alert());
        // HR 85 < 90: -2 - 0.5 + 0.2 = -2.3, below the clear risk.
        assert_eq!(
            run(&mut p, &s, &[(3, hr(85.0))])[0].state,
            AlertState::Resolved
        );
        // A disabled rule evaluates nothing.
        let mut off = s.clone();
        off.model_rule.enabled = false;
        let mut q = patient();
        assert!(run(&mut q, &off, &[(0, hr(125.0))]).is_empty());
        assert_eq!(q.last_risk, None);
    }
}
