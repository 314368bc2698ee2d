//! One shape for every state owner. A patient, a waiting area, a provider and a resource are
//! each kept by one actor, and each is driven the same way: apply an input, take a person's
//! command about one of its alerts, advance to a time, say when it next needs to look, and take
//! its alerts back after a restart. [`StateOwner`] is that shape; [`crate::Patient`] and
//! [`crate::practice::keeper::Keeper`] implement it, and the actors drive them through it.

use crate::alert::{Alert, AlertCommand, CommandError};
use crate::settings::Settings;
use crate::time::Timestamp;

/// What a state owner's recovery did.
#[derive(Debug, Default, PartialEq)]
pub struct Reconciled {
    /// Alerts now kept that are not resolved.
    pub installed: usize,
    /// Transitions to publish: alerts the replay found new, stored ones whose condition is gone.
    pub publish: Vec<Alert>,
}

pub trait StateOwner {
    /// One input it is fed, borrowing from the message where it can.
    type Input<'a>;
    /// What one input produced: at least the alert transitions it caused, in order.
    type Applied: AsRef<[Alert]>;

    /// Applies one input. `now` is the engine's clock: it stamps transitions and starts
    /// escalation; rules run on the input's own times.
    fn apply(&mut self, input: &Self::Input<'_>, now: Timestamp, s: &Settings) -> Self::Applied;

    /// Applies a person's command to one of its alerts. Returns the alert and whether the
    /// command changed it.
    ///
    /// # Errors
    /// `NotFound` when it keeps no alert of that id; otherwise as [`Alert::apply`].
    fn command(&mut self, c: &AlertCommand) -> Result<(Alert, bool), CommandError>;

    /// Everything due by `now`: rules that fire as time passes and the alerts' own deadlines
    /// (escalation, snooze end, acknowledgement expiry, page resend). Returns each transition.
    fn advance(&mut self, now: Timestamp, s: &Settings) -> Vec<Alert>;

    /// When its actor must next wake: the earliest deadline of its alerts or its rules.
    fn next_deadline(&self, now: Timestamp, s: &Settings) -> Option<Timestamp>;

    /// Recovery, once the streams have been replayed into it: installs the alerts `ALERTS`
    /// holds for it (`stored`; `is_open` tells whether an alert id is still open there).
    fn reconcile(
        &mut self,
        stored: Vec<Alert>,
        is_open: &dyn Fn(&str) -> bool,
        now: Timestamp,
        s: &Settings,
    ) -> Reconciled;

    /// Every alert it keeps that is not resolved.
    fn active_alerts(&self) -> impl Iterator<Item = &Alert>;

    fn has_active_alert(&self) -> bool {
        self.active_alerts().next().is_some()
    }

    /// Whether stopping it while idle (its state rebuilt from the next events) would lose
    /// something the events cannot rebuild: an alert not resolved, by default.
    fn must_stay(&self) -> bool {
        self.has_active_alert()
    }
}
