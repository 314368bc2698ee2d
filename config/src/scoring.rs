//! `[scoring]`, `[rules."…"]` and `[[profiles]]`: freshness limits, rule settings and the
//! threshold profiles that override them per unit, with their validation.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::{Config, ConfigError, Duration, Rule, Threshold, invalid, is_token, unique_name};

/// Freshness limits of scoring.md: the latest observation older than its limit is missing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    pub vitals_freshness: Duration,
    pub consciousness_freshness: Duration,
    pub labs_freshness: Duration,
    pub lactate_freshness: Duration,
    /// How far back the patient window keeps history (event time).
    pub horizon: Duration,
    /// An event older than the patient's newest by more than this updates history but fires
    /// nothing (docs/window.md).
    pub lateness: Duration,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            vitals_freshness: Duration::from_secs(15 * 60),
            consciousness_freshness: Duration::from_secs(4 * 3600),
            labs_freshness: Duration::from_secs(24 * 3600),
            lactate_freshness: Duration::from_secs(6 * 3600),
            horizon: Duration::from_secs(6 * 3600),
            lateness: Duration::from_secs(10 * 60),
        }
    }
}

/// The `[scoring]` keys a profile may override; unset keys keep the file's (or built-in) value.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScoringOverride {
    pub vitals_freshness: Option<Duration>,
    pub consciousness_freshness: Option<Duration>,
    pub labs_freshness: Option<Duration>,
    pub lactate_freshness: Option<Duration>,
    pub horizon: Option<Duration>,
    pub lateness: Option<Duration>,
}

/// One threshold profile (`[[profiles]]`). It starts from the file's `[rules]` and `[scoring]`
/// (themselves over the built-in defaults) and overrides what it names.
///
/// Selection for an event of `(tenant, unit)`: the profile listing the unit (for that tenant or
/// for every tenant); else the tenant's default profile (`tenant` set, no `units`); else the
/// global default profile (neither set); else the built-in profile named `engine.profile`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Shown in every explanation; `[A-Za-z0-9_-]{1,64}`, unique.
    pub name: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub units: Vec<String>,
    #[serde(default)]
    pub scoring: ScoringOverride,
    #[serde(default)]
    pub rules: BTreeMap<String, RuleConfig>,
}

/// Overrides for one rule. Unset fields keep the rule's built-in default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub enabled: Option<bool>,
    /// Score at or above which the rule holds: the NEWS2 aggregate (`news2.medium`,
    /// `news2.high`), the rise (`news2.trend`), qSOFA or SIRS points (`sepsis.*`).
    pub threshold: Option<u8>,
    /// Consecutive scores the condition must hold before the rule fires.
    pub sustain: Option<u32>,
    /// How long the condition must be absent before the alert clears.
    pub clear: Option<Duration>,
    /// `news2.trend`: how far back the rise is measured. `technical.signal_loss`: the silence
    /// that counts as signal loss.
    pub window: Option<Duration>,
    /// `sepsis.sirs_lactate`: lactate (mmol/L) at or above which the rule holds.
    pub lactate: Option<f64>,
    /// `delay.provider`: the average start delay at or below which its alert clears.
    pub clear_below: Option<Duration>,
    /// `sepsis.model`: the risk (0..1) at or above which the rule holds (default: the model's
    /// own, chosen out of fold when it was trained).
    pub risk: Option<f64>,
    /// `sepsis.model`: the risk below which its alert starts to clear (at most `risk`).
    pub clear_risk: Option<f64>,
    /// `sepsis.model`: the model is evaluated at most once per this interval per patient
    /// (readings at the same instant as the last evaluation re-evaluate it).
    pub interval: Option<Duration>,
    /// `sepsis.model`, in the file's `[rules]` only: a model file to serve instead of the one
    /// built in (docs/sepsis-screen.md).
    pub model: Option<std::path::PathBuf>,
}

/// `news2.trend`'s default window: the rise is measured over the lowest score of the last hour.
pub const DEFAULT_TREND_WINDOW: Duration = Duration::from_secs(3600);

/// The trend window `rules` set, if any.
pub(crate) fn trend_window(rules: &BTreeMap<String, RuleConfig>) -> Option<Duration> {
    rules.get(Rule::News2Trend.name()).and_then(|r| r.window)
}

/// The trend rule looks back over the patient window's rows: a window longer than the horizon
/// would silently measure the rise over the horizon only.
pub(crate) fn check_trend_window(
    path: &str,
    key: &str,
    window: Duration,
    horizon: Duration,
) -> Result<(), ConfigError> {
    if window.as_millis() > horizon.as_millis() {
        return Err(invalid(
            path,
            key,
            format!(
                "news2.trend's window ({} s) is longer than the scoring horizon ({} s) the patient window keeps",
                window.as_millis() / 1000,
                horizon.as_millis() / 1000
            ),
        ));
    }
    Ok(())
}

/// The longest `scoring.horizon`: a patient window's rows count their minutes in 16 bits
/// (45 days), and a month is far beyond what any score or rule looks back over.
pub const MAX_HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);

/// A horizon must cover the lateness bound and fit a patient window.
pub(crate) fn check_horizon(
    path: &str,
    key: &str,
    horizon: Duration,
    lateness: Duration,
) -> Result<(), ConfigError> {
    if horizon.as_millis() < lateness.as_millis() {
        return Err(invalid(path, key, "must be at least scoring.lateness"));
    }
    if horizon.as_millis() > MAX_HORIZON.as_millis() {
        return Err(invalid(
            path,
            key,
            format!(
                "{} s is longer than the longest horizon a patient window keeps ({} s, 30 days)",
                horizon.as_millis() / 1000,
                MAX_HORIZON.as_millis() / 1000
            ),
        ));
    }
    Ok(())
}

/// The most consecutive scores `news2.single3`, `news2.medium` and `news2.high` can require:
/// the engine keeps this many of each patient's latest scores.
pub const MAX_RISK_SUSTAIN: u32 = 16;

impl Config {
    pub(crate) fn validate_profiles(&self, path: &str) -> Result<(), ConfigError> {
        let mut names = HashSet::new();
        let mut defaults = HashSet::new();
        let mut units = HashSet::new();
        for (i, p) in self.profiles.iter().enumerate() {
            let key = |field: &str| format!("profiles[{i}].{field}");
            unique_name(path, &key("name"), &p.name, &mut names, "profile")?;
            if let Some(t) = p.tenant.as_deref()
                && !is_token(t)
            {
                return Err(invalid(
                    path,
                    &key("tenant"),
                    "must match [A-Za-z0-9_-]{1,64}",
                ));
            }
            let tenant = p.tenant.as_deref().unwrap_or("*");
            if p.units.is_empty() && !defaults.insert(tenant) {
                return Err(invalid(
                    path,
                    &key("units"),
                    format!("a second default profile for tenant `{tenant}` (no units)"),
                ));
            }
            for unit in &p.units {
                if !is_token(unit) {
                    return Err(invalid(
                        path,
                        &key("units"),
                        format!("`{unit}` is not a valid unit"),
                    ));
                }
                if !units.insert((tenant, unit.as_str())) {
                    return Err(invalid(
                        path,
                        &key("units"),
                        format!("unit `{unit}` is already in another profile"),
                    ));
                }
            }
            validate_rules(path, &format!("profiles[{i}].rules"), &p.rules)?;
            let horizon = p.scoring.horizon.unwrap_or(self.scoring.horizon);
            let lateness = p.scoring.lateness.unwrap_or(self.scoring.lateness);
            check_horizon(path, &key("scoring.horizon"), horizon, lateness)?;
            check_trend_window(
                path,
                &key("rules.\"news2.trend\".window"),
                trend_window(&p.rules)
                    .or_else(|| trend_window(&self.rules))
                    .unwrap_or(DEFAULT_TREND_WINDOW),
                horizon,
            )?;
        }
        Ok(())
    }
}

pub(crate) fn validate_rules(
    path: &str,
    prefix: &str,
    rules: &BTreeMap<String, RuleConfig>,
) -> Result<(), ConfigError> {
    for (name, rule) in rules {
        let key = |field: &str| format!("{prefix}.\"{name}\".{field}");
        let Some(id) = Rule::from_name(name) else {
            let known = Rule::ALL.map(Rule::name).join(", ");
            return Err(invalid(
                path,
                &format!("{prefix}.\"{name}\""),
                format!("unknown rule; known rules: {known}"),
            ));
        };
        if rule.sustain == Some(0) {
            return Err(invalid(path, &key("sustain"), "must be at least 1"));
        }
        if id.is_news2_risk() && rule.sustain.is_some_and(|n| n > MAX_RISK_SUSTAIN) {
            return Err(invalid(
                path,
                &key("sustain"),
                format!(
                    "must be at most {MAX_RISK_SUSTAIN}: the NEWS2 risk rules keep that many scores"
                ),
            ));
        }
        if id.threshold() == Threshold::None && rule.threshold.is_some() {
            return Err(invalid(
                path,
                &key("threshold"),
                "delay rules take a duration: set `window` (and `clear_below` for delay.provider)",
            ));
        }
        if let (Some(below), Some(window)) = (rule.clear_below, rule.window)
            && below.as_millis() >= window.as_millis()
        {
            return Err(invalid(
                path,
                &key("clear_below"),
                "must be shorter than window (the delay that fires the alert)",
            ));
        }
        if rule.clear_below.is_some() && id != Rule::DelayProvider {
            return Err(invalid(
                path,
                &key("clear_below"),
                "only delay.provider has a clear_below",
            ));
        }
        if let (Some(t), Threshold::Points { min, max }) = (rule.threshold, id.threshold())
            && !(min..=max).contains(&t)
        {
            return Err(invalid(
                path,
                &key("threshold"),
                format!("must be {min}..={max} for {name}"),
            ));
        }
        if let Some(l) = rule.lactate
            && !(l.is_finite() && l > 0.0 && l <= 30.0)
        {
            return Err(invalid(path, &key("lactate"), "must be in (0, 30] mmol/L"));
        }
        if rule.window.is_some_and(|w| w.as_millis() == 0) {
            return Err(invalid(path, &key("window"), "must be longer than 0s"));
        }
        if id.threshold() == Threshold::Risk && rule.threshold.is_some() {
            return Err(invalid(
                path,
                &key("threshold"),
                "sepsis.model takes a risk: set `risk` (and `clear_risk`), from 0 to 1",
            ));
        }
        let model_only = [
            ("risk", rule.risk.is_some()),
            ("clear_risk", rule.clear_risk.is_some()),
            ("interval", rule.interval.is_some()),
            ("model", rule.model.is_some()),
        ];
        for (field, set) in model_only {
            if set && id != Rule::SepsisModel {
                return Err(invalid(path, &key(field), "only sepsis.model has it"));
            }
        }
        for (field, v) in [("risk", rule.risk), ("clear_risk", rule.clear_risk)] {
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0 && v < 1.0)
            {
                return Err(invalid(
                    path,
                    &key(field),
                    "must be a risk between 0 and 1 (exclusive)",
                ));
            }
        }
        if let (Some(open), Some(clear)) = (rule.risk, rule.clear_risk)
            && clear > open
        {
            return Err(invalid(path, &key("clear_risk"), "must be at most `risk`"));
        }
        if rule.model.is_some() && prefix != "rules" {
            return Err(invalid(
                path,
                &key("model"),
                "a model is set once, in the file's [rules.\"sepsis.model\"]",
            ));
        }
    }
    Ok(())
}
