//! `vigil demo`: a simulated ward of bedside monitors on the embedded bus. Most patients are
//! stable; about one in ten deteriorates over a minute or two (rising pulse and respiration,
//! falling SpO2 and blood pressure, fever), so NEWS2 alerts appear within the first minute.
//! Half the monitors speak JSON, half MessagePack, as real gateways do.
//!
//! Beside the ward, a clinic (location `clinic-1`) runs a day compressed into minutes: a new
//! appointment every few seconds with one of four providers and one of ten chairs, check-ins
//! (some late), providers calling patients in, chairs occupied and freed. One provider is slow
//! and one chair overruns, so `delay.waiting`, `delay.provider` and `delay.resource_overrun`
//! appear within the first two minutes. The demo's delay thresholds are in seconds
//! ([`compressed_delay_rules`]) unless a configuration file sets them.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use serde_json::json;
use vigil_config::{Role, RuleConfig, TokenConfig};
use vigil_streams::Bus;

pub const TENANT: &str = "demo";
const UNITS: [&str; 2] = ["ward-a", "ward-b"];
/// The simulated clinic's location.
pub const CLINIC: &str = "clinic-1";
/// Seconds between readings of one monitor.
const PERIOD_SECS: f64 = 2.0;

pub fn tokens() -> Vec<TokenConfig> {
    let token = |token: &str, role, units: &[&str]| TokenConfig {
        token: token.into(),
        tenant: TENANT.into(),
        role,
        units: units.iter().map(|u| u.to_string()).collect(),
        name: None,
        page_roles: Vec::new(),
    };
    vec![
        token("demo-admin-token", Role::Admin, &[]),
        token("demo-nurse-ward-a", Role::Nurse, &["ward-a"]),
        token("demo-viewer-token", Role::Viewer, &[]),
        token("demo-pager-ward-a", Role::Pager, &["ward-a"]),
        token("demo-coordinator-clinic-1", Role::Coordinator, &[CLINIC]),
    ]
}

/// The delay rules in seconds rather than minutes, so a demo shows them at once: waiting
/// 45 s, a provider 20 s behind on average (clear at 8 s), a chair 20 s past its expected
/// free time. Rules the configuration already sets are left alone.
pub fn compressed_delay_rules(rules: &mut std::collections::BTreeMap<String, RuleConfig>) {
    let secs = |s| Some(vigil_config::Duration::from_secs(s));
    for (name, window, clear_below) in [
        ("delay.waiting", 45, None),
        ("delay.provider", 20, Some(8)),
        ("delay.resource_overrun", 20, None),
    ] {
        rules.entry(name.to_string()).or_insert_with(|| RuleConfig {
            window: secs(window),
            clear_below: clear_below.and_then(secs),
            ..RuleConfig::default()
        });
    }
}

pub fn print_banner(addr: SocketAddr, patients: usize) {
    println!(
        "vigil demo: {patients} simulated patients on units ward-a and ward-b (tenant `demo`)"
    );
    println!("  staff dashboard page:        http://{addr}/?token=demo-admin-token");
    println!("  pager view (ward-a):         http://{addr}/pager?token=demo-pager-ward-a");
    println!(
        "  practice view (clinic-1):    http://{addr}/?token=demo-coordinator-clinic-1#practice"
    );
    println!("  dashboard WebSocket (admin): ws://{addr}/ws?token=demo-admin-token");
    println!("  nurse of ward-a:             ws://{addr}/ws?token=demo-nurse-ward-a");
    println!("  viewer:                      ws://{addr}/ws?token=demo-viewer-token");
    println!("  pager of ward-a:             ws://{addr}/ws?token=demo-pager-ward-a");
    println!("  clinic coordinator:          ws://{addr}/ws?token=demo-coordinator-clinic-1");
    println!(
        "  then send: {{\"type\":\"subscribe\",\"id\":\"s1\",\"channels\":[\"alerts\",\"patients\",\"resources\",\"pages\"]}}"
    );
    println!("  metrics: http://{addr}/metrics   Ctrl-C stops");
}

struct Monitor {
    id: String,
    unit: &'static str,
    bed: String,
    base: [f64; 5],
    /// Seconds after start when deterioration begins, and how long it takes to peak.
    deteriorates: Option<(f64, f64)>,
    seq: u64,
}

fn now_rfc3339() -> String {
    vigil_streams::wall_clock().to_string()
}

/// Publishes readings for `n` patients until aborted.
pub async fn simulate_ward(bus: Bus, n: usize) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut monitors: Vec<Monitor> = (0..n)
        .map(|i| Monitor {
            id: format!("patient-{i:04}"),
            // Blocks of ten per unit, so every unit has deteriorating patients (i % 10 == 3).
            unit: UNITS[(i / 10) % UNITS.len()],
            // Numbered within the unit: its first block of ten has beds 1-10, the next 11-20.
            bed: format!("b{}", (i / (10 * UNITS.len())) * 10 + i % 10 + 1),
            base: [
                rng.random_range(62.0..84.0),
                rng.random_range(13.0..18.0),
                rng.random_range(96.0..99.0),
                rng.random_range(36.5..37.3),
                rng.random_range(112.0..135.0),
            ],
            deteriorates: (i % 10 == 3)
                .then(|| (rng.random_range(5.0..40.0), rng.random_range(40.0..90.0))),
            seq: 0,
        })
        .collect();
    let start = std::time::Instant::now();
    let tick =
        Duration::from_secs_f64(PERIOD_SECS / n.max(1) as f64).max(Duration::from_micros(200));
    let per_tick = ((n as f64 * tick.as_secs_f64() / PERIOD_SECS).ceil() as usize).max(1);
    let mut interval = tokio::time::interval(tick);
    let mut next = 0usize;
    loop {
        interval.tick().await;
        for _ in 0..per_tick {
            let m = &mut monitors[next % n.max(1)];
            next += 1;
            m.seq += 1;
            let t = start.elapsed().as_secs_f64();
            let s = match m.deteriorates {
                Some((from, ramp)) if t > from => ((t - from) / ramp).min(1.0),
                _ => 0.0,
            };
            let noise = |rng: &mut rand::rngs::StdRng, x: f64| rng.random_range(-x..x);
            let [hr, rr, spo2, temp, sbp] = m.base;
            let hr = hr + 48.0 * s + noise(&mut rng, 2.0);
            let rr = rr + 11.0 * s + noise(&mut rng, 1.0);
            let spo2 = (spo2 - 9.0 * s + noise(&mut rng, 0.5)).min(100.0);
            let temp = temp + 1.9 * s + noise(&mut rng, 0.1);
            let sbp = sbp - 38.0 * s + noise(&mut rng, 3.0);
            let envelope = json!({
                "eventId": format!("{}-{}", m.id, m.seq),
                "eventType": "vitals.observation.v1",
                "eventVersion": "1",
                "occurredAt": now_rfc3339(),
                "producer": "demo-monitor-gw",
                "tenantId": TENANT,
                "data": {
                    "patientId": m.id, "unitId": m.unit, "bedId": m.bed,
                    "deviceId": format!("mon-{}", m.id),
                    "hr": hr.round(), "rr": rr.round(), "spo2": spo2.round(), "onOxygen": false,
                    "temp": (temp * 10.0).round() / 10.0, "sbp": sbp.round(), "consciousness": "A"
                }
            });
            let msgpack = m.seq % 2 == 0;
            let (payload, headers) = if msgpack {
                let bytes = rmp_serde::to_vec_named(&envelope).unwrap_or_default();
                (
                    bytes,
                    vec![("Content-Type", "application/msgpack".to_string())],
                )
            } else {
                (
                    serde_json::to_vec(&envelope).unwrap_or_default(),
                    Vec::new(),
                )
            };
            let subject = format!("vitals.{TENANT}.{}", m.id);
            if bus
                .publish(subject, headers, Bytes::from(payload))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// Publishes one practice event (JSON) on `subject`.
async fn practice_event(
    bus: &Bus,
    subject: String,
    event_id: String,
    event_type: &str,
    data: serde_json::Value,
) -> bool {
    let envelope = json!({
        "eventId": event_id, "eventType": event_type, "eventVersion": "1",
        "occurredAt": now_rfc3339(), "producer": "demo-booking", "tenantId": TENANT,
        "data": data
    });
    let payload = serde_json::to_vec(&envelope).unwrap_or_default();
    bus.publish(subject, Vec::new(), Bytes::from(payload))
        .await
        .is_ok()
}

fn in_secs(secs: f64) -> String {
    vigil_streams::wall_clock()
        .plus_millis((secs * 1000.0) as i64)
        .to_string()
}

/// One appointment's life, in seconds: booked `lead` before its start, checked in
/// `arrive` after it (negative: early), called `wait` after the later of the two, in the
/// chair for `stay` (expected `expected`), then the chair is cleaned for 5 s.
struct Visit {
    n: u64,
    provider: usize,
    chair: usize,
    arrive: f64,
    wait: f64,
    stay: f64,
    expected: f64,
}

async fn visit(bus: Bus, v: Visit) -> Option<()> {
    const LEAD: f64 = 8.0;
    let id = format!("appt-{:05}", v.n);
    let patient = format!("outpatient-{:05}", v.n);
    let provider = format!("prov-{}", v.provider);
    let chair = format!("chair-{:02}", v.chair);
    let subject = format!("checkin.{TENANT}.{id}");
    let ok = practice_event(
        &bus,
        subject.clone(),
        format!("{id}-scheduled"),
        "appointment.scheduled.v1",
        json!({"appointmentId": id, "patientId": patient, "providerId": provider,
               "locationId": CLINIC, "resourceId": chair,
               "scheduledStart": in_secs(LEAD), "expectedDurationMinutes": 30}),
    )
    .await;
    ok.then_some(())?;
    let sleep = |s: f64| tokio::time::sleep(Duration::from_secs_f64(s.max(0.0)));
    sleep(LEAD + v.arrive).await;
    practice_event(
        &bus,
        subject.clone(),
        format!("{id}-checkin"),
        "patient.checkin.v1",
        json!({"patientId": patient, "appointmentId": id, "locationId": CLINIC,
               "checkinAt": in_secs(0.0), "method": "kiosk",
               "notes": if v.arrive > 0.0 { "arrived late" } else { "" }}),
    )
    .await
    .then_some(())?;
    sleep(v.wait + (-v.arrive).max(0.0)).await;
    let status = |from: &str, to: &str, n: &str| {
        let bus = bus.clone();
        let (subject, id) = (subject.clone(), id.clone());
        let data = json!({"appointmentId": id, "previousStatus": from, "newStatus": to,
                          "updatedAt": in_secs(0.0), "actorId": "demo-staff"});
        let event_id = format!("{id}-{n}");
        async move {
            practice_event(
                &bus,
                subject,
                event_id,
                "appointment.status.changed.v1",
                data,
            )
            .await
        }
    };
    let occupancy = |status: &str, appointment: Option<&str>, free_in: Option<f64>, n: &str| {
        let bus = bus.clone();
        let data = json!({"resourceId": chair, "status": status,
                          "currentAppointmentId": appointment,
                          "expectedFreeAt": free_in.map(in_secs), "locationId": CLINIC});
        let (subject, event_id) = (format!("occupancy.{TENANT}.{chair}"), format!("{id}-{n}"));
        async move {
            practice_event(
                &bus,
                subject,
                event_id,
                "resource.occupancy.update.v1",
                data,
            )
            .await
        }
    };
    let provider_status = |status: &str, n: &str| {
        let bus = bus.clone();
        let data = json!({"providerId": provider, "status": status,
                          "effectiveAt": in_secs(0.0), "locationId": CLINIC});
        let (subject, event_id) = (
            format!("occupancy.{TENANT}.{provider}"),
            format!("{id}-{n}"),
        );
        async move { practice_event(&bus, subject, event_id, "provider.status.update.v1", data).await }
    };
    status("checked_in", "in_progress", "started")
        .await
        .then_some(())?;
    occupancy("occupied", Some(&id), Some(v.expected), "occupied")
        .await
        .then_some(())?;
    provider_status("busy", "busy").await.then_some(())?;
    sleep(v.stay).await;
    status("in_progress", "completed", "completed")
        .await
        .then_some(())?;
    occupancy("cleaning", None, None, "cleaning")
        .await
        .then_some(())?;
    provider_status("available", "available")
        .await
        .then_some(())?;
    sleep(5.0).await;
    occupancy("free", None, None, "free").await.then_some(())
}

/// Runs the clinic until aborted: an appointment every 3 s, round-robin over four providers
/// (`prov-3` calls patients in a minute late) and ten chairs (`chair-05` overruns).
pub async fn simulate_clinic(bus: Bus) {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let mut tasks = tokio::task::JoinSet::new();
    let mut every = tokio::time::interval(Duration::from_secs(3));
    for n in 0u64.. {
        every.tick().await;
        let provider = (n % 4) as usize + 1;
        let chair = (n % 10) as usize + 1;
        let v = Visit {
            n,
            provider,
            chair,
            arrive: rng.random_range(-4.0..6.0),
            wait: if provider == 3 {
                rng.random_range(55.0..70.0)
            } else {
                rng.random_range(1.0..6.0)
            },
            stay: if chair == 5 {
                60.0
            } else {
                rng.random_range(12.0..24.0)
            },
            expected: 20.0,
        };
        tasks.spawn(visit(bus.clone(), v));
        while tasks.try_join_next().is_some() {}
    }
}
