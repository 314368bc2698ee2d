//! The patient actor: an [`OwnerActor`] keeping one [`Patient`], created by the patient
//! [`Router`](crate::router::Router) of its arbiter. It applies the patient's readings in
//! order, publishes the patient's live state after each new score, and checks for signal loss
//! on its own tick (the one rule that fires on silence). Idle patients are passivated.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::owner::StateOwner;
use vigil_engine::{Owner, Patient, PatientStatus, PatientView, ReadingBody, Timestamp};

use crate::messages::{Apply, View};
use crate::owner::{Kept, OwnerActor};
use crate::router::{Address, Routed};
use crate::{ActorSettings, Outputs, wall_clock};

pub type PatientActor = OwnerActor<Patient>;

/// A patient actor's own state.
pub struct PatientLocal {
    tick_every: std::time::Duration,
    /// Wall-clock time the latest vitals arrived (signal loss counts silence from it).
    heard: Option<Timestamp>,
    /// Identifiers shared with every update this actor emits (no copy per update).
    ids: (Arc<str>, Arc<str>, Arc<str>),
    /// The bed, shared the same way; replaced when the patient's bed changes.
    bed: Option<Arc<str>>,
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

impl Routed for Patient {
    type Kind = ();
    type Item = vigil_engine::Reading<'static>;
    const PASSIVATES: bool = true;
    const BY_ID: bool = true;
    const KEEPS_RESOLVED: bool = true;

    fn address(r: &Self::Item) -> Option<Address<'_, ()>> {
        Some(Address {
            kind: (),
            tenant: &r.meta.tenant_id,
            id: &r.patient_id,
            unit: &r.unit_id,
        })
    }

    fn owned(owner: &Owner) -> Option<((), &str)> {
        match owner {
            Owner::Patient(p) => Some(((), p)),
            _ => None,
        }
    }

    fn actor(
        at: Address<'_, ()>,
        settings: &ActorSettings,
        outputs: Arc<dyn Outputs>,
        keep: Rc<Cell<bool>>,
    ) -> PatientActor {
        let local = PatientLocal {
            tick_every: settings.tick_every,
            heard: None,
            ids: (Arc::from(at.tenant), Arc::from(at.id), Arc::from(at.unit)),
            bed: None,
        };
        OwnerActor::new(
            Patient::new(at.tenant, at.id, at.unit),
            settings.profiles.clone(),
            outputs,
            keep,
            local,
        )
    }
}

impl PatientActor {
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

impl Handler<Apply<Patient>> for PatientActor {
    type Result = ();

    fn handle(&mut self, Apply(msg): Apply<Patient>, ctx: &mut Self::Context) {
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
            let bed = &mut self.local.bed;
            if bed.as_deref() != self.owner.bed_id.as_deref() {
                *bed = self.owner.bed_id.as_deref().map(Arc::from);
            }
            self.outputs.patient(PatientStatus {
                tenant: ids.0.clone(),
                patient_id: ids.1.clone(),
                unit_id: ids.2.clone(),
                bed_id: self.local.bed.clone(),
                at: score.at,
                news2: Some(score.total),
                qsofa,
                sirs,
                partial: score.partial,
                single3: score.single3,
                sepsis_risk: self.owner.last_risk.map(|(risk, _)| risk),
                vitals: self.owner.window.chart.latest(),
            });
        }
    }
}

impl Handler<View> for PatientActor {
    type Result = Option<PatientView>;

    fn handle(&mut self, _: View, _: &mut Self::Context) -> Self::Result {
        let unit = self.owner.unit_id.clone();
        let horizon = self.settings_for(&unit).window.horizon_ms;
        Some(self.owner.view(horizon))
    }
}

impl Handler<View> for crate::PatientRouter {
    type Result = ResponseFuture<Option<PatientView>>;

    fn handle(&mut self, msg: View, _: &mut Self::Context) -> Self::Result {
        let addr = self
            .get((), &msg.tenant, &msg.patient_id)
            .map(|e| Addr::clone(&e.addr));
        Box::pin(async move { addr?.send(msg).await.ok().flatten() })
    }
}
