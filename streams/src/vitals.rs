//! The `VITALS` stream (contracts.md §3): `vitals.observation.v1`, `lab.result.v1` and
//! `patient.admitted.v1`, decoded from the shared envelope straight into the engine's
//! [`Reading`], borrowing identifiers from the payload, and checked against physiological
//! ranges and lab limits.

use std::borrow::Cow;

use serde::Deserialize;
use vigil_engine::event::{LAB_RESULT, PATIENT_ADMITTED, Reading, ReadingBody};
use vigil_engine::{Admission, Consciousness, LabResult, Sex, Spo2Scale, Timestamp, Vitals};

use crate::envelope::{
    Encoding, Head, RejectCode, Rejection, WireEnvelope, borrow_str, check_head, check_size,
    data_token, first_control, parse_time, reject,
};
use crate::msgpack::{self, Fields, Scalar};

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireData<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    patient_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    unit_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    bed_id: Option<Cow<'a, str>>,
    hr: Option<f64>,
    rr: Option<f64>,
    spo2: Option<f64>,
    spo2_scale: Option<f64>,
    on_oxygen: Option<bool>,
    temp: Option<f64>,
    sbp: Option<f64>,
    dbp: Option<f64>,
    map: Option<f64>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    consciousness: Option<Cow<'a, str>>,
    gcs: Option<f64>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    code: Option<Cow<'a, str>>,
    value: Option<f64>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    unit: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    collected_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    admitted_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    hospital_admitted_at: Option<Cow<'a, str>>,
    age: Option<f64>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    sex: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> for WireData<'a> {
    const NAMES: &'static [&'static str] = &[
        "patientId",
        "unitId",
        "bedId",
        "hr",
        "rr",
        "spo2",
        "spo2Scale",
        "onOxygen",
        "temp",
        "sbp",
        "dbp",
        "map",
        "consciousness",
        "gcs",
        "code",
        "value",
        "unit",
        "collectedAt",
        "admittedAt",
        "hospitalAdmittedAt",
        "age",
        "sex",
    ];

    fn set(&mut self, index: usize, value: Scalar<'a>) -> Option<()> {
        match index {
            0 => self.patient_id = value.text()?,
            1 => self.unit_id = value.text()?,
            2 => self.bed_id = value.text()?,
            3 => self.hr = value.number()?,
            4 => self.rr = value.number()?,
            5 => self.spo2 = value.number()?,
            6 => self.spo2_scale = value.number()?,
            7 => self.on_oxygen = value.flag()?,
            8 => self.temp = value.number()?,
            9 => self.sbp = value.number()?,
            10 => self.dbp = value.number()?,
            11 => self.map = value.number()?,
            12 => self.consciousness = value.text()?,
            13 => self.gcs = value.number()?,
            14 => self.code = value.text()?,
            15 => self.value = value.number()?,
            16 => self.unit = value.text()?,
            17 => self.collected_at = value.text()?,
            18 => self.admitted_at = value.text()?,
            19 => self.hospital_admitted_at = value.text()?,
            20 => self.age = value.number()?,
            _ => self.sex = value.text()?,
        }
        Some(())
    }
}

/// Decodes and validates one message that arrived on `subject` of the `VITALS` stream, with
/// identifiers borrowed from `payload` where they have no escapes. `now` is the engine's
/// clock, for the clock-skew check only.
///
/// # Errors
/// A [`Rejection`] with the contract's or Vigil's error code; every code is in docs/ingest.md.
pub fn decode_vitals<'a>(
    subject: &str,
    payload: &'a [u8],
    encoding: Encoding,
    now: Timestamp,
) -> Result<Reading<'a>, Rejection> {
    check_size(payload)?;
    // As published, or as stored with a cluster's partition token (crate::partition).
    let Some(("vitals", subject_tenant, subject_patient)) =
        crate::partition::contract_tokens(subject)
    else {
        return Err(reject(
            RejectCode::SubjectInvalid,
            format!("subject `{subject}` is not vitals.{{tenantId}}.{{patientId}}"),
        ));
    };
    decode_envelope(
        payload,
        encoding,
        Some(now),
        Some((subject_tenant, subject_patient)),
    )
}

/// Decodes a recorded `VITALS` event (one line of an exported NDJSON stream, as `vigil replay
/// --events` reads it): every rule of [`decode_vitals`] except those about the subject it
/// arrived on and the engine clock, which a recording does not have.
///
/// # Errors
/// A [`Rejection`] with the same codes as live ingest.
pub fn decode_recorded(payload: &[u8]) -> Result<Reading<'_>, Rejection> {
    check_size(payload)?;
    decode_envelope(payload, Encoding::Json, None, None)
}

/// Checks a vitals reading against the physiological ranges (`VITAL_OUT_OF_RANGE`).
///
/// # Errors
/// The first value outside its range.
pub fn check_vitals(v: &Vitals) -> Result<(), Rejection> {
    for (range, value) in [
        (HR, v.hr),
        (RR, v.rr),
        (SPO2, v.spo2),
        (TEMP, v.temp),
        (SBP, v.sbp),
        (DBP, v.dbp),
        (MAP, v.map),
        (GCS, v.gcs),
    ] {
        in_range(range, value)?;
    }
    Ok(())
}

/// The envelope rules; `subject` is `(tenant, patient)` of the subject the event arrived on.
fn decode_envelope<'a>(
    payload: &'a [u8],
    encoding: Encoding,
    now: Option<Timestamp>,
    subject: Option<(&str, &str)>,
) -> Result<Reading<'a>, Rejection> {
    let mut env: WireEnvelope<WireData> = msgpack::decode(payload, encoding, "VITALS")?;
    let head = check_head(&mut env, "VITALS", now, subject.map(|(t, _)| t))?;
    let Head { event_type, meta } = head;
    let mut data = env
        .data
        .ok_or_else(|| reject(RejectCode::EnvelopeInvalid, "missing required field `data`"))?;

    let patient_id = data_token("patientId", data.patient_id.take())?;
    if let Some((_, subject_patient)) = subject
        && patient_id != subject_patient
    {
        return Err(reject(
            RejectCode::PatientMismatch,
            format!(
                "data.patientId `{patient_id}` does not match subject patient `{subject_patient}`"
            ),
        ));
    }
    let unit_id = data_token("unitId", data.unit_id.take())?;
    let bed_id = data.bed_id.take();
    if let Some(bed) = &bed_id
        && (bed.is_empty() || bed.len() > 64 || first_control(bed).is_some())
    {
        return Err(reject(
            RejectCode::DataInvalid,
            "`data.bedId` must be 1 to 64 bytes without control characters",
        ));
    }
    let body = match &*event_type {
        LAB_RESULT => lab(meta.occurred_at, *data)?,
        PATIENT_ADMITTED => admission(&data)?,
        _ => observation(&data)?,
    };
    Ok(Reading {
        meta,
        patient_id,
        unit_id,
        bed_id,
        body,
    })
}

/// A vital's name and its physiologically possible range (inclusive): outside it a value is
/// an artefact.
type Range = (&'static str, f64, f64);
const HR: Range = ("hr", 0.0, 300.0);
const RR: Range = ("rr", 0.0, 100.0);
const SPO2: Range = ("spo2", 0.0, 100.0);
const TEMP: Range = ("temp", 25.0, 45.0);
const SBP: Range = ("sbp", 0.0, 300.0);
const DBP: Range = ("dbp", 0.0, 300.0);
const MAP: Range = ("map", 0.0, 300.0);
const GCS: Range = ("gcs", 3.0, 15.0);

fn in_range((name, lo, hi): Range, v: Option<f64>) -> Result<Option<f64>, Rejection> {
    let Some(v) = v else { return Ok(None) };
    if !v.is_finite() || v < lo || v > hi {
        return Err(reject(
            RejectCode::VitalOutOfRange,
            format!("{name} {v} is outside the physiological range {lo}..{hi}"),
        ));
    }
    Ok(Some(v))
}

fn observation(d: &WireData<'_>) -> Result<ReadingBody, Rejection> {
    let spo2_scale = match d.spo2_scale {
        None => None,
        Some(1.0) => Some(Spo2Scale::Scale1),
        Some(2.0) => Some(Spo2Scale::Scale2),
        Some(s) => {
            return Err(reject(
                RejectCode::DataInvalid,
                format!("spo2Scale must be 1 or 2, not {s}"),
            ));
        }
    };
    let consciousness = match d.consciousness.as_deref() {
        None => None,
        Some(c) => Some(Consciousness::from_code(c).ok_or_else(|| {
            reject(
                RejectCode::DataInvalid,
                format!("consciousness must be one of A, C, V, P, U, not `{c}`"),
            )
        })?),
    };
    if let Some(g) = d.gcs
        && g.fract() != 0.0
    {
        return Err(reject(
            RejectCode::DataInvalid,
            format!("gcs must be a whole number, not {g}"),
        ));
    }
    let vitals = Vitals {
        hr: in_range(HR, d.hr)?,
        rr: in_range(RR, d.rr)?,
        spo2: in_range(SPO2, d.spo2)?,
        spo2_scale,
        on_oxygen: d.on_oxygen,
        temp: in_range(TEMP, d.temp)?,
        sbp: in_range(SBP, d.sbp)?,
        dbp: in_range(DBP, d.dbp)?,
        map: in_range(MAP, d.map)?,
        consciousness,
        gcs: in_range(GCS, d.gcs)?,
    };
    let any = [
        vitals.hr,
        vitals.rr,
        vitals.spo2,
        vitals.temp,
        vitals.sbp,
        vitals.dbp,
        vitals.map,
        vitals.gcs,
    ]
    .iter()
    .any(Option::is_some)
        || vitals.on_oxygen.is_some()
        || vitals.consciousness.is_some();
    if !any {
        return Err(reject(
            RejectCode::DataInvalid,
            "a vitals observation needs at least one measurement",
        ));
    }
    Ok(ReadingBody::Vitals(vitals))
}

/// Upper bounds of the lab codes the engine understands, in the contract's units.
const LAB_LIMITS: &[(&str, f64)] = &[
    ("lactate", 30.0),
    ("wbc", 500.0),
    ("bands", 100.0),
    ("paco2", 200.0),
    ("creatinine", 5000.0),
    ("platelets", 5000.0),
    ("bilirubin", 1000.0),
];

fn lab(occurred_at: Timestamp, d: WireData<'_>) -> Result<ReadingBody, Rejection> {
    let code = d
        .code
        .filter(|c| !c.is_empty() && c.len() <= 64)
        .map(Cow::into_owned)
        .ok_or_else(|| {
            reject(
                RejectCode::DataInvalid,
                "lab.result.v1 needs `code` (1..64 characters)",
            )
        })?;
    let value = d.value.ok_or_else(|| {
        reject(
            RejectCode::DataInvalid,
            "lab.result.v1 needs a numeric `value`",
        )
    })?;
    let limit = LAB_LIMITS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, hi)| *hi);
    if !value.is_finite() || value < 0.0 || limit.is_some_and(|hi| value > hi) {
        return Err(reject(
            RejectCode::LabOutOfRange,
            format!("{code} {value} is negative or impossible"),
        ));
    }
    let collected_at = match d.collected_at {
        Some(text) => {
            parse_time("collectedAt", &text).map_err(|m| reject(RejectCode::DataInvalid, m))?
        }
        None => occurred_at,
    };
    Ok(ReadingBody::Lab {
        lab: LabResult {
            code,
            value,
            unit: d.unit.map(Cow::into_owned),
        },
        collected_at,
    })
}

/// `patient.admitted.v1` data (contracts.md section 3): `admittedAt` required, the rest
/// optional; each bad value is `DATA_INVALID` naming the field.
fn admission(d: &WireData<'_>) -> Result<ReadingBody, Rejection> {
    let time = |field: &str, text: &str| {
        parse_time(field, text).map_err(|m| reject(RejectCode::DataInvalid, m))
    };
    let admitted_at = match &d.admitted_at {
        Some(text) => time("admittedAt", text)?,
        None => {
            return Err(reject(
                RejectCode::DataInvalid,
                "patient.admitted.v1 needs `admittedAt` (admission to this unit)",
            ));
        }
    };
    let hospital_admitted_at = match &d.hospital_admitted_at {
        Some(text) => Some(time("hospitalAdmittedAt", text)?),
        None => None,
    };
    let age = match d.age {
        Some(a) if a.fract() == 0.0 && (0.0..=130.0).contains(&a) => Some(a as u8),
        Some(a) => {
            return Err(reject(
                RejectCode::DataInvalid,
                format!("`age` must be whole years from 0 to 130, not {a}"),
            ));
        }
        None => None,
    };
    let sex = match d.sex.as_deref() {
        Some(s) => Some(vigil_engine::from_wire_name::<Sex>(s).ok_or_else(|| {
            reject(
                RejectCode::DataInvalid,
                format!("`sex` must be female, male, other or unknown, not `{s}`"),
            )
        })?),
        None => None,
    };
    Ok(ReadingBody::Admission(Admission {
        admitted_at,
        hospital_admitted_at,
        age,
        sex,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::envelope::MAX_MESSAGE_BYTES;

    const NOW: Timestamp = Timestamp::from_millis(1_764_234_300_000 + 3_600_000);

    /// Identifiers borrow from the payload in both encodings (no allocation per field), and
    /// a JSON string with an escape is still decoded, as an owned string.
    #[test]
    fn identifiers_borrow_from_the_payload() {
        let v = contract_json();
        let json_bytes = json(&v);
        let packed = rmp_serde::to_vec_named(&v).expect("msgpack");
        for (payload, encoding) in [
            (&json_bytes, Encoding::Json),
            (&packed, Encoding::MessagePack),
        ] {
            let e = decode_envelope(payload, encoding, Some(NOW), None).expect("decodes");
            for (name, field) in [
                ("eventId", &e.meta.event_id),
                ("tenantId", &e.meta.tenant_id),
                ("patientId", &e.patient_id),
                ("unitId", &e.unit_id),
            ] {
                assert!(matches!(field, Cow::Borrowed(_)), "{name} {encoding:?}");
            }
            assert!(matches!(
                e.meta.correlation_id,
                Some(Cow::Borrowed("req-9876"))
            ));
        }
        let escaped = String::from_utf8(json_bytes)
            .expect("utf-8")
            .replace("\"icu-3\"", "\"icu\\u002d3\"");
        let e =
            decode_envelope(escaped.as_bytes(), Encoding::Json, Some(NOW), None).expect("decodes");
        assert!(matches!(e.unit_id, Cow::Owned(ref u) if u == "icu-3"));
    }

    pub(crate) fn contract_json() -> serde_json::Value {
        serde_json::json!({
            "eventId": "evt-0001", "eventType": "vitals.observation.v1", "eventVersion": "1",
            "occurredAt": "2025-11-27T09:05:00Z", "producer": "monitor-gw-3",
            "tenantId": "clinic-abc", "correlationId": "req-9876",
            "data": {
                "patientId": "patient-123", "unitId": "icu-3", "bedId": "b12", "deviceId": "mon-881",
                "hr": 112, "rr": 24, "spo2": 93, "spo2Scale": 1, "onOxygen": false,
                "temp": 38.6, "sbp": 98, "dbp": 61, "map": 73, "consciousness": "A", "gcs": 15
            }
        })
    }

    fn json(v: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(v).expect("json")
    }

    fn code_of(subject: &str, v: &serde_json::Value) -> &'static str {
        decode_vitals(subject, &json(v), Encoding::Json, NOW)
            .expect_err("should reject")
            .code
            .as_str()
    }

    const SUBJECT: &str = "vitals.clinic-abc.patient-123";

    #[test]
    fn contract_example_decodes_in_json_and_msgpack() {
        let v = contract_json();
        let bytes = json(&v);
        let a = decode_vitals(SUBJECT, &bytes, Encoding::Json, NOW).expect("json");
        let packed = rmp_serde::to_vec_named(&v).expect("msgpack");
        let b = decode_vitals(SUBJECT, &packed, Encoding::MessagePack, NOW).expect("msgpack");
        assert_eq!(a, b);
        let ReadingBody::Vitals(vitals) = &a.body else {
            panic!("not an observation")
        };
        let meta = &a.meta;
        assert_eq!(meta.event_id, "evt-0001");
        assert_eq!(meta.occurred_at.to_string(), "2025-11-27T09:05:00Z");
        assert_eq!(meta.correlation_id.as_deref(), Some("req-9876"));
        assert_eq!((vitals.hr, vitals.temp), (Some(112.0), Some(38.6)));
        assert_eq!(vitals.consciousness, Some(Consciousness::A));
        assert_eq!(a.bed_id.as_deref(), Some("b12"));
    }

    #[test]
    fn a_bed_is_optional_and_any_short_text_without_control_characters() {
        let mut v = contract_json();
        for bed in ["Bed 12 (window)", "b", &"x".repeat(64), "lit 3·A"] {
            v["data"]["bedId"] = bed.into();
            let bytes = json(&v);
            let r = decode_vitals(SUBJECT, &bytes, Encoding::Json, NOW).expect(bed);
            assert_eq!(r.bed_id.as_deref(), Some(bed));
        }
        v["data"].as_object_mut().expect("object").remove("bedId");
        let bytes = json(&v);
        let r = decode_vitals(SUBJECT, &bytes, Encoding::Json, NOW).expect("no bed");
        assert_eq!(r.bed_id, None);
        let late = format!("{}\u{1f}", "x".repeat(40));
        for bed in [
            "",
            &"x".repeat(65),
            "b\n12",
            "b\u{7f}",
            "b\u{85}",
            "b\u{9f}",
            &late,
        ] {
            v["data"]["bedId"] = bed.into();
            let e = decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).expect_err(bed);
            assert_eq!(e.code, RejectCode::DataInvalid, "{bed:?}");
            assert!(e.message.contains("`data.bedId`"), "{}", e.message);
        }
        // Not a string: the schema's error.
        v["data"]["bedId"] = 12.into();
        let e = decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).expect_err("number");
        assert_eq!(e.code, RejectCode::SchemaInvalid, "{}", e.message);
    }

    #[test]
    fn lab_example_decodes() {
        let v = serde_json::json!({
            "eventId": "evt-2", "eventType": "lab.result.v1", "eventVersion": "1",
            "occurredAt": "2025-11-27T09:05:00Z", "producer": "lis", "tenantId": "clinic-abc",
            "data": { "patientId": "patient-123", "unitId": "icu-3", "code": "lactate", "value": 2.6,
                      "unit": "mmol/L", "collectedAt": "2025-11-27T08:50:00Z" }
        });
        let bytes = json(&v);
        let e = decode_vitals(SUBJECT, &bytes, Encoding::Json, NOW).expect("lab");
        let ReadingBody::Lab { lab, collected_at } = e.body else {
            panic!("not a lab")
        };
        assert_eq!((lab.code.as_str(), lab.value), ("lactate", 2.6));
        assert_eq!(collected_at.to_string(), "2025-11-27T08:50:00Z");
    }

    #[test]
    fn control_characters_in_identifiers_are_refused_in_json_and_msgpack() {
        // CR/LF would break (or forge) the `Nats-Msg-Id` header built from `eventId`.
        for field in ["eventId", "producer", "correlationId"] {
            for bad in [
                "evt\r\n1",
                "evt\n",
                "evt\u{0}1",
                "evt\t1",
                "evt\u{7f}",
                "evt\u{85}",
            ] {
                let mut v = contract_json();
                v[field] = bad.into();
                for (payload, enc) in [
                    (json(&v), Encoding::Json),
                    (
                        rmp_serde::to_vec_named(&v).expect("msgpack"),
                        Encoding::MessagePack,
                    ),
                ] {
                    let e = decode_vitals(SUBJECT, &payload, enc, NOW).expect_err("refused");
                    assert_eq!(e.code, RejectCode::EnvelopeInvalid, "{field} {bad:?}");
                    assert!(e.message.contains(field), "{}", e.message);
                    assert!(e.message.contains("control characters"), "{}", e.message);
                }
            }
        }
        // Printable text of any script is fine.
        let mut v = contract_json();
        v["eventId"] = "évt-0001 ü 🩺".into();
        assert!(decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).is_ok());
    }

    /// The contract's `patient.admitted.v1` example.
    fn admitted_json() -> serde_json::Value {
        let mut v = contract_json();
        v["eventType"] = "patient.admitted.v1".into();
        v["data"] = serde_json::json!({
            "patientId": "patient-123", "unitId": "icu-3", "admittedAt": "2025-11-27T02:00:00Z",
            "hospitalAdmittedAt": "2025-11-26T20:00:00Z", "age": 67, "sex": "female"
        });
        v
    }

    #[test]
    fn the_contract_admission_decodes_in_json_and_msgpack() {
        let v = admitted_json();
        let bytes = json(&v);
        let a = decode_vitals(SUBJECT, &bytes, Encoding::Json, NOW).expect("json");
        let packed = rmp_serde::to_vec_named(&v).expect("msgpack");
        let b = decode_vitals(SUBJECT, &packed, Encoding::MessagePack, NOW).expect("msgpack");
        assert_eq!(a, b);
        assert_eq!((&*a.patient_id, &*a.unit_id), ("patient-123", "icu-3"));
        let ReadingBody::Admission(admission) = a.body else {
            panic!("not an admission")
        };
        assert_eq!(
            admission.admitted_at,
            Timestamp::from_civil(2025, 11, 27, 2, 0, 0)
        );
        assert_eq!(
            admission.hospital_admitted_at,
            Some(Timestamp::from_civil(2025, 11, 26, 20, 0, 0))
        );
        assert_eq!(
            (admission.age, admission.sex),
            (Some(67), Some(Sex::Female))
        );
        // Only the required fields.
        let mut v = admitted_json();
        v["data"] = serde_json::json!({"patientId": "patient-123", "unitId": "icu-3",
                                       "admittedAt": "2025-11-27T02:00:00Z"});
        let bytes = json(&v);
        let e = decode_vitals(SUBJECT, &bytes, Encoding::Json, NOW).expect("minimal");
        assert!(matches!(e.body, ReadingBody::Admission(admission)
            if admission.age.is_none() && admission.sex.is_none()
               && admission.hospital_admitted_at.is_none()));
    }

    #[test]
    fn bad_admissions_are_dead_letters_naming_the_field() {
        let cases: [(&str, serde_json::Value, &str); 8] = [
            ("age", 131.into(), "`age`"),
            ("age", (-1).into(), "`age`"),
            ("age", 67.5.into(), "`age`"),
            ("sex", "f".into(), "`sex`"),
            ("admittedAt", "yesterday".into(), "`admittedAt`"),
            ("admittedAt", "0000-01-01T00:00:00Z".into(), "`admittedAt`"),
            ("hospitalAdmittedAt", "soon".into(), "`hospitalAdmittedAt`"),
            // A wrong type is the schema's error (serde names the type and the position).
            ("age", "67".into(), "expected f64"),
        ];
        for (field, value, named) in cases {
            let mut v = admitted_json();
            v["data"][field] = value.clone();
            let e = decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).expect_err("refused");
            let expected = if value.is_string() && field == "age" {
                RejectCode::SchemaInvalid
            } else {
                RejectCode::DataInvalid
            };
            assert_eq!(e.code, expected, "{field} {value}");
            assert!(e.message.contains(named), "{field}: {}", e.message);
        }
        // The edges are in: 0 and 130 years.
        for age in [0, 130] {
            let mut v = admitted_json();
            v["data"]["age"] = age.into();
            assert!(
                decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).is_ok(),
                "{age}"
            );
        }
        let mut v = admitted_json();
        v["data"]
            .as_object_mut()
            .expect("object")
            .remove("admittedAt");
        let e = decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).expect_err("required");
        assert_eq!(e.code, RejectCode::DataInvalid);
        assert!(e.message.contains("admittedAt"), "{}", e.message);
        for sex in ["female", "male", "other", "unknown"] {
            let mut v = admitted_json();
            v["data"]["sex"] = sex.into();
            assert!(
                decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).is_ok(),
                "{sex}"
            );
        }
    }

    #[test]
    fn bytes_after_a_messagepack_envelope_are_a_dead_letter() {
        let mut two = rmp_serde::to_vec_named(&contract_json()).expect("msgpack");
        let one = two.len();
        assert!(decode_vitals(SUBJECT, &two, Encoding::MessagePack, NOW).is_ok());
        // Two envelopes in one message: the second (an HR 140 reading) must not vanish.
        let mut second = contract_json();
        second["eventId"] = "evt-0002".into();
        second["data"]["hr"] = 140.into();
        two.extend(rmp_serde::to_vec_named(&second).expect("msgpack"));
        let e = decode_vitals(SUBJECT, &two, Encoding::MessagePack, NOW).expect_err("refused");
        assert_eq!(e.code, RejectCode::DecodeFailed);
        assert!(
            e.message
                .contains(&format!("{} bytes after the envelope", two.len() - one))
        );
        let mut one_byte = rmp_serde::to_vec_named(&contract_json()).expect("msgpack");
        one_byte.push(0xc0);
        let e = decode_vitals(SUBJECT, &one_byte, Encoding::MessagePack, NOW).expect_err("nil");
        assert!(e.message.contains("1 bytes after"), "{}", e.message);
        // Whatever follows is refused, a value or not: the reserved marker, a truncated
        // array and a string short of its length, each counted.
        for tail in [&[0xc1][..], &[0xdc, 0x00], &[0xa5, b'a', b'b']] {
            let mut bytes = rmp_serde::to_vec_named(&contract_json()).expect("msgpack");
            bytes.extend_from_slice(tail);
            let e = decode_vitals(SUBJECT, &bytes, Encoding::MessagePack, NOW)
                .expect_err("trailing bytes");
            assert_eq!(e.code, RejectCode::DecodeFailed, "{tail:?}");
            assert!(
                e.message
                    .contains(&format!("{} bytes after the envelope", tail.len())),
                "{tail:?}: {}",
                e.message
            );
        }
        // JSON refuses trailing data too.
        let mut j = json(&contract_json());
        j.extend(b" {}");
        let e = decode_vitals(SUBJECT, &j, Encoding::Json, NOW).expect_err("refused");
        assert_eq!(e.code, RejectCode::DecodeFailed);
    }

    #[test]
    fn times_outside_the_plausible_range_are_refused() {
        let mut v = contract_json();
        v["occurredAt"] = "0000-01-01T00:00:00Z".into();
        let e = decode_vitals(SUBJECT, &json(&v), Encoding::Json, NOW).expect_err("refused");
        assert_eq!(e.code, RejectCode::EnvelopeInvalid);
        assert!(e.message.contains("plausible range"), "{}", e.message);
        // The edges: 2000-01-01T00:00:00Z is in, a millisecond before it is out; 2100 is out.
        assert!(parse_time("t", "2000-01-01T00:00:00Z").is_ok());
        assert!(parse_time("t", "1999-12-31T23:59:59.999Z").is_err());
        assert!(parse_time("t", "2099-12-31T23:59:59.999Z").is_ok());
        assert!(parse_time("t", "2100-01-01T00:00:00Z").is_err());
        assert!(parse_time("t", "9999-12-31T23:59:59Z").is_err());
    }

    #[test]
    fn every_rejection_code() {
        let base = contract_json();
        let with = |path: &[&str], val: serde_json::Value| {
            let mut v = base.clone();
            let mut cur = &mut v;
            for p in &path[..path.len() - 1] {
                cur = &mut cur[*p];
            }
            cur[path[path.len() - 1]] = val;
            v
        };
        let without = |path: &[&str]| {
            let mut v = base.clone();
            let obj = if path.len() == 2 {
                &mut v[path[0]]
            } else {
                &mut v
            };
            obj.as_object_mut()
                .expect("object")
                .remove(*path.last().expect("path"));
            v
        };
        use serde_json::json as j;
        assert_eq!(code_of("vitals.clinic-abc", &base), "SUBJECT_INVALID");
        assert_eq!(code_of(SUBJECT, &without(&["eventId"])), "ENVELOPE_INVALID");
        assert_eq!(
            code_of(SUBJECT, &with(&["eventId"], j!(""))),
            "ENVELOPE_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["eventId"], j!("x".repeat(129)))),
            "ENVELOPE_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &without(&["producer"])),
            "ENVELOPE_INVALID"
        );
        assert_eq!(code_of(SUBJECT, &without(&["data"])), "ENVELOPE_INVALID");
        assert_eq!(
            code_of(SUBJECT, &with(&["occurredAt"], j!("yesterday"))),
            "ENVELOPE_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["eventType"], j!("vitals.guess.v9"))),
            "UNKNOWN_EVENT_TYPE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["eventType"], j!("patient.checkin.v1"))),
            "WRONG_STREAM"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["eventVersion"], j!("2"))),
            "UNSUPPORTED_VERSION"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["eventVersion"], j!(1))),
            "SCHEMA_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["tenantId"], j!("other"))),
            "TENANT_MISMATCH"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["tenantId"], j!("bad tenant"))),
            "ENVELOPE_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["occurredAt"], j!("2030-01-01T00:00:00Z"))),
            "OCCURRED_IN_FUTURE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "patientId"], j!("patient-9"))),
            "PATIENT_MISMATCH"
        );
        assert_eq!(
            code_of(SUBJECT, &without(&["data", "unitId"])),
            "DATA_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "hr"], j!("fast"))),
            "SCHEMA_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "hr"], j!(301))),
            "VITAL_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "hr"], j!(-1))),
            "VITAL_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "spo2"], j!(101))),
            "VITAL_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "temp"], j!(24.9))),
            "VITAL_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "temp"], j!(45.1))),
            "VITAL_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "gcs"], j!(2))),
            "VITAL_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "spo2Scale"], j!(3))),
            "DATA_INVALID"
        );
        assert_eq!(
            code_of(SUBJECT, &with(&["data", "consciousness"], j!("X"))),
            "DATA_INVALID"
        );
        let empty = with(
            &["data"],
            j!({"patientId": "patient-123", "unitId": "icu-3"}),
        );
        assert_eq!(code_of(SUBJECT, &empty), "DATA_INVALID");
        assert_eq!(
            decode_vitals(SUBJECT, b"{not json", Encoding::Json, NOW)
                .expect_err("syntax")
                .code,
            RejectCode::DecodeFailed
        );
        assert_eq!(
            decode_vitals(SUBJECT, &[0xc1, 0x00], Encoding::MessagePack, NOW)
                .expect_err("mp")
                .code,
            RejectCode::DecodeFailed
        );
        let big = vec![b' '; MAX_MESSAGE_BYTES + 1];
        assert_eq!(
            decode_vitals(SUBJECT, &big, Encoding::Json, NOW)
                .expect_err("big")
                .code,
            RejectCode::PayloadTooLarge
        );
    }

    #[test]
    fn range_edges_are_accepted() {
        let base = contract_json();
        for (field, v) in [
            ("hr", 0.0),
            ("hr", 300.0),
            ("spo2", 0.0),
            ("spo2", 100.0),
            ("temp", 25.0),
            ("temp", 45.0),
        ] {
            let mut e = base.clone();
            e["data"][field] = serde_json::json!(v);
            assert!(
                decode_vitals(SUBJECT, &json(&e), Encoding::Json, NOW).is_ok(),
                "{field} {v}"
            );
        }
    }

    #[test]
    fn lab_rejections() {
        let lab = |code: &str, value: serde_json::Value| {
            serde_json::json!({
                "eventId": "e", "eventType": "lab.result.v1", "eventVersion": "1",
                "occurredAt": "2025-11-27T09:05:00Z", "producer": "lis", "tenantId": "clinic-abc",
                "data": { "patientId": "patient-123", "unitId": "icu-3", "code": code, "value": value }
            })
        };
        assert_eq!(
            code_of(SUBJECT, &lab("lactate", serde_json::json!(-0.1))),
            "LAB_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &lab("lactate", serde_json::json!(31))),
            "LAB_OUT_OF_RANGE"
        );
        assert_eq!(
            code_of(SUBJECT, &lab("", serde_json::json!(1))),
            "DATA_INVALID"
        );
        // Unknown codes are kept (not scored), when the value is not negative.
        assert!(
            decode_vitals(
                SUBJECT,
                &json(&lab("ferritin", serde_json::json!(900))),
                Encoding::Json,
                NOW
            )
            .is_ok()
        );
    }

    #[test]
    fn fast_timestamp_parser_agrees_with_chrono() {
        let cases = [
            "2025-11-27T09:05:00Z",
            "2025-11-27T09:05:00.5Z",
            "2025-11-27T09:05:00.123456789Z",
            "2025-11-27t09:05:00.07z",
            "2025-11-27T09:05:00+01:30",
            "2025-11-27T00:05:00-05:00",
            "2024-02-29T23:59:59.999Z",
            "1999-12-31T23:59:59Z",
        ];
        for text in cases {
            let fast = Timestamp::parse_rfc3339(text).expect(text);
            let chrono = chrono::DateTime::parse_from_rfc3339(text)
                .expect(text)
                .timestamp_millis();
            assert_eq!(fast.millis(), chrono, "{text}");
        }
        // Everything the fast path declines still goes through chrono.
        for bad in [
            "2025-02-29T09:05:00Z",
            "2025-11-27T24:00:00Z",
            "2025-11-27T09:05:00",
            "2025-13-01T00:00:00Z",
            "2025-11-27T09:05:00.Z",
            "2025-11-27 09:05:00Z",
            "yesterday",
            "2025-11-27T09:05:00+25:00",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_none(), "{bad}");
            assert_eq!(
                parse_time("occurredAt", bad).is_ok(),
                chrono::DateTime::parse_from_rfc3339(bad).is_ok(),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(Encoding::from_content_type(None), Ok(Encoding::Json));
        assert_eq!(
            Encoding::from_content_type(Some("application/msgpack")),
            Ok(Encoding::MessagePack)
        );
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")),
            Ok(Encoding::Json)
        );
        // Media types are case-insensitive; the aliases MessagePack producers send.
        for ct in [
            "Application/MsgPack",
            " application/x-msgpack ",
            "APPLICATION/VND.MSGPACK; q=1",
        ] {
            assert_eq!(
                Encoding::from_content_type(Some(ct)),
                Ok(Encoding::MessagePack),
                "{ct}"
            );
        }
        for ct in ["Application/JSON", "", "; charset=utf-8"] {
            assert_eq!(
                Encoding::from_content_type(Some(ct)),
                Ok(Encoding::Json),
                "{ct}"
            );
        }
        for ct in ["application/jsonx", "application/msgpac", "text/xml"] {
            assert!(Encoding::from_content_type(Some(ct)).is_err(), "{ct}");
        }
        assert_eq!(
            Encoding::from_content_type(Some("text/xml"))
                .expect_err("xml")
                .code,
            RejectCode::UnsupportedContentType
        );
    }

    #[test]
    fn the_data_s_names_are_serde_s() {
        assert_eq!(
            crate::msgpack::tests::serde_fields::<WireData<'_>>(),
            WireData::NAMES
        );
    }

    /// The envelopes producers send take the fast path: the contract's examples, with a
    /// nil for an absent value, and with the wider encodings of a map and a string.
    #[test]
    fn the_contract_s_envelopes_take_the_fast_path() {
        let mut nil = contract_json();
        nil["correlationId"] = serde_json::Value::Null;
        nil["data"]["gcs"] = serde_json::Value::Null;
        nil["traceparent"] = serde_json::json!("00-4bf92f3577b34da6a3ce929d0e0e4736-01");
        for v in [contract_json(), admitted_json(), nil] {
            let packed = rmp_serde::to_vec_named(&v).expect("msgpack");
            let fast = msgpack::envelope::<WireData>(&packed).expect("the fast path");
            let slow: WireEnvelope<WireData> =
                crate::envelope::decode(&packed, Encoding::MessagePack, "VITALS")
                    .expect("rmp-serde");
            assert_eq!(fast, slow);
        }
        // {"eventId": "e"} with a map16 and a str8, then the same with a str16 and a str32.
        for packed in [
            &[
                0xde, 0, 1, 0xd9, 7, b'e', b'v', b'e', b'n', b't', b'I', b'd', 0xd9, 1, b'e',
            ][..],
            &[
                0x81, 0xda, 0, 7, b'e', b'v', b'e', b'n', b't', b'I', b'd', 0xdb, 0, 0, 0, 1, b'e',
            ],
        ] {
            let fast = msgpack::envelope::<WireData>(packed).expect("the fast path");
            assert_eq!(fast.event_id.as_deref(), Some("e"));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Wherever the fast path answers, it answers what rmp-serde decodes, so that
        /// nothing a producer sends is read differently for taking it: generated envelopes,
        /// with wrong types, duplicate and unknown fields, keys that are not strings,
        /// invalid UTF-8, bytes after the envelope and envelopes cut short.
        #[test]
        fn what_the_fast_path_reads_rmp_serde_reads(
            packed in crate::msgpack::tests::envelopes::<WireData<'static>>()
        ) {
            crate::msgpack::tests::reads_as_rmp_serde::<WireData>(&packed, "VITALS")?;
        }
    }
}
