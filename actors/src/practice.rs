//! Practice actors: one [`KeeperActor`] (the [`OwnerActor`] of an engine [`Keeper`]) per
//! location (waiting area), provider and resource (chair or room), created on first contact by
//! the keeper [`Router`](crate::router::Router) of the arbiter the key hashes to, beside the
//! patient router. Its timer wakes for the keeper's next deadline, so delay rules fire as time
//! passes, not only on the next event; after every change it publishes the keeper's `resource`
//! view.
//!
//! Backpressure as for patients: bounded mailboxes, `try_send`, and a router that waits for
//! room (`ctx.wait`) instead of dropping. Practice actors are not passivated: a keeper holds
//! who waits and what is booked, which no later event would rebuild, and a clinic network has
//! as many as it has locations, providers and chairs, a few bytes to a few KiB each.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::owner::StateOwner;
use vigil_engine::practice::keeper::{Keeper, KeeperInput, KeeperKind};
use vigil_engine::{Owner, Settings, Timestamp};

use crate::messages::Apply;
use crate::owner::{Kept, OwnerActor};
use crate::router::{Address, Routed};
use crate::{ActorSettings, Outputs, wall_clock};

/// One practice input for an actor, with its tenant and its source event's `occurredAt`.
#[derive(Debug, Clone)]
pub struct PracticeInput {
    pub tenant: String,
    pub input: KeeperInput,
    pub occurred_at: Timestamp,
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

impl Routed for Keeper {
    type Kind = KeeperKind;
    type Item = PracticeInput;
    const PASSIVATES: bool = false;
    const BY_ID: bool = false;
    const KEEPS_RESOLVED: bool = false;

    fn address(p: &PracticeInput) -> Option<Address<'_, KeeperKind>> {
        let (kind, id) = p.input.keeper()?;
        Some(Address {
            kind,
            tenant: &p.tenant,
            id,
            unit: "",
        })
    }

    fn owned(owner: &Owner) -> Option<(KeeperKind, &str)> {
        match owner {
            Owner::Location(id) => Some((KeeperKind::Location, id)),
            Owner::Provider(id) => Some((KeeperKind::Provider, id)),
            Owner::Resource(id) => Some((KeeperKind::Resource, id)),
            Owner::Patient(_) => None,
        }
    }

    fn actor(
        at: Address<'_, KeeperKind>,
        settings: &ActorSettings,
        outputs: Arc<dyn Outputs>,
        keep: Rc<Cell<bool>>,
    ) -> KeeperActor {
        let keeper = Keeper::new(at.kind, at.tenant, at.id);
        KeeperActor::new(keeper, settings.profiles.clone(), outputs, keep, ())
    }
}

impl Handler<Apply<Keeper>> for KeeperActor {
    type Result = ();

    fn handle(&mut self, Apply(msg): Apply<Keeper>, ctx: &mut Self::Context) {
        let now = wall_clock();
        for PracticeInput {
            input, occurred_at, ..
        } in &msg.items
        {
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
