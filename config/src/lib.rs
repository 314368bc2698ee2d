//! Vigil's settings: typed, with the built-in defaults of `shared/scoring.md` and contracts.md §7.
//!
//! Dependency chain: `config` is the root of the workspace; it imports nothing of ours. It is the
//! only crate that reads configuration files. Every table rejects unknown keys, and the error
//! names the key and the line (the `toml` crate reports both).

mod duration;
mod rule;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

pub use duration::{Duration, DurationError};
pub use rule::{Category, Level, OwnerKind, Rule, Threshold};

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
}

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

/// Connection to NATS JetStream and how the engine consumes and retains streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// Server URL; required by `vigil run` (file, `VIGIL_NATS_URL` or `--nats-url`).
    pub url: Option<String>,
    /// Durable pull consumer name on `VITALS`; engines sharing a name share the work.
    pub consumer: String,
    /// Most messages the consumer hands to the patient shards in one batch.
    pub batch: usize,
    /// `batch` times this is the most messages handed off but not yet acknowledged; it bounds
    /// every queue between NATS and the actors.
    pub max_inflight_batches: usize,
    /// How long NATS waits for an acknowledgement before redelivering.
    pub ack_wait: Duration,
    /// Retention of the input streams (`0s`: keep everything). ALERTS is never aged out.
    pub max_age: Duration,
    /// Stream replicas (1 on a single server; 3 on a cluster).
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: None,
            consumer: "vigil-engine".into(),
            batch: 2048,
            max_inflight_batches: 16,
            ack_wait: Duration::from_secs(30),
            max_age: Duration::from_secs(0),
            replicas: 1,
        }
    }
}

/// The WebSocket and HTTP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Address the gateway listens on.
    pub listen: String,
    /// Alert frames a client may fall behind before it is closed with 1013 and must resync.
    pub client_queue: usize,
    /// Most simultaneous WebSocket connections; further upgrades get 503.
    pub max_connections: usize,
    /// How often coalesced `patient` frames are flushed to a client.
    pub patient_flush: Duration,
    /// Most open TCP connections, HTTP and WebSocket together; a connection beyond it is closed
    /// as soon as it is accepted (and counted). Unset: the process's open-file limit less a
    /// reserve for NATS, files and the staff already connected (an eighth of the limit, at
    /// least 64), so a flood of idle sockets cannot take the engine's last file descriptors.
    pub max_open_connections: Option<usize>,
    /// How long a client may take to send a request's headers, the WebSocket upgrade included;
    /// a connection that sends nothing is closed after it.
    pub header_timeout: Duration,
    /// A WebSocket that has not subscribed and sent nothing for this long is closed (1008).
    pub idle_timeout: Duration,
    /// A WebSocket not heard from for this long is pinged, and closed (1011) when it has not
    /// answered after as long again: a frozen client is noticed even while its socket buffers
    /// still take what is written.
    pub ping_interval: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            client_queue: 4096,
            max_connections: 10_000,
            patient_flush: Duration::from_millis(250),
            max_open_connections: None,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
        }
    }
}

/// Actor sharding, mailboxes, passivation and deduplication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Patient shards (one arbiter thread each); 0 means one per core.
    pub shards: usize,
    /// Capacity of each patient actor's mailbox.
    pub mailbox: usize,
    /// A patient with no event for this long and no open alert is passivated (its actor stopped).
    pub passivate_after: Duration,
    /// `(tenantId, eventId)` pairs remembered for deduplication (oldest forgotten first).
    pub dedupe_capacity: usize,
    /// Name of the built-in threshold profile, shown in every explanation.
    pub profile: String,
    /// How often each patient actor checks the rules that fire as time passes (signal loss).
    pub tick: Duration,
    /// A check-in or status change for an appointment not scheduled yet is held this long
    /// for its schedule; then a check-in counts as an unscheduled walk-in and a status change
    /// goes to the DLQ with `APPOINTMENT_UNKNOWN` (docs/practice.md).
    pub unscheduled_after: Duration,
    /// How far back `CHECKINS` and `OCCUPANCY` are replayed at start to rebuild appointments,
    /// waiting areas, providers and resources (docs/recovery.md).
    pub practice_horizon: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            shards: 0,
            mailbox: 64,
            passivate_after: Duration::from_secs(6 * 3600),
            dedupe_capacity: 262_144,
            profile: "default".into(),
            tick: Duration::from_secs(10),
            unscheduled_after: Duration::from_secs(15 * 60),
            practice_horizon: Duration::from_secs(24 * 3600),
        }
    }
}

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
}

/// Bearer tokens for the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
}

/// One bearer token: who holds it and what it may see.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: String,
    pub tenant: String,
    pub role: Role,
    /// Units (or practice locations) covered; empty means every unit of the tenant.
    #[serde(default)]
    pub units: Vec<String>,
    /// Who holds the token, recorded as `by` in the transitions it causes (default `role:tenant`).
    #[serde(default)]
    pub name: Option<String>,
    /// For `pager` tokens: the escalation roles whose pages this pager takes (default: every
    /// role, within the token's units). Other roles take the pages addressed to their own role.
    #[serde(default)]
    pub page_roles: Vec<Role>,
}

/// Staff roles of contracts.md §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Nurse,
    ChargeNurse,
    Physician,
    RapidResponse,
    Coordinator,
    Manager,
    Pager,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Nurse => "nurse",
            Role::ChargeNurse => "charge_nurse",
            Role::Physician => "physician",
            Role::RapidResponse => "rapid_response",
            Role::Coordinator => "coordinator",
            Role::Manager => "manager",
            Role::Pager => "pager",
            Role::Admin => "admin",
        }
    }
}

/// `news2.trend`'s default window: the rise is measured over the lowest score of the last hour.
pub const DEFAULT_TREND_WINDOW: Duration = Duration::from_secs(3600);

/// The trend window `rules` set, if any.
fn trend_window(rules: &BTreeMap<String, RuleConfig>) -> Option<Duration> {
    rules.get(Rule::News2Trend.name()).and_then(|r| r.window)
}

/// The trend rule looks back over the patient window's rows: a window longer than the horizon
/// would silently measure the rise over the horizon only.
fn check_trend_window(
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

/// The most consecutive scores `news2.single3`, `news2.medium` and `news2.high` can require:
/// the engine keeps this many of each patient's latest scores.
pub const MAX_RISK_SUSTAIN: u32 = 16;

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
            ("nats.replicas", self.nats.replicas),
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
        validate_rules(path, "rules", &self.rules)?;
        if self.scoring.horizon.as_millis() < self.scoring.lateness.as_millis() {
            return Err(invalid(
                path,
                "scoring.horizon",
                "must be at least scoring.lateness",
            ));
        }
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

impl Config {
    fn validate_profiles(&self, path: &str) -> Result<(), ConfigError> {
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
            if horizon.as_millis() < lateness.as_millis() {
                return Err(invalid(
                    path,
                    &key("scoring.horizon"),
                    "must be at least the lateness bound",
                ));
            }
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

impl Config {
    fn validate_policies(&self, path: &str) -> Result<(), ConfigError> {
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

/// A name that must be a token and unique among `seen` (profiles, policies).
fn unique_name<'a>(
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

fn validate_rules(
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
    }
    Ok(())
}

fn invalid(path: &str, key: &str, reason: impl Into<String>) -> ConfigError {
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

    #[test]
    fn invalid_values_name_the_key() {
        let cases = [
            ("[gateway]\nlisten = \"nowhere\"\n", "gateway.listen"),
            ("[nats]\nbatch = 0\n", "nats.batch"),
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
