//! What people do to an alert: acknowledge, resolve, snooze (and a pager's receipt or decline,
//! [`super::paging`]), who may do it, and the errors the gateway maps to its codes.

use vigil_config::{Category, Role};

use super::record::{Alert, AlertState, Owner};
use crate::time::Timestamp;

/// Longest snooze a person may ask for: 24 h.
pub const MAX_SNOOZE_MS: i64 = 24 * 3_600_000;
/// Shortest snooze: 1 s (`minutes` may be fractional, e.g. `0.5`).
pub const MIN_SNOOZE_MS: i64 = 1000;

/// A snooze length from the wire's `minutes` (fractional minutes allowed), in milliseconds.
///
/// # Errors
/// A message naming `minutes` when it is not a number from 1 s to 24 h.
pub fn snooze_millis(minutes: f64) -> Result<i64, String> {
    let ms = minutes * 60_000.0;
    if !ms.is_finite() || ms < MIN_SNOOZE_MS as f64 || ms > MAX_SNOOZE_MS as f64 {
        return Err(format!(
            "`minutes` must be from 1 s to 24 h (0.0167 to 1440), not {minutes}"
        ));
    }
    Ok(ms.round() as i64)
}

/// A command a person sends about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Ack,
    Resolve,
    /// Quiet the alert this long ([`MIN_SNOOZE_MS`]..=[`MAX_SNOOZE_MS`]; see [`snooze_millis`]).
    Snooze {
        millis: i64,
    },
    /// A pager received the page (`AlertCommand::page_id`).
    Receipt,
    /// A pager declines the page: the alert escalates at once.
    Decline,
}

/// A person's command about one alert, as the gateway hands it to the actor that owns the
/// alert (WebSocket and HTTP alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCommand {
    pub tenant: String,
    pub owner: Owner,
    pub alert_id: String,
    pub kind: CommandKind,
    /// For `Receipt` and `Decline`: the page.
    pub page_id: String,
    pub role: Role,
    /// Who sent it, recorded as the transition's `by`.
    pub by: String,
    pub reason: String,
    pub at: Timestamp,
}

/// Why a command was refused; the codes are the contract's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("alert {0} not found")]
    NotFound(String),
    #[error("page {0} not found")]
    PageNotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("role {role} cannot {action} {category} alerts")]
    Forbidden {
        role: &'static str,
        action: &'static str,
        category: &'static str,
    },
    #[error("cannot {action} an alert that is {state}")]
    InvalidTransition {
        action: &'static str,
        state: &'static str,
    },
    /// The command cannot be stored now (NATS away, the engine stopping): retry later.
    #[error("{0}")]
    Unavailable(String),
    /// Another cluster member's refusal, forwarded as it gave it: one of the codes of
    /// [`CommandError::code`] and its message.
    #[error("{message}")]
    Forwarded { code: &'static str, message: String },
}

impl CommandError {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::NotFound(_) | CommandError::PageNotFound(_) => "ALERT_NOT_FOUND",
            CommandError::BadRequest(_) => "BAD_REQUEST",
            CommandError::Forbidden { .. } => "FORBIDDEN",
            CommandError::InvalidTransition { .. } => "INVALID_TRANSITION",
            CommandError::Unavailable(_) => "UNAVAILABLE",
            CommandError::Forwarded { code, .. } => code,
        }
    }

    /// A refusal received from another cluster member as `code` and `message`. A code this
    /// engine does not know becomes `UNAVAILABLE` (retry), never a silent success.
    pub fn forwarded(code: &str, message: String) -> CommandError {
        let code = match code {
            "ALERT_NOT_FOUND" => "ALERT_NOT_FOUND",
            "BAD_REQUEST" => "BAD_REQUEST",
            "FORBIDDEN" => "FORBIDDEN",
            "INVALID_TRANSITION" => "INVALID_TRANSITION",
            _ => "UNAVAILABLE",
        };
        CommandError::Forwarded { code, message }
    }
}

impl CommandKind {
    pub fn verb(self) -> &'static str {
        match self {
            CommandKind::Ack => "acknowledge",
            CommandKind::Resolve => "resolve",
            CommandKind::Snooze { .. } => "snooze",
            CommandKind::Receipt => "receipt pages of",
            CommandKind::Decline => "decline pages of",
        }
    }
}

/// Which roles may act on which alerts: clinical staff on clinical alerts, coordinators and
/// managers on delay alerts, pagers acknowledge what they are paged for, admins everything,
/// viewers nothing.
pub fn may_command(role: Role, kind: CommandKind, category: Category) -> bool {
    let clinical = matches!(
        category,
        Category::Deterioration | Category::Sepsis | Category::Technical
    );
    match role {
        Role::Admin => true,
        Role::Viewer => false,
        Role::Nurse | Role::ChargeNurse | Role::Physician | Role::RapidResponse => clinical,
        Role::Coordinator | Role::Manager => category == Category::Delay,
        Role::Pager => matches!(
            kind,
            CommandKind::Ack | CommandKind::Receipt | CommandKind::Decline
        ),
    }
}

impl Alert {
    /// Applies a person's command from the gateway (ack, resolve, snooze, or a pager's
    /// receipt or decline). Returns whether it changed the alert: a second receipt of a
    /// delivered page changes nothing.
    ///
    /// # Errors
    /// As [`Alert::command`], [`Alert::receipt`] and [`Alert::decline`]; `Forbidden` for a
    /// receipt or decline by a role that may not act on this category.
    pub fn apply(&mut self, c: &AlertCommand) -> Result<bool, CommandError> {
        match c.kind {
            CommandKind::Receipt | CommandKind::Decline => {
                if !may_command(c.role, c.kind, self.category) {
                    return Err(CommandError::Forbidden {
                        role: c.role.as_str(),
                        action: c.kind.verb(),
                        category: self.category.as_str(),
                    });
                }
                if c.kind == CommandKind::Receipt {
                    self.receipt(&c.page_id, &c.by, c.at)
                } else {
                    self.decline(&c.page_id, &c.by, &c.reason, c.at)?;
                    Ok(true)
                }
            }
            kind => {
                self.command(kind, c.role, &c.by, &c.reason, c.at)?;
                Ok(true)
            }
        }
    }

    /// Applies a person's `Ack`, `Resolve` or `Snooze`, or refuses it leaving the alert
    /// unchanged. (Page receipts and declines are [`Alert::receipt`] and [`Alert::decline`].)
    ///
    /// # Errors
    /// `Forbidden` when the role may not act on this category, `InvalidTransition` when the
    /// state does not allow it (an acknowledged alert is not acknowledged again, a snoozed one
    /// not snoozed again; a resolved alert is never reopened), `BadRequest` for a snooze outside
    /// 1 s to 24 h.
    pub fn command(
        &mut self,
        kind: CommandKind,
        role: Role,
        by: &str,
        reason: &str,
        at: Timestamp,
    ) -> Result<(), CommandError> {
        if !may_command(role, kind, self.category) {
            return Err(CommandError::Forbidden {
                role: role.as_str(),
                action: kind.verb(),
                category: self.category.as_str(),
            });
        }
        use AlertState::*;
        let to = match (kind, self.state) {
            (CommandKind::Ack, Open | Snoozed) => Acknowledged,
            (CommandKind::Resolve, Open | Acknowledged | Snoozed) => Resolved,
            (CommandKind::Snooze { millis }, _)
                if !(MIN_SNOOZE_MS..=MAX_SNOOZE_MS).contains(&millis) =>
            {
                return Err(CommandError::BadRequest(
                    "`minutes` must be from 1 s to 24 h".into(),
                ));
            }
            (CommandKind::Snooze { .. }, Open | Acknowledged) => Snoozed,
            (_, state) => {
                return Err(CommandError::InvalidTransition {
                    action: kind.verb(),
                    state: state.as_str(),
                });
            }
        };
        let mut reason = if reason.is_empty() {
            kind.verb().to_string()
        } else {
            reason.to_string()
        };
        match kind {
            CommandKind::Ack => self.on_acknowledged(by, at),
            CommandKind::Snooze { millis } => {
                self.on_snoozed(at.plus_millis(millis));
                reason = format!(
                    "snoozed for {}: {reason}",
                    super::escalation::minutes(millis)
                );
            }
            _ => self.on_resolved(),
        }
        self.transition(to, by, at, reason);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_config::Category;

    #[test]
    fn roles_and_categories() {
        use CommandKind::*;
        assert!(may_command(Role::Nurse, Ack, Category::Deterioration));
        assert!(may_command(Role::Nurse, Resolve, Category::Sepsis));
        assert!(!may_command(Role::Nurse, Ack, Category::Delay));
        assert!(!may_command(Role::Viewer, Ack, Category::Deterioration));
        assert!(may_command(Role::Coordinator, Resolve, Category::Delay));
        assert!(!may_command(
            Role::Coordinator,
            Ack,
            Category::Deterioration
        ));
        assert!(may_command(Role::Pager, Ack, Category::Deterioration));
        assert!(!may_command(Role::Pager, Resolve, Category::Deterioration));
        assert!(may_command(Role::Admin, Resolve, Category::Technical));
    }

    #[test]
    fn snooze_lengths_from_one_second_to_a_day() {
        assert_eq!(snooze_millis(30.0), Ok(1_800_000));
        assert_eq!(snooze_millis(0.1), Ok(6_000));
        assert_eq!(snooze_millis(1440.0), Ok(MAX_SNOOZE_MS));
        assert_eq!(snooze_millis(1.0 / 60.0), Ok(1000));
        for bad in [0.0, 0.01, -5.0, 1440.01, f64::NAN, f64::INFINITY] {
            let err = snooze_millis(bad).expect_err("out of range");
            assert!(err.contains("`minutes`"), "{err}");
        }
    }
}
