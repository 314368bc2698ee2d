//! [`AlertHolder`]: where one alert lives in whatever keeps it (a rule's track, the NEWS2 risk
//! family, a provider's or a resource's delay slot, a waiting patient). At most one alert at a
//! time, kept after it resolves until the next one opens, so a late command about it is answered
//! `INVALID_TRANSITION` rather than `ALERT_NOT_FOUND`.

use super::command::{AlertCommand, CommandError};
use super::record::{Alert, AlertState, ENGINE};
use crate::time::Timestamp;

/// Boxed: most holders are empty, and an inline alert would cost every one of them its size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertHolder(Option<Box<Alert>>);

impl AlertHolder {
    /// The alert, resolved or not.
    pub fn get(&self) -> Option<&Alert> {
        self.0.as_deref()
    }

    pub fn get_mut(&mut self) -> Option<&mut Alert> {
        self.0.as_deref_mut()
    }

    /// The alert while it is not resolved.
    pub fn active(&self) -> Option<&Alert> {
        self.get().filter(|a| a.is_active())
    }

    pub fn active_mut(&mut self) -> Option<&mut Alert> {
        self.get_mut().filter(|a| a.is_active())
    }

    pub fn is_active(&self) -> bool {
        self.active().is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Keeps a newly opened alert in place of the last one; returns it (to publish).
    pub fn open(&mut self, alert: Alert) -> Alert {
        self.0 = Some(Box::new(alert.clone()));
        alert
    }

    /// Replaces what is held (recovery installs a stored alert, or forgets one with `None`).
    pub fn set(&mut self, alert: Option<Alert>) {
        self.0 = alert.map(Box::new);
    }

    pub fn take(&mut self) -> Option<Alert> {
        self.0.take().map(|b| *b)
    }

    /// Resolves the alert, if it is active, because its condition is gone; returns it after
    /// the transition.
    pub fn clear(&mut self, at: Timestamp, reason: String) -> Option<Alert> {
        let a = self.active_mut()?;
        a.transition(AlertState::Resolved, ENGINE, at, reason);
        Some(a.clone())
    }

    /// Applies a person's command to the alert if it is the one named. Returns the alert and
    /// whether the command changed it.
    ///
    /// # Errors
    /// `NotFound` when the holder keeps no alert of that id; otherwise as [`Alert::apply`].
    pub fn command(&mut self, c: &AlertCommand) -> Result<(Alert, bool), CommandError> {
        let a = self
            .get_mut()
            .filter(|a| a.alert_id == c.alert_id)
            .ok_or_else(|| CommandError::NotFound(c.alert_id.clone()))?;
        let changed = a.apply(c)?;
        Ok((a.clone(), changed))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::alert::{CommandKind, Owner, Rule};
    use vigil_config::Role;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(1_764_234_840_000 + s * 1000)
    }

    fn command(id: &str, kind: CommandKind) -> AlertCommand {
        AlertCommand {
            tenant: "t1".into(),
            owner: Owner::Patient("p1".into()),
            alert_id: id.into(),
            kind,
            page_id: String::new(),
            role: Role::Nurse,
            by: "nurse:t1".into(),
            reason: String::new(),
            at: t(5),
        }
    }

    #[test]
    fn a_holder_keeps_one_alert_through_its_life_and_after_it_resolves() {
        let mut h = AlertHolder::default();
        assert!(h.is_empty() && !h.is_active());
        assert_eq!(h.clear(t(1), "gone".into()), None, "nothing to clear");
        let opened = h.open(Alert {
            alert_id: "alert-1".into(),
            ..Alert::opening(Rule::News2High, t(0), t(0))
        });
        assert!(h.is_active());
        assert_eq!(
            h.command(&command("alert-2", CommandKind::Ack)),
            Err(CommandError::NotFound("alert-2".into()))
        );
        let (acked, changed) = h.command(&command("alert-1", CommandKind::Ack)).unwrap();
        assert!(changed);
        assert_eq!(acked.state, AlertState::Acknowledged);
        let cleared = h.clear(t(9), "condition cleared".into()).unwrap();
        assert_eq!(
            (cleared.state, cleared.version),
            (AlertState::Resolved, opened.version + 2)
        );
        assert!(!h.is_active());
        assert_eq!(
            h.get().map(|a| a.alert_id.as_str()),
            Some("alert-1"),
            "kept"
        );
        let late = h.command(&command("alert-1", CommandKind::Ack));
        assert!(matches!(late, Err(CommandError::InvalidTransition { .. })));
        assert_eq!(h.take().map(|a| a.state), Some(AlertState::Resolved));
        assert!(h.is_empty());
    }
}
