//! Threshold profiles: which [`Settings`] apply to an event of `(tenant, unit)`.
//!
//! Every profile starts from the base (built-in defaults, then the file's `[scoring]` and
//! `[rules]`) and overrides what its `[[profiles]]` entry names. Selection, first match wins:
//! the profile that lists the unit (for that tenant, or for every tenant); the tenant's default
//! profile (tenant, no units); the global default profile (neither); the base.
//!
//! Built in beside the base: `charted`, for hourly charted data such as the PhysioNet files
//! `vigil replay --psv` reads (scoring.md): vitals stay fresh for 4 h, there is no
//! signal-loss or trend rule, the NEWS2 risk rules are the RCP's and the sepsis screen is the
//! learned model (`sepsis.model`) alone. A `[[profiles]]` entry named `charted` replaces it.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_config::{CHARTED_PROFILE, Config};

use crate::settings::Settings;

const HOUR: i64 = 3_600_000;

/// The built-in `charted` profile over `base` (see the module documentation and
/// docs/sepsis-screen.md for how its rule settings were chosen).
pub fn charted(base: &Settings) -> Settings {
    let mut s = base.clone();
    s.profile = CHARTED_PROFILE.into();
    s.freshness.vitals_ms = 4 * HOUR;
    s.freshness.consciousness_ms = 4 * HOUR;
    s.sepsis.vitals_ms = 4 * HOUR;
    s.sepsis.consciousness_ms = 4 * HOUR;
    s.window.lateness_ms = s.window.lateness_ms.max(2 * HOUR);
    s.window.horizon_ms = s.window.horizon_ms.max(s.window.lateness_ms);
    s.signal_loss.enabled = false;
    // The NEWS2 risk rules stay exactly as the RCP defines them (the base's single 3, 5 and 7);
    // the trend rule is off (hour-to-hour swings of charted rows are not a 60-minute rise).
    // Sepsis is screened by the learned model alone: on hospital A's stays qSOFA (never
    // charted consciousness) and SIRS with lactate alerted far more patients who never became
    // septic than the model did, and warned of fewer who did (docs/sepsis-screen.md).
    s.trend.enabled = false;
    s.qsofa.enabled = false;
    s.sirs_lactate.enabled = false;
    s
}

/// A unit's profile for one tenant (`None`: every tenant).
type UnitProfile = (Option<String>, Arc<Settings>);

/// Every profile of a configuration, ready for lookups on the hot path.
#[derive(Debug, Clone)]
pub struct Profiles {
    base: Arc<Settings>,
    named: HashMap<String, Arc<Settings>>,
    /// unit -> (tenant or every tenant, profile); a unit is in at most one profile per tenant.
    by_unit: HashMap<String, Vec<UnitProfile>>,
    tenant_default: HashMap<String, Arc<Settings>>,
    global_default: Option<Arc<Settings>>,
}

impl Profiles {
    /// One profile for everything (tests, benches).
    pub fn single(settings: Settings) -> Self {
        let base = Arc::new(settings);
        let mut named = HashMap::new();
        named.insert(base.profile.clone(), base.clone());
        named
            .entry(CHARTED_PROFILE.to_string())
            .or_insert_with(|| Arc::new(charted(&base)));
        Self {
            base,
            named,
            by_unit: HashMap::new(),
            tenant_default: HashMap::new(),
            global_default: None,
        }
    }

    /// The profiles of a validated configuration.
    pub fn from_config(config: &Config) -> Self {
        Self::build(config, Settings::from_config(config))
    }

    /// As [`Profiles::from_config`], with `model` served by `sepsis.model` in every profile.
    ///
    /// # Errors
    /// A profile whose window is shorter than a span the model reads (its vitals' changes and
    /// summaries come from the window's rows), naming the profile and the span.
    pub fn with_model(
        config: &Config,
        model: std::sync::Arc<crate::patient::model::Model>,
    ) -> Result<Self, String> {
        let base = Settings {
            model,
            ..Settings::from_config(config)
        };
        let me = Self::build(config, base);
        let span = me.base().model.longest_row_span_ms();
        for s in std::iter::once(me.base()).chain(me.named.values()) {
            if s.model_rule.enabled && s.window.horizon_ms < span {
                return Err(format!(
                    "profile `{}` keeps {} h of history (scoring.horizon) but the sepsis model reads {} h of it",
                    s.profile,
                    s.window.horizon_ms / 3_600_000,
                    span / 3_600_000
                ));
            }
        }
        Ok(me)
    }

    fn build(config: &Config, base: Settings) -> Self {
        let mut me = Self::single(base.clone());
        for p in &config.profiles {
            let mut s = if p.name == CHARTED_PROFILE {
                charted(&base)
            } else {
                base.clone()
            };
            s.profile = p.name.clone();
            s.apply_scoring(&p.scoring);
            s.apply_rules(&p.rules);
            let s = Arc::new(s);
            me.named.insert(p.name.clone(), s.clone());
            if p.units.is_empty() {
                match &p.tenant {
                    Some(t) => {
                        me.tenant_default.insert(t.clone(), s);
                    }
                    None => me.global_default = Some(s),
                }
            } else {
                for unit in &p.units {
                    me.by_unit
                        .entry(unit.clone())
                        .or_default()
                        .push((p.tenant.clone(), s.clone()));
                }
            }
        }
        me
    }

    /// The profile for an event of `tenant` on `unit`.
    pub fn for_unit(&self, tenant: &str, unit: &str) -> &Arc<Settings> {
        if let Some(list) = self.by_unit.get(unit) {
            let exact = list.iter().find(|(t, _)| t.as_deref() == Some(tenant));
            let any = list.iter().find(|(t, _)| t.is_none());
            if let Some((_, s)) = exact.or(any) {
                return s;
            }
        }
        self.tenant_default
            .get(tenant)
            .or(self.global_default.as_ref())
            .unwrap_or(&self.base)
    }

    /// A profile by name (`vigil replay --profile`).
    pub fn named(&self, name: &str) -> Option<&Arc<Settings>> {
        self.named.get(name)
    }

    /// Every profile name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.named.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// The base profile (no `[[profiles]]` entry matched).
    pub fn base(&self) -> &Arc<Settings> {
        &self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[engine]
profile = "ward-default"

[rules."news2.high"]
threshold = 8

[[profiles]]
name = "icu-default"
tenant = "clinic-abc"
units = ["icu-3", "icu-4"]
scoring = { vitals_freshness = "5m" }
[profiles.rules."news2.high"]
sustain = 3
[profiles.rules."sepsis.qsofa"]
clear = "45m"

[[profiles]]
name = "abc-default"
tenant = "clinic-abc"
[profiles.rules."news2.trend"]
threshold = 4

[[profiles]]
name = "everyone"
"#;

    fn profiles() -> Profiles {
        let c = Config::from_toml(FILE, "v.toml").expect("config");
        Profiles::from_config(&c)
    }

    #[test]
    fn selection_by_unit_then_tenant_then_global() {
        let p = profiles();
        let icu = p.for_unit("clinic-abc", "icu-3");
        assert_eq!(icu.profile, "icu-default");
        assert_eq!(icu.freshness.vitals_ms, 5 * 60_000);
        assert_eq!(icu.sepsis.vitals_ms, 5 * 60_000);
        // Inherits the file's [rules] and overrides what it names.
        assert_eq!((icu.high.threshold, icu.high.sustain), (8, 3));
        assert_eq!(icu.qsofa.clear_ms, Some(45 * 60_000));
        assert_eq!(p.for_unit("clinic-abc", "ward-9").profile, "abc-default");
        assert_eq!(p.for_unit("clinic-abc", "ward-9").trend.threshold, 4);
        assert_eq!(p.for_unit("clinic-xyz", "icu-3").profile, "everyone");
        assert_eq!(p.named("ward-default").map(|s| s.high.threshold), Some(8));
        assert_eq!(
            p.names(),
            vec![
                "abc-default",
                "charted",
                "everyone",
                "icu-default",
                "ward-default"
            ]
        );
    }

    #[test]
    fn without_profiles_the_base_applies() {
        let p = Profiles::from_config(&Config::default());
        assert_eq!(p.for_unit("t", "u").profile, "default");
        assert_eq!(**p.for_unit("t", "u"), Settings::default());
    }

    #[test]
    fn charted_profile_suits_hourly_rows() {
        let p = Profiles::from_config(&Config::default());
        let c = p.named("charted").expect("built in");
        assert_eq!(c.freshness.vitals_ms, 4 * HOUR);
        assert!(!c.signal_loss.enabled);
        assert!(!c.trend.enabled && !c.qsofa.enabled && !c.sirs_lactate.enabled);
        assert!(c.model_rule.enabled, "the sepsis screen is the model");
        // The RCP's NEWS2 risk rules, untouched.
        let base = Settings::default();
        assert_eq!(
            (c.single3, c.medium, c.high),
            (base.single3, base.medium, base.high)
        );
        assert_eq!((c.medium.threshold, c.high.threshold), (5, 7));
    }

    #[test]
    fn invalid_profiles_name_the_key() {
        let cases = [
            ("[[profiles]]\nname = \"a b\"\n", "profiles[0].name"),
            (
                "[[profiles]]\nname = \"a\"\n[[profiles]]\nname = \"a\"\n",
                "profiles[1].name",
            ),
            (
                "[[profiles]]\nname = \"a\"\nunits = [\"u\"]\n[[profiles]]\nname = \"b\"\nunits = [\"u\"]\n",
                "profiles[1].units",
            ),
            (
                "[[profiles]]\nname = \"a\"\n[profiles.rules.\"news2.nope\"]\nthreshold = 1\n",
                "profiles[0].rules.\"news2.nope\"",
            ),
            (
                "[[profiles]]\nname = \"a\"\n[profiles.rules.\"sepsis.qsofa\"]\nthreshold = 4\n",
                "profiles[0].rules.\"sepsis.qsofa\".threshold",
            ),
            (
                "[[profiles]]\nname = \"a\"\nscoring = { lateness = \"7h\" }\n",
                "profiles[0].scoring.horizon",
            ),
            ("[[profiles]]\nname = \"a\"\ncolour = \"red\"\n", "colour"),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text, "v.toml")
                .expect_err(text)
                .to_string();
            assert!(err.contains(key), "{text:?} -> {err}");
        }
    }
}
