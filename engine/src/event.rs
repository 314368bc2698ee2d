//! The inbound events the engine applies, in the one shape that `streams` decodes them into,
//! the actors route and `vigil replay` reads back: an [`EventMeta`] and a body.
//!
//! Identifiers are `Cow`s: decoding borrows them from the message where it can (a replay
//! scores a line without allocating), and live ingest makes an event owned
//! ([`Reading::into_owned`]) only to hand it to another thread.

use std::borrow::Cow;

use crate::observation::{Admission, LabResult, Vitals};
use crate::practice::appointment::PracticeChange;
use crate::time::Timestamp;

/// The envelope fields of every inbound event (contracts.md section 1), as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta<'a> {
    pub event_id: Cow<'a, str>,
    pub tenant_id: Cow<'a, str>,
    pub occurred_at: Timestamp,
    pub correlation_id: Option<Cow<'a, str>>,
}

impl EventMeta<'_> {
    pub fn into_owned(self) -> EventMeta<'static> {
        EventMeta {
            event_id: Cow::Owned(self.event_id.into_owned()),
            tenant_id: Cow::Owned(self.tenant_id.into_owned()),
            occurred_at: self.occurred_at,
            correlation_id: self.correlation_id.map(|c| Cow::Owned(c.into_owned())),
        }
    }
}

/// A `VITALS` event: something measured or recorded about one patient in one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<'a> {
    pub meta: EventMeta<'a>,
    pub patient_id: Cow<'a, str>,
    pub unit_id: Cow<'a, str>,
    /// The bed, when the monitor names it (`bedId` of `vitals.observation.v1`).
    pub bed_id: Option<Cow<'a, str>>,
    pub body: ReadingBody,
}

/// What a [`Reading`] says.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadingBody {
    /// `vitals.observation.v1`, measured at the envelope's `occurredAt`.
    Vitals(Vitals),
    /// `lab.result.v1`: the sample's collection time is when it describes the patient.
    Lab {
        lab: LabResult,
        collected_at: Timestamp,
    },
    /// `patient.admitted.v1`: kept in the patient's state; opens nothing by itself.
    Admission(Admission),
}

pub const VITALS_OBSERVATION: &str = "vitals.observation.v1";
pub const LAB_RESULT: &str = "lab.result.v1";
pub const PATIENT_ADMITTED: &str = "patient.admitted.v1";

impl Reading<'_> {
    pub fn event_type(&self) -> &'static str {
        match self.body {
            ReadingBody::Vitals(_) => VITALS_OBSERVATION,
            ReadingBody::Lab { .. } => LAB_RESULT,
            ReadingBody::Admission(_) => PATIENT_ADMITTED,
        }
    }

    /// The same event with owned identifiers, to cross threads.
    pub fn into_owned(self) -> Reading<'static> {
        Reading {
            meta: self.meta.into_owned(),
            patient_id: Cow::Owned(self.patient_id.into_owned()),
            unit_id: Cow::Owned(self.unit_id.into_owned()),
            bed_id: self.bed_id.map(|b| Cow::Owned(b.into_owned())),
            body: self.body,
        }
    }
}

/// A `CHECKINS` or `OCCUPANCY` event: a change in the practice flow.
#[derive(Debug, Clone, PartialEq)]
pub struct PracticeEvent {
    pub meta: EventMeta<'static>,
    pub change: PracticeChange,
}

impl PracticeEvent {
    pub fn event_type(&self) -> &'static str {
        self.change.event_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(body: ReadingBody) -> Reading<'static> {
        Reading {
            meta: EventMeta {
                event_id: "e1".into(),
                tenant_id: "t1".into(),
                occurred_at: Timestamp::from_millis(1_000),
                correlation_id: Some("c1".into()),
            },
            patient_id: "p1".into(),
            unit_id: "icu".into(),
            bed_id: None,
            body,
        }
    }

    #[test]
    fn event_types_are_the_contracts() {
        let lab = LabResult {
            code: "lactate".into(),
            value: 2.0,
            unit: None,
        };
        let cases = [
            (ReadingBody::Vitals(Vitals::default()), VITALS_OBSERVATION),
            (
                ReadingBody::Lab {
                    lab,
                    collected_at: Timestamp::from_millis(0),
                },
                LAB_RESULT,
            ),
            (
                ReadingBody::Admission(Admission {
                    admitted_at: Timestamp::from_millis(0),
                    hospital_admitted_at: None,
                    age: None,
                    sex: None,
                }),
                PATIENT_ADMITTED,
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(reading(body).event_type(), expected);
        }
    }

    #[test]
    fn into_owned_keeps_every_field() {
        let text = String::from("p-borrowed");
        let mut r = reading(ReadingBody::Vitals(Vitals::default()));
        r.patient_id = Cow::Borrowed(&text);
        let owned = r.clone().into_owned();
        assert_eq!(owned, r);
        assert!(matches!(owned.patient_id, Cow::Owned(_)));
    }
}
