//! Practice flow wiring: the sinks of the `CHECKINS` and `OCCUPANCY` consumers, between the
//! check-in desk (`vigil_streams::desk`: the appointment book and the events held for a
//! schedule) and the practice actors, and the sweep that releases held events in time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use vigil_actors::{PracticeInput, Shards};
use vigil_engine::PracticeEvent;
use vigil_engine::practice::appointment::{Effect, PracticeChange};
use vigil_engine::practice::keeper::KeeperInput;
use vigil_streams::desk::{Desk, Origin, Outcome, Refusal};
use vigil_streams::output::{Stored, dead_letter_stored, flow_message};
use vigil_streams::{Delivery, EventSink, IngestMetrics, OutMessage, Outbox, Receipt, Rejection};

/// What one batch of practice events produced, to publish and hand on.
#[derive(Default)]
struct Pending {
    inputs: Vec<PracticeInput>,
    /// Flow updates and late dead letters; receipts are attached at dispatch.
    out: Vec<OutMessage>,
}

impl Pending {
    /// Queues one event's effects: flow updates to `FLOW`, the rest to the actors.
    fn effects(&mut self, tenant: &str, origin: &Origin, effects: Vec<Effect>, m: &IngestMetrics) {
        let occurred_at = origin.occurred_at;
        for e in effects {
            match e {
                Effect::Flow(flow) => {
                    m.flow_updates.fetch_add(1, Relaxed);
                    self.out.push(flow_message(
                        tenant,
                        &flow,
                        &origin.event_id,
                        origin.correlation_id.as_deref(),
                        None,
                    ));
                }
                e => self.inputs.push(PracticeInput {
                    tenant: tenant.to_string(),
                    input: KeeperInput::Effect(e),
                    occurred_at,
                }),
            }
        }
    }

    /// Queues a held event's outcome (its original message was acknowledged long ago: a
    /// refusal is dead-lettered from the copy kept).
    fn released(&mut self, stream: &str, tenant: &str, outcome: Outcome, m: &IngestMetrics) {
        let (origin, result) = outcome;
        match result {
            Ok(effects) => self.effects(tenant, &origin, effects, m),
            Err(Refusal(rejection)) => {
                m.dead_letter(rejection.code);
                self.out
                    .push(dead_letter_stored(stream, &origin.stored, &rejection, None));
            }
        }
    }

    async fn flush(self, shards: &Shards, outbox: &Outbox, receipt: Option<Receipt>) {
        for mut msg in self.out {
            msg.receipt.clone_from(&receipt);
            outbox.send(msg).await;
        }
        if !self.inputs.is_empty() {
            let receipt = receipt.unwrap_or_else(|| Arc::new(()));
            if !shards.deliver_practice(self.inputs, receipt.clone()).await {
                vigil_streams::receipt::fail(&receipt);
            }
        }
    }
}

/// The sink of the `CHECKINS` or `OCCUPANCY` consumer.
pub struct PracticeSink {
    pub stream: &'static str,
    pub desk: Arc<Desk>,
    pub shards: Shards,
    pub outbox: Outbox,
    pub metrics: Arc<IngestMetrics>,
    /// Recovery: rebuild state only; publish nothing (it was published before the restart).
    pub history: bool,
    pending: Pending,
}

impl PracticeSink {
    pub fn new(
        stream: &'static str,
        desk: Arc<Desk>,
        shards: Shards,
        outbox: Outbox,
        metrics: Arc<IngestMetrics>,
    ) -> Self {
        Self {
            stream,
            desk,
            shards,
            outbox,
            metrics,
            history: false,
            pending: Pending::default(),
        }
    }
}

impl EventSink for PracticeSink {
    type Event = PracticeEvent;

    fn accept(&mut self, event: PracticeEvent, origin: &Delivery) -> Result<(), Rejection> {
        let PracticeEvent { meta, change } = event;
        let tenant = meta.tenant_id.into_owned();
        let input = match change {
            PracticeChange::Provider(update) => KeeperInput::Provider(update),
            PracticeChange::Occupancy(mut update) => {
                if update.location.is_none() {
                    update.location = update
                        .appointment
                        .as_deref()
                        .and_then(|a| self.desk.location_of(&tenant, a));
                }
                KeeperInput::Occupancy {
                    update,
                    at: meta.occurred_at,
                }
            }
            change => {
                let origin = Origin {
                    event_id: meta.event_id.into_owned(),
                    occurred_at: meta.occurred_at,
                    correlation_id: meta.correlation_id.map(std::borrow::Cow::into_owned),
                    stored: Stored::of(origin),
                };
                let now = vigil_streams::wall_clock();
                let (outcome, released) = self.desk.apply(&tenant, change, origin, now);
                // Counting held events takes the desk's lock: only when this event changed them.
                if outcome.is_none() || !released.is_empty() {
                    self.metrics
                        .practice_held
                        .store(self.desk.held() as u64, Relaxed);
                }
                for r in released {
                    self.pending
                        .released(self.stream, &tenant, r, &self.metrics);
                }
                return match outcome {
                    None => Ok(()),
                    Some((origin, Ok(effects))) => {
                        self.pending
                            .effects(&tenant, &origin, effects, &self.metrics);
                        Ok(())
                    }
                    Some((_, Err(Refusal(rejection)))) => Err(rejection),
                };
            }
        };
        self.pending.inputs.push(PracticeInput {
            tenant,
            input,
            occurred_at: meta.occurred_at,
        });
        Ok(())
    }

    fn dispatch(&mut self, receipt: Receipt) -> impl Future<Output = ()> + Send {
        let pending = std::mem::take(&mut self.pending);
        let (shards, outbox, history) = (self.shards.clone(), self.outbox.clone(), self.history);
        async move {
            if history {
                if !shards
                    .deliver_practice_history(pending.inputs, receipt.clone())
                    .await
                {
                    vigil_streams::receipt::fail(&receipt);
                }
            } else {
                pending.flush(&shards, &outbox, Some(receipt)).await;
            }
        }
    }
}

/// Applies held events whose schedule did not come in time, every second, and forgets
/// appointments older than the practice horizon, every minute, until `stop`.
pub async fn sweep_held(
    desk: Arc<Desk>,
    shards: Shards,
    outbox: Outbox,
    metrics: Arc<IngestMetrics>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    for tick in 0u64.. {
        tokio::select! {
            () = &mut stop => return,
            _ = every.tick() => {}
        }
        if tick % 60 == 0 {
            desk.evict(vigil_streams::wall_clock());
        }
        let expired = desk.expire(vigil_streams::wall_clock());
        if expired.is_empty() {
            continue;
        }
        metrics
            .practice_unscheduled
            .fetch_add(expired.len() as u64, Relaxed);
        metrics.practice_held.store(desk.held() as u64, Relaxed);
        let mut pending = Pending::default();
        for (tenant, outcome) in expired {
            pending.released("CHECKINS", &tenant, outcome, &metrics);
        }
        pending.flush(&shards, &outbox, None).await;
    }
}
