//! Issue 4's timer target: escalation timers for 100,000 open alerts held at once have no
//! measurable effect on ingest. Two wards of 100,000 patient actors on the real shards (one
//! arbiter per core): in `calm` every patient has had normal readings; in `escalating` every
//! patient has an open critical alert whose escalation timer is armed (the default policy's next
//! level is 5 minutes away, so the timers are held, not fired, during the measurement). Each
//! bench then delivers readings for 10,000 other patients through `Shards::deliver`, in
//! batches of 1,000, and times until every reading is applied. The two figures should match.
//! Run: `cargo bench -p vigil-actors --bench escalation_timers`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigil_actors::{ActorSettings, Backpressure, Outputs, Receipt, Shards};
use vigil_engine::{
    Alert, Consciousness, EventMeta, PatientStatus, Profiles, Reading, ReadingBody, Settings,
    Timestamp, Vitals,
};

const WARD: usize = 100_000;
const INGEST_PATIENTS: usize = 10_000;
const BATCH: usize = 1_000;

/// Counts what the actors emit; publishes nothing.
#[derive(Default)]
struct Counting {
    opened: AtomicUsize,
}

impl Outputs for Counting {
    fn alert(&self, alert: &Alert, _: Option<Receipt>) -> Option<Backpressure> {
        if alert.version == 1 {
            self.opened.fetch_add(1, Relaxed);
        }
        None
    }
    fn patient(&self, _: PatientStatus) {}
    fn restored(&self, _: &Alert) {}
    fn resource(&self, _: vigil_engine::practice::keeper::ResourceView) {}
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_millis(ms)
}

/// NEWS2 8 when `high` (RR 26, SpO2 91, HR 112), else 0.
fn vitals(high: bool) -> Vitals {
    let (hr, rr, spo2) = if high {
        (112.0, 26.0, 91.0)
    } else {
        (70.0, 16.0, 98.0)
    };
    Vitals {
        hr: Some(hr),
        rr: Some(rr),
        spo2: Some(spo2),
        on_oxygen: Some(false),
        temp: Some(37.0),
        sbp: Some(120.0),
        consciousness: Some(Consciousness::A),
        ..Vitals::default()
    }
}

fn input(prefix: &str, i: usize, at: Timestamp, v: &Vitals) -> Reading<'static> {
    Reading {
        meta: EventMeta {
            event_id: format!("{prefix}-{i}-{at}").into(),
            tenant_id: "clinic-abc".into(),
            occurred_at: at,
            correlation_id: None,
        },
        patient_id: format!("{prefix}-{i}").into(),
        unit_id: "icu-3".into(),
        bed_id: None,
        body: ReadingBody::Vitals(v.clone()),
    }
}

/// Delivers `inputs` in batches and waits until every one is applied.
async fn deliver_all(shards: &Shards, inputs: Vec<Reading<'static>>) {
    let receipt: Receipt = Arc::new(());
    let applied = Arc::downgrade(&receipt);
    let mut inputs = inputs.into_iter().peekable();
    while inputs.peek().is_some() {
        let batch: Vec<Reading<'static>> = inputs.by_ref().take(BATCH).collect();
        assert!(shards.deliver(batch, receipt.clone()).await);
    }
    drop(receipt);
    while applied.strong_count() > 0 {
        tokio::time::sleep(Duration::from_micros(50)).await;
    }
}

/// A ward of `WARD` actors; with `alerts`, each holds an open critical alert and its timer.
fn ward(rt: &tokio::runtime::Runtime, alerts: bool) -> Shards {
    let outputs = Arc::new(Counting::default());
    // One NEWS2 alert per patient: the learned sepsis screen, which flags these vitals too,
    // would open a second.
    let mut news2_only = Settings::default();
    news2_only.model_rule.enabled = false;
    let settings = ActorSettings {
        shards: 0,
        mailbox: 64,
        passivate_after_ms: 24 * 3_600_000,
        profiles: Arc::new(Profiles::single(news2_only)),
        tick_every: Duration::from_secs(10),
        on_lost: |_| panic!("a batch was dropped unapplied"),
    };
    let shards = Shards::start(settings, outputs.clone()).expect("actors start");
    let v = vitals(alerts);
    rt.block_on(async {
        // news2.high needs two consecutive scores of 7 or more.
        for ago in [2_000, 1_000] {
            let at = Timestamp::from_millis(now().millis() - ago);
            let inputs = (0..WARD).map(|i| input("ward", i, at, &v)).collect();
            deliver_all(&shards, inputs).await;
        }
        assert_eq!(shards.patient_count().await, WARD);
    });
    let expected = if alerts { WARD } else { 0 };
    assert_eq!(outputs.opened.load(Relaxed), expected, "open alerts held");
    shards
}

fn ingest_beside_held_timers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("ingest_beside_100k_patients");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(10));
    for (name, alerts) in [("calm", false), ("escalating", true)] {
        let shards = ward(&rt, alerts);
        let normal = vitals(false);
        // Readings a millisecond apart from three hours ago: each patient's in time order.
        let start = now().millis() - 3 * 3_600_000;
        let mut round = 0usize;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let inputs: Vec<Reading<'static>> = (0..iters as usize * BATCH)
                    .map(|_| {
                        round += 1;
                        let at = Timestamp::from_millis(start + round as i64);
                        input("ingest", round % INGEST_PATIENTS, at, &normal)
                    })
                    .collect();
                let started = Instant::now();
                rt.block_on(deliver_all(&shards, inputs));
                started.elapsed()
            })
        });
        shards.stop();
    }
    g.finish();
}

criterion_group!(benches, ingest_beside_held_timers);
criterion_main!(benches);
