//! vigil-engine: the clinical logic as pure code. NEWS2 scoring, the NEWS2 risk rules, the alert
//! record and its state machine, and the per-patient state that ties them together.
//!
//! Dependency chain: `config` -> **`engine`** -> (`streams`, `actors`, `gateway`) -> `vigil`.
//! No actix, no tokio, no IO: time is always a [`Timestamp`] parameter, so every rule is tested
//! with an injected clock and replays give the same answers as live runs.

pub mod alert;
pub mod appointment;
pub mod conditions;
pub mod event;
pub mod keeper;
pub mod news2;
pub mod observation;
pub mod patient;
pub mod practice;
pub mod profiles;
pub mod rules;
pub mod sepsis;
pub mod settings;
pub mod time;
pub mod window;

pub use alert::{
    Alert, AlertCommand, AlertState, Category, CommandError, CommandKind, Level, Owner, Rule,
};
pub use alert::{Escalation, Page, PageState, Policies, Policy};
pub use event::{EventMeta, PracticeEvent, Reading, ReadingBody};
pub use news2::{Chart, Input, News2, Param};
pub use observation::{Admission, Consciousness, LabResult, Sex, Spo2Scale, Vitals};
pub use patient::{LastScore, Observed, Patient, PatientStatus};
pub use profiles::Profiles;
pub use settings::Settings;
pub use time::Timestamp;
pub use window::{Placement, Window, WindowSettings};

/// A wire name (`critical`, `delay`, `out_of_service`) as one of the engine's enums, through
/// the enum's own serde names; `None` for any other text.
pub fn from_wire_name<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    use serde::de::IntoDeserializer;
    T::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}
