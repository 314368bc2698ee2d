//! `[auth]`: the gateway's bearer tokens and the staff roles they carry.

use serde::Deserialize;

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
