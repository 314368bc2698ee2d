//! The rule catalogue: every rule the engine runs (scoring.md, "Default rules"), and what each
//! one is: its wire name, category, level, which owner keeps its alert, and what its
//! `threshold` counts. Config validation, the alert decoder, the engine's rules and the replay
//! report all read it; no list of rule names, and no match on one, exists anywhere else.
//!
//! The alert's classification ([`Level`], [`Category`]) lives here too, because the catalogue
//! gives every rule one, and escalation policies match on them.

use serde::{Deserialize, Serialize};

/// How urgent an alert is. `Ord` is severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Info, Level::Warning, Level::Critical];

    /// The wire name (`critical`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Deterioration,
    Sepsis,
    Delay,
    Technical,
}

impl Category {
    pub const ALL: [Category; 4] = [
        Category::Deterioration,
        Category::Sepsis,
        Category::Delay,
        Category::Technical,
    ];

    /// The wire name (`deterioration`).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Deterioration => "deterioration",
            Category::Sepsis => "sepsis",
            Category::Delay => "delay",
            Category::Technical => "technical",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// Which kind of state owner keeps a rule's alert (one actor per owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    Patient,
    /// A waiting area (the alert's `unitId`).
    Location,
    Provider,
    /// A room or chair.
    Resource,
}

/// What a rule's `threshold` setting counts, if it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// Score points, `min..=max`.
    Points { min: u8, max: u8 },
    /// A model's risk, 0..1: set by `risk` and `clear_risk`, not `threshold`.
    Risk,
    /// No points: the rule fires on a duration (`window`), or on any parameter scoring 3.
    None,
}

/// Every rule of scoring.md, in the order reports list them: the NEWS2 risk family lowest
/// first, the other clinical rules, then the delay rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    News2Single3,
    News2Medium,
    News2High,
    News2Trend,
    SepsisQsofa,
    SepsisSirsLactate,
    SepsisModel,
    TechnicalSignalLoss,
    DelayWaiting,
    DelayProvider,
    DelayResourceOverrun,
}

impl Rule {
    pub const ALL: [Rule; 11] = [
        Rule::News2Single3,
        Rule::News2Medium,
        Rule::News2High,
        Rule::News2Trend,
        Rule::SepsisQsofa,
        Rule::SepsisSirsLactate,
        Rule::SepsisModel,
        Rule::TechnicalSignalLoss,
        Rule::DelayWaiting,
        Rule::DelayProvider,
        Rule::DelayResourceOverrun,
    ];

    /// The rules scored from a patient's vitals and labs (what replay reports on): every
    /// rule before the delay rules.
    pub const CLINICAL: &[Rule] = Rule::ALL.split_at(8).0;

    /// The wire name: an alert's `rule`, a `[rules."…"]` key.
    pub fn name(self) -> &'static str {
        match self {
            Rule::News2Single3 => "news2.single3",
            Rule::News2Medium => "news2.medium",
            Rule::News2High => "news2.high",
            Rule::News2Trend => "news2.trend",
            Rule::SepsisQsofa => "sepsis.qsofa",
            Rule::SepsisSirsLactate => "sepsis.sirs_lactate",
            Rule::SepsisModel => "sepsis.model",
            Rule::TechnicalSignalLoss => "technical.signal_loss",
            Rule::DelayWaiting => "delay.waiting",
            Rule::DelayProvider => "delay.provider",
            Rule::DelayResourceOverrun => "delay.resource_overrun",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Position in [`Rule::ALL`] (per-rule arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn category(self) -> Category {
        match self {
            Rule::News2Single3 | Rule::News2Medium | Rule::News2High | Rule::News2Trend => {
                Category::Deterioration
            }
            Rule::SepsisQsofa | Rule::SepsisSirsLactate | Rule::SepsisModel => Category::Sepsis,
            Rule::TechnicalSignalLoss => Category::Technical,
            Rule::DelayWaiting | Rule::DelayProvider | Rule::DelayResourceOverrun => {
                Category::Delay
            }
        }
    }

    /// The level its alert opens at (scoring.md's defaults select the escalation policy by it).
    pub fn level(self) -> Level {
        match self {
            Rule::News2High | Rule::SepsisQsofa | Rule::SepsisSirsLactate => Level::Critical,
            // The model is a prompt to assess, not a diagnosis (docs/sepsis-screen.md).
            Rule::SepsisModel
            | Rule::News2Single3
            | Rule::News2Medium
            | Rule::News2Trend
            | Rule::TechnicalSignalLoss
            | Rule::DelayWaiting
            | Rule::DelayProvider
            | Rule::DelayResourceOverrun => Level::Warning,
        }
    }

    /// Who keeps its alert.
    pub fn owner(self) -> OwnerKind {
        match self {
            Rule::DelayWaiting => OwnerKind::Location,
            Rule::DelayProvider => OwnerKind::Provider,
            Rule::DelayResourceOverrun => OwnerKind::Resource,
            _ => OwnerKind::Patient,
        }
    }

    /// One of the NEWS2 risk rules: one alert per patient between them, whose `rule` is the
    /// highest that holds (scoring.md).
    pub fn is_news2_risk(self) -> bool {
        matches!(
            self,
            Rule::News2Single3 | Rule::News2Medium | Rule::News2High
        )
    }

    /// The name alerts are deduplicated under (contracts.md section 4): `news2` for the NEWS2
    /// risk rules, which count as one rule, and the rule's own name for every other rule.
    pub fn family(self) -> &'static str {
        if self.is_news2_risk() {
            "news2"
        } else {
            self.name()
        }
    }

    /// Scored from vitals and labs (the patient keeps its alert).
    pub fn is_clinical(self) -> bool {
        self.owner() == OwnerKind::Patient
    }

    /// Counts towards a replay's predictions: technical alerts never do (scoring.md).
    pub fn predicts(self) -> bool {
        self.is_clinical() && self.category() != Category::Technical
    }

    /// What `threshold` may be set to: NEWS2 points 1-20, qSOFA 1-3, SIRS 1-4; nothing for
    /// the delay rules, which fire on durations. `news2.single3` holds on any parameter scoring
    /// 3 and does not read its threshold, so 0 is accepted there.
    pub fn threshold(self) -> Threshold {
        match self {
            Rule::News2Single3 => Threshold::Points { min: 0, max: 20 },
            Rule::News2Medium | Rule::News2High | Rule::News2Trend => {
                Threshold::Points { min: 1, max: 20 }
            }
            Rule::SepsisQsofa => Threshold::Points { min: 1, max: 3 },
            Rule::SepsisSirsLactate => Threshold::Points { min: 1, max: 4 },
            Rule::SepsisModel => Threshold::Risk,
            Rule::TechnicalSignalLoss => Threshold::Points { min: 1, max: 20 },
            Rule::DelayWaiting | Rule::DelayProvider | Rule::DelayResourceOverrun => {
                Threshold::None
            }
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Tests and reports compare a rule with its wire name.
impl PartialEq<&str> for Rule {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        Rule::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rule `{name}`")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_rule_reads_back_from_its_name_and_its_wire_form() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_name(r.name()), Some(r));
            assert_eq!(r.index(), Rule::ALL.iter().position(|x| *x == r).unwrap());
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);
        }
        assert_eq!(Rule::from_name("news2.unknown"), None);
        let err = serde_json::from_str::<Rule>("\"news2.unknown\"").unwrap_err();
        assert!(err.to_string().contains("unknown rule `news2.unknown`"));
    }

    #[test]
    fn the_catalogue_matches_scoring_md() {
        let row = |r: Rule| (r.name(), r.category(), r.level(), r.owner());
        use Category::*;
        use Level::*;
        use OwnerKind::*;
        assert_eq!(
            Rule::ALL.map(row),
            [
                ("news2.single3", Deterioration, Warning, Patient),
                ("news2.medium", Deterioration, Warning, Patient),
                ("news2.high", Deterioration, Critical, Patient),
                ("news2.trend", Deterioration, Warning, Patient),
                ("sepsis.qsofa", Sepsis, Critical, Patient),
                ("sepsis.sirs_lactate", Sepsis, Critical, Patient),
                ("sepsis.model", Sepsis, Warning, Patient),
                ("technical.signal_loss", Technical, Warning, Patient),
                ("delay.waiting", Delay, Warning, Location),
                ("delay.provider", Delay, Warning, Provider),
                ("delay.resource_overrun", Delay, Warning, Resource),
            ]
        );
        assert_eq!(
            Rule::ALL
                .into_iter()
                .filter(|r| r.is_clinical())
                .collect::<Vec<_>>(),
            Rule::CLINICAL
        );
        let risk: Vec<_> = Rule::ALL
            .into_iter()
            .filter(|r| r.is_news2_risk())
            .collect();
        assert_eq!(
            risk,
            [Rule::News2Single3, Rule::News2Medium, Rule::News2High]
        );
        assert_eq!(
            Rule::ALL.map(Rule::family)[..5],
            ["news2", "news2", "news2", "news2.trend", "sepsis.qsofa"]
        );
        assert!(!Rule::TechnicalSignalLoss.predicts());
        assert!(Rule::SepsisQsofa.predicts());
        assert!(!Rule::DelayWaiting.predicts());
        assert_eq!(
            Rule::SepsisQsofa.threshold(),
            Threshold::Points { min: 1, max: 3 }
        );
        assert_eq!(
            Rule::SepsisSirsLactate.threshold(),
            Threshold::Points { min: 1, max: 4 }
        );
        assert_eq!(
            Rule::News2Single3.threshold(),
            Threshold::Points { min: 0, max: 20 }
        );
        assert_eq!(Rule::DelayProvider.threshold(), Threshold::None);
        assert_eq!(Rule::SepsisModel.threshold(), Threshold::Risk);
        assert!(Rule::SepsisModel.predicts());
    }

    #[test]
    fn levels_and_categories_read_back_from_their_wire_names() {
        for l in Level::ALL {
            assert_eq!(Level::from_name(l.as_str()), Some(l));
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                format!("\"{}\"", l.as_str())
            );
        }
        for c in Category::ALL {
            assert_eq!(Category::from_name(c.as_str()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        assert_eq!(Level::from_name("severe"), None);
        assert!(Level::Critical > Level::Warning && Level::Warning > Level::Info);
    }
}
