//! Escalation: who is paged about an alert, when the next role is paged, and what happens to a
//! page (contracts.md §4, §5 and §7; scoring.md "Default escalation policies").
//!
//! The policy that applies when an alert opens is copied into the alert (`escalation.snapshot`),
//! so a configuration change never alters an escalation already under way. Every deadline is a
//! field of the alert (`escalation.nextAt`, the page's resend time, `ackExpiresAt`,
//! `snoozedUntil`); [`Alert::advance`] applies those that have passed, in order. A timer is only
//! a wake-up: one that fires for a superseded deadline finds nothing due and does nothing, and a
//! deadline that passed while the engine was down fires at once on the next `advance`.
//!
//! Levels count from 1. `after` offsets count from `escalation.since`: the opening, or the time
//! escalation restarted (snooze end, re-page on acknowledgement expiry, decline, upgrade).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vigil_config::{Category, EscalationConfig, Level, PolicyConfig, Role};

use crate::time::Timestamp;

pub(super) const MINUTE: i64 = 60_000;

/// One level of a policy: the roles paged `after_ms` from the start of escalation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyLevel {
    pub after_ms: i64,
    pub targets: Vec<Role>,
}

/// An escalation policy as copied into each alert it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub name: String,
    /// The policy's `match`.
    #[serde(rename = "matchLevel", default)]
    pub level: Option<Level>,
    #[serde(rename = "matchCategory", default)]
    pub category: Option<Category>,
    pub ack_expiry_ms: i64,
    pub page_receipt_timeout_ms: i64,
    pub levels: Vec<PolicyLevel>,
}

impl Policy {
    fn new(name: &str, level: Option<Level>, category: Option<Category>, ack: i64) -> Self {
        Self {
            name: name.into(),
            level,
            category,
            ack_expiry_ms: ack,
            page_receipt_timeout_ms: 60_000,
            levels: Vec::new(),
        }
    }

    fn then(mut self, after_min: i64, target: Role) -> Self {
        self.levels.push(PolicyLevel {
            after_ms: after_min * MINUTE,
            targets: vec![target],
        });
        self
    }

    fn matches(&self, level: Level, category: Category) -> bool {
        self.level.is_none_or(|l| l == level) && self.category.is_none_or(|c| c == category)
    }

    fn from_config(p: &PolicyConfig) -> Self {
        // Config validation has already refused any other name.
        let level = p.matches.level.as_deref().and_then(Level::from_name);
        let category = p.matches.category.as_deref().and_then(Category::from_name);
        let default_ack = if level == Some(Level::Critical) {
            30 * MINUTE
        } else {
            60 * MINUTE
        };
        Self {
            name: p.name.clone(),
            level,
            category,
            ack_expiry_ms: p.ack_expiry.map_or(default_ack, |d| d.as_millis_i64()),
            page_receipt_timeout_ms: p.page_receipt_timeout.map_or(60_000, |d| d.as_millis_i64()),
            levels: p
                .levels
                .iter()
                .map(|l| PolicyLevel {
                    after_ms: l.after.as_millis_i64(),
                    targets: l.targets.clone(),
                })
                .collect(),
        }
    }
}

/// The policies in force, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies(Vec<Arc<Policy>>);

impl Default for Policies {
    /// The defaults of scoring.md.
    fn default() -> Self {
        Self(vec![
            Arc::new(
                Policy::new("delay-default", None, Some(Category::Delay), 60 * MINUTE)
                    .then(0, Role::Coordinator)
                    .then(15, Role::Manager),
            ),
            Arc::new(
                Policy::new("critical-default", Some(Level::Critical), None, 30 * MINUTE)
                    .then(0, Role::Nurse)
                    .then(5, Role::ChargeNurse)
                    .then(10, Role::RapidResponse),
            ),
            Arc::new(
                Policy::new("warning-default", Some(Level::Warning), None, 60 * MINUTE)
                    .then(0, Role::Nurse)
                    .then(15, Role::ChargeNurse)
                    .then(30, Role::Physician),
            ),
        ])
    }
}

impl Policies {
    /// The file's policies first (in file order), then the built-ins it did not replace.
    pub fn from_config(config: &EscalationConfig) -> Self {
        let mut list: Vec<Arc<Policy>> = config
            .policies
            .iter()
            .map(|p| Arc::new(Policy::from_config(p)))
            .collect();
        for builtin in Policies::default().0 {
            if !list.iter().any(|p| p.name == builtin.name) {
                list.push(builtin);
            }
        }
        Self(list)
    }

    /// The first policy whose match fits the alert.
    pub fn select(&self, level: Level, category: Category) -> Option<&Arc<Policy>> {
        self.0.iter().find(|p| p.matches(level, category))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|p| p.name.as_str())
    }
}

/// Delivery state of a page (contracts.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageState {
    Sent,
    Delivered,
    Accepted,
    Declined,
}

impl PageState {
    pub fn as_str(self) -> &'static str {
        match self {
            PageState::Sent => "sent",
            PageState::Delivered => "delivered",
            PageState::Accepted => "accepted",
            PageState::Declined => "declined",
        }
    }
}

/// The current page of an alert: one per escalation step, superseded by the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub page_id: String,
    pub level: u32,
    /// `role:<role>@<unit>`, as in `escalation.targets`.
    pub targets: Vec<String>,
    pub state: PageState,
    /// When it was last sent (first issue or resend).
    pub sent_at: Timestamp,
    /// How many times it has been sent.
    pub attempts: u32,
    /// Who moved it out of `sent` (receipt, acknowledgement or decline), and when.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at: Option<Timestamp>,
}

impl Page {
    /// When it is sent again unless receipted.
    pub fn resend_at(&self, timeout_ms: i64) -> Option<Timestamp> {
        (self.state == PageState::Sent).then(|| self.sent_at.plus_millis(timeout_ms))
    }

    /// True when a connection of `role` covering `unit` should get this page: its own role
    /// among the targets, or a `pager` whose `page_roles` (empty: any) name a target role.
    pub fn reaches(&self, role: Role, page_roles: &[Role]) -> bool {
        let role_of = |t: &String| {
            t.strip_prefix("role:")
                .map(|r| r.split('@').next().unwrap_or(r).to_string())
        };
        self.targets.iter().filter_map(role_of).any(|r| {
            if role == Role::Pager {
                page_roles.is_empty() || page_roles.iter().any(|p| p.as_str() == r)
            } else {
                role.as_str() == r
            }
        })
    }
}

/// The id of an alert's `n`th page: `page-<hex>-<n>` for alert `alert-<hex>`, so that a
/// `receipt` or `decline` names its alert without a lookup table ([`page_alert`]).
fn page_id(alert_id: &str, n: u32) -> String {
    let hex = alert_id.strip_prefix("alert-").unwrap_or(alert_id);
    format!("page-{hex}-{n}")
}

/// The alert a page id belongs to (the inverse of how page ids are made).
pub fn page_alert(page_id: &str) -> Option<String> {
    let (hex, n) = page_id.strip_prefix("page-")?.rsplit_once('-')?;
    n.parse::<u32>().ok()?;
    Some(format!("alert-{hex}"))
}

/// The escalation in force: the contract's `policy`, `level`, `nextAt`, `targets`, plus the
/// policy snapshot, the time offsets count from, and the current page (additive fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    pub policy: String,
    /// 1-based; 0 when no policy applies (nobody is paged).
    pub level: u32,
    /// When the next level is paged unless the alert is acknowledged (null at the last level,
    /// or when acknowledged, snoozed or resolved).
    pub next_at: Option<Timestamp>,
    pub targets: Vec<String>,
    /// The policy as it was when the alert opened (or was upgraded).
    pub snapshot: Option<Arc<Policy>>,
    /// `after` offsets count from here.
    pub since: Timestamp,
    /// Pages issued so far (numbers the page ids).
    pub pages: u32,
    pub page: Option<Page>,
}

fn targets_of(roles: &[Role], unit: Option<&str>) -> Vec<String> {
    roles
        .iter()
        .map(|r| match unit {
            Some(u) => format!("role:{}@{u}", r.as_str()),
            None => format!("role:{}", r.as_str()),
        })
        .collect()
}

impl Escalation {
    /// No policy applies: nobody is paged, nothing is scheduled.
    pub fn none(at: Timestamp) -> Self {
        Self {
            policy: "none".into(),
            level: 0,
            next_at: None,
            targets: Vec::new(),
            snapshot: None,
            since: at,
            pages: 0,
            page: None,
        }
    }

    /// Starts `policy` at level 1 at `at`, paging its first level. `pages` counts the pages
    /// this alert already had (a policy change after an upgrade keeps numbering them).
    pub fn start(
        policy: Option<&Arc<Policy>>,
        alert_id: &str,
        unit: Option<&str>,
        at: Timestamp,
        pages: u32,
    ) -> Self {
        let Some(policy) = policy.filter(|p| !p.levels.is_empty()) else {
            return Self {
                pages,
                ..Self::none(at)
            };
        };
        let mut e = Self {
            policy: policy.name.clone(),
            snapshot: Some(policy.clone()),
            pages,
            ..Self::none(at)
        };
        e.go_to(1, at, alert_id, unit, at);
        e
    }

    /// Moves to `level`, with offsets counting from `since`, and issues its page at `at`.
    pub(super) fn go_to(
        &mut self,
        level: u32,
        since: Timestamp,
        alert_id: &str,
        unit: Option<&str>,
        at: Timestamp,
    ) {
        let Some(policy) = self.snapshot.clone() else {
            return;
        };
        let idx = (level.max(1) as usize - 1).min(policy.levels.len() - 1);
        self.level = idx as u32 + 1;
        self.since = since;
        self.targets = targets_of(&policy.levels[idx].targets, unit);
        self.next_at = policy
            .levels
            .get(idx + 1)
            .map(|l| since.plus_millis(l.after_ms));
        self.pages += 1;
        self.page = Some(Page {
            page_id: page_id(alert_id, self.pages),
            level: self.level,
            targets: self.targets.clone(),
            state: PageState::Sent,
            sent_at: at,
            attempts: 1,
            by: None,
            at: None,
        });
    }

    /// The offset of `level` (1-based) in the snapshot.
    pub(super) fn after(&self, level: u32) -> i64 {
        self.snapshot
            .as_ref()
            .and_then(|p| p.levels.get(level.max(1) as usize - 1))
            .map_or(0, |l| l.after_ms)
    }

    pub(super) fn last_level(&self) -> u32 {
        self.snapshot.as_ref().map_or(0, |p| p.levels.len() as u32)
    }

    pub(super) fn receipt_timeout(&self) -> i64 {
        self.snapshot
            .as_ref()
            .map_or(60_000, |p| p.page_receipt_timeout_ms)
    }

    pub(super) fn ack_expiry(&self) -> i64 {
        self.snapshot
            .as_ref()
            .map_or(30 * MINUTE, |p| p.ack_expiry_ms)
    }
}

/// `5 min`, `90 s`: how explanations show a duration.
pub(crate) fn minutes(ms: i64) -> String {
    if ms % MINUTE == 0 {
        format!("{} min", ms / MINUTE)
    } else {
        format!("{} s", ms / 1000)
    }
}
