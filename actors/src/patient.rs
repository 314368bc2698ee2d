//! The patient actor: owns one [`Patient`], applies its events in order, applies commands to its
//! alerts, and hands every transition to the outputs.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::{
    Alert, CommandError, Patient, PatientStatus, Profiles, ReadingBody, Settings, Timestamp,
};

use vigil_engine::owner::StateOwner;

use crate::deadline::{Deadline, Wakes};
use crate::messages::{ApplyReadings, Command, Passivate, Reconcile};
use crate::wall_clock;
use crate::{Outputs, Receipt};

pub struct PatientActor {
    patient: Patient,
    profiles: Arc<Profiles>,
    /// The profile of the patient's current unit (looked up again when the unit changes).
    settings: Arc<Settings>,
    tick_every: std::time::Duration,
    /// Wall-clock time the latest vitals arrived (signal loss counts silence from it).
    heard: Option<Timestamp>,
    outputs: Arc<dyn Outputs>,
    /// Shared with the router on the same thread: passivation skips patients with open alerts.
    has_active_alert: Rc<Cell<bool>>,
    /// Identifiers shared with every update this actor emits (no copy per update).
    ids: (Arc<str>, Arc<str>, Arc<str>),
    /// The one escalation timer of this patient: the earliest deadline of its alerts.
    timer: Deadline,
}

impl PatientActor {
    pub(crate) fn new(
        tenant: &str,
        patient: &str,
        unit: &str,
        profiles: Arc<Profiles>,
        tick_every: std::time::Duration,
        outputs: Arc<dyn Outputs>,
        has_active_alert: Rc<Cell<bool>>,
    ) -> Self {
        Self {
            patient: Patient::new(tenant, patient, unit),
            settings: profiles.for_unit(tenant, unit).clone(),
            profiles,
            tick_every,
            heard: None,
            outputs,
            has_active_alert,
            ids: (Arc::from(tenant), Arc::from(patient), Arc::from(unit)),
            timer: Deadline::default(),
        }
    }

    /// Keeps the timer armed for the earliest alert deadline (escalation, page resend, snooze
    /// end, acknowledgement expiry).
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        let now = wall_clock();
        let next = StateOwner::next_deadline(&self.patient, now, &self.settings);
        Deadline::arm(self, next, now, ctx);
    }

    fn emit(&mut self, alert: &Alert, receipt: Option<Receipt>, ctx: &mut Context<Self>) {
        if let Some(wait) = self.outputs.alert(alert, receipt) {
            ctx.wait(wait.into_actor(self));
        }
        self.has_active_alert.set(self.patient.has_active_alert());
    }

    /// The profile for `unit`: the cached one unless the patient moved.
    fn settings_for(&mut self, unit: &str) -> Arc<Settings> {
        if *self.patient.unit_id != *unit {
            self.settings = self.profiles.for_unit(&self.patient.tenant, unit).clone();
        }
        self.settings.clone()
    }

    /// Signal loss needs time to pass with no event: checked on this actor's own timer.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = wall_clock();
        let Some(heard) = self.heard else { return };
        if let Some(alert) = self.patient.tick(now, heard, &self.settings) {
            self.emit(&alert, None, ctx);
            self.schedule(ctx);
        }
    }
}

impl Wakes for PatientActor {
    fn deadline(&mut self) -> &mut Deadline {
        &mut self.timer
    }

    fn wake(&mut self, ctx: &mut Context<Self>) {
        let now = wall_clock();
        for alert in StateOwner::advance(&mut self.patient, now, &self.settings) {
            self.emit(&alert, None, ctx);
        }
        self.schedule(ctx);
    }
}

impl Actor for PatientActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.settings.signal_loss.enabled {
            ctx.run_interval(self.tick_every, |act, ctx| act.tick(ctx));
        }
    }
}

impl Handler<ApplyReadings> for PatientActor {
    type Result = ();

    fn handle(&mut self, ApplyReadings(msg): ApplyReadings, ctx: &mut Self::Context) {
        // qSOFA and SIRS totals of the newest score, when this message produced one.
        let mut scored = None;
        // The engine's clock for this batch: transitions are stamped with it and escalation
        // counts from it, whatever the readings' own times (contracts.md section 4).
        let now = wall_clock();
        for reading in &msg.items {
            let settings = self.settings_for(&reading.unit_id);
            if let ReadingBody::Vitals(_) = reading.body {
                self.heard = Some(now);
            }
            let out = StateOwner::apply(&mut self.patient, reading, now, &settings);
            if out.score.is_some() {
                scored = Some((out.qsofa.map(|q| q.total), out.sirs.map(|s| s.total)));
            }
            if msg.history {
                continue;
            }
            for alert in &out.alerts {
                self.emit(alert, Some(msg.held.receipt().clone()), ctx);
            }
        }
        msg.held.applied();
        if msg.history {
            return;
        }
        if self.timer.is_armed() || self.patient.has_active_alert() {
            self.schedule(ctx);
        }
        if let Some((qsofa, sirs)) = scored
            && let Some(score) = &self.patient.last_score
        {
            if *self.ids.2 != *self.patient.unit_id {
                self.ids.2 = Arc::from(self.patient.unit_id.as_str());
            }
            self.outputs.patient(PatientStatus {
                tenant: self.ids.0.clone(),
                patient_id: self.ids.1.clone(),
                unit_id: self.ids.2.clone(),
                at: score.at,
                news2: Some(score.total),
                qsofa,
                sirs,
                partial: score.partial,
                vitals: self.patient.window.chart.latest(),
            });
        }
    }
}

impl Handler<Command> for PatientActor {
    type Result = Result<Alert, CommandError>;

    fn handle(&mut self, msg: Command, ctx: &mut Self::Context) -> Self::Result {
        let (alert, changed) = StateOwner::command(&mut self.patient, &msg.0)?;
        if changed {
            self.emit(&alert, Some(msg.1), ctx);
            self.schedule(ctx);
        }
        Ok(alert)
    }
}

impl Handler<Reconcile> for PatientActor {
    type Result = usize;

    fn handle(&mut self, msg: Reconcile, ctx: &mut Self::Context) -> usize {
        let open = msg.open;
        let r = StateOwner::reconcile(
            &mut self.patient,
            msg.alerts,
            &|id| open.contains(id),
            wall_clock(),
            &self.settings,
        );
        for alert in StateOwner::active_alerts(&self.patient) {
            self.outputs.restored(alert);
        }
        for alert in &r.publish {
            self.emit(alert, None, ctx);
        }
        self.has_active_alert.set(self.patient.has_active_alert());
        // Deadlines that passed while the engine was down fire at once.
        self.schedule(ctx);
        r.installed
    }
}

impl Handler<Passivate> for PatientActor {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
