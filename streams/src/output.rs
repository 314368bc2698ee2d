//! Outbound messages: alert transitions as `orchestration.alert.v1` envelopes on
//! `alerts.{tenantId}.{alertId}`, and dead letters on `dlq.{sourceStream}`.

use bytes::Bytes;
use serde::Serialize;
use vigil_engine::Alert;

use crate::bus::Delivery;
use crate::envelope::Rejection;
use crate::outbox::OutMessage;
use crate::receipt::Receipt;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a, T> {
    event_id: String,
    event_type: &'static str,
    event_version: &'static str,
    occurred_at: String,
    producer: &'static str,
    tenant_id: &'a str,
    data: &'a T,
}

/// The envelope of one alert transition. `eventId` is `{alertId}-v{version}`, also used as
/// `Nats-Msg-Id`, so a retried publish is stored once.
pub fn alert_message(alert: &Alert, receipt: Option<Receipt>) -> OutMessage {
    let event_id = format!("{}-v{}", alert.alert_id, alert.version);
    let envelope = Envelope {
        event_id: event_id.clone(),
        event_type: "orchestration.alert.v1",
        event_version: "1",
        occurred_at: alert.transition.at.to_string(),
        producer: "vigil",
        tenant_id: &alert.tenant_id,
        data: alert,
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
        ordered: true,
    }
}

/// NATS header values cannot hold line breaks; producer-supplied text is flattened and capped.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect()
}

/// The DLQ entry for a rejected delivery: its original bytes with the error headers.
pub fn dead_letter(
    source_stream: &str,
    d: &Delivery,
    rejection: &Rejection,
    receipt: Receipt,
) -> OutMessage {
    let seq = d.stream_seq();
    let mut headers = vec![
        ("Vigil-Error-Code", rejection.code.as_str().to_string()),
        ("Vigil-Error", header_text(&rejection.message)),
        ("Vigil-Source-Subject", header_text(d.subject())),
        ("Vigil-Source-Seq", seq.to_string()),
    ];
    if let Some(ct) = d.content_type() {
        headers.push(("Content-Type", header_text(ct)));
    }
    if seq > 0 {
        headers.push(("Nats-Msg-Id", format!("dlq-{source_stream}-{seq}")));
    }
    OutMessage {
        subject: format!("dlq.{source_stream}"),
        headers,
        payload: d.payload().clone(),
        receipt: Some(receipt),
        ordered: false,
    }
}
