//! The alert record (`orchestration.alert.v1` data) and its state machine.
//!
//! States: `open` -> `acknowledged` -> `resolved`; `open`/`acknowledged` -> `snoozed` -> `open`
//! when the snooze ends; an acknowledgement that expires while the condition holds goes back to
//! `open` and re-pages; any non-terminal state -> `resolved`, which is terminal. Escalation
//! steps, page delivery states and severity changes are transitions too (`to` stays the state).
//! Every change is a transition with who, when, from, to and why; `version` counts them, so
//! a consumer can tell a newer copy of an alert from an older one. Deadlines and paging live in
//! [`crate::escalation`].

use serde::{Deserialize, Serialize};
use vigil_config::Role;

pub use crate::escalation::Escalation;
use crate::news2::Component;
use crate::time::Timestamp;

/// Who the alert concerns.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tenant: &'a str,
    pub patient: &'a str,
    pub unit: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Deterioration,
    Sepsis,
    Delay,
    Technical,
}

/// Why the alert fired and why now, with every contributing input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub why: String,
    pub why_now: String,
    pub components: Vec<Component>,
    /// Inputs with no fresh value (additive to the contract).
    #[serde(deserialize_with = "crate::news2::input_names")]
    pub missing: Vec<&'static str>,
    pub profile: String,
}

/// `transition.by` of everything the engine does by itself (rules, timers).
pub const ENGINE: &str = "engine";

/// The last change of state, with who, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: Option<AlertState>,
    pub to: AlertState,
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
}

impl Transition {
    /// The first transition of every alert: opened by the engine because its rule fired.
    pub fn fired(at: Timestamp) -> Self {
        Self {
            from: None,
            to: AlertState::Open,
            by: ENGINE.into(),
            at,
            reason: "rule fired".into(),
        }
    }
}

/// Rule-specific figures (`meta.news2`, and for the other rules the figure they fired on).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
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
    /// `delay.provider`: the average start delay, minutes (contracts.md's alert example).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avg_delay_minutes: Option<f64>,
    /// `delay.waiting`: minutes waited when it fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_minutes: Option<i64>,
    /// `delay.resource_overrun`: minutes past `expectedFreeAt` when it fired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overrun_minutes: Option<i64>,
}

/// One alert, exactly the `orchestration.alert.v1` data shape plus additive `tenantId`/`version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub alert_id: String,
    pub tenant_id: String,
    #[serde(deserialize_with = "rule_name")]
    pub rule: RuleName,
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
    /// The engine's clock when the alert opened (escalation counts from here).
    pub opened_at: Timestamp,
    /// The engine's clock at the latest transition.
    pub emitted_at: Timestamp,
    /// The source time (`occurredAt`) of what fired the rule: the reading, or the moment a
    /// delay passed its threshold. Additive; older stored alerts lack it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub triggered_at: Option<Timestamp>,
    /// 1 at open, +1 per transition.
    pub version: u64,
    /// While `snoozed`: when the snooze ends.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub snoozed_until: Option<Timestamp>,
    /// While `acknowledged`: when the acknowledgement expires (re-page if the condition holds).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ack_expires_at: Option<Timestamp>,
}

/// A rule's name. An alias, not `&'static str` written out, so that serde's derive reads it
/// through [`rule_name`] instead of borrowing from the input.
pub type RuleName = &'static str;

/// Reads a rule name back as the engine's own `&'static str` (alerts read from `ALERTS`).
fn rule_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let name = std::borrow::Cow::<str>::deserialize(d)?;
    vigil_config::KNOWN_RULES
        .iter()
        .find(|r| **r == name)
        .copied()
        .ok_or_else(|| serde::de::Error::custom(format!("unknown rule `{name}`")))
}

impl Alert {
    /// What every new alert shares: open, version 1, fired by what happened at `triggered_at`
    /// (source time), opened and emitted at `at` (the engine's clock, where escalation starts).
    /// Rules fill in the rest with struct update syntax.
    pub fn opening(triggered_at: Timestamp, at: Timestamp) -> Alert {
        Alert {
            alert_id: String::new(),
            tenant_id: String::new(),
            rule: "",
            category: Category::Deterioration,
            level: Level::Info,
            state: AlertState::Open,
            message: String::new(),
            patient_id: None,
            unit_id: None,
            resource_id: None,
            provider_id: None,
            related_appointments: Vec::new(),
            meta: Meta::default(),
            explanation: Explanation::default(),
            escalation: Escalation::none(at),
            transition: Transition::fired(at),
            opened_at: at,
            emitted_at: at,
            triggered_at: Some(triggered_at),
            version: 1,
            snoozed_until: None,
            ack_expires_at: None,
        }
    }
}

impl Alert {
    /// An alert from an `orchestration.alert.v1` envelope as published on `ALERTS`.
    ///
    /// # Errors
    /// A message saying what does not parse.
    pub fn from_envelope(payload: &[u8]) -> Result<Alert, String> {
        #[derive(Deserialize)]
        struct Envelope {
            data: Alert,
        }
        serde_json::from_slice::<Envelope>(payload)
            .map(|e| e.data)
            .map_err(|e| format!("not an alert envelope: {e}"))
    }
}

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

/// The actor that keeps an alert, where commands about it go: the patient's for clinical
/// alerts; for delay alerts the location's waiting area, the provider or the resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Patient(String),
    Location(String),
    Provider(String),
    Resource(String),
}

impl Alert {
    /// Who keeps this alert (`None` when a field it needs is missing, e.g. a foreign record).
    pub fn owner(&self) -> Option<Owner> {
        let id = |v: &Option<String>| v.clone();
        match self.rule {
            "delay.waiting" => id(&self.unit_id).map(Owner::Location),
            "delay.provider" => id(&self.provider_id).map(Owner::Provider),
            "delay.resource_overrun" => id(&self.resource_id).map(Owner::Resource),
            _ => id(&self.patient_id).map(Owner::Patient),
        }
    }
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
        }
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

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Deterioration => "deterioration",
            Category::Sepsis => "sepsis",
            Category::Delay => "delay",
            Category::Technical => "technical",
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
    /// Resolved by a person (not by the engine clearing it): its rule must fire afresh.
    pub fn resolved_by_person(&self) -> bool {
        self.state == AlertState::Resolved && self.transition.by != ENGINE
    }

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
                    crate::escalation::minutes(millis)
                );
            }
            _ => self.on_resolved(),
        }
        self.transition(to, by, at, reason);
        Ok(())
    }
}

/// A stable alert id from what opened it, so that replaying the same events names the same
/// alert: `alert-` and 16 hex digits of FNV-1a over tenant, subject, rule family and the source
/// time of what fired it (never the engine's clock, which differs between runs).
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

    /// Recovery reads stored alerts back: an explanation must decode whatever `missing` the
    /// engine wrote, qSOFA's `mentation` included (it did not, and a restart skipped such
    /// alerts).
    #[test]
    fn every_missing_input_the_engine_writes_reads_back() {
        let written: Vec<&'static str> = crate::news2::Input::ALL
            .iter()
            .map(|i| i.name())
            .chain(crate::sepsis::INPUTS)
            .collect();
        let e = Explanation {
            missing: written.clone(),
            ..Explanation::default()
        };
        let json = serde_json::to_string(&e).expect("serializes");
        let back: Explanation = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back.missing, written);
        let bad = json.replace("\"mentation\"", "\"mood\"");
        assert!(serde_json::from_str::<Explanation>(&bad).is_err());
    }

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
