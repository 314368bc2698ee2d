//! The alert record: exactly the `orchestration.alert.v1` data (contracts.md section 4), its
//! id, who owns it, and the one primitive every change goes through ([`Alert::transition`]).

use serde::{Deserialize, Serialize};
use vigil_config::{Category, Level, OwnerKind, Rule};

use super::escalation::Escalation;
use crate::scores::news2::Component;
use crate::time::Timestamp;

/// Who the alert concerns.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tenant: &'a str,
    pub patient: &'a str,
    pub unit: &'a str,
    pub bed: Option<&'a str>,
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

/// Why the alert fired and why now, with every contributing input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub why: String,
    pub why_now: String,
    pub components: Vec<Component>,
    /// Inputs with no fresh value (additive to the contract).
    #[serde(deserialize_with = "input_names")]
    pub missing: Vec<&'static str>,
    pub profile: String,
}

/// Reads a list of input names back as the engine's own `&'static str`s (`missing`): every
/// name an explanation can list, NEWS2's inputs and qSOFA's and SIRS's (`mentation`).
fn input_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<&'static str>, D::Error> {
    let names = Vec::<std::borrow::Cow<str>>::deserialize(d)?;
    names
        .iter()
        .map(|n| {
            crate::scores::news2::Input::ALL
                .iter()
                .map(|i| i.name())
                .chain(crate::scores::sepsis::INPUTS)
                .find(|x| x == n)
                .or_else(|| crate::patient::features::intern(n))
                .ok_or_else(|| serde::de::Error::custom(format!("unknown input `{n}`")))
        })
        .collect()
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
    /// `sepsis.model`: the risk (0..1) it fired on, and the model's name and version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sepsis_risk: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
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
    pub rule: Rule,
    pub category: Category,
    pub level: Level,
    pub state: AlertState,
    pub message: String,
    pub patient_id: Option<String>,
    pub unit_id: Option<String>,
    /// The patient's bed when the alert opened, when monitors name it. Additive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bed_id: Option<String>,
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

impl Alert {
    /// What every new alert of `rule` shares: its category and level from the rule catalogue,
    /// open, version 1, fired by what happened at `triggered_at` (source time), opened and
    /// emitted at `at` (the engine's clock, where escalation starts). Rules fill in the rest
    /// with struct update syntax.
    pub fn opening(rule: Rule, triggered_at: Timestamp, at: Timestamp) -> Alert {
        Alert {
            alert_id: String::new(),
            tenant_id: String::new(),
            rule,
            category: rule.category(),
            level: rule.level(),
            state: AlertState::Open,
            message: String::new(),
            patient_id: None,
            unit_id: None,
            bed_id: None,
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
        match self.rule.owner() {
            OwnerKind::Location => id(&self.unit_id).map(Owner::Location),
            OwnerKind::Provider => id(&self.provider_id).map(Owner::Provider),
            OwnerKind::Resource => id(&self.resource_id).map(Owner::Resource),
            OwnerKind::Patient => id(&self.patient_id).map(Owner::Patient),
        }
    }
}

impl Alert {
    /// The newest source time its present state was decided on: its trigger, or the newest
    /// input its explanation lists (an upgrade or downgrade explains the score it moved on).
    pub fn decided_at(&self) -> Option<Timestamp> {
        let newest_input = self
            .explanation
            .components
            .iter()
            .map(|c| c.observed_at)
            .max();
        self.triggered_at.max(newest_input)
    }

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
}

/// A stable alert id from what opened it, so that replaying the same events names the same
/// alert: `alert-` and 16 hex digits of FNV-1a over tenant, subject, the rule's family
/// ([`Rule::family`]: the NEWS2 risk rules share one) and the source time of what fired it
/// (never the engine's clock, which differs between runs).
pub fn alert_id(tenant: &str, subject: &str, rule: Rule, opened_at: Timestamp) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        tenant.as_bytes(),
        subject.as_bytes(),
        rule.family().as_bytes(),
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
        let written: Vec<&'static str> = crate::scores::news2::Input::ALL
            .iter()
            .map(|i| i.name())
            .chain(crate::scores::sepsis::INPUTS)
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
    fn alert_ids_are_stable_tokens() {
        let t = Timestamp(1_764_234_300_000);
        let a = alert_id("clinic-abc", "patient-123", Rule::News2High, t);
        assert_eq!(a, alert_id("clinic-abc", "patient-123", Rule::News2High, t));
        assert_ne!(a, alert_id("clinic-abc", "patient-124", Rule::News2High, t));
        assert_ne!(a, alert_id("clinic-abd", "patient-123", Rule::News2High, t));
        // The NEWS2 risk rules are one rule for deduplication; every other rule is its own.
        assert_eq!(
            a,
            alert_id("clinic-abc", "patient-123", Rule::News2Single3, t)
        );
        assert_ne!(
            a,
            alert_id("clinic-abc", "patient-123", Rule::News2Trend, t)
        );
        assert_eq!(a.len(), 22);
        assert!(vigil_config::is_token(&a));
    }
}
