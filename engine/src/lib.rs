//! vigil-engine: the clinical logic as pure code. No actix, no tokio, no IO: time is always a
//! [`Timestamp`] parameter, so every rule is tested with an injected clock and replays give the
//! same answers as live runs.
//!
//! Dependency chain: `config` -> **`engine`** -> (`streams`, `actors`, `gateway`) -> `vigil`.
//!
//! Layout, each folder importing only those listed before it:
//! - [`time`]: the engine's clock type.
//! - [`observation`]: what a reading carries: vitals, a lab result, an admission.
//! - [`scores`]: NEWS2 (`news2`), qSOFA and SIRS (`sepsis`): pure functions of a chart.
//! - [`alert`]: the alert record, escalation policies and pages, commands, deadlines.
//! - [`settings`]: each unit's threshold profile and every rule's settings (`profiles`).
//! - [`owner`]: the one shape of a state owner ([`owner::StateOwner`]), which the patient and
//!   the practice keepers implement and the actors drive.
//! - [`practice`]: the clinic's side: appointment status machine and book (`appointment`),
//!   the delay rules, and the state of a waiting area, provider or resource (`keeper`).
//! - [`event`]: what comes in, as the engine owns it: the envelope's meta, readings and
//!   practice changes.
//! - [`patient`]: one patient's state: its window of observations (`window`), the NEWS2 risk
//!   rules (`risk`), the other clinical rules (`conditions`) and their alerts.

pub mod alert;
pub mod event;
pub mod observation;
pub mod owner;
pub mod patient;
pub mod practice;
pub mod scores;
pub mod settings;
pub mod time;

pub use alert::{
    Alert, AlertCommand, AlertState, Category, CommandError, CommandKind, Level, Owner, Rule,
};
pub use alert::{Escalation, Page, PageState, Policies, Policy};
pub use event::{EventMeta, PracticeEvent, Reading, ReadingBody};
pub use observation::{Admission, Consciousness, LabResult, Sex, Spo2Scale, Vitals};
pub use patient::view::PatientView;
pub use patient::window::{Placement, Window};
pub use patient::{LastScore, Observed, Patient, PatientStatus};
pub use scores::news2::{Chart, Input, News2, Param};
pub use settings::profiles::Profiles;
pub use settings::{Settings, WindowSettings};
pub use time::Timestamp;

/// A wire name (`critical`, `delay`, `out_of_service`) as one of the engine's enums, through
/// the enum's own serde names; `None` for any other text.
pub fn from_wire_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}
