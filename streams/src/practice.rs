//! The practice-flow events of contracts.md §3, as they arrive on `CHECKINS`
//! (`checkin.{tenantId}.{appointmentId}`) and `OCCUPANCY` (`occupancy.{tenantId}.{resourceId}`,
//! where a provider's status uses the provider id as the resource token). Same envelope rules,
//! encodings and error codes as `VITALS`; every failure is a [`Rejection`] for the DLQ.

use std::borrow::Cow;

use serde::Deserialize;
use vigil_engine::practice::appointment::{
    Booking, CheckIn, OccupancyUpdate, PracticeChange, ProviderUpdate, StatusChange,
};
use vigil_engine::practice::{AppointmentStatus, ProviderStatus, ResourceStatus};
use vigil_engine::{PracticeEvent, Timestamp, from_wire_name};

use crate::envelope::{
    Encoding, RejectCode, Rejection, WireEnvelope, check_head, check_size, data_token, parse_time,
    reject,
};
use crate::msgpack::{self, Fields, Scalar};

/// The union of the practice data fields. Unknown fields are ignored (contracts are
/// additive); `screeningAnswers` is accepted and not kept.
#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug))]
#[serde(rename_all = "camelCase")]
pub(crate) struct Data<'a> {
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    appointment_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    patient_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    provider_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    location_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    resource_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    scheduled_start: Option<Cow<'a, str>>,
    expected_duration_minutes: Option<f64>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    checkin_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    notes: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    previous_status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    new_status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    updated_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    actor_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    effective_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    note: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    current_appointment_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::envelope::borrow_str")]
    expected_free_at: Option<Cow<'a, str>>,
}

impl<'a> Fields<'a> for Data<'a> {
    const NAMES: &'static [&'static str] = &[
        "appointmentId",
        "patientId",
        "providerId",
        "locationId",
        "resourceId",
        "scheduledStart",
        "expectedDurationMinutes",
        "checkinAt",
        "method",
        "notes",
        "previousStatus",
        "newStatus",
        "updatedAt",
        "actorId",
        "reason",
        "status",
        "effectiveAt",
        "note",
        "currentAppointmentId",
        "expectedFreeAt",
    ];

    fn set(&mut self, index: usize, value: Scalar<'a>) -> Option<()> {
        match index {
            0 => self.appointment_id = value.text()?,
            1 => self.patient_id = value.text()?,
            2 => self.provider_id = value.text()?,
            3 => self.location_id = value.text()?,
            4 => self.resource_id = value.text()?,
            5 => self.scheduled_start = value.text()?,
            6 => self.expected_duration_minutes = value.number()?,
            7 => self.checkin_at = value.text()?,
            8 => self.method = value.text()?,
            9 => self.notes = value.text()?,
            10 => self.previous_status = value.text()?,
            11 => self.new_status = value.text()?,
            12 => self.updated_at = value.text()?,
            13 => self.actor_id = value.text()?,
            14 => self.reason = value.text()?,
            15 => self.status = value.text()?,
            16 => self.effective_at = value.text()?,
            17 => self.note = value.text()?,
            18 => self.current_appointment_id = value.text()?,
            _ => self.expected_free_at = value.text()?,
        }
        Some(())
    }
}

/// Longest free text kept from `notes`, `note`, `reason`, `method`, `actorId` (characters).
const TEXT_MAX: usize = 1024;

/// Decodes and validates one message from `CHECKINS` or `OCCUPANCY` (`stream`); `now` is the
/// engine clock for the skew check.
///
/// # Errors
/// A [`Rejection`] with its code: the envelope's (as for `VITALS`), `SUBJECT_INVALID`,
/// `SUBJECT_MISMATCH` (the subject's appointment or resource differs from the event's),
/// `UNKNOWN_STATUS` (a status outside the contract's list), `DATA_INVALID`.
pub fn decode_practice(
    stream: &str,
    subject: &str,
    payload: &[u8],
    encoding: Encoding,
    now: Timestamp,
) -> Result<PracticeEvent, Rejection> {
    check_size(payload)?;
    let prefix = match stream {
        "CHECKINS" => "checkin",
        _ => "occupancy",
    };
    // As published, or as stored with a cluster's partition token (crate::partition).
    let Some((p, subject_tenant, token)) = crate::partition::contract_tokens(subject) else {
        return Err(subject_invalid(subject, prefix));
    };
    if p != prefix {
        return Err(subject_invalid(subject, prefix));
    }
    let mut wire: WireEnvelope<Data> = msgpack::decode(payload, encoding, stream)?;
    let head = check_head(&mut wire, stream, Some(now), Some(subject_tenant))?;
    let d = *wire
        .data
        .ok_or_else(|| reject(RejectCode::EnvelopeInvalid, "missing required field `data`"))?;
    let meta = head.meta.into_owned();
    let change = match &*head.event_type {
        "appointment.scheduled.v1" => scheduled(d, token)?,
        "patient.checkin.v1" => check_in(d, token)?,
        "appointment.status.changed.v1" => status_changed(d, token)?,
        "provider.status.update.v1" => provider(d, token)?,
        _ => occupancy(d, token)?,
    };
    Ok(PracticeEvent { meta, change })
}

fn subject_invalid(subject: &str, prefix: &str) -> Rejection {
    let what = if prefix == "checkin" {
        "appointmentId"
    } else {
        "resourceId"
    };
    reject(
        RejectCode::SubjectInvalid,
        format!("subject `{subject}` is not {prefix}.{{tenantId}}.{{{what}}}"),
    )
}

/// `data.{field}` is a token equal to the subject's.
fn subject_token(field: &str, v: Option<Cow<'_, str>>, token: &str) -> Result<String, Rejection> {
    let v = data_token(field, v)?;
    if v != token {
        return Err(reject(
            RejectCode::SubjectMismatch,
            format!("data.{field} `{v}` does not match the subject's `{token}`"),
        ));
    }
    Ok(v.into_owned())
}

fn token(field: &str, v: Option<Cow<'_, str>>) -> Result<String, Rejection> {
    data_token(field, v).map(Cow::into_owned)
}

fn optional_token(field: &str, v: Option<Cow<'_, str>>) -> Result<Option<String>, Rejection> {
    v.map(|v| token(field, Some(v))).transpose()
}

fn time(field: &str, v: Option<Cow<'_, str>>) -> Result<Timestamp, Rejection> {
    let text = v.ok_or_else(|| {
        reject(
            RejectCode::DataInvalid,
            format!("missing required field `data.{field}`"),
        )
    })?;
    parse_time(&format!("data.{field}"), &text).map_err(|m| reject(RejectCode::DataInvalid, m))
}

fn text(v: Option<Cow<'_, str>>) -> Option<String> {
    v.map(|t| t.chars().take(TEXT_MAX).collect())
}

fn status<T>(
    field: &str,
    v: Option<Cow<'_, str>>,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &str,
) -> Result<T, Rejection> {
    let v = v.ok_or_else(|| {
        reject(
            RejectCode::DataInvalid,
            format!("missing required field `data.{field}`"),
        )
    })?;
    parse(&v).ok_or_else(|| {
        reject(
            RejectCode::UnknownStatus,
            format!("data.{field} `{v}` is not one of {allowed}"),
        )
    })
}

fn scheduled(d: Data<'_>, subject: &str) -> Result<PracticeChange, Rejection> {
    let minutes = d.expected_duration_minutes.ok_or_else(|| {
        reject(
            RejectCode::DataInvalid,
            "missing required field `data.expectedDurationMinutes`",
        )
    })?;
    if !(minutes.fract() == 0.0 && (1.0..=1440.0).contains(&minutes)) {
        return Err(reject(
            RejectCode::DataInvalid,
            format!("data.expectedDurationMinutes must be a whole 1..1440, not {minutes}"),
        ));
    }
    Ok(PracticeChange::Scheduled(Booking {
        appointment: subject_token("appointmentId", d.appointment_id, subject)?,
        patient: token("patientId", d.patient_id)?,
        provider: token("providerId", d.provider_id)?,
        location: token("locationId", d.location_id)?,
        resource: optional_token("resourceId", d.resource_id)?,
        start: time("scheduledStart", d.scheduled_start)?,
        duration_minutes: minutes as u32,
    }))
}

fn check_in(d: Data<'_>, subject: &str) -> Result<PracticeChange, Rejection> {
    Ok(PracticeChange::CheckIn(CheckIn {
        appointment: subject_token("appointmentId", d.appointment_id, subject)?,
        patient: token("patientId", d.patient_id)?,
        location: token("locationId", d.location_id)?,
        at: time("checkinAt", d.checkin_at)?,
        method: text(d.method),
        notes: text(d.notes),
    }))
}

fn status_changed(d: Data<'_>, subject: &str) -> Result<PracticeChange, Rejection> {
    const STATUSES: &str = "scheduled, checked_in, in_progress, completed, cancelled, no_show";
    Ok(PracticeChange::Status(StatusChange {
        appointment: subject_token("appointmentId", d.appointment_id, subject)?,
        previous: status(
            "previousStatus",
            d.previous_status,
            AppointmentStatus::parse,
            STATUSES,
        )?,
        status: status(
            "newStatus",
            d.new_status,
            AppointmentStatus::parse,
            STATUSES,
        )?,
        at: time("updatedAt", d.updated_at)?,
        actor: text(d.actor_id),
        reason: text(d.reason),
    }))
}

fn provider(d: Data<'_>, subject: &str) -> Result<PracticeChange, Rejection> {
    Ok(PracticeChange::Provider(ProviderUpdate {
        provider: subject_token("providerId", d.provider_id, subject)?,
        status: status(
            "status",
            d.status,
            from_wire_name::<ProviderStatus>,
            "available, busy, break, offline",
        )?,
        at: time("effectiveAt", d.effective_at)?,
        location: optional_token("locationId", d.location_id)?,
        note: text(d.note),
    }))
}

fn occupancy(d: Data<'_>, subject: &str) -> Result<PracticeChange, Rejection> {
    let expected_free_at = d
        .expected_free_at
        .map(|t| time("expectedFreeAt", Some(t)))
        .transpose()?;
    Ok(PracticeChange::Occupancy(OccupancyUpdate {
        resource: subject_token("resourceId", d.resource_id, subject)?,
        status: status(
            "status",
            d.status,
            from_wire_name::<ResourceStatus>,
            "free, occupied, cleaning, out_of_service",
        )?,
        appointment: optional_token("currentAppointmentId", d.current_appointment_id)?,
        expected_free_at,
        location: optional_token("locationId", d.location_id)?,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::{Value, json};
    use vigil_engine::EventMeta;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2025-11-27T10:00:00Z").unwrap()
    }

    fn t(text: &str) -> Timestamp {
        Timestamp::parse_rfc3339(text).unwrap()
    }

    /// An envelope around `data` exactly as contracts.md §1 shows it.
    fn envelope(event_type: &str, data: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "eventId": "evt-0001", "eventType": event_type, "eventVersion": "1",
            "occurredAt": "2025-11-27T09:05:00Z", "producer": "booking-1",
            "tenantId": "clinic-abc", "correlationId": "req-9876", "data": data
        }))
        .unwrap()
    }

    fn checkin(event_type: &str, data: &str) -> Result<PracticeEvent, Rejection> {
        let data: Value = serde_json::from_str(data).unwrap();
        decode_practice(
            "CHECKINS",
            "checkin.clinic-abc.appt-456",
            &envelope(event_type, data),
            Encoding::Json,
            now(),
        )
    }

    fn occupancy_event(
        subject: &str,
        event_type: &str,
        data: &str,
    ) -> Result<PracticeEvent, Rejection> {
        let data: Value = serde_json::from_str(data).unwrap();
        decode_practice(
            "OCCUPANCY",
            subject,
            &envelope(event_type, data),
            Encoding::Json,
            now(),
        )
    }

    // The data of contracts.md §3, verbatim.
    const SCHEDULED: &str = r#"{ "appointmentId": "appt-456", "patientId": "patient-123", "providerId": "prov-77",
  "locationId": "loc-1", "resourceId": "chair-12",
  "scheduledStart": "2025-11-27T09:00:00Z", "expectedDurationMinutes": 30 }"#;
    const CHECKIN: &str = r#"{ "patientId": "patient-123", "appointmentId": "appt-456", "locationId": "loc-1",
  "checkinAt": "2025-11-27T09:04:30Z", "method": "front-desk",
  "screeningAnswers": { "fever": false }, "notes": "running 5 minutes late" }"#;
    const STATUS: &str = r#"{ "appointmentId": "appt-456", "previousStatus": "scheduled", "newStatus": "in_progress",
  "updatedAt": "2025-11-27T09:15:00Z", "actorId": "user-32", "reason": "patient moved to chair" }"#;
    const PROVIDER: &str = r#"{ "providerId": "prov-77", "status": "available", "effectiveAt": "2025-11-27T09:20:00Z",
  "locationId": "room-3", "note": "back from break" }"#;
    const OCCUPANCY: &str = r#"{ "resourceId": "chair-12", "status": "occupied", "currentAppointmentId": "appt-456",
  "expectedFreeAt": "2025-11-27T09:55:00Z", "locationId": "loc-1" }"#;

    /// Each example with its event type.
    const EXAMPLES: [(&str, &str); 5] = [
        ("appointment.scheduled.v1", SCHEDULED),
        ("patient.checkin.v1", CHECKIN),
        ("appointment.status.changed.v1", STATUS),
        ("provider.status.update.v1", PROVIDER),
        ("resource.occupancy.update.v1", OCCUPANCY),
    ];

    #[test]
    fn a_practice_event_id_with_a_line_break_is_refused() {
        // The FLOW output's `Nats-Msg-Id` is built from it (the defect that closed the outbox).
        let mut v: Value =
            serde_json::from_slice(&envelope("patient.checkin.v1", json!({}))).unwrap();
        v["data"] = serde_json::from_str(CHECKIN).unwrap();
        v["eventId"] = "evt-1\r\nX: y".into();
        let e = decode_practice(
            "CHECKINS",
            "checkin.clinic-abc.appt-456",
            &serde_json::to_vec(&v).unwrap(),
            Encoding::Json,
            now(),
        )
        .expect_err("refused");
        assert_eq!(e.code, RejectCode::EnvelopeInvalid);
    }

    #[test]
    fn the_contract_examples_decode_as_written() {
        let meta = EventMeta {
            event_id: "evt-0001".into(),
            tenant_id: "clinic-abc".into(),
            occurred_at: t("2025-11-27T09:05:00Z"),
            correlation_id: Some("req-9876".into()),
        };
        assert_eq!(
            checkin("appointment.scheduled.v1", SCHEDULED).unwrap(),
            PracticeEvent {
                meta: meta.clone(),
                change: PracticeChange::Scheduled(Booking {
                    appointment: "appt-456".into(),
                    patient: "patient-123".into(),
                    provider: "prov-77".into(),
                    location: "loc-1".into(),
                    resource: Some("chair-12".into()),
                    start: t("2025-11-27T09:00:00Z"),
                    duration_minutes: 30,
                }),
            }
        );
        assert_eq!(
            checkin("patient.checkin.v1", CHECKIN).unwrap(),
            PracticeEvent {
                meta: meta.clone(),
                change: PracticeChange::CheckIn(CheckIn {
                    appointment: "appt-456".into(),
                    patient: "patient-123".into(),
                    location: "loc-1".into(),
                    at: t("2025-11-27T09:04:30Z"),
                    method: Some("front-desk".into()),
                    notes: Some("running 5 minutes late".into()),
                }),
            }
        );
        assert_eq!(
            checkin("appointment.status.changed.v1", STATUS).unwrap(),
            PracticeEvent {
                meta: meta.clone(),
                change: PracticeChange::Status(StatusChange {
                    appointment: "appt-456".into(),
                    previous: AppointmentStatus::Scheduled,
                    status: AppointmentStatus::InProgress,
                    at: t("2025-11-27T09:15:00Z"),
                    actor: Some("user-32".into()),
                    reason: Some("patient moved to chair".into()),
                }),
            }
        );
        assert_eq!(
            occupancy_event(
                "occupancy.clinic-abc.prov-77",
                "provider.status.update.v1",
                PROVIDER
            )
            .unwrap(),
            PracticeEvent {
                meta: meta.clone(),
                change: PracticeChange::Provider(ProviderUpdate {
                    provider: "prov-77".into(),
                    status: ProviderStatus::Available,
                    at: t("2025-11-27T09:20:00Z"),
                    location: Some("room-3".into()),
                    note: Some("back from break".into()),
                }),
            }
        );
        assert_eq!(
            occupancy_event(
                "occupancy.clinic-abc.chair-12",
                "resource.occupancy.update.v1",
                OCCUPANCY
            )
            .unwrap(),
            PracticeEvent {
                meta,
                change: PracticeChange::Occupancy(OccupancyUpdate {
                    resource: "chair-12".into(),
                    status: ResourceStatus::Occupied,
                    appointment: Some("appt-456".into()),
                    expected_free_at: Some(t("2025-11-27T09:55:00Z")),
                    location: Some("loc-1".into()),
                }),
            }
        );
    }

    #[test]
    fn msgpack_decodes_the_same() {
        let data: Value = serde_json::from_str(CHECKIN).unwrap();
        let v: Value = serde_json::from_slice(&envelope("patient.checkin.v1", data)).unwrap();
        let packed = rmp_serde::to_vec_named(&v).unwrap();
        let e = decode_practice(
            "CHECKINS",
            "checkin.clinic-abc.appt-456",
            &packed,
            Encoding::MessagePack,
            now(),
        )
        .unwrap();
        assert_eq!(e, checkin("patient.checkin.v1", CHECKIN).unwrap());
    }

    #[test]
    fn the_data_s_names_are_serde_s() {
        assert_eq!(
            crate::msgpack::tests::serde_fields::<Data<'_>>(),
            Data::NAMES
        );
    }

    /// Every practice event of the contract's examples takes the fast path in MessagePack
    /// and reads as rmp-serde reads it.
    #[test]
    fn the_contract_s_practice_events_take_the_fast_path() {
        for (event_type, data) in EXAMPLES {
            let data: Value = serde_json::from_str(data).unwrap();
            let v: Value = serde_json::from_slice(&envelope(event_type, data)).unwrap();
            let packed = rmp_serde::to_vec_named(&v).unwrap();
            let fast = msgpack::envelope::<Data>(&packed).expect("the fast path");
            let slow: WireEnvelope<Data> =
                crate::envelope::decode(&packed, Encoding::MessagePack, "CHECKINS")
                    .expect("rmp-serde");
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{event_type}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        /// As for `VITALS` (vitals.rs): wherever the fast path answers, rmp-serde reads
        /// the same.
        #[test]
        fn what_the_fast_path_reads_rmp_serde_reads(
            packed in crate::msgpack::tests::envelopes::<Data<'static>>()
        ) {
            crate::msgpack::tests::reads_as_rmp_serde::<Data>(&packed, "CHECKINS")?;
        }
    }

    fn code(r: Result<PracticeEvent, Rejection>) -> &'static str {
        r.expect_err("rejected").code.as_str()
    }

    #[test]
    fn bad_practice_events_get_their_codes() {
        let with = |base: &str, key: &str, value: Value| {
            let mut v: Value = serde_json::from_str(base).unwrap();
            v[key] = value;
            v.to_string()
        };
        let status = |v: &str| with(STATUS, "newStatus", json!(v));
        assert_eq!(
            code(checkin("appointment.status.changed.v1", &status("done"))),
            "UNKNOWN_STATUS"
        );
        assert_eq!(
            code(occupancy_event(
                "occupancy.clinic-abc.chair-12",
                "resource.occupancy.update.v1",
                &with(OCCUPANCY, "status", json!("broken"))
            )),
            "UNKNOWN_STATUS"
        );
        assert_eq!(
            code(occupancy_event(
                "occupancy.clinic-abc.prov-77",
                "provider.status.update.v1",
                &with(PROVIDER, "status", json!("lunch"))
            )),
            "UNKNOWN_STATUS"
        );
        assert_eq!(
            code(checkin(
                "patient.checkin.v1",
                &with(CHECKIN, "appointmentId", json!("appt-999"))
            )),
            "SUBJECT_MISMATCH"
        );
        assert_eq!(
            code(checkin(
                "patient.checkin.v1",
                &with(CHECKIN, "checkinAt", json!("09:04"))
            )),
            "DATA_INVALID"
        );
        assert_eq!(
            code(checkin(
                "patient.checkin.v1",
                &with(CHECKIN, "patientId", json!("a b"))
            )),
            "DATA_INVALID"
        );
        assert_eq!(
            code(checkin(
                "appointment.scheduled.v1",
                &with(SCHEDULED, "expectedDurationMinutes", json!(0))
            )),
            "DATA_INVALID"
        );
        assert_eq!(
            code(checkin(
                "appointment.scheduled.v1",
                &with(SCHEDULED, "providerId", Value::Null)
            )),
            "DATA_INVALID"
        );
        // A practice event on the wrong stream, and a vitals event on CHECKINS.
        assert_eq!(
            code(occupancy_event(
                "occupancy.clinic-abc.appt-456",
                "patient.checkin.v1",
                CHECKIN
            )),
            "WRONG_STREAM"
        );
        assert_eq!(
            code(checkin(
                "vitals.observation.v1",
                r#"{"patientId": "p", "unitId": "u", "hr": 80}"#
            )),
            "WRONG_STREAM"
        );
        assert_eq!(
            code(checkin("appointment.moved.v1", SCHEDULED)),
            "UNKNOWN_EVENT_TYPE"
        );
        let bad_subject = decode_practice(
            "CHECKINS",
            "checkin.clinic-abc",
            &envelope("patient.checkin.v1", serde_json::from_str(CHECKIN).unwrap()),
            Encoding::Json,
            now(),
        );
        assert_eq!(code(bad_subject), "SUBJECT_INVALID");
        let other_tenant = decode_practice(
            "CHECKINS",
            "checkin.clinic-other.appt-456",
            &envelope("patient.checkin.v1", serde_json::from_str(CHECKIN).unwrap()),
            Encoding::Json,
            now(),
        );
        assert_eq!(code(other_tenant), "TENANT_MISMATCH");
    }
}
