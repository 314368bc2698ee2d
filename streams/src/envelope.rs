//! The event envelope of contracts.md §1 and the `VITALS` event types of §3, decoded from JSON or
//! MessagePack and validated. Everything that fails becomes a [`Rejection`] with a stable code:
//! it goes to the DLQ, never into the engine.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use vigil_config::is_token;
use vigil_engine::event::{
    EventMeta, LAB_RESULT, PATIENT_ADMITTED, Reading, ReadingBody, VITALS_OBSERVATION,
};
use vigil_engine::{Admission, Consciousness, LabResult, Sex, Spo2Scale, Timestamp, Vitals};

/// Largest encoded message the engine accepts (contracts.md §1).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How far ahead of the engine's clock `occurredAt` may be before the event is rejected: a
/// monitor with a clock hours ahead would otherwise make every correct reading look late.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60_000;

/// Why a message was rejected: the `Vigil-Error-Code` header of its DLQ entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCode {
    PayloadTooLarge,
    UnsupportedContentType,
    DecodeFailed,
    SchemaInvalid,
    EnvelopeInvalid,
    UnknownEventType,
    UnsupportedVersion,
    WrongStream,
    SubjectInvalid,
    TenantMismatch,
    PatientMismatch,
    OccurredInFuture,
    DataInvalid,
    VitalOutOfRange,
    LabOutOfRange,
    /// The subject's appointment or resource token differs from the event's.
    SubjectMismatch,
    /// A practice status outside the contract's list.
    UnknownStatus,
    /// A status change or check-in the appointment's current status does not allow.
    InvalidTransition,
    /// A status change held for an appointment whose schedule never came.
    AppointmentUnknown,
}

impl RejectCode {
    pub const ALL: [RejectCode; 19] = [
        RejectCode::PayloadTooLarge,
        RejectCode::UnsupportedContentType,
        RejectCode::DecodeFailed,
        RejectCode::SchemaInvalid,
        RejectCode::EnvelopeInvalid,
        RejectCode::UnknownEventType,
        RejectCode::UnsupportedVersion,
        RejectCode::WrongStream,
        RejectCode::SubjectInvalid,
        RejectCode::TenantMismatch,
        RejectCode::PatientMismatch,
        RejectCode::OccurredInFuture,
        RejectCode::DataInvalid,
        RejectCode::VitalOutOfRange,
        RejectCode::LabOutOfRange,
        RejectCode::SubjectMismatch,
        RejectCode::UnknownStatus,
        RejectCode::InvalidTransition,
        RejectCode::AppointmentUnknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            RejectCode::UnsupportedContentType => "UNSUPPORTED_CONTENT_TYPE",
            RejectCode::DecodeFailed => "DECODE_FAILED",
            RejectCode::SchemaInvalid => "SCHEMA_INVALID",
            RejectCode::EnvelopeInvalid => "ENVELOPE_INVALID",
            RejectCode::UnknownEventType => "UNKNOWN_EVENT_TYPE",
            RejectCode::UnsupportedVersion => "UNSUPPORTED_VERSION",
            RejectCode::WrongStream => "WRONG_STREAM",
            RejectCode::SubjectInvalid => "SUBJECT_INVALID",
            RejectCode::TenantMismatch => "TENANT_MISMATCH",
            RejectCode::PatientMismatch => "PATIENT_MISMATCH",
            RejectCode::OccurredInFuture => "OCCURRED_IN_FUTURE",
            RejectCode::DataInvalid => "DATA_INVALID",
            RejectCode::VitalOutOfRange => "VITAL_OUT_OF_RANGE",
            RejectCode::LabOutOfRange => "LAB_OUT_OF_RANGE",
            RejectCode::SubjectMismatch => "SUBJECT_MISMATCH",
            RejectCode::UnknownStatus => "UNKNOWN_STATUS",
            RejectCode::InvalidTransition => "INVALID_TRANSITION",
            RejectCode::AppointmentUnknown => "APPOINTMENT_UNKNOWN",
        }
    }
}

/// A rejected message: the code and a sentence a producer's developer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

pub fn reject(code: RejectCode, message: impl Into<String>) -> Rejection {
    Rejection {
        code,
        message: message.into(),
    }
}

/// How the payload is encoded, from the NATS `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    MessagePack,
}

impl Encoding {
    /// `None` (no header) and `application/json` are JSON; `application/msgpack` is MessagePack.
    ///
    /// # Errors
    /// `UNSUPPORTED_CONTENT_TYPE` for any other value.
    pub fn from_content_type(ct: Option<&str>) -> Result<Self, Rejection> {
        let Some(ct) = ct else {
            return Ok(Encoding::Json);
        };
        let base = ct.split(';').next().unwrap_or("").trim();
        match base.to_ascii_lowercase().as_str() {
            "" | "application/json" => Ok(Encoding::Json),
            "application/msgpack" | "application/x-msgpack" | "application/vnd.msgpack" => {
                Ok(Encoding::MessagePack)
            }
            _ => Err(reject(
                RejectCode::UnsupportedContentType,
                format!("Content-Type `{ct}` is neither application/json nor application/msgpack"),
            )),
        }
    }
}

/// The wire envelope, its data `D` being the union of one stream's data fields, decoded in one
/// pass. Strings are borrowed from the payload where possible; only what the engine keeps is
/// copied. Unknown data fields (e.g. `bedId`, `deviceId`) are ignored (contracts are
/// additive); wrong types are a schema error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireEnvelope<'a, D> {
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    event_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    occurred_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    producer: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    correlation_id: Option<Cow<'a, str>>,
    pub(crate) data: Option<Box<D>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireData<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    patient_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    unit_id: Option<Cow<'a, str>>,
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

/// Deserializes an optional string borrowed from the payload whenever it has no escapes.
/// `#[serde(borrow)]` does not reach through `Option`: serde gives an `Option<Cow<str>>` an
/// owned `String` every time, which cost one allocation per string field of every event.
pub(crate) fn borrow_str<'de: 'a, 'a, D>(d: D) -> Result<Option<Cow<'a, str>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'a>>::deserialize(d)?.map(|b| b.0))
}

/// Only the fields that say what the event is: decoded when the full decode failed, to tell an
/// unknown event type from a schema error.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireHead {
    event_type: Option<String>,
}

/// Every event type of the contract, by the stream it belongs on (outbound ones included: a
/// producer publishing one to an input stream gets `WRONG_STREAM`, not `UNKNOWN_EVENT_TYPE`).
pub const STREAM_TYPES: &[(&str, &[&str])] = &[
    (
        "VITALS",
        &[VITALS_OBSERVATION, LAB_RESULT, PATIENT_ADMITTED],
    ),
    (
        "CHECKINS",
        &[
            "appointment.scheduled.v1",
            "patient.checkin.v1",
            "appointment.status.changed.v1",
        ],
    ),
    (
        "OCCUPANCY",
        &["resource.occupancy.update.v1", "provider.status.update.v1"],
    ),
    ("ALERTS", &["orchestration.alert.v1"]),
    ("FLOW", &["patient.flow.update.v1"]),
];

/// The envelope fields, checked: the event's type and the engine's [`EventMeta`].
pub(crate) struct Head<'a> {
    pub event_type: Cow<'a, str>,
    pub meta: EventMeta<'a>,
}

/// The envelope rules of contracts.md §1 for an event arriving on `stream`: its type belongs
/// there, ids and times are well-formed, the tenant matches the subject's, and `occurredAt` is
/// not ahead of `now` by more than the allowed skew.
#[inline]
pub(crate) fn check_head<'a, D>(
    raw: &mut WireEnvelope<'a, D>,
    stream: &str,
    now: Option<Timestamp>,
    subject_tenant: Option<&str>,
) -> Result<Head<'a>, Rejection> {
    let event_type = required("eventType", raw.event_type.take())?;
    match STREAM_TYPES
        .iter()
        .find(|(_, types)| types.contains(&&*event_type))
    {
        Some((home, _)) if *home == stream => {}
        Some(_) => {
            return Err(reject(
                RejectCode::WrongStream,
                format!("`{event_type}` does not belong on {stream}"),
            ));
        }
        None => {
            return Err(reject(
                RejectCode::UnknownEventType,
                format!("unknown eventType `{event_type}`"),
            ));
        }
    }
    let event_id = required("eventId", raw.event_id.take())?;
    identifier_text("eventId", &event_id)?;
    let version = required("eventVersion", raw.event_version.take())?;
    if version != "1" {
        return Err(reject(
            RejectCode::UnsupportedVersion,
            format!("eventVersion `{version}` of {event_type} is not supported (expected \"1\")"),
        ));
    }
    let occurred_text = required("occurredAt", raw.occurred_at.take())?;
    let occurred_at = parse_time("occurredAt", &occurred_text)
        .map_err(|m| reject(RejectCode::EnvelopeInvalid, m))?;
    let producer = required("producer", raw.producer.take())?;
    identifier_text("producer", &producer)?;
    if let Some(c) = &raw.correlation_id {
        no_control("correlationId", c)?;
    }
    let tenant_id = required("tenantId", raw.tenant_id.take())?;
    if !is_token(&tenant_id) {
        return Err(reject(
            RejectCode::EnvelopeInvalid,
            "`tenantId` must match [A-Za-z0-9_-]{1,64}",
        ));
    }
    if let Some(subject_tenant) = subject_tenant
        && *tenant_id != *subject_tenant
    {
        return Err(reject(
            RejectCode::TenantMismatch,
            format!("tenantId `{tenant_id}` does not match subject tenant `{subject_tenant}`"),
        ));
    }
    if let Some(now) = now
        && occurred_at.since(now) > MAX_CLOCK_SKEW_MS
    {
        return Err(reject(
            RejectCode::OccurredInFuture,
            format!(
                "occurredAt {occurred_text} is more than 5 min ahead of the engine clock {now}"
            ),
        ));
    }
    Ok(Head {
        event_type,
        meta: EventMeta {
            event_id,
            tenant_id,
            occurred_at,
            correlation_id: raw.correlation_id.take(),
        },
    })
}

/// The times Vigil accepts from producers: from 2000-01-01 (inclusive) to 2100-01-01. A time
/// outside it is a producer's bug (a zeroed clock, a mistyped year); taken at face value it
/// would say "occupied 1066055512 min past its expected free time".
pub const PLAUSIBLE_TIMES: std::ops::Range<Timestamp> =
    Timestamp::from_millis(946_684_800_000)..Timestamp::from_millis(4_102_444_800_000);

/// Parses an RFC 3339 timestamp into engine time.
///
/// # Errors
/// A message naming `field` when the text is not RFC 3339, or when the time is outside
/// [`PLAUSIBLE_TIMES`].
pub fn parse_time(field: &str, text: &str) -> Result<Timestamp, String> {
    let t = match Timestamp::parse_rfc3339(text) {
        Some(t) => t,
        None => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp::from_millis(t.timestamp_millis()))
            .map_err(|e| format!("`{field}` is not an RFC 3339 timestamp ({e}): `{text}`"))?,
    };
    if !PLAUSIBLE_TIMES.contains(&t) {
        return Err(format!(
            "`{field}` {text} is outside the plausible range 2000-01-01 to 2100-01-01"
        ));
    }
    Ok(t)
}

pub(crate) fn required<'a>(
    field: &str,
    v: Option<Cow<'a, str>>,
) -> Result<Cow<'a, str>, Rejection> {
    v.ok_or_else(|| {
        reject(
            RejectCode::EnvelopeInvalid,
            format!("missing required field `{field}`"),
        )
    })
}

/// An identifier of the envelope (`eventId`, `producer`): 1..128 characters, none of them a
/// control character. `eventId` goes into `Nats-Msg-Id` headers of outputs, which cannot carry
/// CR, LF or NUL; refusing every control character here means no header is ever built from
/// text that could break it (or forge a second header line).
fn identifier_text(field: &str, v: &str) -> Result<(), Rejection> {
    if v.is_empty() || v.chars().count() > 128 {
        return Err(reject(
            RejectCode::EnvelopeInvalid,
            format!("`{field}` must be 1..128 characters"),
        ));
    }
    no_control(field, v)
}

/// `ENVELOPE_INVALID` when `v` holds a control character (C0, DEL or C1: line breaks, NUL, tabs,
/// escapes), naming the first one.
fn no_control(field: &str, v: &str) -> Result<(), Rejection> {
    match v.char_indices().find(|(_, c)| c.is_control()) {
        Some((at, c)) => Err(reject(
            RejectCode::EnvelopeInvalid,
            format!(
                "`{field}` must not contain control characters (U+{:04X} at byte {at})",
                u32::from(c)
            ),
        )),
        None => Ok(()),
    }
}

/// `PAYLOAD_TOO_LARGE` beyond the contract's limit.
pub(crate) fn check_size(payload: &[u8]) -> Result<(), Rejection> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return Err(reject(
            RejectCode::PayloadTooLarge,
            format!(
                "{} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit",
                payload.len()
            ),
        ));
    }
    Ok(())
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
    let mut parts = subject.split('.');
    let (Some("vitals"), Some(subject_tenant), Some(subject_patient), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
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
    let mut env: WireEnvelope<WireData> = decode(payload, encoding, "VITALS")?;
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
    let body = match &*event_type {
        LAB_RESULT => lab(meta.occurred_at, *data)?,
        PATIENT_ADMITTED => admission(&data)?,
        _ => observation(&data)?,
    };
    Ok(Reading {
        meta,
        patient_id,
        unit_id,
        body,
    })
}

/// Decodes `payload` as `T`. A schema error in an event whose type does not belong on `stream`
/// is reported as what that is (`UNKNOWN_EVENT_TYPE` or `WRONG_STREAM`): its fields were never
/// going to fit.
pub(crate) fn decode<'a, T: Deserialize<'a>>(
    payload: &'a [u8],
    encoding: Encoding,
    stream: &str,
) -> Result<T, Rejection> {
    let full = match encoding {
        // JSON is UTF-8 throughout: one check of the whole payload is cheaper than
        // serde_json's check of each string it borrows.
        Encoding::Json => match std::str::from_utf8(payload) {
            Ok(text) => serde_json::from_str::<T>(text).map_err(|e| {
                let code = if e.is_syntax() || e.is_eof() {
                    RejectCode::DecodeFailed
                } else {
                    RejectCode::SchemaInvalid
                };
                reject(code, format!("JSON: {e}"))
            }),
            Err(e) => Err(reject(
                RejectCode::DecodeFailed,
                format!("JSON: not UTF-8 ({e})"),
            )),
        },
        Encoding::MessagePack => rmp_serde::from_slice::<T>(payload)
            .map_err(|e| {
                let code = match e {
                    rmp_serde::decode::Error::Syntax(_) => RejectCode::SchemaInvalid,
                    rmp_serde::decode::Error::TypeMismatch(rmp::Marker::Reserved) => {
                        RejectCode::DecodeFailed
                    }
                    rmp_serde::decode::Error::TypeMismatch(_) => RejectCode::SchemaInvalid,
                    _ => RejectCode::DecodeFailed,
                };
                reject(code, format!("MessagePack: {e}"))
            })
            .and_then(|v| {
                // serde_json refuses trailing characters by itself; rmp-serde stops after
                // one value, and a second envelope behind it would be dropped unseen.
                match msgpack_value_len(payload) {
                    Some(n) if n == payload.len() => Ok(v),
                    Some(n) => Err(reject(
                        RejectCode::DecodeFailed,
                        format!(
                            "MessagePack: {} bytes after the envelope (one envelope per message)",
                            payload.len() - n
                        ),
                    )),
                    None => Err(reject(
                        RejectCode::DecodeFailed,
                        "MessagePack: malformed value",
                    )),
                }
            }),
    };
    full.map_err(|rejection| reclassify(rejection, payload, encoding, stream))
}

/// The length in bytes of the first MessagePack value of `b` (the markers of the MessagePack
/// spec, nested arrays and maps included), or `None` when it is truncated or uses the reserved
/// marker. One pass, no allocation; each step consumes at least one byte, so it ends.
fn msgpack_value_len(b: &[u8]) -> Option<usize> {
    // A big-endian length of `n` bytes at `pos`.
    fn be(b: &[u8], pos: &mut usize, n: usize) -> Option<usize> {
        let bytes = b.get(*pos..*pos + n)?;
        *pos += n;
        Some(
            bytes
                .iter()
                .fold(0usize, |acc, &x| (acc << 8) | usize::from(x)),
        )
    }
    let mut pos = 0usize;
    // Values still to skip: the first, then the items of every array and map entered.
    let mut pending: usize = 1;
    while pending > 0 {
        pending -= 1;
        let m = *b.get(pos)?;
        pos += 1;
        // (bytes of payload to skip, values nested inside)
        let (skip, items) = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(m & 0x0f)),
            0x90..=0x9f => (0, usize::from(m & 0x0f)),
            0xa0..=0xbf => (usize::from(m & 0x1f), 0),
            0xc1 => return None,
            0xc4 | 0xd9 => (be(b, &mut pos, 1)?, 0),
            0xc5 | 0xda => (be(b, &mut pos, 2)?, 0),
            0xc6 | 0xdb => (be(b, &mut pos, 4)?, 0),
            0xc7 => (be(b, &mut pos, 1)? + 1, 0),
            0xc8 => (be(b, &mut pos, 2)? + 1, 0),
            0xc9 => (be(b, &mut pos, 4)? + 1, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, be(b, &mut pos, 2)?),
            0xdd => (0, be(b, &mut pos, 4)?),
            0xde => (0, 2 * be(b, &mut pos, 2)?),
            0xdf => (0, be(b, &mut pos, 4)?.checked_mul(2)?),
        };
        pos = pos.checked_add(skip).filter(|&p| p <= b.len())?;
        pending = pending.checked_add(items)?;
    }
    Some(pos)
}

/// A schema error in an event whose type does not belong on `stream` is reported as what that
/// is (`UNKNOWN_EVENT_TYPE`, `WRONG_STREAM`). Kept out of line: only failures come here.
#[cold]
#[inline(never)]
fn reclassify(rejection: Rejection, payload: &[u8], encoding: Encoding, stream: &str) -> Rejection {
    if rejection.code != RejectCode::SchemaInvalid {
        return rejection;
    }
    let head = match encoding {
        Encoding::Json => serde_json::from_slice::<WireHead>(payload).ok(),
        Encoding::MessagePack => rmp_serde::from_slice::<WireHead>(payload).ok(),
    };
    let Some(t) = head.and_then(|h| h.event_type) else {
        return rejection;
    };
    let mut raw: WireEnvelope<()> = WireEnvelope {
        event_type: Some(Cow::Owned(t)),
        event_id: None,
        event_version: None,
        occurred_at: None,
        producer: None,
        tenant_id: None,
        correlation_id: None,
        data: None,
    };
    match check_head(&mut raw, stream, None, None) {
        Err(r) if r.code != RejectCode::EnvelopeInvalid => r,
        _ => rejection,
    }
}

pub(crate) fn data_token<'a>(
    field: &str,
    v: Option<Cow<'a, str>>,
) -> Result<Cow<'a, str>, Rejection> {
    let v = v.ok_or_else(|| {
        reject(
            RejectCode::DataInvalid,
            format!("missing required field `data.{field}`"),
        )
    })?;
    if !is_token(&v) {
        return Err(reject(
            RejectCode::DataInvalid,
            format!("`data.{field}` must match [A-Za-z0-9_-]{{1,64}}"),
        ));
    }
    Ok(v)
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
mod tests {
    use super::*;

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

    fn contract_json() -> serde_json::Value {
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
        // JSON refuses trailing data too.
        let mut j = json(&contract_json());
        j.extend(b" {}");
        let e = decode_vitals(SUBJECT, &j, Encoding::Json, NOW).expect_err("refused");
        assert_eq!(e.code, RejectCode::DecodeFailed);
    }

    #[test]
    fn messagepack_value_lengths_cover_every_marker() {
        let values = [
            serde_json::json!(null),
            serde_json::json!(true),
            serde_json::json!(7),
            serde_json::json!(-7),
            serde_json::json!(300),
            serde_json::json!(-300),
            serde_json::json!(70_000),
            serde_json::json!(-70_000),
            serde_json::json!(5_000_000_000u64),
            serde_json::json!(-5_000_000_000i64),
            serde_json::json!(1.5),
            serde_json::json!("a"),
            serde_json::json!("x".repeat(40)),
            serde_json::json!("x".repeat(300)),
            serde_json::json!("x".repeat(70_000)),
            serde_json::json!([1, [2, [3]], {"a": {"b": []}}]),
            serde_json::json!((0..20).collect::<Vec<_>>()),
            serde_json::json!((0..70_000).collect::<Vec<_>>()),
            serde_json::json!(
                (0..20)
                    .map(|i| (i.to_string(), serde_json::json!(i)))
                    .collect::<serde_json::Map<_, _>>()
            ),
            contract_json(),
        ];
        for v in values {
            let b = rmp_serde::to_vec_named(&v).expect("msgpack");
            assert_eq!(
                msgpack_value_len(&b),
                Some(b.len()),
                "{}",
                &v.to_string()[..20.min(v.to_string().len())]
            );
            assert_eq!(msgpack_value_len(&b[..b.len() - 1]), None, "truncated");
        }
        for (bytes, len) in [
            (&[0xc4, 2, 1, 2][..], 4),
            (&[0xc5, 0, 1, 9], 4),
            (&[0xc6, 0, 0, 0, 1, 9], 6),
            (&[0xc7, 1, 5, 9], 4),
            (&[0xc8, 0, 1, 5, 9], 5),
            (&[0xc9, 0, 0, 0, 1, 5, 9], 7),
            (&[0xd4, 1, 9], 3),
            (&[0xd5, 1, 9, 9], 4),
            (&[0xd6, 1, 9, 9, 9, 9], 6),
            (&[0xd7, 1, 0, 0, 0, 0, 0, 0, 0, 0], 10),
            (
                &[0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                18,
            ),
            (&[0xca, 0, 0, 0, 0], 5),
        ] {
            assert_eq!(msgpack_value_len(bytes), Some(len), "{bytes:x?}");
        }
        assert_eq!(msgpack_value_len(&[0xc1]), None, "reserved");
        assert_eq!(
            msgpack_value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]),
            None,
            "huge and empty"
        );
        assert_eq!(msgpack_value_len(&[]), None);
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
        assert_eq!(
            Encoding::from_content_type(Some("text/xml"))
                .expect_err("xml")
                .code,
            RejectCode::UnsupportedContentType
        );
    }
}
