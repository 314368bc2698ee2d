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

use crate::alert::{Alert, AlertHolder, Category, Escalation, Explanation, Meta, Subject};
use crate::patient::conditions::AlertOwner;
use crate::scores::news2::News2;
pub use crate::settings::{RiskRule, RuleSettings, Settings};
use crate::time::Timestamp;

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
    alert: AlertHolder,
    /// Which rule the alert currently stands for.
    rule: Option<RiskRule>,
}

impl AlertOwner for News2Risk {
    fn holder(&self) -> &AlertHolder {
        &self.alert
    }

    fn holder_mut(&mut self) -> &mut AlertHolder {
        &mut self.alert
    }

    fn condition_present(&self) -> bool {
        self.absent_since.is_none()
    }

    fn install(&mut self, alert: Option<Alert>) {
        self.rule = alert
            .as_ref()
            .and_then(|a| RiskRule::ALL.into_iter().find(|r| r.rule() == a.rule));
        self.alert.set(alert);
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
        // A score older than what the alert's present state was decided on (its opening, or
        // its last upgrade or downgrade) moves it neither up nor down: after a restart, a
        // score of the readings delivered again before those that opened or moved an alert
        // recovery installed (live, scores never go back in time).
        if self
            .active_alert()
            .and_then(Alert::decided_at)
            .is_some_and(|t| point.at < t)
        {
            return Vec::new();
        }

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
                out.extend(self.alert.get().cloned());
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
                        out.extend(self.alert.get().cloned());
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
        let alert_id = crate::alert::alert_id(subject.tenant, subject.patient, rule.rule(), at);
        let policy = settings
            .policies
            .select(rule.level(), Category::Deterioration);
        let alert = Alert {
            escalation: Escalation::start(policy, &alert_id, Some(subject.unit), now, 0),
            alert_id,
            tenant_id: subject.tenant.to_string(),
            message: message(rule, score),
            patient_id: Some(subject.patient.to_string()),
            unit_id: Some(subject.unit.to_string()),
            bed_id: subject.bed.map(str::to_string),
            meta: Meta {
                news2: Some(score.total),
                ..Meta::default()
            },
            explanation: self.explain(rule, score, settings, None),
            ..Alert::opening(rule.rule(), at, now)
        };
        self.rule = Some(rule);
        self.absent_since = None;
        self.alert.open(alert)
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
        let Some(alert) = self.alert.get_mut() else {
            return;
        };
        let upgrade = rule.level() > alert.level;
        alert.rule = rule.rule();
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
        let reason = format!(
            "condition cleared: {} absent for {} min",
            rule.name(),
            clear_ms / 60_000
        );
        self.alert.clear(at, reason);
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
