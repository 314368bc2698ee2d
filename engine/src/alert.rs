//! The alert record (`orchestration.alert.v1` data) and its state machine.
//!
//! States: `open` -> `acknowledged` -> `resolved`; any non-terminal state -> `resolved`.
//! `snoozed` exists in the record so that snoozing slots in later; no command reaches it yet.
//! Every change is a transition with who, when, from, to and why; `version` counts them, so
//! a consumer can tell a newer copy of an alert from an older one.

use serde::Serialize;
use vigil_config::Role;

use crate::news2::Component;
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Snoozed,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Open => "open",
            AlertState::Acknowledged => "acknowledged",
            AlertState::Snoozed => "snoozed",
            AlertState::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Deterioration,
    Sepsis,
    Delay,
    Technical,
}

/// Why the alert fired and why now, with every contributing input.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub why: String,
    pub why_now: String,
    pub components: Vec<Component>,
    /// Inputs with no fresh value (additive to the contract).
    pub missing: Vec<&'static str>,
    pub profile: String,
}

/// The escalation in force. Timers that advance `level` arrive with escalation policies; until
/// then `next_at` is `null`: nothing is scheduled, and the alert says so.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    pub policy: String,
    pub level: u32,
    pub next_at: Option<Timestamp>,
    pub targets: Vec<String>,
}

/// The last change of state, with who, when and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub from: Option<AlertState>,
    pub to: AlertState,
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

/// Rule-specific figures (`meta.news2`, and for the other rules the figure they fired on).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub news2: Option<u8>,
    /// `news2.trend`: the rise within the trend window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub news2_rise: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qsofa: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sirs: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lactate: Option<f64>,
    /// `technical.signal_loss`: minutes without an observation when it fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_minutes: Option<i64>,
}

/// One alert, exactly the `orchestration.alert.v1` data shape plus additive `tenantId`/`version`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub alert_id: String,
    pub tenant_id: String,
    pub rule: &'static str,
    pub category: Category,
    pub level: Level,
    pub state: AlertState,
    pub message: String,
    pub patient_id: Option<String>,
    pub unit_id: Option<String>,
    pub resource_id: Option<String>,
    pub provider_id: Option<String>,
    pub related_appointments: Vec<String>,
    pub meta: Meta,
    pub explanation: Explanation,
    pub escalation: Escalation,
    pub transition: Transition,
    pub opened_at: Timestamp,
    pub emitted_at: Timestamp,
    /// 1 at open, +1 per transition.
    pub version: u64,
}

/// A command a person sends about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Ack,
    Resolve,
}

/// A person's command about one patient's alert, as the gateway hands it to the actor that
/// owns the alert (WebSocket and HTTP alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCommand {
    pub tenant: String,
    pub patient_id: String,
    pub alert_id: String,
    pub kind: CommandKind,
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
}

impl CommandError {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::NotFound(_) => "ALERT_NOT_FOUND",
            CommandError::Forbidden { .. } => "FORBIDDEN",
            CommandError::InvalidTransition { .. } => "INVALID_TRANSITION",
        }
    }
}

impl CommandKind {
    pub fn verb(self) -> &'static str {
        match self {
            CommandKind::Ack => "acknowledge",
            CommandKind::Resolve => "resolve",
        }
    }
}

fn category_name(c: Category) -> &'static str {
    match c {
        Category::Deterioration => "deterioration",
        Category::Sepsis => "sepsis",
        Category::Delay => "delay",
        Category::Technical => "technical",
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
        Role::Pager => kind == CommandKind::Ack,
    }
}

impl Alert {
    pub fn is_active(&self) -> bool {
        self.state != AlertState::Resolved
    }

    /// Records a transition: bumps the version and stamps `transition` and `emittedAt`.
    pub fn transition(&mut self, to: AlertState, by: &str, at: Timestamp, reason: String) {
        self.transition = Transition {
            from: Some(self.state),
            to,
            by: by.to_string(),
            at,
            reason,
        };
        self.state = to;
        self.emitted_at = at;
        self.version += 1;
    }

    /// Applies a person's command, or refuses it leaving the alert unchanged.
    ///
    /// # Errors
    /// `Forbidden` when the role may not act on this category, `InvalidTransition` when the
    /// state does not allow it (an acknowledged alert is not acknowledged again; a resolved
    /// alert is never reopened).
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
                category: category_name(self.category),
            });
        }
        let to = match (kind, self.state) {
            (CommandKind::Ack, AlertState::Open | AlertState::Snoozed) => AlertState::Acknowledged,
            (
                CommandKind::Resolve,
                AlertState::Open | AlertState::Acknowledged | AlertState::Snoozed,
            ) => AlertState::Resolved,
            (_, state) => {
                return Err(CommandError::InvalidTransition {
                    action: kind.verb(),
                    state: state.as_str(),
                });
            }
        };
        let reason = if reason.is_empty() {
            kind.verb().to_string()
        } else {
            reason.to_string()
        };
        self.transition(to, by, at, reason);
        Ok(())
    }
}

/// A stable alert id from what opened it, so that replaying the same events names the same
/// alert: `alert-` and 16 hex digits of FNV-1a over tenant, subject, rule family and opening time.
pub fn alert_id(tenant: &str, subject: &str, family: &str, opened_at: Timestamp) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        tenant.as_bytes(),
        subject.as_bytes(),
        family.as_bytes(),
        &opened_at.0.to_le_bytes(),
    ] {
        for &b in part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("alert-{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn alert_ids_are_stable_tokens() {
        let t = Timestamp(1_764_234_300_000);
        let a = alert_id("clinic-abc", "patient-123", "news2", t);
        assert_eq!(a, alert_id("clinic-abc", "patient-123", "news2", t));
        assert_ne!(a, alert_id("clinic-abc", "patient-124", "news2", t));
        assert_ne!(a, alert_id("clinic-abd", "patient-123", "news2", t));
        assert_eq!(a.len(), 22);
        assert!(vigil_config::is_token(&a));
    }
}
