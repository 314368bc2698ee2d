//! The `vitals.observation.v1` envelopes the load tester publishes and exports, in MessagePack
//! and JSON.

use bytes::Bytes;
use serde::Serialize;

use crate::acuity;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Envelope<'a> {
    pub(crate) event_id: String,
    pub(crate) event_type: &'static str,
    pub(crate) event_version: &'static str,
    pub(crate) occurred_at: String,
    pub(crate) producer: &'static str,
    pub(crate) tenant_id: &'a str,
    pub(crate) data: VitalsData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VitalsData<'a> {
    pub(crate) patient_id: &'a str,
    pub(crate) unit_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spo2: Option<f64>,
    pub(crate) on_oxygen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sbp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) consciousness: Option<&'static str>,
}

pub(crate) const UNIT: &str = "lt-unit";

pub(crate) fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A MessagePack `vitals.observation.v1` scoring NEWS2 8 (`sick`) or 0.
pub(crate) fn vitals(
    tenant: &str,
    patient: &str,
    event_id: String,
    at: chrono::DateTime<chrono::Utc>,
    sick: bool,
) -> Bytes {
    msgpack(&envelope(tenant, patient, event_id, at, sick))
}

pub(crate) fn msgpack(env: &Envelope<'_>) -> Bytes {
    Bytes::from(rmp_serde::to_vec_named(env).unwrap_or_default())
}

/// The values of a reading scoring NEWS2 8 (`sick`) or 0.
pub(crate) fn fixed(sick: bool) -> acuity::VitalSigns {
    let (hr, rr, spo2) = if sick {
        (112.0, 26.0, 91.0)
    } else {
        (72.0, 16.0, 98.0)
    };
    acuity::VitalSigns {
        hr: Some(hr),
        rr: Some(rr),
        spo2: Some(spo2),
        temp: Some(37.0),
        sbp: Some(120.0),
        consciousness: Some("A"),
    }
}

/// A `vitals.observation.v1` envelope scoring NEWS2 8 (`sick`) or 0.
pub(crate) fn envelope<'a>(
    tenant: &'a str,
    patient: &'a str,
    event_id: String,
    at: chrono::DateTime<chrono::Utc>,
    sick: bool,
) -> Envelope<'a> {
    reading(tenant, patient, event_id, at, fixed(sick))
}

/// A `vitals.observation.v1` envelope with these values.
pub(crate) fn reading<'a>(
    tenant: &'a str,
    patient: &'a str,
    event_id: String,
    at: chrono::DateTime<chrono::Utc>,
    v: acuity::VitalSigns,
) -> Envelope<'a> {
    Envelope {
        event_id,
        event_type: "vitals.observation.v1",
        event_version: "1",
        occurred_at: rfc3339(at),
        producer: "vigil-loadtest",
        tenant_id: tenant,
        data: VitalsData {
            patient_id: patient,
            unit_id: UNIT,
            hr: v.hr,
            rr: v.rr,
            spo2: v.spo2,
            on_oxygen: false,
            temp: v.temp,
            sbp: v.sbp,
            consciousness: v.consciousness,
        },
    }
}

pub(crate) fn msgpack_headers() -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Content-Type", "application/msgpack");
    h
}
