//! The adapters that connect the crates: engine outputs to the gateway and the outbox, gateway
//! commands to the patient actors, decoded events to the shards.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use vigil_actors::{AlertCommand, Backpressure, Outputs, Shards};
use vigil_engine::practice::keeper::ResourceView;
use vigil_engine::{Alert, CommandError, PatientStatus, Reading};
use vigil_gateway::{CommandPort, Hub};
use vigil_streams::output::{alert_json, alert_message};
use vigil_streams::{Delivery, EventSink, IngestMetrics, Outbox, Receipt, Rejection};

/// Alert transitions go to dashboards at once and to `ALERTS` through the outbox (which holds the
/// batch receipt until the stream has stored them).
pub struct EngineOutputs {
    pub hub: Arc<Hub>,
    pub outbox: Outbox,
    pub metrics: Arc<IngestMetrics>,
}

impl Outputs for EngineOutputs {
    fn alert(&self, alert: &Alert, receipt: Option<Receipt>) -> Option<Backpressure> {
        self.metrics.alert_transitions.fetch_add(1, Relaxed);
        if alert.version == 1 {
            // Source time of what fired it to now: how late staff hear of it.
            let fired = alert.triggered_at.unwrap_or(alert.opened_at);
            let delay = vigil_streams::wall_clock().since(fired);
            self.metrics.alert_delay.record_ms(delay);
        }
        let json = alert_json(alert);
        self.hub.publish_alert_json(alert, json.get());
        match self.outbox.try_send(alert_message(alert, &json, receipt)) {
            Ok(()) => None,
            Err(msg) => {
                let outbox = self.outbox.clone();
                Some(Box::pin(async move { outbox.send(msg).await }))
            }
        }
    }

    fn patient(&self, status: PatientStatus) {
        self.hub.publish_patient(status);
    }

    fn restored(&self, alert: &Alert) {
        self.hub.publish_alert(alert);
    }

    fn resource(&self, view: ResourceView) {
        self.hub.publish_resource(&view);
    }
}

/// How long a command waits for its transition to be stored before it is answered
/// `UNAVAILABLE` (it stays applied and is stored once NATS takes it).
const COMMAND_STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Commands reach the actor that owns the alert.
pub struct ShardCommands(pub Shards);

impl CommandPort for ShardCommands {
    fn execute(
        &self,
        cmd: AlertCommand,
    ) -> Pin<Box<dyn Future<Output = Result<Alert, CommandError>> + Send>> {
        let shards = self.0.clone();
        Box::pin(async move {
            let not_found = CommandError::NotFound(cmd.alert_id.clone());
            // Answered only once the transition is in `ALERTS` (contracts.md's audit trail):
            // an ack answered before that could vanish with a crash and the alert escalate.
            let (receipt, stored) = vigil_streams::batch_receipt();
            let alert = shards
                .command(cmd, receipt)
                .await
                .unwrap_or(Err(not_found))?;
            match tokio::time::timeout(COMMAND_STORE_TIMEOUT, stored).await {
                Ok(Ok(())) => Ok(alert),
                Ok(Err(_)) => Err(CommandError::Unavailable(
                    "the change could not be stored (the engine is stopping); it will be \
                     recomputed or must be sent again after the restart"
                        .into(),
                )),
                Err(_) => Err(CommandError::Unavailable(format!(
                    "applied but not yet stored after {} s (NATS unreachable?); it is stored \
                     once NATS is back: read the alert before sending it again",
                    COMMAND_STORE_TIMEOUT.as_secs()
                ))),
            }
        })
    }

    fn patient(&self, tenant: String, patient_id: String) -> vigil_gateway::ViewFuture {
        local_view(&self.0, tenant, patient_id)
    }
}

/// A patient's view from its actor in this process.
pub fn local_view(
    shards: &Shards,
    tenant: String,
    patient_id: String,
) -> vigil_gateway::ViewFuture {
    let shards = shards.clone();
    Box::pin(async move {
        match shards.patient_view(&tenant, &patient_id).await {
            Ok(view) => Ok(view.map(|v| serde_json::to_value(v).unwrap_or_default())),
            Err(e) => Err(format!("the patient's shard cannot answer ({e}); retry")),
        }
    })
}

/// Decoded `VITALS` readings go to their patients' shards, one hand-off per chunk.
pub struct ShardSink {
    pub shards: Shards,
    pub readings: Vec<Reading<'static>>,
}

impl ShardSink {
    pub fn new(shards: Shards) -> Self {
        Self {
            shards,
            readings: Vec::new(),
        }
    }
}

impl EventSink for ShardSink {
    type Event = Reading<'static>;

    fn accept(&mut self, reading: Reading<'static>, _: &Delivery) -> Result<(), Rejection> {
        self.readings.push(reading);
        Ok(())
    }

    fn dispatch(&mut self, receipt: Receipt) -> impl Future<Output = ()> + Send {
        let shards = self.shards.clone();
        // The next chunk is about this one's size: room for it up front instead of a dozen
        // doublings (the readings go to another thread, so this vector cannot be reused).
        let next = Vec::with_capacity(self.readings.len());
        let readings = std::mem::replace(&mut self.readings, next);
        async move {
            // A shard that stopped did not take its readings: the batch must never be
            // acknowledged (ingest stops, NATS redelivers it after the restart).
            if !readings.is_empty() && !shards.deliver(readings, receipt.clone()).await {
                vigil_streams::receipt::fail(&receipt);
            }
        }
    }
}
