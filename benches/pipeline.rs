//! Criterion benches of the per-event hot path, reported as events per second
//! (`Throughput::Elements`): decode JSON vs MessagePack (and decoded then owned, with and
//! without the bed), NEWS2 scoring, the per-patient update (chart, score, rules), one
//! evaluation of the sepsis model, the ingest dedupe, the per-resource practice update and an
//! alert transition's serialization for dashboards and `ALERTS`. Run:
//! `cargo bench --bench pipeline`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use vigil_engine::scores::news2::{Chart, Freshness, News2};
use vigil_engine::{Consciousness, Patient, Settings, Timestamp, Vitals};
use vigil_streams::dedupe::{Dedupe, Fingerprinter};
use vigil_streams::{Encoding, decode_vitals};

const BATCH: usize = 1000;
const T0: i64 = 1_764_234_300_000;

fn envelope(i: usize) -> serde_json::Value {
    json!({
        "eventId": format!("evt-{i}"), "eventType": "vitals.observation.v1", "eventVersion": "1",
        "occurredAt": "2025-11-27T09:05:00Z", "producer": "monitor-gw-3", "tenantId": "clinic-abc",
        "data": { "patientId": "patient-123", "unitId": "icu-3", "hr": 112, "rr": 24, "spo2": 93,
                  "onOxygen": false, "temp": 38.6, "sbp": 98, "consciousness": "A" }
    })
}

fn decode(c: &mut Criterion) {
    let json: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| serde_json::to_vec(&envelope(i)).unwrap_or_default())
        .collect();
    let packed: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| rmp_serde::to_vec_named(&envelope(i)).unwrap_or_default())
        .collect();
    let now = Timestamp::from_millis(T0 + 60_000);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, msgs, enc) in [
        ("json", &json, Encoding::Json),
        ("msgpack", &packed, Encoding::MessagePack),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                for m in msgs {
                    black_box(decode_vitals("vitals.clinic-abc.patient-123", m, enc, now).ok());
                }
            })
        });
    }
    // Every message's `Content-Type` header, read before its payload.
    let types = ["application/msgpack", "application/json; charset=utf-8"];
    g.bench_function("content_type", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                black_box(Encoding::from_content_type(black_box(Some(types[i % 2]))).ok());
            }
        })
    });
    g.finish();
    // What ingest hands the actors: decoded, then owned (to cross threads). The monitors of
    // the contract name the bed, which costs one more owned string per reading.
    let with_bed: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let mut e = envelope(i);
            e["data"]["bedId"] = format!("b{}", i % 40).into();
            serde_json::to_vec(&e).unwrap_or_default()
        })
        .collect();
    let mut g = c.benchmark_group("decode_owned");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, msgs) in [("json", &json), ("json_with_bed", &with_bed)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                for m in msgs {
                    let r = decode_vitals("vitals.clinic-abc.patient-123", m, Encoding::Json, now);
                    black_box(r.map(vigil_engine::Reading::into_owned).ok());
                }
            })
        });
    }
    g.finish();
}

fn vitals(i: usize) -> Vitals {
    Vitals {
        hr: Some(70.0 + (i % 60) as f64),
        rr: Some(12.0 + (i % 14) as f64),
        spo2: Some(90.0 + (i % 10) as f64),
        on_oxygen: Some(i % 7 == 0),
        temp: Some(36.0 + (i % 30) as f64 / 10.0),
        sbp: Some(95.0 + (i % 50) as f64),
        consciousness: Some(Consciousness::A),
        ..Vitals::default()
    }
}

fn scoring(c: &mut Criterion) {
    let charts: Vec<Chart> = (0..BATCH)
        .map(|i| {
            let mut ch = Chart::default();
            ch.record(&vitals(i), Timestamp::from_millis(T0));
            ch
        })
        .collect();
    let at = Timestamp::from_millis(T0 + 60_000);
    let mut g = c.benchmark_group("news2");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("score", |b| {
        b.iter(|| {
            for ch in &charts {
                black_box(News2::score(ch, at, Freshness::default()).total);
            }
        })
    });
    g.finish();
}

fn patient_update(c: &mut Criterion) {
    // `observe_10k_patients`: every reading is a minute or more after the patient's last, so
    // the sepsis model (at most once a minute) is evaluated on every one: its worst case.
    // `..._1hz`: every patient reads once a second, as a bedside monitor does, so the model
    // is evaluated on one reading in sixty: the average the target is about. Each
    // `no_model` is its pair without the model, in the same run.
    let mut without = Settings::default();
    without.model_rule.enabled = false;
    let mut g = c.benchmark_group("patient");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, settings, step_ms) in [
        ("observe_10k_patients", Settings::default(), 60_000),
        ("observe_10k_patients_no_model", without.clone(), 60_000),
        // A batch is a tenth of the ward, so a patient reads every tenth batch: 100 ms a
        // batch is 1 Hz per patient.
        ("observe_10k_patients_1hz", Settings::default(), 100),
        ("observe_10k_patients_1hz_no_model", without, 100),
    ] {
        let patients = 10_000;
        let mut ward: Vec<Patient> = (0..patients)
            .map(|i| Patient::new("clinic-abc", &format!("patient-{i}"), "icu-3"))
            .collect();
        let readings: Vec<Vitals> = (0..BATCH).map(vitals).collect();
        let mut batch = 0i64;
        g.bench_function(name, |b| {
            b.iter(|| {
                batch += 1;
                let at = Timestamp::from_millis(T0 + batch * step_ms);
                for (i, v) in readings.iter().enumerate() {
                    let p = &mut ward[(batch as usize * BATCH + i) % patients];
                    black_box(p.observe("icu-3", v, at, at, &settings).alerts.len());
                }
            })
        });
    }
    g.finish();
}

/// One evaluation of the built-in sepsis model for a patient whose monitor sent the five row
/// vitals once a minute for the whole 6 h horizon (360 rows): what a patient read once a
/// minute costs at each reading, the drain's workload at steady state.
fn model(c: &mut Criterion) {
    use vigil_engine::patient::features::Carry;
    use vigil_engine::patient::window::Window;
    let settings = Settings::default();
    let mut window = Window::default();
    let mut at = Timestamp::from_millis(T0);
    for i in 0..360 {
        at = Timestamp::from_millis(T0 + i as i64 * 60_000);
        window.record(&vitals(i), at, settings.window);
    }
    let mut g = c.benchmark_group("model");
    g.throughput(Throughput::Elements(1));
    g.bench_function("evaluate_360_rows", |b| {
        b.iter(|| black_box(settings.model.evaluate(black_box(&window), None, at).risk))
    });
    // The monitor's next reading a minute later, then the evaluation it brings: read afresh,
    // and through the patient's carry (what the engine does).
    for carried in [false, true] {
        let name = if carried {
            "next_minute_carried"
        } else {
            "next_minute_fresh"
        };
        let mut window = window.clone();
        let mut carry = Carry::default();
        let mut i = 360;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let at = Timestamp::from_millis(T0 + i as i64 * 60_000);
                window.record(&vitals(i), at, settings.window);
                let carry = carried.then_some(&mut carry);
                black_box(
                    settings
                        .model
                        .evaluate_carried(&window, None, at, carry)
                        .risk,
                )
            })
        });
    }
    g.finish();
}

fn dedupe(c: &mut Criterion) {
    let ids: Vec<String> = (0..BATCH).map(|i| format!("evt-{i}")).collect();
    let mut d = Dedupe::new(262_144);
    let f = Fingerprinter::default();
    let mut round = 0u64;
    let mut g = c.benchmark_group("dedupe");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("first_time", |b| {
        b.iter(|| {
            round += 1;
            let tenant = format!("t{round}");
            for id in &ids {
                black_box(d.first_time(f.of(&tenant, id)));
            }
        })
    });
    g.finish();
}

/// Per-resource event handling (issue 5): what a practice actor does per input, without the
/// actor: the keeper's update and rule check, its next deadline and its `resource` view. A
/// clinic network of 20,000 chairs (occupied, then freed) and 5,000 providers (appointments
/// booked and started, 24 a day each).
fn practice(c: &mut Criterion) {
    use vigil_engine::practice::ResourceStatus;
    use vigil_engine::practice::appointment::{Effect, OccupancyUpdate};
    use vigil_engine::practice::keeper::{Keeper, KeeperInput, KeeperKind};

    let settings = Settings::default();
    let mut chairs: Vec<Keeper> = (0..20_000)
        .map(|i| Keeper::new(KeeperKind::Resource, "clinic-abc", &format!("chair-{i}")))
        .collect();
    let mut providers: Vec<Keeper> = (0..5_000)
        .map(|i| Keeper::new(KeeperKind::Provider, "clinic-abc", &format!("prov-{i}")))
        .collect();
    let appointments: Vec<String> = (0..24).map(|i| format!("appt-{i}")).collect();
    let mut round = 0usize;
    let mut g = c.benchmark_group("practice");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("keeper_event", |b| {
        b.iter(|| {
            round += 1;
            let now = Timestamp::from_millis(T0 + round as i64 * 1000);
            for i in 0..BATCH {
                let n = round * BATCH + i;
                let (keeper, input) = if i % 2 == 0 {
                    let occupied = (n / chairs.len()) % 2 == 0;
                    let update = OccupancyUpdate {
                        resource: String::new(),
                        status: if occupied {
                            ResourceStatus::Occupied
                        } else {
                            ResourceStatus::Free
                        },
                        appointment: None,
                        expected_free_at: occupied.then(|| now.plus_millis(1_800_000)),
                        location: None,
                    };
                    let k = n % chairs.len();
                    (&mut chairs[k], KeeperInput::Occupancy { update, at: now })
                } else {
                    let k = n % providers.len();
                    let appointment = appointments[(n / providers.len()) % 24].clone();
                    let effect = if (n / providers.len()) % 48 < 24 {
                        Effect::Booked {
                            provider: String::new(),
                            location: String::new(),
                            appointment,
                            start: now,
                        }
                    } else {
                        Effect::Started {
                            provider: String::new(),
                            appointment,
                            at: now,
                        }
                    };
                    (&mut providers[k], KeeperInput::Effect(effect))
                };
                black_box(keeper.apply(&input, now, &settings).len());
                black_box(keeper.next_deadline(now, &settings));
                black_box(keeper.view(now, &settings).delay_minutes);
            }
        })
    });
    g.finish();
}

/// What each alert transition costs on its way out: serialized for the dashboards and wrapped
/// in its `ALERTS` envelope. `twice` serializes the alert for each (as before issue 17's change),
/// `once` serializes it once and shares the JSON; both in one run, so they compare as a pair.
fn alert_output(c: &mut Criterion) {
    use vigil_streams::output::{alert_json, alert_message};
    let settings = Settings::default();
    let v = Vitals {
        hr: Some(140.0),
        rr: Some(30.0),
        spo2: Some(85.0),
        ..Vitals::default()
    };
    let mut p = Patient::new("clinic-abc", "patient-123", "icu-3");
    let t = |m: i64| Timestamp::from_millis(T0 + m * 60_000);
    p.observe("icu-3", &v, t(0), t(0), &settings);
    let Some(alert) = p.observe("icu-3", &v, t(1), t(1), &settings).alerts.pop() else {
        return;
    };
    let mut g = c.benchmark_group("alert_output");
    g.throughput(Throughput::Elements(1));
    g.bench_function("twice", |b| {
        b.iter(|| {
            let dashboards = serde_json::to_string(black_box(&alert)).unwrap_or_default();
            let stored = alert_message(&alert, &alert_json(&alert), None);
            black_box((dashboards.len(), stored.payload.len()))
        })
    });
    g.bench_function("once", |b| {
        b.iter(|| {
            let json = alert_json(black_box(&alert));
            let dashboards = json.get().to_owned();
            let stored = alert_message(&alert, &json, None);
            black_box((dashboards.len(), stored.payload.len()))
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    decode,
    scoring,
    patient_update,
    model,
    dedupe,
    practice,
    alert_output
);
criterion_main!(benches);
