//! The engine between a bus and the gateway's hub, in the shape of mini-redis's
//! `server::run(listener, shutdown)`: [`Engine::start`] starts the parts in order (the outbox,
//! the actors, recovery, the consumers of `VITALS`, `CHECKINS` and `OCCUPANCY` or of the
//! partitions a cluster member owns, and the held-event sweep) and returns them [`Running`];
//! [`Running::ended`] resolves if a part ends by itself, and [`Running::stop`] drains them in
//! the reverse order, so that nothing applied is left unpublished.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vigil_actors::{ActorSettings, Shards};
use vigil_config::Config;
use vigil_engine::Profiles;
use vigil_gateway::Hub;
use vigil_streams::outbox::OutboxError;
use vigil_streams::{
    Bus, Checkins, EventSink, Inbound, Ingest, IngestMetrics, Occupancy, Outbox, Part, Vitals,
};

use crate::practice::{self, PracticeSink};
use crate::recovery;
use crate::wiring::{EngineOutputs, ShardCommands, ShardSink};

/// How long the outbox may take to publish what is left at shutdown.
const OUTBOX_DRAIN: Duration = Duration::from_secs(10);
/// How long the last acknowledgements may take to be written at shutdown.
const FLUSH_WAIT: Duration = Duration::from_secs(2);

pub struct Engine;

/// What one engine process owns of the inbound streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything, on streams that are not split (no `[cluster]`).
    All,
    /// Partitions `owned` of `count` (a cluster member, docs/cluster.md); each is consumed from
    /// its own pinned consumer, held for `pinned_for` when this process stops pulling.
    Partitions {
        count: u32,
        owned: Vec<u32>,
        pinned_for: Duration,
    },
}

impl Scope {
    /// The parts to consume and recover: the whole stream, or each owned partition.
    pub fn parts(&self) -> Vec<Option<u32>> {
        match self {
            Scope::All => vec![None],
            Scope::Partitions { owned, .. } => owned.iter().copied().map(Some).collect(),
        }
    }

    /// Whether this scope keeps `alert` (its owner's events are in an owned partition).
    pub fn holds(&self, alert: &vigil_engine::Alert) -> bool {
        match self {
            Scope::All => true,
            Scope::Partitions { count, owned, .. } => {
                vigil_streams::partition::partition_of_alert(alert, *count)
                    .is_some_and(|p| owned.contains(&p))
            }
        }
    }

    fn part(&self, index: Option<u32>) -> Option<Part> {
        match (self, index) {
            (Scope::Partitions { pinned_for, .. }, Some(index)) => Some(Part {
                index,
                pinned_for: *pinned_for,
            }),
            _ => None,
        }
    }
}

/// Why a running engine ended by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `ALERTS` refused a transition: another engine wrote that alert since this one last did
    /// (docs/cluster.md, "Fencing"). This engine's view of its partitions is stale.
    Fenced(String),
    /// A durable consumer was deleted under this engine: a cluster member that took its
    /// partition over recreated it (or an operator deleted it).
    Displaced,
    /// Any other part ended: a consumer, the outbox, the sweeper.
    Failed(String),
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Fenced(why) => write!(f, "the outbox stopped: fenced: {why}"),
            Ended::Displaced => f.write_str("a consumer ended: it was deleted"),
            Ended::Failed(what) => f.write_str(what),
        }
    }
}

/// The started engine: what [`Running::ended`] watches and [`Running::stop`] drains.
pub struct Running {
    bus: Bus,
    shards: Shards,
    outbox: Outbox,
    outbox_task: JoinHandle<Result<(), OutboxError>>,
    /// The consumers; `true` when one of them ended by itself.
    consumers: JoinHandle<bool>,
    sweeper: JoinHandle<()>,
    stop: Arc<watch::Sender<bool>>,
    metrics: Arc<IngestMetrics>,
    /// `metrics.consumers_deleted` when the consumers started.
    consumers_deleted: u64,
    /// Which of the tasks above have already been seen to finish (a finished `JoinHandle`
    /// must not be polled again).
    outbox_done: bool,
    consumers_done: bool,
    sweeper_done: bool,
}

/// Resolves once `stop` is raised.
async fn raised(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl Engine {
    /// Starts the engine on `bus`, with its outputs going to `hub` and the outbox: the actors,
    /// then recovery (windows rebuilt, open alerts restored), then the consumers of `VITALS`,
    /// `CHECKINS` and `OCCUPANCY`, each whole or one per partition of `scope`. The hub gets the
    /// commands port and is marked ready last.
    ///
    /// # Errors
    /// When the actors cannot start, recovery cannot read the streams or a consumer cannot be
    /// bound.
    pub async fn start(
        cfg: &Config,
        scope: &Scope,
        bus: &Bus,
        hub: &Arc<Hub>,
        metrics: &Arc<IngestMetrics>,
    ) -> anyhow::Result<Running> {
        hub.set_starting("recovering: rebuilding windows and restoring open alerts");
        let (outbox, outbox_task) = Outbox::start(bus.clone(), 65_536, 1024);
        let history_bus = bus.clone();
        hub.set_history(Arc::new(move |subject: String| {
            let bus = history_bus.clone();
            Box::pin(async move { bus.history(&subject).await.map_err(|e| e.to_string()) })
        }));
        let outputs = Arc::new(EngineOutputs {
            hub: hub.clone(),
            outbox: outbox.clone(),
            metrics: metrics.clone(),
        });
        let shards = Shards::start(
            ActorSettings {
                shards: cfg.engine.shards,
                mailbox: cfg.engine.mailbox,
                passivate_after_ms: cfg.engine.passivate_after.as_millis_i64(),
                profiles: Arc::new(Profiles::from_config(cfg)),
                tick_every: cfg.engine.tick.as_std(),
                on_lost: vigil_streams::receipt::fail,
            },
            outputs,
        )?;
        hub.set_commands(Arc::new(ShardCommands(shards.clone())));

        let desk = Arc::new(vigil_streams::desk::Desk::new(
            cfg.engine.unscheduled_after.as_millis_i64(),
            cfg.engine.practice_horizon.as_millis_i64(),
        ));
        let practice_sink = |stream| {
            PracticeSink::new(
                stream,
                desk.clone(),
                shards.clone(),
                outbox.clone(),
                metrics.clone(),
            )
        };
        let mut recovery_sink = practice_sink("CHECKINS");
        let recovered =
            recovery::recover(bus, cfg, scope, &shards, &outbox, &mut recovery_sink).await?;
        metrics
            .recovery_unreadable_alerts
            .store(recovered.unreadable as u64, Relaxed);
        tracing::info!(
            events = recovered.events,
            open_alerts = recovered.alerts,
            unreadable = recovered.unreadable,
            seconds = recovered.elapsed.as_secs_f64(),
            "recovery finished"
        );
        let stop = Arc::new(watch::channel(false).0);
        let consumers_deleted = metrics.consumers_deleted.load(Relaxed);
        let ingest = Ingest::new(outbox.clone(), metrics.clone(), cfg);
        let mut consumers: Vec<Consumer> = Vec::new();
        for index in scope.parts() {
            let part = scope.part(index);
            let stop = &stop;
            let sink = ShardSink::new(shards.clone());
            consumers.push(consume::<Vitals, _>(bus, cfg, part, &ingest, sink, stop).await?);
            consumers.push(
                consume::<Checkins, _>(bus, cfg, part, &ingest, practice_sink("CHECKINS"), stop)
                    .await?,
            );
            consumers.push(
                consume::<Occupancy, _>(bus, cfg, part, &ingest, practice_sink("OCCUPANCY"), stop)
                    .await?,
            );
        }
        let consumers = tokio::spawn(run_together(consumers, stop.clone()));
        let sweeper = tokio::spawn(practice::sweep_held(
            desk,
            shards.clone(),
            outbox.clone(),
            metrics.clone(),
            raised(stop.subscribe()),
        ));
        hub.set_ready(true);
        Ok(Running {
            bus: bus.clone(),
            shards,
            outbox,
            outbox_task,
            consumers,
            sweeper,
            stop,
            metrics: metrics.clone(),
            consumers_deleted,
            outbox_done: false,
            consumers_done: false,
            sweeper_done: false,
        })
    }
}

/// One consumer: `part` of `I`'s stream (or all of it) bound and ingested into `sink` until
/// `stop` is raised.
async fn consume<I: Inbound, S: EventSink<Event = I::Event>>(
    bus: &Bus,
    cfg: &Config,
    part: Option<Part>,
    ingest: &Ingest,
    sink: S,
    stop: &watch::Sender<bool>,
) -> anyhow::Result<Consumer> {
    let deliveries = bus
        .consume(I::STREAM, &cfg.nats, part, ingest.metrics.clone())
        .await?;
    let (ingest, stop) = (ingest.clone(), stop.subscribe());
    Ok(Box::pin(async move {
        ingest.run::<I, _>(deliveries, sink, raised(stop)).await;
    }))
}

/// A consumer's ingest loop, run by [`run_together`].
type Consumer = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs the consumers together; the first to end by itself (its stream gone, an
/// acknowledgement stopped) raises `stop` for the others. Returns whether one did.
async fn run_together(consumers: Vec<Consumer>, stop: Arc<watch::Sender<bool>>) -> bool {
    if consumers.is_empty() {
        // A cluster member that owns no partition now: nothing to consume until it gets one.
        raised(stop.subscribe()).await;
        return false;
    }
    let mut running: futures::stream::FuturesUnordered<_> = consumers.into_iter().collect();
    let mut ended_alone = false;
    while running.next().await.is_some() {
        if !*stop.borrow() && !ended_alone {
            ended_alone = true;
            stop.send_replace(true);
        }
    }
    ended_alone
}

impl Running {
    /// Where this engine's actors take commands (what [`Engine::start`] gave the hub).
    pub fn commands(&self) -> Arc<dyn vigil_gateway::CommandPort> {
        Arc::new(ShardCommands(self.shards.clone()))
    }

    /// Resolves when a part of the engine ends by itself, with what ended. A consumer that
    /// ends stops the others and the sweeper: it is named whichever of them is seen first.
    pub async fn ended(&mut self) -> Ended {
        let stopping = || *self.stop.borrow();
        let what = tokio::select! {
            r = &mut self.consumers, if !self.consumers_done => {
                self.consumers_done = true;
                match r {
                    Ok(_) => return self.consumer_ended(),
                    Err(e) => format!("the consumers' task failed: {e}"),
                }
            }
            r = &mut self.outbox_task, if !self.outbox_done => {
                self.outbox_done = true;
                match r {
                    Ok(Ok(())) => "the outbox ended".to_string(),
                    Ok(Err(OutboxError::Fenced(why))) => return Ended::Fenced(why),
                    Ok(Err(e)) => format!("the outbox stopped: {e}"),
                    Err(e) => format!("the outbox task failed: {e}"),
                }
            }
            r = &mut self.sweeper, if !self.sweeper_done => {
                self.sweeper_done = true;
                match r {
                    Ok(()) if stopping() => return self.consumer_ended(),
                    Ok(()) => "the held-event sweeper ended".to_string(),
                    Err(e) => format!("the held-event sweeper failed: {e}"),
                }
            }
        };
        Ended::Failed(what)
    }

    /// Why a consumer ended by itself: deleted under this engine, or something else.
    fn consumer_ended(&self) -> Ended {
        if self.metrics.consumers_deleted.load(Relaxed) > self.consumers_deleted {
            Ended::Displaced
        } else {
            Ended::Failed("a consumer ended".into())
        }
    }

    /// Drains and stops: the consumers finish and acknowledge their batches in flight, the
    /// sweeper and the actors stop, and the outbox publishes what is left (at most
    /// [`OUTBOX_DRAIN`]; what it could not publish is recomputed on replay).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        if !self.consumers_done {
            let _ = self.consumers.await;
        }
        if !self.sweeper_done {
            let _ = self.sweeper.await;
        }
        let shards = self.shards;
        tokio::task::spawn_blocking(move || shards.stop())
            .await
            .context("stopping the actors")?;
        // The outbox ends once every sender is gone: the actors' went with them.
        drop(self.outbox);
        if !self.outbox_done
            && tokio::time::timeout(OUTBOX_DRAIN, self.outbox_task)
                .await
                .is_err()
        {
            tracing::error!("outputs still unpublished after 10 s; they are recomputed on replay");
        }
        // The last acknowledgements are still in the client's buffer.
        match tokio::time::timeout(FLUSH_WAIT, self.bus.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "last acknowledgements not sent; NATS redelivers those events");
            }
            Err(_) => tracing::warn!(
                "last acknowledgements not sent within 2 s; NATS redelivers those events"
            ),
        }
        Ok(())
    }
}
