//! Practice actors: one [`KeeperActor`] (the [`OwnerActor`] of an engine [`Keeper`]) per
//! location (waiting area), provider and resource (chair or room), created on first contact by
//! the [`PracticeRouter`] of the arbiter the key hashes to, beside the patient router. Its timer
//! wakes for the keeper's next deadline, so delay rules fire as time passes, not only on the
//! next event; after every change it publishes the keeper's `resource` view.
//!
//! Backpressure as for patients: bounded mailboxes, `try_send`, and a router that waits for
//! room (`ctx.wait`) instead of dropping. Practice actors are not passivated: a clinic network
//! has as many as it has locations, providers and chairs, a few bytes to a few KiB each.

use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use rustc_hash::FxHashMap;
use vigil_engine::practice::keeper::{Keeper, KeeperInput, KeeperKind};
use vigil_engine::{Alert, CommandError, Owner, Profiles, Settings, Timestamp};

use vigil_engine::owner::StateOwner;

use crate::messages::{ApplyPractice, Batch, Command, Count, DeliverPractice, Reconcile, Recover};
use crate::owner::{Kept, OwnerActor};
use crate::{Outputs, wall_clock};

/// One practice input for an actor, with its tenant and its source event's `occurredAt`.
#[derive(Debug, Clone)]
pub struct PracticeInput {
    pub tenant: String,
    pub input: KeeperInput,
    pub occurred_at: Timestamp,
}

/// The actor an owner names, if it is a practice actor.
pub(crate) fn keeper_of(owner: &Owner) -> Option<(KeeperKind, &str)> {
    match owner {
        Owner::Location(id) => Some((KeeperKind::Location, id)),
        Owner::Provider(id) => Some((KeeperKind::Provider, id)),
        Owner::Resource(id) => Some((KeeperKind::Resource, id)),
        Owner::Patient(_) => None,
    }
}

pub type KeeperActor = OwnerActor<Keeper>;

impl Kept for Keeper {
    type Local = ();

    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn unit(&self) -> Option<&str> {
        self.location()
    }

    /// The live view for `resource` frames.
    fn changed(&self, now: Timestamp, s: &Settings, outputs: &dyn Outputs) {
        outputs.resource(self.view(now, s));
    }
}

impl Handler<ApplyPractice> for KeeperActor {
    type Result = ();

    fn handle(&mut self, ApplyPractice(msg): ApplyPractice, ctx: &mut Self::Context) {
        let now = wall_clock();
        for (input, occurred_at) in &msg.items {
            let before = self.owner.location().map(str::to_string);
            // Rules look at the event's own time (never later than now): a backlog of events
            // hours old, applied in one go, must not find every patient waiting for hours
            // between a check-in and the start right behind it. Time passing is the timer's.
            let at = (*occurred_at).min(now);
            let alerts = StateOwner::apply(&mut self.owner, input, at, &self.settings);
            self.refresh_settings(before.as_deref());
            if !msg.history {
                self.emit(&alerts, Some(msg.held.receipt()), ctx);
            }
        }
        msg.held.applied();
        if !msg.history {
            self.settle(now, ctx);
        }
    }
}

/// Key of a practice actor within a shard.
type Key = (KeeperKind, String, String);

/// One per arbiter: the practice actors whose keys hash to it.
pub struct PracticeRouter {
    profiles: Arc<Profiles>,
    mailbox: usize,
    outputs: Arc<dyn Outputs>,
    keepers: FxHashMap<Key, Addr<KeeperActor>>,
}

impl PracticeRouter {
    pub(crate) fn new(profiles: Arc<Profiles>, mailbox: usize, outputs: Arc<dyn Outputs>) -> Self {
        Self {
            profiles,
            mailbox,
            outputs,
            keepers: FxHashMap::default(),
        }
    }

    fn addr(&mut self, kind: KeeperKind, tenant: &str, id: &str) -> Addr<KeeperActor> {
        let key = (kind, tenant.to_string(), id.to_string());
        if let Some(addr) = self.keepers.get(&key) {
            return addr.clone();
        }
        // Practice actors are not passivated: nobody reads the flag.
        let actor = KeeperActor::new(
            Keeper::new(kind, tenant, id),
            self.profiles.clone(),
            self.outputs.clone(),
            Rc::default(),
            (),
        );
        let mailbox = self.mailbox;
        let addr = KeeperActor::create(move |ctx| {
            ctx.set_mailbox_capacity(mailbox);
            actor
        });
        self.keepers.insert(key, addr.clone());
        addr
    }
}

impl Actor for PracticeRouter {
    type Context = Context<Self>;
}

impl Handler<DeliverPractice> for PracticeRouter {
    type Result = ();

    fn handle(&mut self, DeliverPractice(msg): DeliverPractice, ctx: &mut Self::Context) {
        // One message per actor per batch, inputs in arrival order.
        let mut batches: Vec<(Key, Vec<(KeeperInput, Timestamp)>)> = Vec::new();
        let mut slots: FxHashMap<Key, usize> = FxHashMap::default();
        for PracticeInput {
            tenant,
            input,
            occurred_at,
        } in msg.items
        {
            let Some((kind, id)) = input.keeper() else {
                continue;
            };
            let key = (kind, tenant, id.to_string());
            match slots.get(&key) {
                Some(&i) => batches[i].1.push((input, occurred_at)),
                None => {
                    slots.insert(key.clone(), batches.len());
                    batches.push((key, vec![(input, occurred_at)]));
                }
            }
        }
        for ((kind, tenant, id), inputs) in batches {
            let addr = self.addr(kind, &tenant, &id);
            let inputs = ApplyPractice(Batch {
                items: inputs,
                held: msg.held.share(),
                history: msg.history,
            });
            if !crate::hand_off(self, ctx, addr, inputs) {
                tracing::error!(kind = ?kind, id, "practice actor stopped unexpectedly");
            }
        }
        msg.held.applied();
    }
}

impl Handler<Command> for PracticeRouter {
    type Result = ResponseFuture<Result<Alert, CommandError>>;

    fn handle(&mut self, msg: Command, _: &mut Self::Context) -> Self::Result {
        let Command(cmd, receipt) = msg;
        let addr = keeper_of(&cmd.owner).and_then(|(kind, id)| {
            self.keepers
                .get(&(kind, cmd.tenant.clone(), id.to_string()))
                .cloned()
        });
        Box::pin(async move {
            let id = cmd.alert_id.clone();
            match addr {
                Some(addr) => addr
                    .send(Command(cmd, receipt))
                    .await
                    .unwrap_or(Err(CommandError::NotFound(id))),
                None => Err(CommandError::NotFound(id)),
            }
        })
    }
}

impl Handler<Recover> for PracticeRouter {
    type Result = ResponseFuture<usize>;

    fn handle(&mut self, msg: Recover, _: &mut Self::Context) -> Self::Result {
        let mut stored: FxHashMap<Key, Vec<Alert>> = FxHashMap::default();
        for a in msg.alerts {
            let Some(owner) = a.owner() else { continue };
            let Some((kind, id)) = keeper_of(&owner) else {
                continue;
            };
            let key = (kind, a.tenant_id.clone(), id.to_string());
            if a.is_active() && !self.keepers.contains_key(&key) {
                self.addr(kind, &key.1, &key.2);
            }
            stored.entry(key).or_default().push(a);
        }
        let sends: Vec<_> = self
            .keepers
            .iter()
            .map(|(key, addr)| {
                addr.send(Reconcile {
                    alerts: stored.remove(key).unwrap_or_default(),
                    open: msg.open.clone(),
                })
            })
            .collect();
        Box::pin(async move {
            let mut installed = 0;
            for s in sends {
                installed += s.await.unwrap_or(0);
            }
            installed
        })
    }
}

impl Handler<Count> for PracticeRouter {
    type Result = usize;

    fn handle(&mut self, _: Count, _: &mut Self::Context) -> usize {
        self.keepers.len()
    }
}
