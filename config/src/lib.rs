//! Vigil's settings: typed, with the built-in defaults of `shared/scoring.md` and contracts.md §7.
//!
//! Dependency chain: `config` is the root of the workspace; it imports nothing of ours. It is the
//! only crate that reads configuration files. Every table rejects unknown keys, and the error
//! names the key and the line (the `toml` crate reports both).
//!
//! Layout: one file per section (`nats.rs`, `gateway.rs`, `engine.rs`, `auth.rs`,
//! `escalation.rs`, and `scoring.rs` for `[scoring]`, `[rules."…"]` and `[[profiles]]`), the
//! rule catalogue (`rule.rs`) and durations (`duration.rs`). This file holds [`Config`]: loading,
//! environment overrides and the validation that ties the sections together.

mod auth;
mod cluster;
mod duration;
mod engine;
mod escalation;
mod gateway;
mod nats;
mod rule;
mod scoring;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use auth::{AuthConfig, Role, TokenConfig};
use cluster::check_cluster;
pub use cluster::{ClusterConfig, MAX_PARTITIONS};
pub use duration::{Duration, DurationError};
pub use engine::EngineConfig;
pub use escalation::{EscalationConfig, PolicyConfig, PolicyLevelConfig, PolicyMatch};
pub use gateway::GatewayConfig;
pub use nats::NatsConfig;
pub use rule::{Category, Level, OwnerKind, Rule, Threshold};
pub use scoring::{
    DEFAULT_TREND_WINDOW, MAX_HORIZON, MAX_RISK_SUSTAIN, ProfileConfig, RuleConfig, ScoringConfig,
    ScoringOverride,
};
use scoring::{check_horizon, check_trend_window, trend_window, validate_rules};

/// Why configuration could not be loaded. Every variant names what the operator must fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// TOML syntax, unknown keys and wrong types; `message` carries the line and the key.
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: invalid `{key}`: {reason}")]
    Invalid {
        path: String,
        key: String,
        reason: String,
    },
    #[error("environment variable {var}: {reason}")]
    Env { var: &'static str, reason: String },
}

/// The whole configuration. Every key has a default except the NATS URL (for `run`) and tokens.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub nats: NatsConfig,
    pub gateway: GatewayConfig,
    pub engine: EngineConfig,
    pub auth: AuthConfig,
    /// Rule settings keyed by rule name, e.g. `[rules."news2.high"]`.
    pub rules: BTreeMap<String, RuleConfig>,
    pub scoring: ScoringConfig,
    /// Threshold profiles: per-unit (or per-tenant default) overrides of rules and scoring.
    pub profiles: Vec<ProfileConfig>,
    /// Escalation policies (`[[escalation.policies]]`), over the built-in defaults.
    pub escalation: EscalationConfig,
    /// `[cluster]`: absent, this process owns every partition of unpartitioned streams.
    pub cluster: Option<ClusterConfig>,
}

/// Name of the built-in profile for hourly charted data (`vigil replay --psv`).
pub const CHARTED_PROFILE: &str = "charted";

/// True when `s` is a valid identifier token (contracts.md §1): `[A-Za-z0-9_-]{1,64}`.
/// Three per event on the hot path, hence the table.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| TOKEN_BYTES[usize::from(b)])
}

/// `TOKEN_BYTES[b]`: `b` may stand in an identifier token.
static TOKEN_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
        b += 1;
    }
    t
};

impl Config {
    /// JetStream replicas of the streams the engine creates: `[cluster] replicas`, else 1.
    pub fn replicas(&self) -> usize {
        self.cluster.as_ref().map_or(1, |c| c.replicas)
    }

    /// Parses and validates TOML text. `path` only labels errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for syntax, unknown keys and wrong types (with line and key);
    /// [`ConfigError::Invalid`] for values that parse but make no sense.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Reads and validates a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, then as [`Config::from_toml`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::from_toml(&text, &shown)
    }

    /// Applies `VIGIL_NATS_URL` and `VIGIL_LISTEN` from `env` (a lookup, so tests stay pure).
    ///
    /// # Errors
    /// [`ConfigError::Env`] naming `VIGIL_LISTEN` when it is not `host:port`.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(url) = env("VIGIL_NATS_URL").filter(|v| !v.is_empty()) {
            self.nats.url = Some(url);
        }
        if let Some(listen) = env("VIGIL_LISTEN").filter(|v| !v.is_empty()) {
            if listen.parse::<SocketAddr>().is_err() {
                return Err(ConfigError::Env {
                    var: "VIGIL_LISTEN",
                    reason: format!("expected host:port, e.g. 127.0.0.1:8080 (not `{listen}`)"),
                });
            }
            self.gateway.listen = listen;
        }
        Ok(())
    }

    /// The listen address, parsed.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming `gateway.listen` when it is not `host:port`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.gateway.listen.parse().map_err(|e| {
            invalid(
                "(file, VIGIL_LISTEN and --listen together)",
                "gateway.listen",
                format!("{e}"),
            )
        })
    }

    /// Checks what the types alone cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first offending key.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.gateway.listen.parse::<SocketAddr>().is_err() {
            return Err(invalid(
                path,
                "gateway.listen",
                "expected host:port, e.g. 127.0.0.1:8080",
            ));
        }
        let positive = [
            ("nats.batch", self.nats.batch),
            ("nats.max_inflight_batches", self.nats.max_inflight_batches),
            ("gateway.client_queue", self.gateway.client_queue),
            ("gateway.max_connections", self.gateway.max_connections),
            ("engine.mailbox", self.engine.mailbox),
            ("engine.dedupe_capacity", self.engine.dedupe_capacity),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(invalid(path, key, "must be at least 1"));
            }
        }
        if !is_token(&self.nats.consumer) {
            return Err(invalid(
                path,
                "nats.consumer",
                "must match [A-Za-z0-9_-]{1,64}",
            ));
        }
        if self.gateway.max_open_connections == Some(0) {
            return Err(invalid(
                path,
                "gateway.max_open_connections",
                "must be at least 1",
            ));
        }
        for (key, d) in [
            ("gateway.header_timeout", self.gateway.header_timeout),
            ("gateway.idle_timeout", self.gateway.idle_timeout),
            ("gateway.ping_interval", self.gateway.ping_interval),
        ] {
            if d.as_millis() < 100 {
                return Err(invalid(path, key, "must be at least 100ms"));
            }
        }
        if self.engine.tick.as_millis() < 100 {
            return Err(invalid(path, "engine.tick", "must be at least 100ms"));
        }
        if !is_token(&self.engine.profile) {
            return Err(invalid(
                path,
                "engine.profile",
                "must match [A-Za-z0-9_-]{1,64}",
            ));
        }
        if self.nats.ack_wait.as_millis() < 1000 {
            return Err(invalid(path, "nats.ack_wait", "must be at least 1s"));
        }
        let mut seen = HashSet::new();
        for (i, token) in self.auth.tokens.iter().enumerate() {
            let key = |field: &str| format!("auth.tokens[{i}].{field}");
            if token.token.len() < 8 {
                return Err(invalid(
                    path,
                    &key("token"),
                    "must be at least 8 characters",
                ));
            }
            if !seen.insert(token.token.as_str()) {
                return Err(invalid(path, &key("token"), "duplicate token"));
            }
            if !is_token(&token.tenant) {
                return Err(invalid(
                    path,
                    &key("tenant"),
                    "must match [A-Za-z0-9_-]{1,64}",
                ));
            }
            if let Some(unit) = token.units.iter().find(|u| !is_token(u)) {
                return Err(invalid(
                    path,
                    &key("units"),
                    format!("`{unit}` is not a valid unit"),
                ));
            }
        }
        if let Some(c) = &self.cluster {
            check_cluster(path, c)?;
        }
        validate_rules(path, "rules", &self.rules)?;
        check_horizon(
            path,
            "scoring.horizon",
            self.scoring.horizon,
            self.scoring.lateness,
        )?;
        check_trend_window(
            path,
            "rules.\"news2.trend\".window",
            trend_window(&self.rules).unwrap_or(DEFAULT_TREND_WINDOW),
            self.scoring.horizon,
        )?;
        self.validate_profiles(path)?;
        self.validate_policies(path)?;
        Ok(())
    }
}

/// A name that must be a token and unique among `seen` (profiles, policies).
pub(crate) fn unique_name<'a>(
    path: &str,
    key: &str,
    name: &'a str,
    seen: &mut HashSet<&'a str>,
    what: &str,
) -> Result<(), ConfigError> {
    if !is_token(name) {
        return Err(invalid(path, key, "must match [A-Za-z0-9_-]{1,64}"));
    }
    if !seen.insert(name) {
        return Err(invalid(path, key, format!("duplicate {what} `{name}`")));
    }
    Ok(())
}

pub(crate) fn invalid(path: &str, key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.into(),
        key: key.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_ascii_letters_digits_underscore_and_hyphen_up_to_64() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
            let s = [b];
            let text = std::str::from_utf8(&s);
            assert_eq!(text.is_ok_and(is_token), want, "byte {b}");
        }
        assert!(!is_token(""));
        assert!(is_token(&"a".repeat(64)));
        assert!(!is_token(&"a".repeat(65)));
        assert!(!is_token("icu-3é") && !is_token("icu 3") && !is_token("icu.3"));
        assert!(is_token("icu_3-B"));
    }

    const MINIMAL: &str = r#"
[nats]
url = "nats://127.0.0.1:4222"

[gateway]
listen = "127.0.0.1:8080"

[[auth.tokens]]
token = "dev-nurse-icu3"
tenant = "clinic-abc"
role = "nurse"
units = ["icu-3"]

[[auth.tokens]]
token = "dev-admin"
tenant = "clinic-abc"
role = "admin"          # no units: every unit of the tenant
"#;

    #[test]
    fn contract_minimal_file_loads() {
        let c = Config::from_toml(MINIMAL, "vigil.toml").expect("minimal config");
        assert_eq!(c.nats.url.as_deref(), Some("nats://127.0.0.1:4222"));
        assert_eq!(c.auth.tokens.len(), 2);
        assert_eq!(c.auth.tokens[0].role, Role::Nurse);
        assert!(c.auth.tokens[1].units.is_empty());
        assert_eq!(c.engine.passivate_after, Duration::from_secs(6 * 3600));
    }

    #[test]
    fn example_file_in_the_repository_loads() {
        let c = Config::from_toml(
            include_str!("../../vigil.example.toml"),
            "vigil.example.toml",
        )
        .expect("vigil.example.toml must stay valid");
        assert_eq!(c.auth.tokens.len(), 2);
        assert_eq!(c.nats.batch, NatsConfig::default().batch);
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_toml("", "x.toml").expect("empty config");
        assert_eq!(c.gateway.listen, "127.0.0.1:8080");
        assert_eq!(c.scoring.vitals_freshness, Duration::from_secs(900));
        assert!(c.nats.url.is_none());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "[nats]\nurl = \"nats://x\"\nbatchsize = 3\n";
        let err = Config::from_toml(text, "v.toml")
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("batchsize"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("v.toml"), "{err}");
    }

    #[test]
    fn unknown_role_is_an_error_naming_it() {
        let text = "[[auth.tokens]]\ntoken = \"abcdefgh\"\ntenant = \"t\"\nrole = \"janitor\"\n";
        let err = Config::from_toml(text, "v.toml")
            .expect_err("bad role")
            .to_string();
        assert!(err.contains("janitor") && err.contains("line 4"), "{err}");
    }

    /// 30 days is the longest horizon a patient window keeps; a second more is refused.
    #[test]
    fn the_longest_horizon_is_thirty_days() {
        let config =
            Config::from_toml("[scoring]\nhorizon = \"720h\"\n", "v.toml").expect("30 days");
        assert_eq!(config.scoring.horizon.as_millis(), MAX_HORIZON.as_millis());
        let err = Config::from_toml("[scoring]\nhorizon = \"2592001s\"\n", "v.toml")
            .expect_err("30 days and a second")
            .to_string();
        assert!(
            err.contains("scoring.horizon") && err.contains("30 days"),
            "{err}"
        );
    }

    #[test]
    fn cluster_defaults_follow_the_contract() {
        let c = Config::from_toml("[cluster]\nmember = \"engine-a\"\n", "v.toml").expect("valid");
        let cluster = c.cluster.as_ref().expect("a [cluster] section");
        assert_eq!(cluster.member, "engine-a");
        assert_eq!(cluster.partitions, 16);
        assert_eq!(cluster.replicas, 1);
        assert_eq!(cluster.failover, Duration::from_secs(10));
        assert_eq!(c.replicas(), 1);
        // The host name stands in when no member is given, as a valid name.
        let c = Config::from_toml("[cluster]\nreplicas = 3\n", "v.toml").expect("valid");
        assert_eq!(c.replicas(), 3);
        assert!(is_token(&c.cluster.expect("a [cluster] section").member));
        // No section: one process, no partitions, one replica.
        let c = Config::from_toml("", "v.toml").expect("valid");
        assert!(c.cluster.is_none());
        assert_eq!(c.replicas(), 1);
        // The edges that are allowed.
        let edges =
            "[cluster]\nmember = \"m\"\npartitions = 1024\nreplicas = 5\nfailover = \"1s\"\n";
        Config::from_toml(edges, "v.toml").expect("the largest and smallest allowed values");
        let one = "[cluster]\nmember = \"m\"\npartitions = 1\n";
        Config::from_toml(one, "v.toml").expect("one partition");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let cases = [
            ("[gateway]\nlisten = \"nowhere\"\n", "gateway.listen"),
            ("[nats]\nbatch = 0\n", "nats.batch"),
            ("[cluster]\nmember = \"a.b\"\n", "cluster.member"),
            ("[cluster]\npartitions = 0\n", "cluster.partitions"),
            ("[cluster]\npartitions = 1025\n", "cluster.partitions"),
            ("[cluster]\nreplicas = 0\n", "cluster.replicas"),
            ("[cluster]\nreplicas = 6\n", "cluster.replicas"),
            ("[cluster]\nfailover = \"999ms\"\n", "cluster.failover"),
            (
                "[[auth.tokens]]\ntoken = \"abcdefgh\"\ntenant = \"a b\"\nrole = \"nurse\"\n",
                "tenant",
            ),
            (
                "[[auth.tokens]]\ntoken = \"short\"\ntenant = \"t\"\nrole = \"nurse\"\n",
                "token",
            ),
            ("[rules.\"news2.huge\"]\nthreshold = 9\n", "news2.huge"),
            ("[rules.\"news2.high\"]\nsustain = 0\n", "sustain"),
            (
                "[rules.\"news2.trend\"]\nwindow = \"7h\"\n",
                "rules.\"news2.trend\".window",
            ),
            (
                "[scoring]\nhorizon = \"30m\"\n",
                "rules.\"news2.trend\".window",
            ),
            ("[scoring]\nhorizon = \"721h\"\n", "scoring.horizon"),
            (
                "[[profiles]]\nname = \"p\"\nscoring = { horizon = \"721h\" }\n",
                "profiles[0].scoring.horizon",
            ),
            (
                "[[profiles]]\nname = \"p\"\nscoring = { horizon = \"2h\" }\n[profiles.rules.\"news2.trend\"]\nwindow = \"3h\"\n",
                "profiles[0].rules.\"news2.trend\".window",
            ),
            (
                "[rules.\"news2.medium\"]\nsustain = 17\n",
                "rules.\"news2.medium\".sustain",
            ),
            (
                "[[profiles]]\nname = \"p\"\n[profiles.rules.\"news2.single3\"]\nsustain = 99\n",
                "sustain",
            ),
            ("[engine]\npassivate_after = \"soon\"\n", "passivate_after"),
            (
                "[gateway]\nmax_open_connections = 0\n",
                "gateway.max_open_connections",
            ),
            (
                "[gateway]\nheader_timeout = \"99ms\"\n",
                "gateway.header_timeout",
            ),
            ("[gateway]\nidle_timeout = \"0s\"\n", "gateway.idle_timeout"),
            (
                "[gateway]\nping_interval = \"50ms\"\n",
                "gateway.ping_interval",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text, "v.toml")
                .expect_err(text)
                .to_string();
            assert!(err.contains(key), "{text:?} -> {err}");
        }
    }

    #[test]
    fn duplicate_tokens_are_rejected() {
        let text = "[[auth.tokens]]\ntoken = \"abcdefgh\"\ntenant = \"t\"\nrole = \"nurse\"\n\
                    [[auth.tokens]]\ntoken = \"abcdefgh\"\ntenant = \"u\"\nrole = \"admin\"\n";
        let err = Config::from_toml(text, "v.toml")
            .expect_err("dup")
            .to_string();
        assert!(
            err.contains("auth.tokens[1].token") && err.contains("duplicate"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_file() {
        let mut c = Config::from_toml(MINIMAL, "v.toml").expect("config");
        c.apply_env(|k| match k {
            "VIGIL_NATS_URL" => Some("nats://10.0.0.9:4222".into()),
            "VIGIL_LISTEN" => Some("127.0.0.1:9999".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(c.nats.url.as_deref(), Some("nats://10.0.0.9:4222"));
        assert_eq!(c.listen_addr().expect("addr").port(), 9999);
        // A bad VIGIL_LISTEN is refused naming the variable, and changes nothing.
        let err = c
            .apply_env(|k| (k == "VIGIL_LISTEN").then(|| "8080".to_string()))
            .expect_err("not host:port")
            .to_string();
        assert!(
            err.starts_with("environment variable VIGIL_LISTEN:"),
            "{err}"
        );
        assert!(err.contains("`8080`"), "{err}");
        assert_eq!(c.listen_addr().expect("addr").port(), 9999);
    }

    #[test]
    fn contract_policy_shape_parses() {
        let text = r#"
[[escalation.policies]]
name = "critical-default"
match = { level = "critical" }          # or { category = "delay" }, or both
ack_expiry = "30m"
page_receipt_timeout = "60s"
levels = [
  { after = "0s",  targets = ["nurse"] },
  { after = "5m",  targets = ["charge_nurse"] },
  { after = "10m", targets = ["rapid_response"] },
]
"#;
        let c = Config::from_toml(text, "v.toml").expect("policy");
        let p = &c.escalation.policies[0];
        assert_eq!(p.matches.level.as_deref(), Some("critical"));
        assert_eq!(p.levels.len(), 3);
        assert_eq!(p.levels[1].targets, vec![Role::ChargeNurse]);
        assert_eq!(p.ack_expiry, Some(Duration::from_secs(1800)));
    }

    #[test]
    fn invalid_policies_name_the_key() {
        let level = "levels = [{ after = \"0s\", targets = [\"nurse\"] }]";
        let cases = [
            (
                format!("[[escalation.policies]]\nname = \"a b\"\n{level}\n"),
                "escalation.policies[0].name",
            ),
            (
                format!("[[escalation.policies]]\nname = \"p\"\nmatch = {{ level = \"severe\" }}\n{level}\n"),
                "match.level",
            ),
            (
                format!("[[escalation.policies]]\nname = \"p\"\nmatch = {{ category = \"x\" }}\n{level}\n"),
                "match.category",
            ),
            (
                "[[escalation.policies]]\nname = \"p\"\nlevels = []\n".to_string(),
                "escalation.policies[0].levels",
            ),
            (
                "[[escalation.policies]]\nname = \"p\"\nlevels = [{ after = \"1m\", targets = [\"nurse\"] }]\n".to_string(),
                "levels[0].after",
            ),
            (
                "[[escalation.policies]]\nname = \"p\"\nlevels = [{ after = \"0s\", targets = [\"nurse\"] }, { after = \"0s\", targets = [\"manager\"] }]\n".to_string(),
                "levels[1].after",
            ),
            (
                "[[escalation.policies]]\nname = \"p\"\nlevels = [{ after = \"0s\", targets = [] }]\n".to_string(),
                "levels[0].targets",
            ),
            (
                "[[escalation.policies]]\nname = \"p\"\nlevels = [{ after = \"0s\", targets = [\"viewer\"] }]\n".to_string(),
                "levels[0].targets",
            ),
            (
                format!("[[escalation.policies]]\nname = \"p\"\nack_expiry = \"0s\"\n{level}\n"),
                "ack_expiry",
            ),
            (
                format!("[[escalation.policies]]\nname = \"p\"\n{level}\n[[escalation.policies]]\nname = \"p\"\n{level}\n"),
                "escalation.policies[1].name",
            ),
            (
                format!("[[escalation.policies]]\nname = \"p\"\nrepeat = true\n{level}\n"),
                "repeat",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(&text, "v.toml")
                .expect_err(&text)
                .to_string();
            assert!(err.contains(key), "{text:?} -> {err}");
        }
    }

    #[test]
    fn rule_overrides_parse() {
        let text = "[rules.\"news2.high\"]\nthreshold = 8\nsustain = 3\nclear = \"20m\"\n";
        let c = Config::from_toml(text, "v.toml").expect("rules");
        let r = &c.rules["news2.high"];
        assert_eq!((r.threshold, r.sustain), (Some(8), Some(3)));
        assert_eq!(r.clear, Some(Duration::from_secs(1200)));
    }

    #[test]
    fn delay_rules_take_durations_and_refuse_points() {
        let text = "[rules.\"delay.provider\"]\nwindow = \"45m\"\nclear_below = \"20m\"\n";
        let c = Config::from_toml(text, "v.toml").expect("delay rule");
        let r = &c.rules["delay.provider"];
        assert_eq!(r.window, Some(Duration::from_secs(2700)));
        assert_eq!(r.clear_below, Some(Duration::from_secs(1200)));
        for (text, reason) in [
            (
                "[rules.\"delay.waiting\"]\nthreshold = 3\n",
                "take a duration",
            ),
            (
                "[rules.\"delay.waiting\"]\nclear_below = \"5m\"\n",
                "only delay.provider",
            ),
            (
                "[rules.\"delay.provider\"]\nwindow = \"15m\"\nclear_below = \"15m\"\n",
                "shorter than window",
            ),
        ] {
            let err = Config::from_toml(text, "v.toml")
                .expect_err(text)
                .to_string();
            assert!(err.contains(reason), "{text:?} -> {err}");
        }
    }
}
