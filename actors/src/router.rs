//! One router per arbiter: owns the map from patient key to patient actor, creates actors on
//! first contact, passivates idle ones, and forwards commands.

use rustc_hash::{FxBuildHasher, FxHashMap};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use vigil_engine::{Alert, CommandError, Reading};

use crate::messages::{
    ApplyReadings, Batch, Command, Count, DeliverReadings, Passivate, Reconcile, Recover,
};
use crate::patient::PatientActor;
use crate::{ActorSettings, Outputs};

struct Entry {
    addr: Addr<PatientActor>,
    last_input: Instant,
    /// Set by the patient actor (same thread) while it has a non-resolved alert.
    has_active_alert: Rc<Cell<bool>>,
    /// Where this patient's inputs are collected in the batch being routed: valid while its
    /// first element is the router's current batch number (so nothing needs resetting).
    slot: (u64, usize),
}

/// A map whose `entry_ref` looks a borrowed key up once and copies it only on insert.
type Map<V> = hashbrown::HashMap<String, V, FxBuildHasher>;

pub struct ShardRouter {
    shard: usize,
    settings: ActorSettings,
    outputs: Arc<dyn Outputs>,
    /// tenant -> patient -> actor; nested so lookups borrow the event's strings, one lookup
    /// per level per event. Fx hashing: keys are identifiers the engine routes on, not user
    /// input whose collisions could hurt anything but this shard's speed.
    patients: Map<Map<Entry>>,
    /// Numbers the batches routed, for [`Entry::slot`].
    batch: u64,
}

impl ShardRouter {
    pub fn new(shard: usize, settings: ActorSettings, outputs: Arc<dyn Outputs>) -> Self {
        Self {
            shard,
            settings,
            outputs,
            patients: Map::default(),
            batch: 0,
        }
    }

    fn entry(&mut self, tenant: &str, patient: &str, unit: &str) -> &mut Entry {
        let (settings, outputs) = (&self.settings, &self.outputs);
        self.patients
            .entry_ref(tenant)
            .or_default()
            .entry_ref(patient)
            .or_insert_with(|| {
                let flag = Rc::new(Cell::new(false));
                let actor = PatientActor::for_patient(
                    tenant,
                    patient,
                    unit,
                    settings.profiles.clone(),
                    settings.tick_every,
                    outputs.clone(),
                    flag.clone(),
                );
                let mailbox = settings.mailbox;
                let addr = PatientActor::create(move |ctx| {
                    ctx.set_mailbox_capacity(mailbox);
                    actor
                });
                Entry {
                    addr,
                    last_input: Instant::now(),
                    has_active_alert: flag,
                    slot: (0, 0),
                }
            })
    }

    fn get(&self, tenant: &str, patient: &str) -> Option<&Entry> {
        self.patients.get(tenant)?.get(patient)
    }

    fn sweep(&mut self) {
        let idle =
            Duration::from_millis(u64::try_from(self.settings.passivate_after_ms).unwrap_or(0));
        let now = Instant::now();
        let mut passivated = 0;
        for patients in self.patients.values_mut() {
            let before = patients.len();
            patients.retain(|_, e| {
                let keep = now.duration_since(e.last_input) < idle || e.has_active_alert.get();
                // A full mailbox means the actor is busy: keep it and try again next sweep.
                keep || e.addr.try_send(Passivate).is_err()
            });
            passivated += before - patients.len();
        }
        self.patients.retain(|_, p| !p.is_empty());
        if passivated > 0 {
            tracing::debug!(shard = self.shard, passivated, "passivated idle patients");
        }
    }
}

impl Actor for ShardRouter {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let idle =
            Duration::from_millis(u64::try_from(self.settings.passivate_after_ms).unwrap_or(0));
        let every = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
        ctx.run_interval(every, |this, _| this.sweep());
    }
}

impl Handler<DeliverReadings> for ShardRouter {
    type Result = ();

    fn handle(&mut self, DeliverReadings(msg): DeliverReadings, ctx: &mut Self::Context) {
        // One message per patient per batch, readings in arrival order: collect them per entry
        // without copying keys, then send.
        let now = Instant::now();
        self.batch += 1;
        let batch = self.batch;
        let mut batches: Vec<(Addr<PatientActor>, Vec<Reading<'static>>)> = Vec::new();
        for reading in msg.items {
            let entry = self.entry(
                &reading.meta.tenant_id,
                &reading.patient_id,
                &reading.unit_id,
            );
            entry.last_input = now;
            match entry.slot {
                (b, i) if b == batch => batches[i].1.push(reading),
                _ => {
                    entry.slot = (batch, batches.len());
                    batches.push((entry.addr.clone(), vec![reading]));
                }
            }
        }
        for (addr, readings) in batches {
            let observe = ApplyReadings(Batch {
                items: readings,
                held: msg.held.share(),
                history: msg.history,
            });
            if !crate::hand_off(self, ctx, addr, observe) {
                tracing::error!(shard = self.shard, "patient actor stopped unexpectedly");
            }
        }
        msg.held.applied();
    }
}

impl Handler<Command> for ShardRouter {
    type Result = ResponseFuture<Result<Alert, CommandError>>;

    fn handle(&mut self, msg: Command, _: &mut Self::Context) -> Self::Result {
        let patient = match &msg.0.owner {
            vigil_engine::Owner::Patient(p) => p.as_str(),
            _ => "",
        };
        let Some(entry) = self.get(&msg.0.tenant, patient) else {
            let id = msg.0.alert_id;
            return Box::pin(async move { Err(CommandError::NotFound(id)) });
        };
        let addr = entry.addr.clone();
        Box::pin(async move {
            let id = msg.0.alert_id.clone();
            addr.send(msg)
                .await
                .unwrap_or(Err(CommandError::NotFound(id)))
        })
    }
}

impl Handler<Recover> for ShardRouter {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: Recover, _: &mut Self::Context) -> Self::Result {
        let mut restored: FxHashMap<(String, String), Vec<Alert>> = FxHashMap::default();
        for a in msg.alerts {
            let key = (
                a.tenant_id.clone(),
                a.patient_id.clone().unwrap_or_default(),
            );
            restored.entry(key).or_default().push(a);
        }
        // Patients with an open alert get an actor even if no history was replayed (a resolved
        // one only matters to a window that was).
        for ((tenant, patient), alerts) in &restored {
            if !alerts.iter().any(Alert::is_active) {
                continue;
            }
            let unit = alerts
                .iter()
                .find_map(|a| a.unit_id.clone())
                .unwrap_or_default();
            self.entry(tenant, patient, &unit);
        }
        let mut sends = Vec::new();
        for (tenant, patients) in &self.patients {
            for (patient, entry) in patients {
                let alerts = restored
                    .remove(&(tenant.clone(), patient.clone()))
                    .unwrap_or_default();
                sends.push(entry.addr.send(Reconcile {
                    alerts,
                    open: msg.open.clone(),
                }));
            }
        }
        Box::pin(async move {
            let mut installed = 0;
            for s in sends {
                installed += s.await.unwrap_or(0);
            }
            installed
        })
    }
}

impl Handler<Count> for ShardRouter {
    type Result = usize;

    fn handle(&mut self, _: Count, _: &mut Self::Context) -> usize {
        self.patients.values().map(Map::len).sum()
    }
}
