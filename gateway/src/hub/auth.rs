//! Who a connection speaks for: the bearer token's [`Principal`] and what it covers.

use vigil_config::Role;

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    pub role: Role,
    /// Units covered; empty means every unit of the tenant.
    pub units: Vec<String>,
    /// Shown as the `by` of the transitions this token causes.
    pub name: String,
    /// For `pager` tokens: the roles whose pages it takes (empty: every role).
    pub page_roles: Vec<Role>,
}

impl Principal {
    pub fn covers(&self, tenant: &str, unit: Option<&str>) -> bool {
        tenant == self.tenant
            && (self.units.is_empty() || unit.is_some_and(|u| self.units.iter().any(|x| x == u)))
    }
}
