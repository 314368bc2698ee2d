//! `live` (contracts.md section 7): simulated monitors publish MessagePack vitals at `--rate`
//! for `--patients` patients; sentinel patients deteriorate at `--triggers` per second, and a
//! WebSocket client times each publish-to-alert round trip with an HDR histogram. With
//! `--dashboards N`, N more sockets subscribe as staff dashboards do (`dashboards.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio_tungstenite::tungstenite::Message;

use crate::envelope::{msgpack_headers, vitals};
use crate::publish::Publisher;
use crate::report::{Report, consumer_pending, latency_of, opened_alert_patient, print_report};
use crate::{Args, dashboards};

pub(crate) async fn run(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    let (Some(ws_url), Some(token)) = (&args.ws_url, &args.token) else {
        bail!("live mode needs --ws-url and --token");
    };
    let sep = if ws_url.contains('?') { '&' } else { '?' };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}{sep}token={token}"))
        .await
        .with_context(|| format!("cannot open {ws_url}"))?;
    let sub = r#"{"type":"subscribe","id":"lt","channels":["alerts"],"minLevel":"critical"}"#;
    ws.send(Message::text(sub)).await?;

    let triggers: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let received = Arc::new(AtomicU64::new(0));
    // With `--partitions N` (a cluster), also each partition's: a hand-over's gap shows in the
    // partitions that moved, and must not in those that stayed.
    let by_partition: Arc<Mutex<Vec<Histogram<u64>>>> = Arc::new(Mutex::new(
        (0..args.partitions.unwrap_or(0))
            .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3))
            .collect::<Result<_, _>>()?,
    ));
    let reader = {
        let (triggers, histogram, received, by_partition) = (
            triggers.clone(),
            histogram.clone(),
            received.clone(),
            by_partition.clone(),
        );
        let (tenant, partitions) = (args.tenant.clone(), args.partitions.unwrap_or(0));
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                let now = Instant::now();
                let Some(patient) = opened_alert_patient(t.as_str()) else {
                    continue;
                };
                let sent = triggers.lock().ok().and_then(|mut m| m.remove(&patient));
                if let Some(sent) = sent {
                    received.fetch_add(1, Relaxed);
                    let us = now.duration_since(sent).as_micros() as u64;
                    if let Ok(mut h) = histogram.lock() {
                        let _ = h.record(us.max(1));
                    }
                    if partitions > 0
                        && let Ok(mut hs) = by_partition.lock()
                    {
                        let p = vigil_streams::partition::partition_of(
                            &[&tenant, &patient],
                            partitions,
                        );
                        if let Some(h) = hs.get_mut(p as usize) {
                            let _ = h.record(us.max(1));
                        }
                    }
                }
            }
        })
    };

    let fanout = Arc::new(dashboards::Fanout::new(args.dashboards));
    let dashboard_readers = if args.dashboards > 0 {
        dashboards::open(&format!("{ws_url}{sep}token={token}"), &fanout).await?
    } else {
        Vec::new()
    };

    let start = Instant::now();
    let end = start + Duration::from_secs(args.duration);
    let mut publisher = Publisher::new(js.clone(), args.in_flight);
    let acked = publisher.acked.clone();
    let tenant = args.tenant.clone();
    let patients: Vec<String> = (0..args.patients.max(1))
        .map(|i| format!("lt-{i}"))
        .collect();

    // Sentinel patients: two NEWS2-8 readings each, timed from the second publish.
    // One task per sentinel, started on the tick: a sentinel waits for its publish
    // acknowledgements, the next one does not wait for it (a loaded machine's acknowledgement
    // round trips would otherwise set the trigger rate).
    let trigger_task = {
        let (js, tenant, triggers, fanout) =
            (js.clone(), tenant.clone(), triggers.clone(), fanout.clone());
        let every = Duration::from_secs_f64(1.0 / args.triggers.max(0.01));
        tokio::spawn(async move {
            let mut started = Vec::new();
            let mut tick = tokio::time::interval(every);
            let run = format!("{:x}", std::process::id());
            while Instant::now() < end {
                tick.tick().await;
                let patient = format!("lt-trig-{run}-{}", started.len());
                let (js, tenant, triggers, fanout) =
                    (js.clone(), tenant.clone(), triggers.clone(), fanout.clone());
                started.push(tokio::spawn(async move {
                    trigger(&js, &tenant, patient, &triggers, &fanout).await
                }));
            }
            let mut sent = 0u64;
            for t in started {
                if t.await.unwrap_or(false) {
                    sent += 1;
                }
            }
            sent
        })
    };

    let lag = Arc::new(AtomicU64::new(0));
    let lag_task = {
        let (js, lag, name) = (js.clone(), lag.clone(), args.consumer.clone());
        tokio::spawn(async move {
            while Instant::now() < end {
                if let Some((pending, ack_pending, _)) = consumer_pending(&js, &name).await {
                    lag.fetch_max(pending + ack_pending, Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    let per_ms = args.rate / 1000.0;
    let mut owed = 0.0;
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let run = format!("{:x}", std::process::id());
    while Instant::now() < end {
        tick.tick().await;
        owed += per_ms;
        let now = chrono::Utc::now();
        while owed >= 1.0 {
            owed -= 1.0;
            let patient = &patients[(seq % patients.len() as u64) as usize];
            let payload = vitals(&tenant, patient, format!("lt-{run}-{seq}"), now, false);
            publisher
                .publish(format!("vitals.{tenant}.{patient}"), payload)
                .await?;
            seq += 1;
        }
    }
    publisher.finish().await;
    let elapsed = start.elapsed().as_secs_f64();
    let expected = trigger_task.await.unwrap_or(0);
    let _ = lag_task.await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    if args.dashboards > 0 {
        // Alerts still on their way to a dashboard are late, not lost: wait for them.
        fanout.settle().await;
    }
    reader.abort();
    for r in &dashboard_readers {
        r.abort();
    }
    let lag_end = consumer_pending(&js, &args.consumer)
        .await
        .map_or(0, |(p, a, _)| p + a);
    let h = histogram.lock().map(|h| h.clone()).ok();
    let report = Report {
        mode: "live",
        patients: args.patients,
        duration_s: elapsed,
        events_published: acked.load(Relaxed),
        publish_failures: publisher.failed,
        events_per_sec: acked.load(Relaxed) as f64 / elapsed,
        consumer_lag_max: lag.load(Relaxed),
        consumer_lag_end: lag_end,
        alerts_expected: expected,
        alerts_received: received.load(Relaxed),
        latency_ms: h.as_ref().and_then(latency_of),
        latency_by_partition: by_partition
            .lock()
            .map(|hs| {
                hs.iter()
                    .enumerate()
                    .filter_map(|(p, h)| Some((p as u32, latency_of(h)?)))
                    .collect()
            })
            .unwrap_or_default(),
        dashboards: (args.dashboards > 0).then(|| fanout.report()),
    };
    print_report(args, &report)
}

/// One sentinel: two deteriorated readings, the first stamped a second earlier; once the
/// first is stored, the second is published and its alert timed from then. `false` when the
/// first could not be stored (that sentinel is not counted).
async fn trigger(
    js: &jetstream::Context,
    tenant: &str,
    patient: String,
    triggers: &Mutex<HashMap<String, Instant>>,
    fanout: &dashboards::Fanout,
) -> bool {
    let subject = format!("vitals.{tenant}.{patient}");
    let t0 = chrono::Utc::now() - chrono::Duration::seconds(1);
    let first = vitals(tenant, &patient, format!("{patient}-1"), t0, true);
    let stored = match js
        .publish_with_headers(subject.clone(), msgpack_headers(), first)
        .await
    {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    if !stored {
        return false;
    }
    let second = vitals(
        tenant,
        &patient,
        format!("{patient}-2"),
        chrono::Utc::now(),
        true,
    );
    let at = Instant::now();
    if let Ok(mut m) = triggers.lock() {
        m.insert(patient.clone(), at);
    }
    fanout.sent(&patient, at);
    if let Ok(ack) = js
        .publish_with_headers(subject, msgpack_headers(), second)
        .await
    {
        let _ = ack.await;
    }
    true
}
