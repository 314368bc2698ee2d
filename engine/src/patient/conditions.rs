//! The single-alert rules of scoring.md beside the NEWS2 risk family: `news2.trend`,
//! `sepsis.qsofa`, `sepsis.sirs_lactate`, `sepsis.model` and `technical.signal_loss`.
//!
//! Each rule keeps one [`Track`] per patient: at most one non-resolved alert. A rule *fires*
//! when its condition held on `sustain` consecutive evaluations; its alert resolves by itself
//! once the clearing condition has been absent for the clear period (never, for a rule with no
//! clear period: people resolve it). After a person resolves an alert the rule is disarmed
//! until its condition is seen absent once, so a patient whose qSOFA stays at 2 is not
//! re-alerted every second after a clinician has taken charge (docs/decisions.md, "NEWS2
//! rules").

use crate::alert::Subject;
use crate::alert::{Alert, AlertHolder, Escalation, Explanation, Meta, Rule, alert_id};
use crate::patient::features::{Feature, Stat};
use crate::patient::model::{Contribution, Model, Risk};
use crate::scores::news2::{Chart, Component, ComponentValue, Input, News2, decimal};
use crate::scores::sepsis::{CriteriaScore, Labs, qsofa_components, sirs_components};
use crate::settings::{RuleSettings, Settings};
use crate::time::Timestamp;

/// The rules of this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    Trend,
    Qsofa,
    SirsLactate,
    Model,
    SignalLoss,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::Trend,
        Condition::Qsofa,
        Condition::SirsLactate,
        Condition::Model,
        Condition::SignalLoss,
    ];

    /// Its entry in the rule catalogue (name, category, level).
    pub fn rule(self) -> Rule {
        match self {
            Condition::Trend => Rule::News2Trend,
            Condition::Qsofa => Rule::SepsisQsofa,
            Condition::SirsLactate => Rule::SepsisSirsLactate,
            Condition::Model => Rule::SepsisModel,
            Condition::SignalLoss => Rule::TechnicalSignalLoss,
        }
    }

    pub fn name(self) -> &'static str {
        self.rule().name()
    }

    pub fn settings(self, s: &Settings) -> &RuleSettings {
        s.rule(self.rule())
    }
}

/// What an evaluation found, and the words to open an alert with if it fires.
pub struct Finding {
    /// The firing condition held.
    pub holds: bool,
    /// The clearing condition holds (its absence for the clear period resolves the alert).
    pub active: bool,
}

/// The words and figures of a new alert.
pub struct Opening {
    pub message: String,
    pub meta: Meta,
    pub explanation: Explanation,
}

impl Opening {
    /// For evaluations that cannot fire (the condition does not hold): never shown.
    pub fn none() -> Self {
        Self {
            message: String::new(),
            meta: Meta::default(),
            explanation: Explanation::default(),
        }
    }
}

/// One rule's state for one patient.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// Consecutive evaluations on which the condition held (no alert active), counting each
    /// instant once.
    run: u32,
    /// The instant `run` last counted: readings of one instant (a charting's vitals and labs
    /// arrive one by one) re-evaluate the rule but are one evaluation toward `sustain`, as a
    /// duplicate event never counts as a second consecutive score.
    counted_at: Option<Timestamp>,
    /// When the clearing condition was first seen absent while the alert is active.
    absent_since: Option<Timestamp>,
    /// Set when a person resolved the alert; cleared once the condition is seen absent.
    disarmed: bool,
    alert: AlertHolder,
}

/// What the NEWS2 risk family and each other rule have in common: at most one alert at a time
/// (kept after it resolves until the next opens), and whether its condition is present. The
/// patient goes through this for everything it does to all its alerts alike.
pub trait AlertOwner {
    fn holder(&self) -> &AlertHolder;
    fn holder_mut(&mut self) -> &mut AlertHolder;
    /// The alert's condition is present (not in its clear period).
    fn condition_present(&self) -> bool;
    /// Recovery: makes `alert` (read back from `ALERTS`) the owner's alert, or forgets the
    /// owner's alert with `None`.
    fn install(&mut self, alert: Option<Alert>);
    /// Called after a person resolved the alert at `at`: the rule must fire afresh. Recovery
    /// calls it too, for an alert a person resolved before the restart.
    fn resolved_by_person(&mut self, at: Timestamp);

    fn alert(&self) -> Option<&Alert> {
        self.holder().get()
    }

    fn alert_mut(&mut self) -> Option<&mut Alert> {
        self.holder_mut().get_mut()
    }

    fn active_alert(&self) -> Option<&Alert> {
        self.holder().active()
    }
}

impl AlertOwner for Track {
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
        self.alert.set(alert);
        self.absent_since = None;
        self.run = 0;
        self.counted_at = None;
    }

    fn resolved_by_person(&mut self, _: Timestamp) {
        self.run = 0;
        self.counted_at = None;
        self.absent_since = None;
        self.disarmed = true;
    }
}

impl Track {
    /// Advances the rule by one evaluation at `at` (the readings' time: sustain and clear
    /// periods run on it). `now` is the engine's clock: it stamps the transition and starts
    /// escalation. `open` builds the alert's words when it fires. Returns the alert after the
    /// transition this caused, if any.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        rule: Condition,
        subject: Subject<'_>,
        finding: Finding,
        at: Timestamp,
        now: Timestamp,
        settings: &Settings,
        open: impl FnOnce() -> Opening,
    ) -> Option<Alert> {
        let r = rule.settings(settings);
        if let Some(alert) = self.alert.active() {
            // Readings older than what triggered the alert neither hold nor clear it: after a
            // restart, the readings redelivered before the reading that opened an alert
            // recovery installed (live, the rules' time never goes back, so this is the only
            // way to see one). Signal loss is triggered on the engine's clock, not a reading's.
            let predates =
                rule != Condition::SignalLoss && alert.triggered_at.is_some_and(|t| at < t);
            if predates {
                return None;
            }
            if finding.active {
                self.absent_since = None;
                return None;
            }
            let since = *self.absent_since.get_or_insert(at);
            let clear = r.clear();
            if at.since(since) < clear {
                return None;
            }
            let reason = if clear == 0 {
                format!("condition cleared: {}", clear_words(rule))
            } else {
                format!(
                    "condition cleared: {} for {} min",
                    clear_words(rule),
                    clear / 60_000
                )
            };
            self.absent_since = None;
            self.run = 0;
            self.counted_at = None;
            return self.alert.clear(now, reason);
        }
        if !finding.holds {
            self.run = 0;
            self.counted_at = None;
            self.disarmed = false;
            return None;
        }
        if !r.enabled || self.disarmed {
            return None;
        }
        if self.counted_at != Some(at) {
            self.run += 1;
            self.counted_at = Some(at);
        }
        if self.run < r.sustain {
            return None;
        }
        self.run = 0;
        self.counted_at = None;
        self.absent_since = None;
        let o = open();
        let id = alert_id(subject.tenant, subject.patient, rule.rule(), at);
        let policy = settings
            .policies
            .select(rule.rule().level(), rule.rule().category());
        let alert = Alert {
            escalation: Escalation::start(policy, &id, Some(subject.unit), now, 0),
            alert_id: id,
            tenant_id: subject.tenant.to_string(),
            message: o.message,
            patient_id: Some(subject.patient.to_string()),
            unit_id: Some(subject.unit.to_string()),
            bed_id: subject.bed.map(str::to_string),
            meta: o.meta,
            explanation: o.explanation,
            ..Alert::opening(rule.rule(), at, now)
        };
        Some(self.alert.open(alert))
    }
}

fn clear_words(rule: Condition) -> &'static str {
    match rule {
        Condition::Trend => "NEWS2 no longer risen",
        Condition::Qsofa => "qSOFA below threshold",
        Condition::SirsLactate => "SIRS below threshold",
        Condition::Model => "sepsis risk below the clear threshold",
        Condition::SignalLoss => "observations flowing again",
    }
}

fn summary(components: &[Component]) -> String {
    components
        .iter()
        .filter(|c| c.points > 0)
        .map(|c| format!("{} {}", c.name.label(), c.value))
        .collect::<Vec<_>>()
        .join(", ")
}

fn partial_note(partial: bool, missing: &[&'static str]) -> String {
    if partial {
        format!("; partial score, missing {}", missing.join(", "))
    } else {
        String::new()
    }
}

/// `news2.trend`: the rise of `score` over the lowest NEWS2 of the trend window.
pub fn trend_opening(score: &News2, baseline: (u8, Timestamp), settings: &Settings) -> Opening {
    let r = &settings.trend;
    let (low, low_at) = baseline;
    let rise = score.total.saturating_sub(low);
    let minutes = r.window_ms / 60_000;
    let mut components = score.components.clone();
    components.push(Component {
        name: Input::News2,
        value: ComponentValue::Whole(i64::from(low)),
        points: low,
        observed_at: low_at,
        contribution: None,
    });
    let missing: Vec<&'static str> = score.missing.iter().map(|p| p.name()).collect();
    Opening {
        message: format!(
            "NEWS2 rose by {rise} within {minutes} min: {low} to {}",
            score.total
        ),
        meta: Meta {
            news2: Some(score.total),
            news2_rise: Some(rise),
            ..Meta::default()
        },
        explanation: Explanation {
            why: format!(
                "NEWS2 rose by {rise} >= {} within {minutes} min (threshold profile {}){}",
                r.threshold,
                settings.profile,
                partial_note(score.partial(), &missing)
            ),
            why_now: format!(
                "NEWS2 {low} at {} rose to {} at {}",
                low_at.hhmm(),
                score.total,
                score.at.hhmm()
            ),
            components,
            missing,
            profile: settings.profile.clone(),
        },
    }
}

/// `sepsis.qsofa`: qSOFA at or above the threshold.
pub fn qsofa_opening(
    chart: &Chart,
    q: CriteriaScore,
    previous: Option<(u8, Timestamp)>,
    at: Timestamp,
    settings: &Settings,
) -> Opening {
    let components = qsofa_components(chart, at, settings.sepsis);
    let missing = q.missing();
    let why_now = match previous {
        Some((total, when)) if total < q.total => format!(
            "qSOFA rose from {total} at {} to {} at {}",
            when.hhmm(),
            q.total,
            at.hhmm()
        ),
        _ => format!("qSOFA {} at {}", q.total, at.hhmm()),
    };
    Opening {
        message: format!("qSOFA {}: {}", q.total, summary(&components)),
        meta: Meta {
            qsofa: Some(q.total),
            ..Meta::default()
        },
        explanation: Explanation {
            why: format!(
                "qSOFA {} >= {} (threshold profile {}){}",
                q.total,
                settings.qsofa.threshold,
                settings.profile,
                partial_note(q.partial, &missing)
            ),
            why_now,
            components,
            missing,
            profile: settings.profile.clone(),
        },
    }
}

/// `sepsis.sirs_lactate`: SIRS at or above the threshold with a fresh raised lactate.
pub fn sirs_lactate_opening(
    chart: &Chart,
    labs: &impl Labs,
    s: CriteriaScore,
    lactate: (f64, Timestamp),
    at: Timestamp,
    settings: &Settings,
) -> Opening {
    let mut components = sirs_components(chart, labs, at, settings.sepsis);
    let (value, collected) = lactate;
    let shown = decimal(value);
    components.push(Component {
        name: Input::Lactate,
        value: ComponentValue::Decimal(value),
        points: 1,
        observed_at: collected,
        contribution: None,
    });
    let missing = s.missing();
    let hours = settings.sepsis.lactate_ms as f64 / 3_600_000.0;
    Opening {
        message: format!(
            "SIRS {} with lactate {shown} mmol/L: {}",
            s.total,
            summary(&components)
        ),
        meta: Meta {
            sirs: Some(s.total),
            lactate: Some(value),
            ..Meta::default()
        },
        explanation: Explanation {
            why: format!(
                "SIRS {} >= {} and lactate {shown} >= {} mmol/L within {hours} h (threshold profile {}){}",
                s.total,
                settings.sirs_lactate.threshold,
                decimal(settings.sirs_lactate.lactate),
                settings.profile,
                partial_note(s.partial, &missing)
            ),
            why_now: format!(
                "lactate {shown} collected at {}; SIRS {} at {}",
                collected.hhmm(),
                s.total,
                at.hhmm()
            ),
            components,
            missing,
            profile: settings.profile.clone(),
        },
    }
}

/// `technical.signal_loss`: no observation since `last` at `now`.
pub fn signal_loss_opening(last: Timestamp, now: Timestamp, settings: &Settings) -> Opening {
    let minutes = now.since(last) / 60_000;
    let limit = settings.signal_loss.window_ms / 60_000;
    Opening {
        message: format!(
            "No observations for {minutes} min (last at {})",
            last.hhmm()
        ),
        meta: Meta {
            silence_minutes: Some(minutes),
            ..Meta::default()
        },
        explanation: Explanation {
            why: format!(
                "no observation for {minutes} min >= {limit} min (threshold profile {})",
                settings.profile
            ),
            why_now: format!(
                "last observation at {}; checked at {}",
                last.hhmm(),
                now.hhmm()
            ),
            components: vec![Component {
                name: Input::Silence,
                value: ComponentValue::Whole(minutes),
                points: 0,
                observed_at: last,
                contribution: None,
            }],
            missing: Vec::new(),
            profile: settings.profile.clone(),
        },
    }
}

/// How a feature reads in words: `lactate 3.1 mmol/L`, `RR change over 6 h +6 /min`.
pub fn feature_words(feature: &Feature, value: Option<f64>) -> String {
    // A parsed feature's name is `source.statistic`.
    let name = &*feature.name;
    let source = name.rsplit_once('.').map_or(name, |(source, _)| source);
    let (label, unit) = match source {
        "hr" => ("HR", "/min"),
        "rr" => ("RR", "/min"),
        "spo2" => ("SpO2", "%"),
        "sbp" => ("SBP", "mmHg"),
        "dbp" => ("DBP", "mmHg"),
        "map" => ("MAP", "mmHg"),
        "temp" => ("temp", "C"),
        "o2" => ("on oxygen", ""),
        "shock_index" => ("shock index", ""),
        "lactate" => ("lactate", "mmol/L"),
        "wbc" => ("WBC", "10^9/L"),
        "platelets" => ("platelets", "10^9/L"),
        "creatinine" => ("creatinine", "umol/L"),
        "bilirubin" => ("bilirubin", "umol/L"),
        "paco2" => ("PaCO2", "mmHg"),
        "bun" => ("BUN", "mg/dL"),
        "glucose" => ("glucose", "mg/dL"),
        "ph" => ("pH", ""),
        "hco3" => ("HCO3", "mmol/L"),
        "hgb" => ("Hb", "g/dL"),
        "potassium" => ("potassium", "mmol/L"),
        "age" => ("age", "years"),
        "male" => ("sex", ""),
        "icu_hours" => ("time since admission", "h"),
        "hospital_hours" => ("time since hospital admission", "h"),
        other => (other, ""),
    };
    let Some(v) = value else {
        return format!("{label} not measured");
    };
    let unit = if unit.is_empty() {
        String::new()
    } else {
        format!(" {unit}")
    };
    match source {
        "o2" => return (if v >= 0.5 { "on oxygen" } else { "on air" }).to_string(),
        "male" => return (if v >= 0.5 { "male" } else { "female" }).to_string(),
        _ => {}
    }
    match feature.stat {
        Stat::Latest | Stat::Value => format!("{label} {}{unit}", decimal(v)),
        Stat::HoursSince => format!("{label} measured {} h ago", decimal(v)),
        Stat::Delta(h) => format!(
            "{label} change over {h} h {}{}{unit}",
            if v > 0.0 { "+" } else { "" },
            decimal(v)
        ),
        Stat::Min(h) => format!("{label} lowest over {h} h {}{unit}", decimal(v)),
        Stat::Max(h) => format!("{label} highest over {h} h {}{unit}", decimal(v)),
        Stat::Mean(h) => format!("{label} mean over {h} h {}{unit}", decimal(v)),
    }
}

/// How many contributors `why` and `whyNow` name.
const TOP: usize = 3;

/// `sepsis.model`: the model's risk at or above the open threshold.
pub fn model_opening(
    model: &Model,
    risk: &Risk,
    previous: Option<(f64, Timestamp)>,
    open: f64,
    settings: &Settings,
) -> Opening {
    let named = |c: &Contribution| {
        let value = c.value.map(|v| v.value);
        format!(
            "{}, {:+.2}",
            feature_words(&model.features[c.feature], value),
            c.contribution
        )
    };
    let contributions = model.contributions(risk);
    let top: Vec<String> = contributions
        .iter()
        .filter(|c| c.contribution > 0.0 && c.value.is_some())
        .take(TOP)
        .map(named)
        .collect();
    let top = if top.is_empty() {
        "no measured value raised it".to_string()
    } else {
        top.join("; ")
    };
    let components = contributions
        .iter()
        .filter(|c| c.contribution.abs() >= 0.005)
        .filter_map(|c| {
            let name = model.names.get(c.feature).copied()?;
            Some(Component {
                name: Input::Feature(name),
                value: c.value.map_or(ComponentValue::Text("missing"), |v| {
                    ComponentValue::Decimal(v.value)
                }),
                points: 0,
                observed_at: c.value.and_then(|v| v.observed_at).unwrap_or(risk.at),
                contribution: Some((c.contribution * 1000.0).round() / 1000.0),
            })
        })
        .collect();
    let percent = |r: f64| {
        if r < 0.1 {
            format!("{:.1}%", r * 100.0)
        } else {
            format!("{:.0}%", r * 100.0)
        }
    };
    let why_now = match previous {
        Some((before, when)) if before < risk.risk => format!(
            "risk rose from {} at {} to {} at {}: {top}",
            percent(before),
            when.hhmm(),
            percent(risk.risk),
            risk.at.hhmm()
        ),
        _ => format!("risk {} at {}: {top}", percent(risk.risk), risk.at.hhmm()),
    };
    Opening {
        message: format!(
            "Sepsis risk {} (screen, not a diagnosis): {top}",
            percent(risk.risk)
        ),
        meta: Meta {
            sepsis_risk: Some((risk.risk * 1e4).round() / 1e4),
            model: Some(format!("{} {}", model.name, model.version)),
            ..Meta::default()
        },
        explanation: Explanation {
            why: format!(
                "sepsis model {} {} risk {} >= {} (threshold profile {}); largest contributions in log-odds: {top}",
                model.name,
                model.version,
                percent(risk.risk),
                percent(open),
                settings.profile
            ),
            why_now,
            components,
            missing: Vec::new(),
            profile: settings.profile.clone(),
        },
    }
}
