//! The NEWS2 risk rule family of scoring.md: `news2.single3`, `news2.medium`, `news2.high`.
//!
//! The three share one alert per patient whose `rule` is the highest that holds. A rule *fires*
//! when its condition held on its `sustain` latest consecutive scores; a higher rule firing
//! upgrades the alert at once; the alert moves down (to the highest lower rule that holds on the
//! current score) or resolves only after its own condition has been absent for its clear period.
//!
//! Interpretation written down in docs/decisions.md ("NEWS2 rules"): `news2.medium` holds at
//! NEWS2 >= 5 (not only 5-6), so a patient going 6 then 8 is alerted as medium at once and
//! upgraded to high when the high rule is sustained, instead of getting no alert at all. A
//! person resolving the alert restarts the sustain count: the rule fires again only on new
//! consecutive scores.

use std::collections::VecDeque;

use vigil_config::{Config, RuleConfig};

use crate::alert::{Alert, AlertState, Category, Escalation, Explanation, Level, Meta};
use crate::conditions::AlertOwner;
use crate::escalation::Policies;
use crate::news2::{Freshness, News2};
use crate::time::Timestamp;

/// The rules of the family, lowest first, so `Ord` is severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskRule {
    Single3,
    Medium,
    High,
}

impl RiskRule {
    pub const ALL: [RiskRule; 3] = [RiskRule::Single3, RiskRule::Medium, RiskRule::High];

    pub fn name(self) -> &'static str {
        match self {
            RiskRule::Single3 => "news2.single3",
            RiskRule::Medium => "news2.medium",
            RiskRule::High => "news2.high",
        }
    }

    pub fn level(self) -> Level {
        match self {
            RiskRule::High => Level::Critical,
            _ => Level::Warning,
        }
    }

    fn band(self) -> &'static str {
        match self {
            RiskRule::Single3 => "single parameter 3",
            RiskRule::Medium => "medium",
            RiskRule::High => "high",
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
        }
    }

    /// The clear period, or "never" for rules only people resolve.
    pub fn clear(&self) -> i64 {
        self.clear_ms.unwrap_or(i64::MAX)
    }
}

const MINUTE: i64 = 60_000;

/// Everything the engine needs to score and alert one unit's patients: a threshold profile,
/// resolved from configuration (see [`crate::profiles`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Threshold profile name shown in every explanation.
    pub profile: String,
    pub freshness: Freshness,
    /// Freshness of the qSOFA/SIRS inputs (vitals, consciousness, labs, lactate).
    pub sepsis: crate::sepsis::SepsisFreshness,
    /// Horizon and lateness bound of the patient window.
    pub window: crate::window::WindowSettings,
    pub single3: RuleSettings,
    pub medium: RuleSettings,
    pub high: RuleSettings,
    pub trend: RuleSettings,
    pub qsofa: RuleSettings,
    pub sirs_lactate: RuleSettings,
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
            sepsis: crate::sepsis::SepsisFreshness::default(),
            window: crate::window::WindowSettings::default(),
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
            let Some(r) = self.named_mut(name) else {
                continue;
            };
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
        }
    }

    /// A rule's settings by its name (`news2.high`, `sepsis.qsofa`, ...).
    pub fn named(&self, name: &str) -> Option<&RuleSettings> {
        Some(match name {
            "news2.single3" => &self.single3,
            "news2.medium" => &self.medium,
            "news2.high" => &self.high,
            "news2.trend" => &self.trend,
            "sepsis.qsofa" => &self.qsofa,
            "sepsis.sirs_lactate" => &self.sirs_lactate,
            "technical.signal_loss" => &self.signal_loss,
            "delay.waiting" => &self.waiting,
            "delay.provider" => &self.provider,
            "delay.resource_overrun" => &self.overrun,
            _ => return None,
        })
    }

    fn named_mut(&mut self, name: &str) -> Option<&mut RuleSettings> {
        Some(match name {
            "news2.single3" => &mut self.single3,
            "news2.medium" => &mut self.medium,
            "news2.high" => &mut self.high,
            "news2.trend" => &mut self.trend,
            "sepsis.qsofa" => &mut self.qsofa,
            "sepsis.sirs_lactate" => &mut self.sirs_lactate,
            "technical.signal_loss" => &mut self.signal_loss,
            "delay.waiting" => &mut self.waiting,
            "delay.provider" => &mut self.provider,
            "delay.resource_overrun" => &mut self.overrun,
            _ => return None,
        })
    }

    pub fn rule(&self, rule: RiskRule) -> &RuleSettings {
        match rule {
            RiskRule::Single3 => &self.single3,
            RiskRule::Medium => &self.medium,
            RiskRule::High => &self.high,
        }
    }

    /// The rule's firing condition on one score.
    fn holds(&self, rule: RiskRule, total: u8, any_three: bool) -> bool {
        match rule {
            RiskRule::Single3 => any_three && total < self.medium.threshold,
            RiskRule::Medium => total >= self.medium.threshold,
            RiskRule::High => total >= self.high.threshold,
        }
    }

    /// The condition whose absence for the clear period clears the rule.
    fn active(&self, rule: RiskRule, total: u8, any_three: bool) -> bool {
        match rule {
            RiskRule::Single3 => any_three,
            RiskRule::Medium => total >= self.medium.threshold,
            RiskRule::High => total >= self.high.threshold,
        }
    }
}

/// A score remembered for sustain counting and for saying why now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ScorePoint {
    at: Timestamp,
    total: u8,
    any_three: bool,
}

/// Scores kept per patient: enough for any sustain count configuration accepts and for
/// `whyNow`.
const HISTORY: usize = vigil_config::MAX_RISK_SUSTAIN as usize;

/// The family's state for one patient.
#[derive(Debug, Clone, Default)]
pub struct News2Risk {
    recent: VecDeque<ScorePoint>,
    /// Scores at or before this time no longer count towards sustain (set by a manual resolve).
    counts_after: Option<Timestamp>,
    /// When the current rule's condition was last seen to stop holding.
    absent_since: Option<Timestamp>,
    /// The family's one alert (kept after resolution until a new one opens).
    /// Boxed: most patients have no alert, and an inline one would cost every patient its size.
    alert: Option<Box<Alert>>,
    /// Which rule the alert currently stands for.
    rule: Option<RiskRule>,
}

/// Who the alert concerns.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub tenant: &'a str,
    pub patient: &'a str,
    pub unit: &'a str,
}

impl AlertOwner for News2Risk {
    fn alert(&self) -> Option<&Alert> {
        self.alert.as_deref()
    }

    fn alert_mut(&mut self) -> Option<&mut Alert> {
        self.alert.as_deref_mut()
    }

    fn condition_present(&self) -> bool {
        self.absent_since.is_none()
    }

    fn install(&mut self, alert: Option<Alert>) {
        self.rule = alert
            .as_ref()
            .and_then(|a| RiskRule::ALL.into_iter().find(|r| r.name() == a.rule));
        self.alert = alert.map(Box::new);
        self.absent_since = None;
    }

    fn resolved_by_person(&mut self, at: Timestamp) {
        // Only scores after the resolve count towards the next alert.
        self.counts_after = self.recent.iter().rev().map(|p| p.at).find(|t| *t <= at);
        self.rule = None;
        self.absent_since = None;
    }
}

impl News2Risk {
    fn sustained(&self, settings: &Settings, rule: RiskRule) -> bool {
        let r = settings.rule(rule);
        if !r.enabled {
            return false;
        }
        let n = r.sustain as usize;
        let counted = self
            .recent
            .iter()
            .rev()
            .take_while(|p| self.counts_after.is_none_or(|c| p.at > c))
            .take(n);
        let mut seen = 0;
        for p in counted {
            if !settings.holds(rule, p.total, p.any_three) {
                return false;
            }
            seen += 1;
        }
        seen == n
    }

    /// Evaluates the family on a new score; returns the alert after each transition it caused.
    /// Sustain and clear periods run on the scores' own times; `now` (the engine's clock) stamps
    /// the transitions and starts escalation, so a late score pages level 1 like any other.
    pub fn evaluate(
        &mut self,
        subject: Subject<'_>,
        score: &News2,
        now: Timestamp,
        settings: &Settings,
    ) -> Vec<Alert> {
        let point = ScorePoint {
            at: score.at,
            total: score.total,
            any_three: score.any_three(),
        };
        if self.recent.len() == HISTORY {
            self.recent.pop_front();
        }
        self.recent.push_back(point);

        let fired = RiskRule::ALL
            .into_iter()
            .rev()
            .find(|&r| self.sustained(settings, r));
        let current = self.rule.filter(|_| self.active_alert().is_some());
        let mut out = Vec::new();
        match (current, fired) {
            (None, Some(rule)) => {
                let alert = self.open(subject, rule, score, now, settings);
                out.push(alert);
            }
            (Some(cur), Some(rule)) if rule > cur => {
                self.change_rule(rule, score, now, settings, "upgraded");
                out.extend(self.alert.as_deref().cloned());
            }
            (Some(cur), _) => {
                if settings.active(cur, point.total, point.any_three) {
                    self.absent_since = None;
                } else {
                    let since = *self.absent_since.get_or_insert(point.at);
                    let clear_ms = settings.rule(cur).clear();
                    if point.at.since(since) >= clear_ms {
                        let lower = RiskRule::ALL.into_iter().rev().find(|&r| {
                            r < cur
                                && settings.rule(r).enabled
                                && settings.holds(r, point.total, point.any_three)
                        });
                        match lower {
                            Some(rule) => {
                                self.change_rule(rule, score, now, settings, "downgraded");
                            }
                            None => self.auto_resolve(cur, now, clear_ms),
                        }
                        out.extend(self.alert.as_deref().cloned());
                    }
                }
            }
            (None, None) => {}
        }
        out
    }

    fn open(
        &mut self,
        subject: Subject<'_>,
        rule: RiskRule,
        score: &News2,
        now: Timestamp,
        settings: &Settings,
    ) -> Alert {
        let at = score.at;
        let alert_id = crate::alert::alert_id(subject.tenant, subject.patient, "news2", at);
        let policy = settings
            .policies
            .select(rule.level(), Category::Deterioration);
        let alert = Alert {
            escalation: Escalation::start(policy, &alert_id, Some(subject.unit), now, 0),
            alert_id,
            tenant_id: subject.tenant.to_string(),
            rule: rule.name(),
            category: Category::Deterioration,
            level: rule.level(),
            message: message(rule, score),
            patient_id: Some(subject.patient.to_string()),
            unit_id: Some(subject.unit.to_string()),
            meta: Meta {
                news2: Some(score.total),
                ..Meta::default()
            },
            explanation: self.explain(rule, score, settings, None),
            ..Alert::opening(at, now)
        };
        self.alert = Some(Box::new(alert.clone()));
        self.rule = Some(rule);
        self.absent_since = None;
        alert
    }

    fn change_rule(
        &mut self,
        rule: RiskRule,
        score: &News2,
        now: Timestamp,
        settings: &Settings,
        how: &str,
    ) {
        let Some(prev) = self.rule else { return };
        let explanation = self.explain(rule, score, settings, Some((prev, how)));
        let Some(alert) = self.alert.as_mut() else {
            return;
        };
        let upgrade = rule.level() > alert.level;
        alert.rule = rule.name();
        alert.level = rule.level();
        alert.message = message(rule, score);
        alert.meta.news2 = Some(score.total);
        alert.explanation = explanation;
        // An upgrade re-pages under the new level's policy; a downgrade keeps the escalation
        // under way (the policy copied at opening stays in force).
        let mut state = alert.state;
        let mut reason = format!("{how} from {} to {}", prev.name(), rule.name());
        if upgrade {
            let policy = settings
                .policies
                .select(rule.level(), Category::Deterioration);
            state = alert.upgrade_policy(policy, now);
            reason.push_str(&format!(
                ": paged under {} level 1 ({})",
                alert.escalation.policy,
                alert.escalation.targets.join(", ")
            ));
        }
        alert.transition(state, crate::alert::ENGINE, now, reason);
        self.rule = Some(rule);
        self.absent_since = None;
    }

    fn auto_resolve(&mut self, rule: RiskRule, at: Timestamp, clear_ms: i64) {
        if let Some(alert) = self.alert.as_mut() {
            let reason = format!(
                "condition cleared: {} absent for {} min",
                rule.name(),
                clear_ms / 60_000
            );
            alert.transition(AlertState::Resolved, crate::alert::ENGINE, at, reason);
        }
        self.rule = None;
        self.absent_since = None;
    }

    fn explain(
        &self,
        rule: RiskRule,
        score: &News2,
        settings: &Settings,
        change: Option<(RiskRule, &str)>,
    ) -> Explanation {
        let profile = &settings.profile;
        let r = settings.rule(rule);
        let mut why = match rule {
            RiskRule::Single3 => {
                let threes: Vec<String> = score
                    .components
                    .iter()
                    .filter(|c| c.points == 3)
                    .map(|c| format!("{} {} scores 3", c.name.label(), c.value))
                    .collect();
                format!(
                    "{} with NEWS2 aggregate {} < {} (threshold profile {profile})",
                    threes.join(", "),
                    score.total,
                    settings.medium.threshold
                )
            }
            _ => format!(
                "NEWS2 aggregate {} >= {} (threshold profile {profile})",
                score.total, r.threshold
            ),
        };
        if score.partial() {
            let missing: Vec<&str> = score.missing.iter().map(|p| p.name()).collect();
            why.push_str(&format!("; partial score, missing {}", missing.join(", ")));
        }
        // The run of scores that satisfied the rule, and the last score before it.
        let run: Vec<&ScorePoint> = self
            .recent
            .iter()
            .rev()
            .take_while(|p| settings.holds(rule, p.total, p.any_three))
            .collect();
        let before = self.recent.iter().rev().nth(run.len());
        let mut why_now = match before {
            Some(b) if self.counts_after.is_none_or(|c| b.at > c) => format!(
                "rose from {} at {} to {} at {}",
                b.total,
                b.at.hhmm(),
                score.total,
                score.at.hhmm()
            ),
            _ => format!(
                "NEWS2 {} at {}, first score on record",
                score.total,
                score.at.hhmm()
            ),
        };
        let n = run.len().max(1);
        if n > 1 {
            why_now.push_str(&format!("; sustained over {n} readings"));
        }
        if let Some((prev, how)) = change {
            why_now.push_str(&format!("; {how} from {}", prev.name()));
        }
        Explanation {
            why,
            why_now,
            components: score.components.clone(),
            missing: score.missing.iter().map(|p| p.name()).collect(),
            profile: profile.clone(),
        }
    }
}

fn message(rule: RiskRule, score: &News2) -> String {
    let summary = score.scoring_summary();
    let mut m = format!("NEWS2 {} ({})", score.total, rule.band());
    if !summary.is_empty() {
        m.push_str(": ");
        m.push_str(&summary);
    }
    if score.partial() {
        m.push_str(" [partial]");
    }
    m
}
