//! The event envelope of contracts.md §1, shared by every inbound stream: the size limit, the
//! head's checks (event type for the stream, version, ids, times, tenant), JSON or MessagePack
//! decoding, and the [`Rejection`] codes. Everything that fails becomes a `Rejection` with a
//! stable code: it goes to the DLQ, never into the engine. The streams' own bodies are decoded
//! in `vitals.rs` and `practice.rs`.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use vigil_config::is_token;
use vigil_engine::Timestamp;
use vigil_engine::event::{EventMeta, LAB_RESULT, PATIENT_ADMITTED, VITALS_OBSERVATION};

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
        // Media types are case-insensitive (RFC 9110 8.3.1); compared in place, as every
        // message carries one.
        let is = |name: &str| base.eq_ignore_ascii_case(name);
        if base.is_empty() || is("application/json") {
            Ok(Encoding::Json)
        } else if is("application/msgpack")
            || is("application/x-msgpack")
            || is("application/vnd.msgpack")
        {
            Ok(Encoding::MessagePack)
        } else {
            Err(reject(
                RejectCode::UnsupportedContentType,
                format!("Content-Type `{ct}` is neither application/json nor application/msgpack"),
            ))
        }
    }
}

/// The wire envelope, its data `D` being the union of one stream's data fields, decoded in one
/// pass. Strings are borrowed from the payload where possible; only what the engine keeps is
/// copied. Unknown data fields (e.g. `bedId`, `deviceId`) are ignored (contracts are
/// additive); wrong types are a schema error.
#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
#[serde(rename_all = "camelCase")]
pub(crate) struct WireEnvelope<'a, D> {
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) event_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) event_version: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) occurred_at: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) producer: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_str")]
    pub(crate) correlation_id: Option<Cow<'a, str>>,
    pub(crate) data: Option<Box<D>>,
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
    // Characters are never more than bytes: most identifiers are decided by their length.
    if v.is_empty() || (v.len() > 128 && v.chars().count() > 128) {
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
    match first_control(v) {
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

/// The first control character of `v` (C0, DEL or C1) and its byte offset.
pub(crate) fn first_control(v: &str) -> Option<(usize, char)> {
    // Controls are U+0000-U+001F, U+007F and U+0080-U+009F; in UTF-8 the last are 0xC2 then
    // 0x80-0x9F, and 0xC2 is only ever a lead byte. A text with none of these bytes (every
    // identifier and most texts) is clean without decoding a character. The bytes are folded
    // without stopping at the first suspect so that the loop is vectorised: a clean text,
    // the common case, is read whole either way.
    let suspect = v
        .bytes()
        .fold(false, |any, b| any | (b < 0x20) | (b == 0x7f) | (b == 0xc2));
    if !suspect {
        return None;
    }
    v.char_indices().find(|(_, c)| c.is_control())
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
        Encoding::MessagePack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(payload);
            T::deserialize(&mut de)
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
                    // one value, and a second envelope behind it would be dropped unseen. A
                    // read of one more value ends at its first marker when nothing follows.
                    match serde::de::IgnoredAny::deserialize(&mut de) {
                        Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
                            if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                        {
                            Ok(v)
                        }
                        _ => Err(trailing_bytes(payload)),
                    }
                })
        }
    };
    full.map_err(|rejection| reclassify(rejection, payload, encoding, stream))
}

/// Why a MessagePack payload that decoded has bytes after its envelope: how many (kept out of
/// line: only refusals come here).
#[cold]
#[inline(never)]
fn trailing_bytes(payload: &[u8]) -> Rejection {
    match msgpack_value_len(payload) {
        Some(n) if n < payload.len() => reject(
            RejectCode::DecodeFailed,
            format!(
                "MessagePack: {} bytes after the envelope (one envelope per message)",
                payload.len() - n
            ),
        ),
        _ => reject(RejectCode::DecodeFailed, "MessagePack: malformed value"),
    }
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
        ..WireEnvelope::default()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every edge of the control ranges (C0, DEL, C1) is refused and named, whatever comes
    /// before it; the characters beside them, and text whose bytes look like the fast path's
    /// (0xC2 leads U+0080-U+00BF), are not.
    #[test]
    fn control_characters_are_found_at_every_edge_of_their_ranges() {
        for c in ['\u{0}', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}'] {
            for text in [format!("{c}"), format!("id-é{c}x")] {
                let e = no_control("eventId", &text).expect_err("a control");
                assert!(
                    e.message.contains(&format!("U+{:04X}", u32::from(c))),
                    "{}",
                    e.message
                );
            }
        }
        for fine in [
            " ", "~", "\u{a0}", "\u{a1}", "\u{bf}", "é", "Â", "🩺", "id-0001",
        ] {
            assert!(no_control("eventId", fine).is_ok(), "{fine:?}");
        }
    }

    /// Identifiers are 1 to 128 characters, however many bytes those take.
    #[test]
    fn identifier_length_counts_characters() {
        for (text, ok) in [
            (String::new(), false),
            ("x".repeat(128), true),
            ("x".repeat(129), false),
            ("é".repeat(128), true),
            ("é".repeat(129), false),
            ("🩺".repeat(128), true),
        ] {
            assert_eq!(
                identifier_text("eventId", &text).is_ok(),
                ok,
                "{} chars",
                text.chars().count()
            );
        }
    }
    use crate::vitals::tests::contract_json;

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
}
