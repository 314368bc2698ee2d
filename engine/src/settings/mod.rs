//! What the engine is configured with: each unit's threshold profile ([`Settings`]), the
//! thresholds and timing of every rule ([`RuleSettings`]) and the NEWS2 risk family's rules
//! ([`RiskRule`]). Read by the rules, the conditions, the practice keepers and the profiles;
//! it imports none of them.

pub mod profiles;

use vigil_config::{Config, Level, Rule, RuleConfig};

use crate::alert::Policies;
use crate::scores::news2::Freshness;

/// The rules of the family, lowest first, so `Ord` is severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskRule {
    Single3,
    Medium,
    High,
}

impl RiskRule {
    pub const ALL: [RiskRule; 3] = [RiskRule::Single3, RiskRule::Medium, RiskRule::High];

    /// Its entry in the rule catalogue (name, level).
    pub fn rule(self) -> Rule {
        match self {
            RiskRule::Single3 => Rule::News2Single3,
            RiskRule::Medium => Rule::News2Medium,
            RiskRule::High => Rule::News2High,
        }
    }

    pub fn name(self) -> &'static str {
        self.rule().name()
    }

    pub fn level(self) -> Level {
        self.rule().level()
    }

    pub(crate) fn band(self) -> &'static str {
        match self {
            RiskRule::Single3 => "single parameter 3",
            RiskRule::Medium => "medium",
            RiskRule::High => "high",
        }
    }
}

impl From<RiskRule> for Rule {
    fn from(r: RiskRule) -> Rule {
        r.rule()
    }
}

/// A patient window's horizon and lateness bound, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSettings {
    pub horizon_ms: i64,
    pub lateness_ms: i64,
}

impl Default for WindowSettings {
    fn default() -> Self {
        Self {
            horizon_ms: 6 * 3_600_000,
            lateness_ms: 10 * 60_000,
        }
    }
}

/// One rule's thresholds and timing (every rule of scoring.md uses a subset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleSettings {
    pub enabled: bool,
    /// NEWS2 aggregate (`medium`, `high`), rise (`trend`), qSOFA or SIRS points (`sepsis.*`) at
    /// or above which the rule holds. Unused by `single3`, which holds on any parameter scoring
    /// 3 while the aggregate is below the medium threshold, and by signal loss.
    pub threshold: u8,
    pub sustain: u32,
    /// How long the condition must be absent before the alert resolves by itself; `None`:
    /// only people resolve it (`news2.trend`).
    pub clear_ms: Option<i64>,
    /// `news2.trend`: how far back the rise is measured; `technical.signal_loss`: the silence
    /// that counts as lost signal.
    pub window_ms: i64,
    /// `sepsis.sirs_lactate`: lactate (mmol/L) at or above which the rule holds.
    pub lactate: f64,
    /// `delay.provider`: the average start delay at or below which its alert clears.
    pub clear_below_ms: i64,
    /// `sepsis.model`: the risk at or above which it holds, and the risk below which its alert
    /// starts to clear; `None`: the model's own (chosen out of fold when it was trained).
    pub risk: Option<f64>,
    pub clear_risk: Option<f64>,
    /// `sepsis.model`: at most one evaluation per patient per this interval.
    pub interval_ms: i64,
}

impl RuleSettings {
    const fn new(threshold: u8, sustain: u32, clear_ms: Option<i64>) -> Self {
        Self {
            enabled: true,
            threshold,
            sustain,
            clear_ms,
            window_ms: 0,
            lactate: 0.0,
            clear_below_ms: 0,
            risk: None,
            clear_risk: None,
            interval_ms: 0,
        }
    }

    /// The clear period, or "never" for rules only people resolve.
    pub fn clear(&self) -> i64 {
        self.clear_ms.unwrap_or(i64::MAX)
    }
}

const MINUTE: i64 = 60_000;

/// Everything the engine needs to score and alert one unit's patients: a threshold profile,
/// resolved from configuration (see [`crate::settings::profiles`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Threshold profile name shown in every explanation.
    pub profile: String,
    pub freshness: Freshness,
    /// Freshness of the qSOFA/SIRS inputs (vitals, consciousness, labs, lactate).
    pub sepsis: crate::scores::sepsis::SepsisFreshness,
    /// Horizon and lateness bound of the patient window.
    pub window: WindowSettings,
    pub single3: RuleSettings,
    pub medium: RuleSettings,
    pub high: RuleSettings,
    pub trend: RuleSettings,
    pub qsofa: RuleSettings,
    pub sirs_lactate: RuleSettings,
    /// `sepsis.model`: `risk`/`clear_risk` (or the model's), `sustain`, `clear_ms`, `interval_ms`.
    pub model_rule: RuleSettings,
    /// The sepsis model `sepsis.model` evaluates (the built-in one unless the file names one).
    pub model: std::sync::Arc<crate::patient::model::Model>,
    pub signal_loss: RuleSettings,
    /// `delay.waiting`: `window_ms` is the wait that counts as a delay.
    pub waiting: RuleSettings,
    /// `delay.provider`: fires when the average start delay of the provider's latest `sustain`
    /// started or due appointments exceeds `window_ms`; clears at or below `clear_below_ms`.
    pub provider: RuleSettings,
    /// `delay.resource_overrun`: `window_ms` past `expectedFreeAt` while still occupied.
    pub overrun: RuleSettings,
    /// Escalation policies (the same for every profile: `[[escalation.policies]]`).
    pub policies: std::sync::Arc<Policies>,
}

impl Default for Settings {
    fn default() -> Self {
        let fifteen = Some(15 * MINUTE);
        let thirty = Some(30 * MINUTE);
        Self {
            profile: "default".into(),
            freshness: Freshness::default(),
            sepsis: crate::scores::sepsis::SepsisFreshness::default(),
            window: WindowSettings::default(),
            single3: RuleSettings::new(3, 1, fifteen),
            medium: RuleSettings::new(5, 2, fifteen),
            high: RuleSettings::new(7, 2, fifteen),
            trend: RuleSettings {
                window_ms: vigil_config::DEFAULT_TREND_WINDOW.as_millis_i64(),
                ..RuleSettings::new(3, 1, None)
            },
            qsofa: RuleSettings::new(2, 1, thirty),
            sirs_lactate: RuleSettings {
                lactate: 2.0,
                ..RuleSettings::new(2, 1, thirty)
            },
            // Clears at the first evaluation below the clear risk; evaluated at most once a
            // minute per patient.
            model_rule: RuleSettings {
                interval_ms: MINUTE,
                ..RuleSettings::new(0, 1, Some(0))
            },
            model: crate::patient::model::Model::shared_built_in(),
            // Clears as soon as data flows again.
            signal_loss: RuleSettings {
                window_ms: 5 * MINUTE,
                ..RuleSettings::new(1, 1, Some(0))
            },
            // The delay rules clear on events (started, freed) or, for the provider, below a
            // second threshold, never after a clear period.
            waiting: RuleSettings {
                window_ms: 30 * MINUTE,
                ..RuleSettings::new(0, 1, None)
            },
            provider: RuleSettings {
                window_ms: 30 * MINUTE,
                clear_below_ms: 15 * MINUTE,
                ..RuleSettings::new(0, 3, None)
            },
            overrun: RuleSettings {
                window_ms: 10 * MINUTE,
                ..RuleSettings::new(0, 1, None)
            },
            policies: std::sync::Arc::new(Policies::default()),
        }
    }
}

impl Settings {
    /// The built-in defaults with the file's `[scoring]` and `[rules."..."]` applied: the base
    /// every threshold profile starts from.
    pub fn from_config(config: &Config) -> Self {
        let sc = &config.scoring;
        let mut s = Settings {
            profile: config.engine.profile.clone(),
            policies: std::sync::Arc::new(Policies::from_config(&config.escalation)),
            ..Settings::default()
        };
        s.apply_scoring(&vigil_config::ScoringOverride {
            vitals_freshness: Some(sc.vitals_freshness),
            consciousness_freshness: Some(sc.consciousness_freshness),
            labs_freshness: Some(sc.labs_freshness),
            lactate_freshness: Some(sc.lactate_freshness),
            horizon: Some(sc.horizon),
            lateness: Some(sc.lateness),
        });
        s.apply_rules(&config.rules);
        s
    }

    /// Overrides the freshness limits and window the profile names.
    pub fn apply_scoring(&mut self, o: &vigil_config::ScoringOverride) {
        let ms = |d: Option<vigil_config::Duration>, cur: i64| d.map_or(cur, |d| d.as_millis_i64());
        self.freshness.vitals_ms = ms(o.vitals_freshness, self.freshness.vitals_ms);
        self.freshness.consciousness_ms =
            ms(o.consciousness_freshness, self.freshness.consciousness_ms);
        self.sepsis.vitals_ms = self.freshness.vitals_ms;
        self.sepsis.consciousness_ms = self.freshness.consciousness_ms;
        self.sepsis.labs_ms = ms(o.labs_freshness, self.sepsis.labs_ms);
        self.sepsis.lactate_ms = ms(o.lactate_freshness, self.sepsis.lactate_ms);
        self.window.horizon_ms = ms(o.horizon, self.window.horizon_ms);
        self.window.lateness_ms = ms(o.lateness, self.window.lateness_ms);
    }

    /// Overrides the rule settings named in `rules` (keys are rule names).
    pub fn apply_rules(&mut self, rules: &std::collections::BTreeMap<String, RuleConfig>) {
        for (name, o) in rules {
            // Config validation has refused any name not in the catalogue.
            let Some(rule) = Rule::from_name(name) else {
                continue;
            };
            let r = self.rule_mut(rule);
            r.enabled = o.enabled.unwrap_or(r.enabled);
            r.threshold = o.threshold.unwrap_or(r.threshold);
            r.sustain = o.sustain.unwrap_or(r.sustain);
            if let Some(c) = o.clear {
                r.clear_ms = Some(c.as_millis_i64());
            }
            r.window_ms = o.window.map_or(r.window_ms, |d| d.as_millis_i64());
            r.lactate = o.lactate.unwrap_or(r.lactate);
            r.clear_below_ms = o
                .clear_below
                .map_or(r.clear_below_ms, |d| d.as_millis_i64());
            r.risk = o.risk.or(r.risk);
            r.clear_risk = o.clear_risk.or(r.clear_risk);
            r.interval_ms = o.interval.map_or(r.interval_ms, |d| d.as_millis_i64());
        }
    }

    /// `sepsis.model`'s open and clear risks: the profile's, else the model's; the clear risk
    /// never above the open one.
    pub fn model_thresholds(&self) -> crate::patient::model::Thresholds {
        let own = self.model.thresholds;
        let open = self.model_rule.risk.unwrap_or(own.open);
        let clear = self.model_rule.clear_risk.unwrap_or(own.clear);
        crate::patient::model::Thresholds {
            open,
            clear: clear.min(open),
        }
    }

    /// A rule's settings.
    pub fn rule(&self, rule: impl Into<Rule>) -> &RuleSettings {
        match rule.into() {
            Rule::News2Single3 => &self.single3,
            Rule::News2Medium => &self.medium,
            Rule::News2High => &self.high,
            Rule::News2Trend => &self.trend,
            Rule::SepsisQsofa => &self.qsofa,
            Rule::SepsisSirsLactate => &self.sirs_lactate,
            Rule::SepsisModel => &self.model_rule,
            Rule::TechnicalSignalLoss => &self.signal_loss,
            Rule::DelayWaiting => &self.waiting,
            Rule::DelayProvider => &self.provider,
            Rule::DelayResourceOverrun => &self.overrun,
        }
    }

    fn rule_mut(&mut self, rule: Rule) -> &mut RuleSettings {
        match rule {
            Rule::News2Single3 => &mut self.single3,
            Rule::News2Medium => &mut self.medium,
            Rule::News2High => &mut self.high,
            Rule::News2Trend => &mut self.trend,
            Rule::SepsisQsofa => &mut self.qsofa,
            Rule::SepsisSirsLactate => &mut self.sirs_lactate,
            Rule::SepsisModel => &mut self.model_rule,
            Rule::TechnicalSignalLoss => &mut self.signal_loss,
            Rule::DelayWaiting => &mut self.waiting,
            Rule::DelayProvider => &mut self.provider,
            Rule::DelayResourceOverrun => &mut self.overrun,
        }
    }

    /// The rule's firing condition on one score.
    pub(crate) fn holds(&self, rule: RiskRule, total: u8, any_three: bool) -> bool {
        match rule {
            RiskRule::Single3 => any_three && total < self.medium.threshold,
            RiskRule::Medium => total >= self.medium.threshold,
            RiskRule::High => total >= self.high.threshold,
        }
    }

    /// The condition whose absence for the clear period clears the rule.
    pub(crate) fn active(&self, rule: RiskRule, total: u8, any_three: bool) -> bool {
        match rule {
            RiskRule::Single3 => any_three,
            RiskRule::Medium => total >= self.medium.threshold,
            RiskRule::High => total >= self.high.threshold,
        }
    }
}
