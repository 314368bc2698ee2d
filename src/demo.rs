//! `vigil demo`: a simulated ward of bedside monitors on the embedded bus. Most patients are
//! stable; about one in ten deteriorates over a minute or two (rising pulse and respiration,
//! falling SpO2 and blood pressure, fever), so NEWS2 alerts appear within the first minute.
//! Half the monitors speak JSON, half MessagePack, as real gateways do.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use serde_json::json;
use vigil_config::{Role, TokenConfig};
use vigil_streams::Bus;

pub const TENANT: &str = "demo";
const UNITS: [&str; 2] = ["ward-a", "ward-b"];
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
    ]
}

pub fn print_banner(addr: SocketAddr, patients: usize) {
    println!(
        "vigil demo: {patients} simulated patients on units ward-a and ward-b (tenant `demo`)"
    );
    println!("  dashboard WebSocket (admin): ws://{addr}/ws?token=demo-admin-token");
    println!("  nurse of ward-a:             ws://{addr}/ws?token=demo-nurse-ward-a");
    println!("  viewer:                      ws://{addr}/ws?token=demo-viewer-token");
    println!("  pager of ward-a:             ws://{addr}/ws?token=demo-pager-ward-a");
    println!(
        "  then send: {{\"type\":\"subscribe\",\"id\":\"s1\",\"channels\":[\"alerts\",\"patients\",\"pages\"]}}"
    );
    println!("  metrics: http://{addr}/metrics   Ctrl-C stops");
}

struct Monitor {
    id: String,
    unit: &'static str,
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
                    "patientId": m.id, "unitId": m.unit, "deviceId": format!("mon-{}", m.id),
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
