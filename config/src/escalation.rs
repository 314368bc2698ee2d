//! `[escalation]`: the escalation policies over the built-in defaults.

use std::collections::HashSet;

use serde::Deserialize;

use crate::{Category, Config, ConfigError, Duration, Level, Role, invalid, unique_name};

/// `[escalation]`: policies given here replace the built-in policy of the same name; the others
/// are tried first, in file order, then the built-ins (`delay-default`, `critical-default`,
/// `warning-default`). The first policy whose `match` fits an alert applies.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    pub policies: Vec<PolicyConfig>,
}

/// One escalation policy, shaped as in contracts.md §7.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub name: String,
    /// Which alerts it applies to; an empty match applies to every alert.
    #[serde(default, rename = "match")]
    pub matches: PolicyMatch,
    /// How long an acknowledgement holds before the alert is paged again while its condition
    /// still holds (default 30m for critical matches, 60m otherwise).
    #[serde(default)]
    pub ack_expiry: Option<Duration>,
    /// How long a page may go without a `receipt` before it is sent again (default 60s).
    #[serde(default)]
    pub page_receipt_timeout: Option<Duration>,
    pub levels: Vec<PolicyLevelConfig>,
}

/// `match = { level = "critical" }`, `{ category = "delay" }`, or both.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyMatch {
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

/// One escalation level: who is paged, `after` the alert opened.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicyLevelConfig {
    pub after: Duration,
    pub targets: Vec<Role>,
}

impl Config {
    pub(crate) fn validate_policies(&self, path: &str) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        for (i, p) in self.escalation.policies.iter().enumerate() {
            let key = |field: &str| format!("escalation.policies[{i}].{field}");
            unique_name(path, &key("name"), &p.name, &mut names, "policy")?;
            if let Some(l) = p.matches.level.as_deref()
                && Level::from_name(l).is_none()
            {
                let all = Level::ALL.map(Level::as_str).join(", ");
                return Err(invalid(
                    path,
                    &key("match.level"),
                    format!("`{l}` is not one of {all}"),
                ));
            }
            if let Some(c) = p.matches.category.as_deref()
                && Category::from_name(c).is_none()
            {
                let all = Category::ALL.map(Category::as_str).join(", ");
                return Err(invalid(
                    path,
                    &key("match.category"),
                    format!("`{c}` is not one of {all}"),
                ));
            }
            if p.levels.is_empty() {
                return Err(invalid(path, &key("levels"), "needs at least one level"));
            }
            let mut previous = None;
            for (j, level) in p.levels.iter().enumerate() {
                let lkey = format!("escalation.policies[{i}].levels[{j}]");
                if level.targets.is_empty() {
                    return Err(invalid(
                        path,
                        &format!("{lkey}.targets"),
                        "needs at least one role",
                    ));
                }
                if let Some(r) = level
                    .targets
                    .iter()
                    .find(|r| matches!(r, Role::Viewer | Role::Pager))
                {
                    return Err(invalid(
                        path,
                        &format!("{lkey}.targets"),
                        format!("`{}` is not a role that can be paged", r.as_str()),
                    ));
                }
                if j == 0 && level.after.as_millis() != 0 {
                    return Err(invalid(
                        path,
                        &format!("{lkey}.after"),
                        "the first level is paged when the alert opens: must be \"0s\"",
                    ));
                }
                if previous.is_some_and(|prev| level.after <= prev) {
                    return Err(invalid(
                        path,
                        &format!("{lkey}.after"),
                        "must be later than the level before",
                    ));
                }
                previous = Some(level.after);
            }
            if p.ack_expiry.is_some_and(|d| d.as_millis() < 1000) {
                return Err(invalid(path, &key("ack_expiry"), "must be at least 1s"));
            }
            if p.page_receipt_timeout.is_some_and(|d| d.as_millis() < 1000) {
                return Err(invalid(
                    path,
                    &key("page_receipt_timeout"),
                    "must be at least 1s",
                ));
            }
        }
        Ok(())
    }
}
