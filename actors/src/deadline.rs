//! The one timer of an owner's actor: armed for the owner's next deadline
//! ([`vigil_engine::owner::StateOwner::next_deadline`]). It is only a wake-up: the owner's own
//! deadlines decide what is due, so a wake-up for a deadline that has since moved does nothing,
//! and one that passed while the engine was down fires at once.

use actix::prelude::*;
use vigil_engine::Timestamp;

/// An actor with one deadline timer.
pub(crate) trait Wakes: Actor<Context = Context<Self>> {
    fn deadline(&mut self) -> &mut Deadline;
    /// The timer fired: apply what is due and re-arm.
    fn wake(&mut self, ctx: &mut Context<Self>);
}

#[derive(Default)]
pub(crate) struct Deadline {
    armed: Option<(Timestamp, SpawnHandle)>,
}

impl Deadline {
    pub(crate) fn is_armed(&self) -> bool {
        self.armed.is_some()
    }

    /// Arms `actor`'s timer for `next` (seen at `now`), unless it is armed for it already;
    /// disarms it for `None`.
    pub(crate) fn arm<A: Wakes>(
        actor: &mut A,
        next: Option<Timestamp>,
        now: Timestamp,
        ctx: &mut Context<A>,
    ) {
        let timer = actor.deadline();
        if timer.armed.as_ref().map(|(at, _)| *at) == next {
            return;
        }
        if let Some((_, handle)) = timer.armed.take() {
            ctx.cancel_future(handle);
        }
        let Some(at) = next else { return };
        let wait = u64::try_from(at.since(now)).unwrap_or(0);
        let handle = ctx.run_later(std::time::Duration::from_millis(wait), |act, ctx| {
            act.deadline().armed = None;
            act.wake(ctx);
        });
        actor.deadline().armed = Some((at, handle));
    }
}
