//! The patient actor: owns one [`Patient`], applies its events in order, applies commands to its
//! alerts, and hands every transition to the outputs.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::{Alert, CommandError, Patient, PatientStatus, Settings};

use crate::router::Command;
use crate::{InputKind, Outputs, PatientInput, Receipt};

pub(crate) struct Observe {
    pub inputs: Vec<PatientInput>,
    pub receipt: Receipt,
}

impl Message for Observe {
    type Result = ();
}

pub(crate) struct Passivate;

impl Message for Passivate {
    type Result = ();
}

pub struct PatientActor {
    patient: Patient,
    settings: Arc<Settings>,
    outputs: Arc<dyn Outputs>,
    /// Shared with the router on the same thread: passivation skips patients with open alerts.
    has_active_alert: Rc<Cell<bool>>,
    /// Identifiers shared with every update this actor emits (no copy per update).
    ids: (Arc<str>, Arc<str>, Arc<str>),
}

impl PatientActor {
    pub(crate) fn new(
        tenant: &str,
        patient: &str,
        unit: &str,
        settings: Arc<Settings>,
        outputs: Arc<dyn Outputs>,
        has_active_alert: Rc<Cell<bool>>,
    ) -> Self {
        Self {
            patient: Patient::new(tenant, patient, unit),
            settings,
            outputs,
            has_active_alert,
            ids: (Arc::from(tenant), Arc::from(patient), Arc::from(unit)),
        }
    }

    fn emit(&mut self, alert: &Alert, receipt: Option<Receipt>, ctx: &mut Context<Self>) {
        if let Some(wait) = self.outputs.alert(alert, receipt) {
            ctx.wait(wait.into_actor(self));
        }
        self.has_active_alert
            .set(self.patient.active_alert().is_some());
    }
}

impl Actor for PatientActor {
    type Context = Context<Self>;
}

impl Handler<Observe> for PatientActor {
    type Result = ();

    fn handle(&mut self, msg: Observe, ctx: &mut Self::Context) {
        // qSOFA and SIRS totals of the newest score, when this message produced one.
        let mut scored = None;
        for input in &msg.inputs {
            match &input.kind {
                InputKind::Vitals(v) => {
                    let out =
                        self.patient
                            .observe(&input.unit_id, v, input.occurred_at, &self.settings);
                    if out.score.is_some() {
                        scored = Some((out.qsofa.map(|q| q.total), out.sirs.map(|s| s.total)));
                    }
                    for alert in &out.alerts {
                        self.emit(alert, Some(msg.receipt.clone()), ctx);
                    }
                }
                InputKind::Lab { lab, collected_at } => self.patient.record_lab(lab, *collected_at),
            }
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
                partial: score.partial(),
                vitals: self.patient.chart.latest(),
            });
        }
    }
}

impl Handler<Command> for PatientActor {
    type Result = Result<Alert, CommandError>;

    fn handle(&mut self, msg: Command, ctx: &mut Self::Context) -> Self::Result {
        let c = msg.0;
        let alert = self
            .patient
            .command(&c.alert_id, c.kind, c.role, &c.by, &c.reason, c.at)?;
        self.emit(&alert, None, ctx);
        Ok(alert)
    }
}

impl Handler<Passivate> for PatientActor {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
