//! The engine between a bus and the gateway's hub, in the shape of mini-redis's
//! `server::run(listener, shutdown)`: [`Engine::start`] starts the parts in order (the outbox,
//! the actors, recovery, the consumers of `VITALS`, `CHECKINS` and `OCCUPANCY` or of the
//! partitions a cluster member owns, and the held-event sweep) and returns them [`Running`];
//! [`Running::ended`] resolves if a part ends by itself, and [`Running::stop`] drains them in
//! the reverse order, so that nothing applied is left unpublished.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vigil_actors::{ActorSettings, Shards};
use vigil_config::Config;
use vigil_engine::Profiles;
use vigil_gateway::Hub;
use vigil_streams::desk::Desk;
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
/// Parts whose consumers are bound at the same time (three consumers each): the default 16
/// partitions all at once.
const BIND_AT_ONCE: usize = 16;

pub struct Engine;

/// Every threshold profile of `cfg`, serving the sepsis model that `[rules."sepsis.model"]
/// model` names (relative to the working directory), or the built-in one.
///
/// # Errors
/// A model file that cannot be read or is refused (its checksum, shape, features or checks),
/// or a profile too short for the model's spans, naming the file and the problem.
pub fn profiles(cfg: &Config) -> anyhow::Result<Profiles> {
    use vigil_engine::patient::model::Model;
    let path = cfg
        .rules
        .get(vigil_config::Rule::SepsisModel.name())
        .and_then(|r| r.model.as_ref());
    let model = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the sepsis model {}", path.display()))?;
            let model = Model::parse(&text)
                .map_err(|e| anyhow::anyhow!("sepsis model {}: {e}", path.display()))?;
            Arc::new(model)
        }
        None => Model::shared_built_in(),
    };
    Profiles::with_model(cfg, model).map_err(|e| anyhow::anyhow!("{e}"))
}

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

    /// The same scope with partitions `owned` (the whole streams stay whole).
    pub fn with_owned(&self, owned: Vec<u32>) -> Scope {
        match self {
            Scope::All => Scope::All,
            Scope::Partitions {
                count, pinned_for, ..
            } => Scope::Partitions {
                count: *count,
                owned,
                pinned_for: *pinned_for,
            },
        }
    }

    /// The same scope with the partitions among `parts` (see [`Scope::parts`]).
    fn with_parts(&self, parts: &[Option<u32>]) -> Scope {
        self.with_owned(parts.iter().flatten().copied().collect())
    }

    /// The partitions owned (none for the whole streams).
    pub fn owned(&self) -> &[u32] {
        match self {
            Scope::All => &[],
            Scope::Partitions { owned, .. } => owned,
        }
    }

    /// Which patients and clinics the scope holds, for the actors; `None`: all of them.
    pub fn within(&self) -> Option<vigil_actors::Within> {
        match self {
            Scope::All => None,
            Scope::Partitions { count, owned, .. } => {
                let (count, owned): (u32, std::collections::BTreeSet<u32>) =
                    (*count, owned.iter().copied().collect());
                Some(Arc::new(move |tenant: &str, patient: Option<&str>| {
                    owned.contains(&vigil_streams::partition::partition_of_key(
                        tenant, patient, count,
                    ))
                }))
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

/// The started engine: what [`Running::ended`] watches, [`Running::give_up`] and
/// [`Running::take`] change partition by partition, and [`Running::stop`] drains.
pub struct Running {
    cfg: Arc<Config>,
    bus: Bus,
    /// Whole streams or partitions, their count and pinning; which parts run is `parts`.
    scope: Scope,
    shards: Shards,
    desk: Arc<Desk>,
    ingest: Ingest,
    outbox: Outbox,
    outbox_task: JoinHandle<Result<(), OutboxError>>,
    /// The consumers of each part (each owned partition, or the whole streams).
    parts: BTreeMap<Option<u32>, PartConsumers>,
    /// A part one of whose consumers ended by itself reports here.
    part_ended: mpsc::Sender<Option<u32>>,
    parts_ended: mpsc::Receiver<Option<u32>>,
    sweeper: JoinHandle<()>,
    /// Raised when the whole engine stops (the sweeper).
    stop: Arc<watch::Sender<bool>>,
    metrics: Arc<IngestMetrics>,
    /// `metrics.consumers_deleted` when the engine started.
    consumers_deleted: u64,
    /// Which of the tasks above have already been seen to finish (a finished `JoinHandle`
    /// must not be polled again).
    outbox_done: bool,
    sweeper_done: bool,
}

/// The consumers of one part (`VITALS`, `CHECKINS` and `OCCUPANCY` of one partition, or of the
/// whole streams), stopped together.
struct PartConsumers {
    stop: Arc<watch::Sender<bool>>,
    task: JoinHandle<()>,
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
        profiles: &Arc<Profiles>,
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
                profiles: profiles.clone(),
                tick_every: cfg.engine.tick.as_std(),
                on_lost: vigil_streams::receipt::fail,
            },
            outputs,
        )?;
        hub.set_commands(Arc::new(ShardCommands(shards.clone())));
        let desk = Arc::new(Desk::new(
            cfg.engine.unscheduled_after.as_millis_i64(),
            cfg.engine.practice_horizon.as_millis_i64(),
        ));
        let stop = Arc::new(watch::channel(false).0);
        let sweeper = tokio::spawn(practice::sweep_held(
            desk.clone(),
            shards.clone(),
            outbox.clone(),
            metrics.clone(),
            raised(stop.subscribe()),
        ));
        let (part_ended, parts_ended) = mpsc::channel(64);
        let mut running = Running {
            cfg: Arc::new(cfg.clone()),
            bus: bus.clone(),
            scope: scope.with_owned(Vec::new()),
            ingest: Ingest::new(outbox.clone(), metrics.clone(), cfg),
            shards,
            desk,
            outbox,
            outbox_task,
            parts: BTreeMap::new(),
            part_ended,
            parts_ended,
            sweeper,
            stop,
            metrics: metrics.clone(),
            consumers_deleted: metrics.consumers_deleted.load(Relaxed),
            outbox_done: false,
            sweeper_done: false,
        };
        // What was started is drained again if the rest cannot start.
        if let Err(e) = running.add(scope.parts()).await {
            let _ = running.stop().await;
            return Err(e);
        }
        hub.set_ready(true);
        Ok(running)
    }
}

impl Running {
    /// Where this engine's actors take commands (what [`Engine::start`] gave the hub).
    pub fn commands(&self) -> Arc<dyn vigil_gateway::CommandPort> {
        Arc::new(ShardCommands(self.shards.clone()))
    }

    /// Recovers `parts` into the running actors (their windows, practice state and open
    /// alerts, as at start), then starts their consumers.
    async fn add(&mut self, parts: Vec<Option<u32>>) -> anyhow::Result<()> {
        let scope = self.scope.with_parts(&parts);
        let mut sink = self.practice_sink("CHECKINS");
        let recovered = recovery::recover(
            &self.bus,
            &self.cfg,
            &scope,
            &self.shards,
            &self.outbox,
            &mut sink,
        )
        .await?;
        self.metrics
            .recovery_unreadable_alerts
            .store(recovered.unreadable as u64, Relaxed);
        tracing::info!(
            events = recovered.events,
            open_alerts = recovered.alerts,
            unreadable = recovered.unreadable,
            seconds = recovered.elapsed.as_secs_f64(),
            partitions = ?scope.owned(),
            "recovery finished"
        );
        // The parts' consumers are bound together, BIND_AT_ONCE parts at a time: each binding
        // is a few JetStream API round trips, and one whose consumer must first elect a leader
        // (a NATS node lost) waits seconds for it. One after another, 48 of them took 108 s
        // after a node loss; all at once, hundreds of partitions would queue on NATS's API
        // past the requests' timeout.
        let this = &*self;
        let bound: Vec<_> = futures::stream::iter(parts.into_iter().map(|index| async move {
            let stop = Arc::new(watch::channel(false).0);
            let consumers = this.consumers(index, &stop).await?;
            anyhow::Ok((index, stop, consumers))
        }))
        .buffer_unordered(BIND_AT_ONCE)
        .try_collect()
        .await?;
        for (index, stop, consumers) in bound {
            let (ended, both) = (self.part_ended.clone(), stop.clone());
            let task = tokio::spawn(async move {
                if run_together(consumers, both).await {
                    let _ = ended.send(index).await;
                }
            });
            self.parts.insert(index, PartConsumers { stop, task });
        }
        Ok(())
    }

    /// The three consumers of one part, each running until `stop` is raised.
    async fn consumers(
        &self,
        index: Option<u32>,
        stop: &watch::Sender<bool>,
    ) -> anyhow::Result<Vec<Consumer>> {
        let (bus, cfg, ingest) = (&self.bus, &self.cfg, &self.ingest);
        let part = self.scope.part(index);
        let sink = ShardSink::new(self.shards.clone());
        let (checkins, occupancy) = (
            self.practice_sink("CHECKINS"),
            self.practice_sink("OCCUPANCY"),
        );
        let (vitals, checkins, occupancy) = tokio::try_join!(
            consume::<Vitals, _>(bus, cfg, part, ingest, sink, stop),
            consume::<Checkins, _>(bus, cfg, part, ingest, checkins, stop),
            consume::<Occupancy, _>(bus, cfg, part, ingest, occupancy, stop),
        )?;
        Ok(vec![vitals, checkins, occupancy])
    }

    fn practice_sink(&self, stream: &'static str) -> PracticeSink {
        PracticeSink::new(
            stream,
            self.desk.clone(),
            self.shards.clone(),
            self.outbox.clone(),
            self.metrics.clone(),
        )
    }

    /// Takes partitions `took` over while the others run on: recovers them into the running
    /// actors and starts their consumers. The partitions already run are not paused.
    ///
    /// # Errors
    /// When recovery cannot read the streams or a consumer cannot be bound.
    pub async fn take(&mut self, took: &[u32]) -> anyhow::Result<()> {
        self.add(took.iter().copied().map(Some).collect()).await
    }

    /// Hands partitions `gone` over while the others run on: their consumers finish and
    /// acknowledge what they applied, their patients and clinics are stopped (their timers
    /// with them) and forgotten, and everything those produced is stored. Only then may their
    /// claims be released: the next owner recovers exactly what this one left.
    pub async fn give_up(&mut self, gone: &[u32]) {
        for p in gone {
            if let Some(part) = self.parts.remove(&Some(*p)) {
                part.stop.send_replace(true);
                let _ = part.task.await;
            }
        }
        if let Some(within) = self.scope.with_owned(gone.to_vec()).within() {
            let evicted = self.shards.evict(within.clone()).await;
            let appointments = self.desk.forget_tenants(&|tenant| within(tenant, None));
            tracing::debug!(?gone, evicted, appointments, "handed-over owners forgotten");
        }
        // As at a whole stop, at most OUTBOX_DRAIN: with NATS away nothing can be stored (nor
        // the claims released); what is not stored by then is recomputed by the next owner.
        if tokio::time::timeout(OUTBOX_DRAIN, self.outbox.settled())
            .await
            .is_err()
        {
            tracing::error!(
                ?gone,
                "outputs of the partitions handed over still unpublished after 10 s; the next owner recomputes them"
            );
        }
    }

    /// Resolves when a part of the engine ends by itself, with what ended. A consumer that
    /// ends stops the other consumers of its part.
    pub async fn ended(&mut self) -> Ended {
        let what = tokio::select! {
            Some(_) = self.parts_ended.recv() => return self.consumer_ended(),
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
        let Running {
            bus,
            shards,
            outbox,
            outbox_task,
            parts,
            sweeper,
            stop,
            ingest,
            desk,
            outbox_done,
            sweeper_done,
            ..
        } = self;
        stop.send_replace(true);
        for part in parts.values() {
            part.stop.send_replace(true);
        }
        for (_, part) in parts {
            let _ = part.task.await;
        }
        if !sweeper_done {
            let _ = sweeper.await;
        }
        tokio::task::spawn_blocking(move || shards.stop())
            .await
            .context("stopping the actors")?;
        // The outbox ends once every sender is gone: the actors' went with them.
        drop((outbox, ingest, desk));
        if !outbox_done
            && tokio::time::timeout(OUTBOX_DRAIN, outbox_task)
                .await
                .is_err()
        {
            tracing::error!("outputs still unpublished after 10 s; they are recomputed on replay");
        }
        // The last acknowledgements are still in the client's buffer.
        match tokio::time::timeout(FLUSH_WAIT, bus.flush()).await {
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

/// Runs one part's consumers together; the first to end by itself (its stream gone, an
/// acknowledgement stopped) raises `stop` for the others. Returns whether one did.
async fn run_together(consumers: Vec<Consumer>, stop: Arc<watch::Sender<bool>>) -> bool {
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
