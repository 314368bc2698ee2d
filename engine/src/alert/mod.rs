//! Alerts: the record (`orchestration.alert.v1` data) and its state machine.
//!
//! States: `open` -> `acknowledged` -> `resolved`; `open`/`acknowledged` -> `snoozed` -> `open`
//! when the snooze ends; an acknowledgement that expires while the condition holds goes back to
//! `open` and re-pages; any non-terminal state -> `resolved`, which is terminal. Escalation
//! steps, page delivery states and severity changes are transitions too (`to` stays the state).
//! Every change is a transition with who, when, from, to and why; `version` counts them, so
//! a consumer can tell a newer copy of an alert from an older one.
//!
//! Layout, each module importing only those above it:
//! - [`escalation`]: the policies, the escalation an alert carries and its pages (no alert);
//! - [`record`]: the alert itself, its id and owner, and [`Alert::transition`];
//! - [`command`]: what people do to an alert and who may;
//! - [`paging`]: deadlines over time and pagers' answers;
//! - [`holder`]: [`AlertHolder`], where one alert lives in whatever keeps it.
//!
//! The classification (`Rule`, `Level`, `Category`) is the rule catalogue's, in `vigil_config`.

pub mod command;
pub mod escalation;
pub mod holder;
pub mod paging;
pub mod record;

pub use command::{
    AlertCommand, CommandError, CommandKind, MAX_SNOOZE_MS, MIN_SNOOZE_MS, may_command,
    snooze_millis,
};
pub use escalation::{Escalation, Page, PageState, Policies, Policy, PolicyLevel, page_alert};
pub use holder::AlertHolder;
pub use record::{
    Alert, AlertState, ENGINE, Explanation, Meta, Owner, Subject, Transition, alert_id,
};
pub use vigil_config::{Category, Level, Rule};
