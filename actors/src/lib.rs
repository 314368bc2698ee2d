//! vigil-actors: actix actors that own engine state. One actor type for every kind of owner,
//! [`OwnerActor`] over the engine's `StateOwner` (`owner.rs`; the timer in `deadline.rs`), and
//! one router type, [`Router`] (`router.rs`), that creates them on first contact, hands them
//! their part of each batch and passivates idle ones. [`Shards`] runs one arbiter per core
//! and, on each, one router per kind of owner: patients ([`PatientActor`], `patient.rs`) and
//! the practice's locations, providers and resources ([`KeeperActor`], `practice.rs`). What a
//! kind brings is two traits: [`Kept`] for its actor, [`Routed`] for its router. Every
//! message is in `messages.rs`.
//!
//! Dependency chain: `config` -> `engine` -> **`actors`** -> `vigil`. Actors call the pure engine
//! and hand what it produces to an [`Outputs`] port that the binary wires to NATS and the gateway.
//!
//! Queues and what happens when they are full (the table in docs/architecture.md):
//! - router mailboxes are bounded (`engine.mailbox`); the ingest loop uses `send`, which waits for
//!   room, so a slow shard slows the consumer instead of growing memory;
//! - patient mailboxes are bounded too; the router `try_send`s and, when one is full, blocks its
//!   own mailbox (`ctx.wait`) until the patient has room, which again reaches the consumer;
//! - an output queue that is full blocks the patient actor the same way: nothing is dropped and
//!   transitions of one alert stay in order.
//!
//! The number of batches in flight (`nats.max_inflight_batches`) bounds all of these in practice.

mod deadline;
mod messages;
mod owner;
mod patient;
pub mod practice;
mod router;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::practice::keeper::ResourceView;
use vigil_engine::{
    Alert, CommandError, Owner, PatientStatus, PatientView, Profiles, Reading, Timestamp,
};

pub use vigil_engine::AlertCommand;

pub use owner::{Kept, OwnerActor};
pub use patient::PatientActor;
pub use practice::{KeeperActor, PracticeInput};
pub use router::{Address, KeeperRouter, PatientRouter, Routed, Router};

use messages::{Batch, Command, Count, Deliver, Evict, Held, Recover};
use vigil_engine::practice::keeper::Keeper;

/// The machine's clock as engine time (the only wall-clock read of the actors).
pub(crate) fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}

/// A type-erased batch receipt (see `vigil_streams::receipt`): dropped when the work is done.
pub type Receipt = Arc<dyn std::any::Any + Send + Sync>;

/// A future an actor must finish before it takes its next message.
pub type Backpressure = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a patient actor produces, and where it goes.
pub trait Outputs: Send + Sync + 'static {
    /// Every alert transition, in order. Returns a future when the output queue is full: the
    /// actor waits for it before handling anything else.
    fn alert(&self, alert: &Alert, receipt: Option<Receipt>) -> Option<Backpressure>;
    /// The patient's latest score and vitals (coalesced downstream).
    fn patient(&self, status: PatientStatus);
    /// An alert restored on recovery, as stored on `ALERTS`: shown to dashboards, not
    /// published again.
    fn restored(&self, alert: &Alert);
    /// A provider's, resource's or waiting area's live state (coalesced downstream).
    fn resource(&self, view: ResourceView);
}

/// Actor-level settings.
#[derive(Debug, Clone)]
pub struct ActorSettings {
    pub shards: usize,
    pub mailbox: usize,
    pub passivate_after_ms: i64,
    /// Threshold profiles; each patient uses the one of its unit.
    pub profiles: Arc<Profiles>,
    /// How often each patient actor checks for signal loss (wall clock).
    pub tick_every: std::time::Duration,
    /// Called with the receipt of a batch whose message was dropped unapplied (a stopped
    /// shard): the binary passes `vigil_streams::receipt::fail`, so the batch is never
    /// acknowledged.
    pub on_lost: fn(&Receipt),
}

/// Why the actor system could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum ActorsError {
    #[error("cannot start the actor system: {0}")]
    Start(String),
    #[error("patient shard is not running")]
    Stopped,
}

/// Which owners an operation is for: `(tenant, Some(patient))` for a patient,
/// `(tenant, None)` for a clinic's keepers (locations, providers, resources), which go where
/// their tenant goes. A cluster member's partitions, for example.
pub type Within = Arc<dyn Fn(&str, Option<&str>) -> bool + Send + Sync>;

/// Handle to the running shards: one arbiter per core, each with a patient router and a keeper
/// router; cheap to clone, usable from any thread or runtime.
#[derive(Clone)]
pub struct Shards {
    patients: Arc<Vec<Addr<PatientRouter>>>,
    keepers: Arc<Vec<Addr<KeeperRouter>>>,
    on_lost: fn(&Receipt),
    system: System,
    thread: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
}

/// FNV-1a over `tenant` and `patient`: stable across processes and versions.
pub fn shard_of(tenant: &str, patient: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in tenant
        .as_bytes()
        .iter()
        .chain(b".")
        .chain(patient.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

/// A router hands a batch to one of its actors: at once when the actor's mailbox has room,
/// otherwise the router waits for room before it takes its own next message (backpressure
/// up to the consumer, not loss). Returns `false` when the actor has stopped.
///
/// The address is borrowed: cloning an actix `Addr` allocates two `Arc`s (its sender's task
/// and parked flag), which a router paid for every owner of every batch. Only a full mailbox,
/// whose wait outlives this call, takes a clone.
pub(crate) fn hand_off<R, A, M>(
    router: &mut R,
    ctx: &mut Context<R>,
    addr: &Addr<A>,
    msg: M,
) -> bool
where
    R: Actor<Context = Context<R>>,
    A: Actor + Handler<M>,
    A::Context: actix::dev::ToEnvelope<A, M>,
    M: Message<Result = ()> + Send + 'static,
{
    match addr.try_send(msg) {
        Ok(()) => true,
        Err(SendError::Full(msg)) => {
            let addr = addr.clone();
            ctx.wait(
                async move {
                    let _ = addr.send(msg).await;
                }
                .into_actor(router),
            );
            true
        }
        Err(SendError::Closed(_)) => false,
    }
}

/// Hands each router its share of `items` (`shard` picks it; `None` skips the item) as one
/// message, in order. Most hand-offs find room; only a full mailbox makes the caller wait, so
/// a slow shard slows the consumer instead of growing memory.
async fn scatter<R, I, M>(
    routers: &[Addr<R>],
    items: Vec<I>,
    shard: impl Fn(&I, usize) -> Option<usize>,
    message: impl Fn(Vec<I>) -> M,
    what: &'static str,
) -> bool
where
    R: Actor + Handler<M>,
    R::Context: actix::dev::ToEnvelope<R, M>,
    M: Message<Result = ()> + Send + 'static,
{
    let mut all_sent = true;
    let n = routers.len();
    // Sized for an even share and an eighth more (the hash spreads items about evenly), so a
    // chunk of thousands is not copied through a dozen doublings on its way to a shard.
    let share = items.len() / n.max(1);
    let mut per_shard: Vec<Vec<I>> = (0..n)
        .map(|_| Vec::with_capacity(share + share / 8 + 8))
        .collect();
    for item in items {
        if let Some(i) = shard(&item, n) {
            per_shard[i].push(item);
        }
    }
    for (router, items) in routers.iter().zip(per_shard) {
        if items.is_empty() {
            continue;
        }
        let sent = match router.try_send(message(items)) {
            Ok(()) => Ok(()),
            Err(SendError::Full(msg)) => router.send(msg).await.map_err(|_| ()),
            Err(SendError::Closed(_)) => Err(()),
        };
        if sent.is_err() {
            // The caller fails the batch's receipt: it must never be acknowledged.
            tracing::error!(
                "{what} shard stopped; the batch stays unacknowledged and is redelivered after restart"
            );
            all_sent = false;
        }
    }
    all_sent
}

impl Shards {
    /// Starts an actix system on its own thread with one arbiter (thread) per shard.
    ///
    /// # Errors
    /// [`ActorsError::Start`] when the threads cannot be started.
    pub fn start(settings: ActorSettings, outputs: Arc<dyn Outputs>) -> Result<Self, ActorsError> {
        let shards = if settings.shards == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            settings.shards
        };
        let on_lost = settings.on_lost;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("vigil-actors".into())
            .spawn(move || {
                let system = System::new();
                system.block_on(async move {
                    let mut patients = Vec::with_capacity(shards);
                    let mut keepers = Vec::with_capacity(shards);
                    for i in 0..shards {
                        let arbiter = Arbiter::new();
                        patients.push(Router::start_on(&arbiter, i, &settings, &outputs));
                        keepers.push(Router::start_on(&arbiter, i, &settings, &outputs));
                    }
                    let _ = tx.send((patients, keepers, System::current()));
                });
                if let Err(e) = system.run() {
                    tracing::error!(error = %e, "actor system ended with an error");
                }
            })
            .map_err(|e| ActorsError::Start(e.to_string()))?;
        let (patients, keepers, system) =
            rx.recv().map_err(|e| ActorsError::Start(e.to_string()))?;
        Ok(Self {
            patients: Arc::new(patients),
            keepers: Arc::new(keepers),
            on_lost,
            system,
            thread: Arc::new(std::sync::Mutex::new(Some(thread))),
        })
    }

    /// Hands readings to their shards, waiting while a shard's mailbox is full. `receipt` is
    /// held until every reading has been applied and its outputs published. Returns false when a
    /// shard has stopped: some inputs were not handed on, and the caller must fail the receipt
    /// so the batch is never acknowledged.
    #[must_use]
    pub async fn deliver(&self, readings: Vec<Reading<'static>>, receipt: Receipt) -> bool {
        self.deliver_as(readings, receipt, false).await
    }

    async fn deliver_as(
        &self,
        readings: Vec<Reading<'static>>,
        receipt: Receipt,
        history: bool,
    ) -> bool {
        self.deliver_to(&self.patients, readings, receipt, history, "patient")
            .await
    }

    /// Hands each router of `routers` its share of `items` (by the hash of the owner each one
    /// names) as one message.
    async fn deliver_to<O: Routed>(
        &self,
        routers: &[Addr<Router<O>>],
        items: Vec<O::Item>,
        receipt: Receipt,
        history: bool,
        what: &'static str,
    ) -> bool
    where
        OwnerActor<O>: Handler<messages::Apply<O>> + Actor<Context = Context<OwnerActor<O>>>,
    {
        let shard = |item: &O::Item, n| O::address(item).map(|a| shard_of(a.tenant, a.id, n));
        let on_lost = self.on_lost;
        let message = |items| {
            Deliver::<O>(Batch {
                items,
                held: Held::new(receipt.clone(), on_lost),
                history,
            })
        };
        scatter(routers, items, shard, message, what).await
    }

    /// Recovery: hands already-acknowledged history to the shards. The events rebuild the
    /// windows and rule state; nothing they cause is published (it was, before the restart).
    /// Returns false when a shard has stopped (as [`Shards::deliver`]).
    #[must_use]
    pub async fn deliver_history(&self, readings: Vec<Reading<'static>>, receipt: Receipt) -> bool {
        self.deliver_as(readings, receipt, true).await
    }

    /// Recovery: reconciles every patient with the alerts `ALERTS` holds open and those
    /// resolved that recovery hands over (see `Patient::reconcile`), creating actors for
    /// patients with any of them, and every keeper with its open ones and those a person
    /// resolved (an actor for an open one). Returns how many open alerts were installed.
    /// Only the owners `within` names are reconciled (partitions taken over while others run
    /// on); `None`: every owner.
    pub async fn recover(&self, alerts: Vec<Alert>, within: Option<Within>) -> usize {
        // Delay alerts belong to the keepers (which take the open ones and those a person
        // resolved); a patient needs every open alert id.
        let (mut keepers, patients): (Vec<Alert>, Vec<Alert>) = alerts
            .into_iter()
            .partition(|a| a.owner().is_some_and(|o| Keeper::owned(&o).is_some()));
        keepers.retain(|a| a.is_active() || a.resolved_by_person());
        let open: Arc<std::collections::HashSet<String>> = Arc::new(
            patients
                .iter()
                .filter(|a| a.is_active())
                .map(|a| a.alert_id.clone())
                .collect(),
        );
        recover_on(&self.keepers, keepers, Arc::default(), within.clone()).await
            + recover_on(&self.patients, patients, open, within).await
    }

    /// Stops and forgets every owner `within` names (patients by tenant and id, a clinic's
    /// keepers by tenant), each once it has finished what it had queued: a cluster member
    /// handed their partitions over. Their timers stop with them. Returns how many.
    pub async fn evict(&self, within: Within) -> usize {
        let mut evicted = 0;
        for r in self.patients.iter() {
            evicted += r.send(Evict(within.clone())).await.unwrap_or(0);
        }
        for r in self.keepers.iter() {
            evicted += r.send(Evict(within.clone())).await.unwrap_or(0);
        }
        evicted
    }

    /// Hands practice inputs to the actors they name (a location, provider or resource),
    /// waiting while a shard's mailbox is full. `receipt` is held until every input has been
    /// applied and its outputs published.
    /// Returns false when a shard has stopped (as [`Shards::deliver`]).
    #[must_use]
    pub async fn deliver_practice(&self, inputs: Vec<PracticeInput>, receipt: Receipt) -> bool {
        self.deliver_practice_as(inputs, receipt, false).await
    }

    /// Recovery: hands already-acknowledged practice history to the actors; nothing they
    /// cause is published (it was, before the restart).
    /// Returns false when a shard has stopped (as [`Shards::deliver`]).
    #[must_use]
    pub async fn deliver_practice_history(
        &self,
        inputs: Vec<PracticeInput>,
        receipt: Receipt,
    ) -> bool {
        self.deliver_practice_as(inputs, receipt, true).await
    }

    async fn deliver_practice_as(
        &self,
        inputs: Vec<PracticeInput>,
        receipt: Receipt,
        history: bool,
    ) -> bool {
        self.deliver_to(&self.keepers, inputs, receipt, history, "practice")
            .await
    }

    /// Applies a command through the actor that owns the alert (the patient's, or a
    /// location's, provider's or resource's), serialized with its events. `receipt` goes with
    /// the transition to the outbox and drops once it is stored (at once when nothing changed).
    ///
    /// # Errors
    /// The engine's refusal, or `NotFound` when the owner has no live actor.
    pub async fn command(
        &self,
        cmd: AlertCommand,
        receipt: Receipt,
    ) -> Result<Result<Alert, CommandError>, ActorsError> {
        let routed = match &cmd.owner {
            Owner::Patient(_) => command_on(&self.patients, cmd, receipt).await,
            _ => command_on(&self.keepers, cmd, receipt).await,
        };
        routed.map_err(|_| ActorsError::Stopped)
    }

    /// A patient as `GET /api/patients/{patientId}` shows it, from its actor (in order with
    /// its readings). `None` when the patient has no live actor here.
    ///
    /// # Errors
    /// When the patient's shard has stopped.
    pub async fn patient_view(
        &self,
        tenant: &str,
        patient_id: &str,
    ) -> Result<Option<PatientView>, ActorsError> {
        let i = shard_of(tenant, patient_id, self.patients.len());
        let view = messages::View {
            tenant: tenant.to_string(),
            patient_id: patient_id.to_string(),
        };
        self.patients[i]
            .send(view)
            .await
            .map_err(|_| ActorsError::Stopped)
    }

    /// Counts live practice actors.
    pub async fn practice_count(&self) -> usize {
        count_on(&self.keepers).await
    }

    /// Counts live patient actors (for `/metrics` and memory measurements).
    pub async fn patient_count(&self) -> usize {
        count_on(&self.patients).await
    }

    /// Stops every actor and joins the actor thread. Call after ingest has drained.
    pub fn stop(&self) {
        self.system.stop();
        if let Some(t) = self.thread.lock().ok().and_then(|mut g| g.take()) {
            let _ = t.join();
        }
    }
}

impl<O: Routed> Router<O> {
    /// Starts a router on `arbiter` with a bounded mailbox.
    fn start_on(
        arbiter: &Arbiter,
        shard: usize,
        settings: &ActorSettings,
        outputs: &Arc<dyn Outputs>,
    ) -> Addr<Self> {
        let (s, o) = (settings.clone(), outputs.clone());
        Router::start_in_arbiter(&arbiter.handle(), move |ctx| {
            ctx.set_mailbox_capacity(s.mailbox);
            Router::new(shard, s, o)
        })
    }
}

/// Hands each router of `routers` the alerts of the owners whose keys hash to it.
async fn recover_on<O: Routed>(
    routers: &[Addr<Router<O>>],
    alerts: Vec<Alert>,
    open: Arc<std::collections::HashSet<String>>,
    within: Option<Within>,
) -> usize {
    let n = routers.len();
    let mut per_shard: Vec<Vec<Alert>> = (0..n).map(|_| Vec::new()).collect();
    for a in alerts {
        let Some(owner) = a.owner() else { continue };
        if let Some((_, id)) = O::owned(&owner) {
            per_shard[shard_of(&a.tenant_id, id, n)].push(a);
        }
    }
    let mut installed = 0;
    for (router, alerts) in routers.iter().zip(per_shard) {
        let open = open.clone();
        let within = within.clone();
        installed += router
            .send(Recover {
                alerts,
                open,
                within,
            })
            .await
            .unwrap_or(0);
    }
    installed
}

/// Sends a command to the router of the shard its owner hashes to.
async fn command_on<O: Routed>(
    routers: &[Addr<Router<O>>],
    cmd: AlertCommand,
    receipt: Receipt,
) -> Result<Result<Alert, CommandError>, MailboxError> {
    let id = O::owned(&cmd.owner).map_or("", |(_, id)| id);
    let i = shard_of(&cmd.tenant, id, routers.len());
    routers[i].send(Command(cmd, receipt)).await
}

async fn count_on<O: Routed>(routers: &[Addr<Router<O>>]) -> usize {
    let mut total = 0;
    for r in routers {
        total += r.send(Count).await.unwrap_or(0);
    }
    total
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Mutex;
    use std::time::Duration;

    use vigil_engine::{AlertState, CommandKind, ReadingBody, Vitals};

    use super::*;

    #[derive(Default)]
    struct Recorder {
        alerts: Mutex<Vec<Alert>>,
        updates: Mutex<Vec<PatientStatus>>,
        resources: Mutex<Vec<ResourceView>>,
    }

    impl Outputs for Recorder {
        fn alert(&self, alert: &Alert, _: Option<Receipt>) -> Option<Backpressure> {
            self.alerts.lock().unwrap().push(alert.clone());
            None
        }
        fn patient(&self, update: PatientStatus) {
            self.updates.lock().unwrap().push(update);
        }
        fn restored(&self, alert: &Alert) {
            self.alerts.lock().unwrap().push(alert.clone());
        }
        fn resource(&self, view: ResourceView) {
            self.resources.lock().unwrap().push(view);
        }
    }

    /// Event times start at the test's start: escalation deadlines (minutes after opening)
    /// stay in the future while the test runs.
    fn base_millis() -> i64 {
        static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
        *BASE.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64)
        })
    }

    fn input(patient: &str, minute: i64, hr: f64) -> Reading<'static> {
        Reading {
            meta: vigil_engine::EventMeta {
                event_id: format!("{patient}-{minute}").into(),
                tenant_id: "t1".into(),
                occurred_at: Timestamp::from_millis(base_millis() + minute * 60_000),
                correlation_id: None,
            },
            patient_id: patient.to_string().into(),
            unit_id: "icu-3".into(),
            bed_id: None,
            body: ReadingBody::Vitals(Vitals {
                hr: Some(hr),
                rr: Some(26.0),
                spo2: Some(91.0),
                ..Vitals::default()
            }),
        }
    }

    fn start(passivate_after_ms: i64, recorder: Arc<Recorder>) -> Shards {
        let settings = ActorSettings {
            shards: 2,
            mailbox: 4,
            passivate_after_ms,
            profiles: Arc::new(Profiles::single(vigil_engine::Settings::default())),
            tick_every: Duration::from_secs(10),
            on_lost: mark_lost,
        };
        Shards::start(settings, recorder).expect("start")
    }

    /// A test receipt that records whether its batch was lost.
    fn watched_receipt() -> (Receipt, Arc<std::sync::atomic::AtomicBool>) {
        let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
        (Arc::new(lost.clone()), lost)
    }

    fn mark_lost(receipt: &Receipt) {
        if let Some(lost) = receipt.downcast_ref::<Arc<std::sync::atomic::AtomicBool>>() {
            lost.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    async fn settle(receipt_holder: Receipt) {
        // The receipt is dropped by every actor once applied: wait for that.
        for _ in 0..200 {
            if Arc::strong_count(&receipt_holder) == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("inputs were not applied");
    }

    #[tokio::test]
    async fn a_stopped_shard_says_so_instead_of_dropping_a_batch_as_done() {
        let recorder = Arc::new(Recorder::default());
        let shards = start(60_000, recorder);
        let stopper = shards.clone();
        tokio::task::spawn_blocking(move || stopper.stop())
            .await
            .unwrap();
        // Refused at once, or taken by a router whose arbiter is winding down and then dropped
        // unapplied: either way the batch must fail rather than count as done.
        let (receipt, lost) = watched_receipt();
        let _handed = shards.deliver(vec![input("p1", 0, 80.0)], receipt).await;
        for _ in 0..200 {
            if lost.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("a batch given to a stopped shard was neither refused nor failed");
    }

    #[tokio::test]
    async fn an_applied_batch_is_not_lost_and_a_dropped_message_fails_its_batch() {
        let rec = Arc::new(Recorder::default());
        let shards = start(3_600_000, rec);
        let (receipt, lost) = watched_receipt();
        assert!(
            shards
                .deliver(vec![input("p1", 0, 80.0)], receipt.clone())
                .await
        );
        settle(receipt).await;
        assert!(!lost.load(std::sync::atomic::Ordering::SeqCst));

        let (receipt, lost) = watched_receipt();
        drop(Held::new(receipt, mark_lost));
        assert!(lost.load(std::sync::atomic::Ordering::SeqCst));
        shards.stop();
    }

    #[tokio::test]
    async fn events_reach_their_patient_in_order_and_commands_are_serialized() {
        let rec = Arc::new(Recorder::default());
        let shards = start(3_600_000, rec.clone());
        let receipt: Receipt = Arc::new(());
        // More inputs than the mailbox holds: backpressure, nothing lost.
        let inputs: Vec<Reading<'static>> = (0..40)
            .map(|i| input(&format!("p{}", i % 10), i / 10, 140.0))
            .collect();
        assert!(shards.deliver(inputs, receipt.clone()).await);
        settle(receipt).await;
        // HR 140 also raises the sepsis model's risk: only the NEWS2 alerts matter here.
        let mut alerts = rec.alerts.lock().unwrap().clone();
        let recorded = alerts.len();
        alerts.retain(|a| a.rule != "sepsis.model");
        assert_eq!(alerts.len(), 10, "one high alert per patient");
        assert!(alerts.iter().all(|a| a.rule == "news2.high"));
        assert_eq!(shards.patient_count().await, 10);
        let a = &alerts[0];
        let cmd = AlertCommand {
            tenant: "t1".into(),
            owner: Owner::Patient(a.patient_id.clone().unwrap()),
            alert_id: a.alert_id.clone(),
            kind: CommandKind::Ack,
            page_id: String::new(),
            role: vigil_config::Role::Nurse,
            by: "nurse-1".into(),
            reason: String::new(),
            at: Timestamp::from_millis(base_millis() + 15 * 60_000),
        };
        let acked = shards
            .command(cmd.clone(), Arc::new(()))
            .await
            .unwrap()
            .expect("ack");
        assert_eq!(acked.state, AlertState::Acknowledged);
        let again = shards.command(cmd.clone(), Arc::new(())).await.unwrap();
        assert_eq!(again.expect_err("twice").code(), "INVALID_TRANSITION");
        let unknown = AlertCommand {
            owner: Owner::Patient("nobody".into()),
            ..cmd
        };
        assert_eq!(
            shards
                .command(unknown, Arc::new(()))
                .await
                .unwrap()
                .expect_err("404")
                .code(),
            "ALERT_NOT_FOUND"
        );
        assert_eq!(
            rec.alerts.lock().unwrap().len(),
            recorded + 1,
            "the ack is an output too"
        );
        shards.stop();
    }

    /// Many batches for one patient, faster than it applies them: its mailbox (4) fills, the
    /// router waits for room ([`hand_off`]'s full-mailbox path, with its own clone of the
    /// address), and every reading is applied once, in order.
    #[tokio::test]
    async fn a_full_mailbox_holds_the_router_back_and_loses_nothing() {
        let rec = Arc::new(Recorder::default());
        let shards = start(3_600_000, rec.clone());
        let receipt: Receipt = Arc::new(());
        for minute in 0..60 {
            let reading = input("p1", minute, 70.0);
            assert!(shards.deliver(vec![reading], receipt.clone()).await);
        }
        settle(receipt).await;
        let times: Vec<i64> = rec
            .updates
            .lock()
            .unwrap()
            .iter()
            .map(|u| (u.at.millis() - base_millis()) / 60_000)
            .collect();
        assert_eq!(times, (0..60).collect::<Vec<i64>>());
        shards.stop();
    }

    #[tokio::test]
    async fn idle_patients_without_open_alerts_are_passivated() {
        let rec = Arc::new(Recorder::default());
        let shards = start(200, rec.clone());
        let receipt: Receipt = Arc::new(());
        // p-calm scores low (no alert); p-sick fires news2.high and must be kept.
        let mut inputs = vec![input("p-calm", 0, 70.0), input("p-calm", 1, 70.0)];
        for i in &mut inputs {
            if let ReadingBody::Vitals(v) = &mut i.body {
                v.rr = Some(16.0);
                v.spo2 = Some(98.0);
            }
        }
        inputs.extend([input("p-sick", 0, 140.0), input("p-sick", 1, 140.0)]);
        assert!(shards.deliver(inputs, receipt.clone()).await);
        settle(receipt).await;
        assert_eq!(shards.patient_count().await, 2);
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(
            shards.patient_count().await,
            1,
            "the calm patient is passivated, the sick one kept"
        );
        shards.stop();
    }

    #[test]
    fn shard_hash_is_stable() {
        assert_eq!(
            shard_of("clinic-abc", "patient-123", 2),
            shard_of("clinic-abc", "patient-123", 2)
        );
        let spread: std::collections::HashSet<usize> = (0..100)
            .map(|i| shard_of("t", &format!("p{i}"), 4))
            .collect();
        assert_eq!(spread.len(), 4);
    }
}
