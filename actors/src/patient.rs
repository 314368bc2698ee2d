//! The patient actor: an [`OwnerActor`] keeping one [`Patient`]. It applies the patient's
//! readings in order, publishes the patient's live state after each new score, and checks for
//! signal loss on its own tick (the one rule that fires on silence).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::owner::StateOwner;
use vigil_engine::{Patient, PatientStatus, Profiles, ReadingBody, Timestamp};

use crate::Outputs;
use crate::messages::ApplyReadings;
use crate::owner::{Kept, OwnerActor};
use crate::wall_clock;

pub type PatientActor = OwnerActor<Patient>;

/// A patient actor's own state.
pub struct PatientLocal {
    tick_every: std::time::Duration,
    /// Wall-clock time the latest vitals arrived (signal loss counts silence from it).
    heard: Option<Timestamp>,
    /// Identifiers shared with every update this actor emits (no copy per update).
    ids: (Arc<str>, Arc<str>, Arc<str>),
}

impl Kept for Patient {
    type Local = PatientLocal;

    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn unit(&self) -> Option<&str> {
        Some(&self.unit_id)
    }

    fn started(act: &mut PatientActor, ctx: &mut Context<PatientActor>) {
        if act.settings.signal_loss.enabled {
            ctx.run_interval(act.local.tick_every, |act, ctx| act.tick(ctx));
        }
    }
}

impl PatientActor {
    pub(crate) fn for_patient(
        tenant: &str,
        patient: &str,
        unit: &str,
        profiles: Arc<Profiles>,
        tick_every: std::time::Duration,
        outputs: Arc<dyn Outputs>,
        has_active_alert: Rc<Cell<bool>>,
    ) -> Self {
        let local = PatientLocal {
            tick_every,
            heard: None,
            ids: (Arc::from(tenant), Arc::from(patient), Arc::from(unit)),
        };
        OwnerActor::new(
            Patient::new(tenant, patient, unit),
            profiles,
            outputs,
            has_active_alert,
            local,
        )
    }

    /// Signal loss needs time to pass with no event: checked on this actor's own timer.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = wall_clock();
        let Some(heard) = self.local.heard else {
            return;
        };
        if let Some(alert) = self.owner.tick(now, heard, &self.settings) {
            self.emit(std::slice::from_ref(&alert), None, ctx);
            self.settle(now, ctx);
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
                self.local.heard = Some(now);
            }
            let out = StateOwner::apply(&mut self.owner, reading, now, &settings);
            if out.score.is_some() {
                scored = Some((out.qsofa.map(|q| q.total), out.sirs.map(|s| s.total)));
            }
            if !msg.history {
                self.emit(&out.alerts, Some(msg.held.receipt()), ctx);
            }
        }
        msg.held.applied();
        if msg.history {
            return;
        }
        // Only a patient with an alert (or a timer to cancel) has a deadline to look for.
        if self.timer_armed() || self.owner.has_active_alert() {
            self.settle(now, ctx);
        }
        if let Some((qsofa, sirs)) = scored
            && let Some(score) = &self.owner.last_score
        {
            let ids = &mut self.local.ids;
            if *ids.2 != *self.owner.unit_id {
                ids.2 = Arc::from(self.owner.unit_id.as_str());
            }
            self.outputs.patient(PatientStatus {
                tenant: ids.0.clone(),
                patient_id: ids.1.clone(),
                unit_id: ids.2.clone(),
                at: score.at,
                news2: Some(score.total),
                qsofa,
                sirs,
                partial: score.partial,
                vitals: self.owner.window.chart.latest(),
            });
        }
    }
}
