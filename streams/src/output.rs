//! Outbound messages: alert transitions as `orchestration.alert.v1` envelopes on
//! `alerts.{tenantId}.{alertId}`, flow updates on `flow.{tenantId}.{patientId}`, and dead
//! letters on `dlq.{sourceStream}`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use vigil_engine::Alert;
use vigil_engine::practice::appointment::FlowUpdate;

use crate::bus::Delivery;
use crate::envelope::Rejection;
use crate::outbox::{Order, OutMessage};
use crate::receipt::Receipt;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, T: ?Sized> {
    event_id: String,
    event_type: &'static str,
    event_version: &'static str,
    occurred_at: String,
    producer: &'static str,
    tenant_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    data: &'a T,
}

/// The envelope of one alert transition. `eventId` is `{alertId}-v{version}`, also used as
/// `Nats-Msg-Id`, so a retried publish is stored once. `json` is the alert serialized once
/// ([`alert_json`]), shared with the dashboards' copy.
pub fn alert_message(alert: &Alert, json: &RawValue, receipt: Option<Receipt>) -> OutMessage {
    let event_id = format!("{}-v{}", alert.alert_id, alert.version);
    let envelope = Envelope {
        event_id: event_id.clone(),
        event_type: "orchestration.alert.v1",
        event_version: "1",
        occurred_at: alert.transition.at.to_string(),
        producer: "vigil",
        tenant_id: &alert.tenant_id,
        correlation_id: None,
        data: json,
    };
    let payload = serde_json::to_vec(&envelope).unwrap_or_default();
    OutMessage {
        subject: format!("alerts.{}.{}", alert.tenant_id, alert.alert_id),
        headers: vec![
            ("Nats-Msg-Id", event_id),
            ("Content-Type", "application/json".into()),
        ],
        payload: Bytes::from(payload),
        receipt,
        order: Order::Fenced {
            first: alert.version == 1,
            last: !alert.is_active(),
        },
    }
}

/// An alert transition as JSON, serialized once for both of its readers: the `ALERTS`
/// envelope ([`alert_message`]) and the dashboards' frames.
pub fn alert_json(alert: &Alert) -> Box<RawValue> {
    serde_json::value::to_raw_value(alert).unwrap_or_else(|e| {
        // An `Alert` is plain data; serializing it cannot fail short of a serde bug.
        tracing::error!(alert = %alert.alert_id, error = %e, "cannot serialize an alert");
        RawValue::NULL.to_owned()
    })
}

/// NATS header values cannot hold line breaks; producer-supplied text is flattened and capped.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect()
}

/// A message as it was stored, kept past its acknowledgement: what a dead letter needs of
/// it (practice events held for their schedule are dead-lettered later, if at all).
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub payload: Bytes,
    pub content_type: Option<String>,
    /// Sequence in the source stream (0 on the embedded bus).
    pub seq: u64,
}

impl Stored {
    pub fn of(d: &Delivery) -> Self {
        Self {
            subject: d.subject().to_string(),
            payload: d.payload().clone(),
            content_type: d.content_type().map(str::to_string),
            seq: d.stream_seq(),
        }
    }
}

/// The DLQ entry for a rejected delivery: its original bytes with the error headers.
pub fn dead_letter(
    source_stream: &str,
    d: &Delivery,
    rejection: &Rejection,
    receipt: Receipt,
) -> OutMessage {
    dead_letter_stored(source_stream, &Stored::of(d), rejection, Some(receipt))
}

/// The DLQ entry for a stored message.
pub fn dead_letter_stored(
    source_stream: &str,
    d: &Stored,
    rejection: &Rejection,
    receipt: Option<Receipt>,
) -> OutMessage {
    let seq = d.seq;
    let mut headers = vec![
        ("Vigil-Error-Code", rejection.code.as_str().to_string()),
        ("Vigil-Error", header_text(&rejection.message)),
        ("Vigil-Source-Subject", header_text(&d.subject)),
        ("Vigil-Source-Seq", seq.to_string()),
    ];
    if let Some(ct) = &d.content_type {
        headers.push(("Content-Type", header_text(ct)));
    }
    if seq > 0 {
        headers.push(("Nats-Msg-Id", format!("dlq-{source_stream}-{seq}")));
    }
    OutMessage {
        subject: format!("dlq.{source_stream}"),
        headers,
        payload: d.payload.clone(),
        receipt,
        order: Order::Any,
    }
}

/// `patient.flow.update.v1` on `flow.{tenantId}.{patientId}`, caused by the inbound event
/// `source_event_id`: its `eventId` is `flow-{source}` (one flow update per inbound event at
/// most), also the `Nats-Msg-Id`, so a redelivered source publishes it once.
pub fn flow_message(
    tenant: &str,
    flow: &FlowUpdate,
    source_event_id: &str,
    correlation_id: Option<&str>,
    receipt: Option<Receipt>,
) -> OutMessage {
    let event_id = format!("flow-{source_event_id}");
    let envelope = Envelope {
        event_id: event_id.clone(),
        event_type: "patient.flow.update.v1",
        event_version: "1",
        occurred_at: flow.stage_entered_at.to_string(),
        producer: "vigil",
        tenant_id: tenant,
        correlation_id,
        data: flow,
    };
    let payload = serde_json::to_vec(&envelope).unwrap_or_default();
    OutMessage {
        subject: format!("flow.{tenant}.{}", flow.patient_id),
        headers: vec![
            ("Nats-Msg-Id", format!("{tenant}-{event_id}")),
            ("Content-Type", "application/json".into()),
        ],
        payload: Bytes::from(payload),
        receipt,
        order: Order::Subject,
    }
}
