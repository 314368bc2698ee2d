//! One router per owner kind per arbiter, [`Router<O>`]: it owns the map from an owner's key to
//! its actor, creates actors on first contact, hands each one its part of a batch in one
//! message, forwards commands and recovery, and passivates idle owners of the kinds that
//! allow it. What differs by kind is [`Routed`]: how an input names its owner and how an
//! owner's actor is made.

use std::cell::Cell;
use std::fmt::Debug;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rustc_hash::{FxBuildHasher, FxHashMap};
use vigil_engine::{Alert, CommandError, Owner};

use crate::messages::{
    Apply, Batch, Command, Count, Deliver, Evict, Passivate, Reconcile, Recover,
};
use crate::owner::{Kept, OwnerActor};
use crate::{ActorSettings, Outputs};

/// Where an input or an alert belongs: the owner's kind, tenant and id, and the unit its actor
/// starts in (patients; empty where it does not apply).
#[derive(Debug, Clone, Copy)]
pub struct Address<'a, K> {
    pub kind: K,
    pub tenant: &'a str,
    pub id: &'a str,
    pub unit: &'a str,
}

/// What a router needs of a kind of owner beyond [`Kept`].
pub trait Routed: Kept {
    /// Tells owners of this type apart beyond their id (a keeper's kind; nothing for patients).
    type Kind: Copy + Eq + Debug + Unpin + 'static;
    /// One input, as ingest hands it to a router and the router to the owner's actor.
    type Item: Send + Unpin + 'static;
    /// Whether an idle owner without an open alert is stopped (its state is rebuilt from the
    /// next events).
    const PASSIVATES: bool;
    /// Whether an owner belongs where its tenant and id say (a patient), or where its tenant
    /// alone says (a clinic's keepers): what a [`crate::Within`] is asked.
    const BY_ID: bool;
    /// Whether a resolved alert `ALERTS` holds gives an owner an actor at recovery, history
    /// or not (a patient: the readings redelivered next may derive it again).
    const KEEPS_RESOLVED: bool;

    /// The owner an input is for; `None` for an input no owner of this type takes.
    fn address(item: &Self::Item) -> Option<Address<'_, Self::Kind>>;

    /// The owner an alert or a command names, if it is of this type.
    fn owned(owner: &Owner) -> Option<(Self::Kind, &str)>;

    /// The actor for a new owner. `keep` is shared with the router: the actor sets it while
    /// its owner has an open alert, and passivation skips it then.
    fn actor(
        at: Address<'_, Self::Kind>,
        settings: &ActorSettings,
        outputs: Arc<dyn Outputs>,
        keep: Rc<Cell<bool>>,
    ) -> OwnerActor<Self>;
}

pub(crate) struct Entry<O: Kept> {
    /// Shared with a batch's parts (`Part`) without cloning the `Addr` ([`crate::hand_off`]).
    pub(crate) addr: Rc<Addr<OwnerActor<O>>>,
    last_input: Instant,
    /// Set by the owner's actor (same thread) while it has a non-resolved alert.
    keep: Rc<Cell<bool>>,
    /// Where this owner's inputs are collected in the batch being routed: valid while its
    /// first element is the router's current batch number (so nothing needs resetting).
    slot: (u64, usize),
}

/// A map whose `entry_ref` looks a borrowed key up once and copies it only on insert.
type Map<V> = hashbrown::HashMap<String, V, FxBuildHasher>;

/// The owners of one kind: tenant -> id -> actor.
type Tenants<O> = Map<Map<Entry<O>>>;

/// One owner's part of the batch being routed.
type Part<O> = (Rc<Addr<OwnerActor<O>>>, Vec<<O as Routed>::Item>);

/// The owners of one kind whose keys hash to one arbiter.
pub struct Router<O: Routed> {
    shard: usize,
    settings: ActorSettings,
    outputs: Arc<dyn Outputs>,
    /// kind -> tenant -> id -> actor. Kinds are few (one or three), so a list; tenants and
    /// ids are nested maps so lookups borrow the event's strings, one lookup per level per
    /// event. Fx hashing: keys are identifiers the engine routes on, not user input whose
    /// collisions could hurt anything but this shard's speed.
    owners: Vec<(O::Kind, Tenants<O>)>,
    /// Numbers the batches routed, for [`Entry::slot`].
    batch: u64,
}

pub type PatientRouter = Router<vigil_engine::Patient>;
pub type KeeperRouter = Router<vigil_engine::practice::keeper::Keeper>;

impl<O: Routed> Router<O> {
    pub fn new(shard: usize, settings: ActorSettings, outputs: Arc<dyn Outputs>) -> Self {
        Self {
            shard,
            settings,
            outputs,
            owners: Vec::new(),
            batch: 0,
        }
    }

    /// The owners of `kind`, added on first use.
    fn of_kind(owners: &mut Vec<(O::Kind, Tenants<O>)>, kind: O::Kind) -> &mut Tenants<O> {
        let i = match owners.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                owners.push((kind, Map::default()));
                owners.len() - 1
            }
        };
        &mut owners[i].1
    }

    fn entry(&mut self, at: Address<'_, O::Kind>) -> &mut Entry<O> {
        // Borrowed, not cloned: this runs for every event.
        let (settings, outputs) = (&self.settings, &self.outputs);
        Self::of_kind(&mut self.owners, at.kind)
            .entry_ref(at.tenant)
            .or_default()
            .entry_ref(at.id)
            .or_insert_with(|| {
                let keep = Rc::new(Cell::new(false));
                let actor = O::actor(at, settings, outputs.clone(), keep.clone());
                let mailbox = settings.mailbox;
                let addr = OwnerActor::create(move |ctx| {
                    ctx.set_mailbox_capacity(mailbox);
                    actor
                });
                Entry {
                    addr: Rc::new(addr),
                    last_input: Instant::now(),
                    keep,
                    slot: (0, 0),
                }
            })
    }

    pub(crate) fn get(&self, kind: O::Kind, tenant: &str, id: &str) -> Option<&Entry<O>> {
        let (_, owners) = self.owners.iter().find(|(k, _)| *k == kind)?;
        owners.get(tenant)?.get(id)
    }

    /// Whether the owner `(tenant, id)` is one `within` names.
    fn is_within(within: &crate::Within, tenant: &str, id: &str) -> bool {
        within(tenant, O::BY_ID.then_some(id))
    }

    fn idle_after(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.settings.passivate_after_ms).unwrap_or(0))
    }

    fn sweep(&mut self) {
        let (idle, now) = (self.idle_after(), Instant::now());
        let mut passivated = 0;
        for (_, tenants) in &mut self.owners {
            for owners in tenants.values_mut() {
                let before = owners.len();
                owners.retain(|_, e| {
                    let keep = now.duration_since(e.last_input) < idle || e.keep.get();
                    // A full mailbox means the actor is busy: keep it and try again next sweep.
                    keep || e.addr.try_send(Passivate).is_err()
                });
                passivated += before - owners.len();
            }
            tenants.retain(|_, o| !o.is_empty());
        }
        if passivated > 0 {
            tracing::debug!(shard = self.shard, passivated, "passivated idle owners");
        }
    }
}

impl<O: Routed> Actor for Router<O> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if O::PASSIVATES {
            let every =
                (self.idle_after() / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
            ctx.run_interval(every, |this, _| this.sweep());
        }
    }
}

impl<O: Routed> Handler<Deliver<O>> for Router<O>
where
    OwnerActor<O>: Handler<Apply<O>> + Actor<Context = Context<OwnerActor<O>>>,
{
    type Result = ();

    fn handle(&mut self, Deliver(msg): Deliver<O>, ctx: &mut Self::Context) {
        // One message per owner per batch, inputs in arrival order: collect them per entry
        // without copying keys, then send.
        let now = Instant::now();
        self.batch += 1;
        let batch = self.batch;
        // At most one part per item (most owners have one item per batch).
        let mut parts: Vec<Part<O>> = Vec::with_capacity(msg.items.len());
        for item in msg.items {
            let Some(at) = O::address(&item) else {
                continue;
            };
            let entry = self.entry(at);
            entry.last_input = now;
            match entry.slot {
                (b, i) if b == batch => parts[i].1.push(item),
                _ => {
                    entry.slot = (batch, parts.len());
                    parts.push((Rc::clone(&entry.addr), vec![item]));
                }
            }
        }
        for (addr, items) in parts {
            let part = Apply(Batch {
                items,
                held: msg.held.share(),
                history: msg.history,
            });
            if !crate::hand_off(self, ctx, &addr, part) {
                tracing::error!(shard = self.shard, "owner actor stopped unexpectedly");
            }
        }
        msg.held.applied();
    }
}

impl<O: Routed> Handler<Command> for Router<O> {
    type Result = ResponseFuture<Result<Alert, CommandError>>;

    fn handle(&mut self, msg: Command, _: &mut Self::Context) -> Self::Result {
        let addr = O::owned(&msg.0.owner)
            .and_then(|(kind, id)| self.get(kind, &msg.0.tenant, id))
            .map(|e| Addr::clone(&e.addr));
        Box::pin(async move {
            let id = msg.0.alert_id.clone();
            match addr {
                Some(addr) => addr
                    .send(msg)
                    .await
                    .unwrap_or(Err(CommandError::NotFound(id))),
                None => Err(CommandError::NotFound(id)),
            }
        })
    }
}

impl<O: Routed> Handler<Recover> for Router<O> {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: Recover, _: &mut Self::Context) -> Self::Result {
        // Owners with an open alert get an actor even if no history was replayed, and patients
        // with a resolved one: the readings redelivered next may derive it again (keepers are
        // handed only those a person resolved, which matter only to a keeper with history).
        let mut stored: FxHashMap<(usize, String, String), Vec<Alert>> = FxHashMap::default();
        for a in msg.alerts {
            let Some(owner) = a.owner() else { continue };
            let Some((kind, id)) = O::owned(&owner) else {
                continue;
            };
            if a.is_active() || O::KEEPS_RESOLVED {
                let unit = a.unit_id.as_deref().unwrap_or_default();
                self.entry(Address {
                    kind,
                    tenant: &a.tenant_id,
                    id,
                    unit,
                });
            }
            let k = self.owners.iter().position(|(k, _)| *k == kind);
            if let Some(k) = k {
                let key = (k, a.tenant_id.clone(), id.to_string());
                stored.entry(key).or_default().push(a);
            }
        }
        let mut sends = Vec::new();
        for (k, (_, tenants)) in self.owners.iter().enumerate() {
            for (tenant, owners) in tenants {
                for (id, entry) in owners {
                    if let Some(within) = &msg.within
                        && !Self::is_within(within, tenant, id)
                    {
                        continue;
                    }
                    let alerts = stored
                        .remove(&(k, tenant.clone(), id.clone()))
                        .unwrap_or_default();
                    sends.push(entry.addr.send(Reconcile {
                        alerts,
                        open: msg.open.clone(),
                    }));
                }
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

impl<O: Routed> Handler<Evict> for Router<O> {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, Evict(within): Evict, _: &mut Self::Context) -> Self::Result {
        let mut stops = Vec::new();
        for (_, tenants) in &mut self.owners {
            for (tenant, owners) in tenants.iter_mut() {
                owners.retain(|id, e| {
                    let gone = Self::is_within(&within, tenant, id);
                    if gone {
                        // Queued after everything the owner was sent: it finishes that first.
                        stops.push(e.addr.send(Passivate));
                    }
                    !gone
                });
            }
            tenants.retain(|_, o| !o.is_empty());
        }
        let n = stops.len();
        if n > 0 {
            tracing::debug!(
                shard = self.shard,
                evicted = n,
                "evicted owners handed over"
            );
        }
        Box::pin(async move {
            futures::future::join_all(stops).await;
            n
        })
    }
}

impl<O: Routed> Handler<Count> for Router<O> {
    type Result = usize;

    fn handle(&mut self, _: Count, _: &mut Self::Context) -> usize {
        self.owners
            .iter()
            .flat_map(|(_, tenants)| tenants.values())
            .map(Map::len)
            .sum()
    }
}
