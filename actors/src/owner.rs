//! One actor for every kind of state owner: [`OwnerActor<O>`] keeps one engine
//! [`StateOwner`] (a patient, a waiting area, a provider or a resource), applies what it is
//! sent in order, applies people's commands to its alerts, wakes for its next deadline with one
//! timer, takes its alerts back after a restart, and hands every transition to the outputs.
//! What differs by kind is [`Kept`]: the profile it is scored under, what it publishes besides
//! alerts, and its own state (a patient's signal-loss clock). The input handlers are per kind
//! (`patient.rs`, `practice.rs`); commands, recovery, passivation and the timer are here.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use actix::prelude::*;
use vigil_engine::owner::StateOwner;
use vigil_engine::{Alert, CommandError, Profiles, Settings, Timestamp};

use crate::deadline::{Deadline, Wakes};
use crate::messages::{Command, Passivate, Reconcile};
use crate::{Outputs, Receipt, wall_clock};

/// What an owner's actor needs of it beyond [`StateOwner`].
pub trait Kept: StateOwner + Unpin + Sized + 'static {
    /// The actor's own state for this kind of owner.
    type Local: Unpin + 'static;

    fn tenant(&self) -> &str;
    /// The unit (a patient's ward, a keeper's location) whose threshold profile applies.
    fn unit(&self) -> Option<&str>;

    /// Once the actor has started.
    fn started(_: &mut OwnerActor<Self>, _: &mut Context<OwnerActor<Self>>) {}

    /// After every change at `now`: what the actor publishes besides alert transitions.
    fn changed(&self, _now: Timestamp, _s: &Settings, _outputs: &dyn Outputs) {}
}

pub struct OwnerActor<O: Kept> {
    pub(crate) owner: O,
    profiles: Arc<Profiles>,
    /// The profile of the owner's current unit (looked up again when the unit changes).
    pub(crate) settings: Arc<Settings>,
    pub(crate) outputs: Arc<dyn Outputs>,
    /// Shared with the router on the same thread: passivation skips owners that must stay
    /// ([`StateOwner::must_stay`]: with open alerts, for one).
    has_active_alert: Rc<Cell<bool>>,
    /// The one timer: the owner's next deadline.
    timer: Deadline,
    pub(crate) local: O::Local,
}

impl<O: Kept> OwnerActor<O> {
    pub(crate) fn new(
        owner: O,
        profiles: Arc<Profiles>,
        outputs: Arc<dyn Outputs>,
        has_active_alert: Rc<Cell<bool>>,
        local: O::Local,
    ) -> Self {
        let settings = profiles
            .for_unit(owner.tenant(), owner.unit().unwrap_or_default())
            .clone();
        Self {
            owner,
            profiles,
            settings,
            outputs,
            has_active_alert,
            timer: Deadline::default(),
            local,
        }
    }

    /// Looks the profile up again if the owner's unit is no longer `was`.
    pub(crate) fn refresh_settings(&mut self, was: Option<&str>) {
        if self.owner.unit() != was {
            self.settings = self
                .profiles
                .for_unit(self.owner.tenant(), self.owner.unit().unwrap_or_default())
                .clone();
        }
    }

    /// The profile for `unit`: the cached one unless it differs from the owner's.
    pub(crate) fn settings_for(&mut self, unit: &str) -> Arc<Settings> {
        if self.owner.unit() != Some(unit) {
            self.settings = self.profiles.for_unit(self.owner.tenant(), unit).clone();
        }
        self.settings.clone()
    }

    /// Hands each transition to the outputs; waits (blocking this actor's mailbox) while an
    /// output queue is full, so nothing is dropped and one alert's transitions stay in order.
    pub(crate) fn emit(
        &mut self,
        alerts: &[Alert],
        receipt: Option<&Receipt>,
        ctx: &mut Context<Self>,
    ) {
        if alerts.is_empty() {
            return;
        }
        for alert in alerts {
            if let Some(wait) = self.outputs.alert(alert, receipt.cloned()) {
                ctx.wait(wait.into_actor(self));
            }
        }
        self.has_active_alert.set(self.owner.must_stay());
    }

    /// Publishes what the owner shows besides alerts, re-arms the timer, and tells the router
    /// whether the owner keeps an open alert.
    pub(crate) fn settle(&mut self, now: Timestamp, ctx: &mut Context<Self>) {
        // Recovery installs alerts without a transition to emit: the flag is set here too.
        self.has_active_alert.set(self.owner.must_stay());
        self.owner.changed(now, &self.settings, &*self.outputs);
        let next = self.owner.next_deadline(now, &self.settings);
        Deadline::arm(self, next, now, ctx);
    }

    pub(crate) fn timer_armed(&self) -> bool {
        self.timer.is_armed()
    }
}

impl<O: Kept> Actor for OwnerActor<O> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        O::started(self, ctx);
    }
}

impl<O: Kept> Wakes for OwnerActor<O> {
    fn deadline(&mut self) -> &mut Deadline {
        &mut self.timer
    }

    fn wake(&mut self, ctx: &mut Context<Self>) {
        let now = wall_clock();
        let alerts = self.owner.advance(now, &self.settings);
        self.emit(&alerts, None, ctx);
        self.settle(now, ctx);
    }
}

impl<O: Kept> Handler<Command> for OwnerActor<O> {
    type Result = Result<Alert, CommandError>;

    fn handle(&mut self, msg: Command, ctx: &mut Self::Context) -> Self::Result {
        let (alert, changed) = self.owner.command(&msg.0)?;
        if changed {
            self.emit(std::slice::from_ref(&alert), Some(&msg.1), ctx);
            self.settle(wall_clock(), ctx);
        }
        Ok(alert)
    }
}

impl<O: Kept> Handler<Reconcile> for OwnerActor<O> {
    type Result = usize;

    fn handle(&mut self, msg: Reconcile, ctx: &mut Self::Context) -> usize {
        let now = wall_clock();
        let open = msg.open;
        let r = self
            .owner
            .reconcile(msg.alerts, &|id| open.contains(id), now, &self.settings);
        for alert in self.owner.active_alerts() {
            self.outputs.restored(alert);
        }
        self.emit(&r.publish, None, ctx);
        // Deadlines that passed while the engine was down fire at once.
        self.settle(now, ctx);
        r.installed
    }
}

impl<O: Kept> Handler<Passivate> for OwnerActor<O> {
    type Result = ();

    fn handle(&mut self, _: Passivate, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
