//! `clinic`: stores a clinic network's day of practice events in `CHECKINS` and `OCCUPANCY`:
//! per appointment its schedule, check-in, start, chair occupied, provider busy, completion,
//! chair cleaning and provider available (8 events, MessagePack), the day compressed into the
//! last half hour of event time (a slot a minute), so a drain measures throughput.

use std::time::Instant;

use anyhow::Context;
use async_nats::jetstream;
use bytes::Bytes;

use crate::Args;
use crate::envelope::rfc3339;
use crate::publish::Publisher;

/// One practice event as MessagePack.
fn practice(
    tenant: &str,
    event_id: String,
    event_type: &str,
    at: chrono::DateTime<chrono::Utc>,
    data: serde_json::Value,
) -> Bytes {
    let env = serde_json::json!({
        "eventId": event_id, "eventType": event_type, "eventVersion": "1",
        "occurredAt": rfc3339(at), "producer": "vigil-loadtest", "tenantId": tenant,
        "data": data
    });
    Bytes::from(rmp_serde::to_vec_named(&env).unwrap_or_default())
}

pub(crate) async fn run(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    for (name, subjects) in [("CHECKINS", "checkin.*.*"), ("OCCUPANCY", "occupancy.*.*")] {
        js.get_or_create_stream(jetstream::stream::Config {
            name: name.into(),
            subjects: vec![subjects.into()],
            storage: jetstream::stream::StorageType::File,
            allow_direct: true,
            ..Default::default()
        })
        .await
        .with_context(|| format!("cannot create {name}"))?;
    }
    const SLOTS: i64 = 24;
    let providers = args.providers.max(1);
    let chairs = args.chairs.max(1);
    let tenant = &args.tenant;
    let run = format!("{:x}", std::process::id());
    // Slot k starts k minutes after `base`; the last ends a few minutes before now.
    let base = chrono::Utc::now() - chrono::Duration::minutes(SLOTS + 4);
    let secs = chrono::Duration::seconds;
    let mut publisher = Publisher::new(js, args.in_flight);
    let started = Instant::now();
    for k in 0..SLOTS {
        let slot = base + chrono::Duration::minutes(k);
        for p in 0..providers {
            let id = format!("lt{run}-p{p}-a{k}");
            let patient = format!("ltp{run}-{p}-{k}");
            let provider = format!("ltprov-{p}");
            let location = format!("ltloc-{}", p / 10);
            let chair = format!("ltchair-{}", (p * 4 + k as usize % 4) % chairs);
            let appt = format!("checkin.{tenant}.{id}");
            let occ = format!("occupancy.{tenant}.{chair}");
            let prov = format!("occupancy.{tenant}.{provider}");
            let status = |from: &str, to: &str, at| {
                serde_json::json!({"appointmentId": id, "previousStatus": from,
                    "newStatus": to, "updatedAt": rfc3339(at)})
            };
            let events = [
                (
                    &appt,
                    "appointment.scheduled.v1",
                    slot - secs(50),
                    serde_json::json!({
                    "appointmentId": id, "patientId": patient, "providerId": provider,
                    "locationId": location, "resourceId": chair,
                    "scheduledStart": rfc3339(slot), "expectedDurationMinutes": 30}),
                ),
                (
                    &appt,
                    "patient.checkin.v1",
                    slot - secs(5),
                    serde_json::json!({
                    "patientId": patient, "appointmentId": id, "locationId": location,
                    "checkinAt": rfc3339(slot - secs(5))}),
                ),
                (
                    &appt,
                    "appointment.status.changed.v1",
                    slot + secs(3),
                    status("checked_in", "in_progress", slot + secs(3)),
                ),
                (
                    &occ,
                    "resource.occupancy.update.v1",
                    slot + secs(3),
                    serde_json::json!({
                    "resourceId": chair, "status": "occupied", "currentAppointmentId": id,
                    "expectedFreeAt": rfc3339(slot + secs(40)), "locationId": location}),
                ),
                (
                    &prov,
                    "provider.status.update.v1",
                    slot + secs(3),
                    serde_json::json!({
                    "providerId": provider, "status": "busy",
                    "effectiveAt": rfc3339(slot + secs(3))}),
                ),
                (
                    &appt,
                    "appointment.status.changed.v1",
                    slot + secs(38),
                    status("in_progress", "completed", slot + secs(38)),
                ),
                (
                    &occ,
                    "resource.occupancy.update.v1",
                    slot + secs(38),
                    serde_json::json!({
                    "resourceId": chair, "status": "cleaning", "locationId": location}),
                ),
                (
                    &prov,
                    "provider.status.update.v1",
                    slot + secs(38),
                    serde_json::json!({
                    "providerId": provider, "status": "available",
                    "effectiveAt": rfc3339(slot + secs(38))}),
                ),
            ];
            for (n, (subject, event_type, at, data)) in events.into_iter().enumerate() {
                let payload = practice(tenant, format!("{id}-{n}"), event_type, at, data);
                publisher.publish(subject.clone(), payload).await?;
            }
        }
    }
    publisher
        .report(args, "clinic", providers * SLOTS as usize, started)
        .await
}
