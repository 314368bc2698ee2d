//! One router per arbiter: owns the map from patient key to patient actor, creates actors on
//! first contact, passivates idle ones, and forwards commands.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use vigil_engine::{Alert, CommandError};

use crate::patient::{Observe, Passivate, PatientActor};
use crate::{ActorSettings, AlertCommand, Outputs, PatientInput, Receipt};

/// A batch share for this shard.
pub(crate) struct Deliver {
    pub inputs: Vec<PatientInput>,
    pub receipt: Receipt,
}

impl Message for Deliver {
    type Result = ();
}

pub(crate) struct Command(pub AlertCommand);

impl Message for Command {
    type Result = Result<Alert, CommandError>;
}

pub(crate) struct Count;

impl Message for Count {
    type Result = usize;
}

struct Entry {
    addr: Addr<PatientActor>,
    last_input: Instant,
    /// Set by the patient actor (same thread) while it has a non-resolved alert.
    has_active_alert: Rc<Cell<bool>>,
}

pub struct ShardRouter {
    shard: usize,
    settings: ActorSettings,
    outputs: Arc<dyn Outputs>,
    patients: HashMap<(String, String), Entry>,
}

impl ShardRouter {
    pub fn new(shard: usize, settings: ActorSettings, outputs: Arc<dyn Outputs>) -> Self {
        Self {
            shard,
            settings,
            outputs,
            patients: HashMap::new(),
        }
    }

    fn entry(&mut self, tenant: &str, patient: &str, unit: &str) -> &mut Entry {
        let key = (tenant.to_string(), patient.to_string());
        let settings = &self.settings;
        let outputs = &self.outputs;
        self.patients.entry(key).or_insert_with(|| {
            let flag = Rc::new(Cell::new(false));
            let actor = PatientActor::new(
                tenant,
                patient,
                unit,
                settings.engine.clone(),
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
            }
        })
    }

    fn sweep(&mut self) {
        let idle =
            Duration::from_millis(u64::try_from(self.settings.passivate_after_ms).unwrap_or(0));
        let now = Instant::now();
        let before = self.patients.len();
        self.patients.retain(|_, e| {
            let keep = now.duration_since(e.last_input) < idle || e.has_active_alert.get();
            // A full mailbox means the actor is busy: keep it and try again next sweep.
            keep || e.addr.try_send(Passivate).is_err()
        });
        let passivated = before - self.patients.len();
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

impl Handler<Deliver> for ShardRouter {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        // One message per patient per batch: events of a patient stay in order.
        let mut grouped: HashMap<(String, String), Vec<PatientInput>> = HashMap::new();
        for input in msg.inputs {
            grouped
                .entry((input.tenant.clone(), input.patient_id.clone()))
                .or_default()
                .push(input);
        }
        let now = Instant::now();
        for ((tenant, patient), inputs) in grouped {
            let unit = inputs.last().map(|i| i.unit_id.clone()).unwrap_or_default();
            let entry = self.entry(&tenant, &patient, &unit);
            entry.last_input = now;
            let observe = Observe {
                inputs,
                receipt: msg.receipt.clone(),
            };
            match entry.addr.try_send(observe) {
                Ok(()) => {}
                Err(SendError::Full(observe)) => {
                    // Wait for room before taking the next batch: backpressure, not loss.
                    let addr = entry.addr.clone();
                    ctx.wait(
                        async move {
                            let _ = addr.send(observe).await;
                        }
                        .into_actor(self),
                    );
                }
                Err(SendError::Closed(_)) => {
                    tracing::error!(shard = self.shard, patient = %patient, "patient actor stopped unexpectedly");
                }
            }
        }
    }
}

impl Handler<Command> for ShardRouter {
    type Result = ResponseFuture<Result<Alert, CommandError>>;

    fn handle(&mut self, msg: Command, _: &mut Self::Context) -> Self::Result {
        let key = (msg.0.tenant.clone(), msg.0.patient_id.clone());
        let Some(entry) = self.patients.get(&key) else {
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

impl Handler<Count> for ShardRouter {
    type Result = usize;

    fn handle(&mut self, _: Count, _: &mut Self::Context) -> usize {
        self.patients.len()
    }
}
