//! `vigil-loadtest`: drives Vigil like a hospital does and reports what it measured.
//!
//! Modes (`--mode`):
//! - `live` (default, contracts.md §7): simulated monitors publish MessagePack vitals at `--rate`
//!   for `--patients` patients; sentinel patients deteriorate at `--triggers` per second, and a
//!   WebSocket client times each publish-to-alert round trip with an HDR histogram. With
//!   `--dashboards N`, N more sockets subscribe to `alerts` and `patients` as staff dashboards
//!   do; each sentinel alert is also timed to the last of them (`dashboards.rs`).
//! - `fill`: stores `--events` vitals for `--patients` patients in `VITALS` (one reading per
//!   patient per minute of event time, some patients deteriorating), for drain benchmarks.
//! - `bare`: a bare async-nats pull consumer that only acknowledges (ack-all per batch), reading
//!   the whole stored `VITALS`: the ceiling the engine is compared with.
//! - `clinic`: stores a clinic network's day of practice events in `CHECKINS` and `OCCUPANCY`:
//!   `--providers` providers (ten per location) with 24 appointments each and `--chairs`
//!   chairs; per appointment its schedule, check-in, start, chair occupied, provider busy,
//!   completion, chair cleaning and provider available (8 events, MessagePack). The day is
//!   compressed into the last half hour of event time (a slot a minute), so a drain measures
//!   throughput, not delay alerts.
//! - `export`: writes the `fill` workload (the same patients, readings and deteriorations) as
//!   newline-delimited JSON envelopes to `--out`, the form `vigil replay --events` reads; needs
//!   no NATS.
//! - `drain`: watches the engine's durable consumer (`--consumer`) on each `--stream` until
//!   it has acknowledged everything stored, and reports its events/s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

mod acuity;
mod dashboards;

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Mode {
    Live,
    Fill,
    Bare,
    Drain,
    Clinic,
    Export,
}

#[derive(Parser, Debug)]
#[command(name = "vigil-loadtest", version, about = "Load tester for Vigil")]
struct Args {
    #[arg(long, value_enum, default_value_t = Mode::Live)]
    mode: Mode,
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Gateway WebSocket URL (live mode), e.g. ws://127.0.0.1:8080/ws
    #[arg(long)]
    ws_url: Option<String>,
    /// Bearer token of the tenant under test (live mode).
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value = "loadtest")]
    tenant: String,
    #[arg(long, default_value_t = 10_000)]
    patients: usize,
    /// Background vitals per second, all patients together (live mode).
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Seconds to run (live mode).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Deteriorating sentinel patients per second whose alerts are timed (live mode).
    #[arg(long, default_value_t = 20.0)]
    triggers: f64,
    /// Staff dashboards (live mode): sockets subscribed to `alerts` and `patients`; every one
    /// must receive every sentinel alert, which is timed to the last of them.
    #[arg(long, default_value_t = 0)]
    dashboards: usize,
    /// Events to store (fill mode).
    #[arg(long, default_value_t = 2_000_000)]
    events: u64,
    /// The engine's durable consumer on VITALS (live: lag; drain: progress).
    #[arg(long, default_value = "vigil-engine")]
    consumer: String,
    /// Messages per pull request and per acknowledgement (bare mode). 512 is the bare
    /// consumer's best on this machine (256: -25 %, 1024 and 2048: slower and erratic).
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Bare mode: acknowledge every Nth message (ack-all) instead of each batch's last.
    #[arg(long)]
    ack_every: Option<u64>,
    /// Fill and export: a ward that is not calm (acuity.rs): 70 % stable, 20 % unwell, 10 %
    /// very unwell patients, every reading noisy, each vital present with probability 0.7.
    #[arg(long)]
    acuity_mix: bool,
    /// Fill mode: every patient's last two readings score NEWS2 8, so each ends with an open
    /// critical alert once the engine has drained the stream (the recovery benchmark).
    #[arg(long)]
    end_sick: bool,
    /// Publish acknowledgements kept in flight.
    #[arg(long, default_value_t = 4096)]
    in_flight: usize,
    /// Providers (clinic mode).
    #[arg(long, default_value_t = 5_000)]
    providers: usize,
    /// Chairs and rooms (clinic mode).
    #[arg(long, default_value_t = 20_000)]
    chairs: usize,
    /// Streams whose consumer `drain` waits for (repeat the flag for several).
    #[arg(long = "stream", default_values_t = ["VITALS".to_string()])]
    streams: Vec<String>,
    /// The file `export` writes (`-` for standard output).
    #[arg(long, default_value = "-")]
    out: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    event_id: String,
    event_type: &'static str,
    event_version: &'static str,
    occurred_at: String,
    producer: &'static str,
    tenant_id: &'a str,
    data: VitalsData<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VitalsData<'a> {
    patient_id: &'a str,
    unit_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    hr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rr: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    spo2: Option<f64>,
    on_oxygen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sbp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consciousness: Option<&'static str>,
}

const UNIT: &str = "lt-unit";

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A MessagePack `vitals.observation.v1` scoring NEWS2 8 (`sick`) or 0.
fn vitals(
    tenant: &str,
    patient: &str,
    event_id: String,
    at: chrono::DateTime<chrono::Utc>,
    sick: bool,
) -> Bytes {
    msgpack(&envelope(tenant, patient, event_id, at, sick))
}

fn msgpack(env: &Envelope<'_>) -> Bytes {
    Bytes::from(rmp_serde::to_vec_named(env).unwrap_or_default())
}

/// The values of a reading scoring NEWS2 8 (`sick`) or 0.
fn fixed(sick: bool) -> acuity::VitalSigns {
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
fn envelope<'a>(
    tenant: &'a str,
    patient: &'a str,
    event_id: String,
    at: chrono::DateTime<chrono::Utc>,
    sick: bool,
) -> Envelope<'a> {
    reading(tenant, patient, event_id, at, fixed(sick))
}

/// A `vitals.observation.v1` envelope with these values.
fn reading<'a>(
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

fn msgpack_headers() -> async_nats::HeaderMap {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Content-Type", "application/msgpack");
    h
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.mode {
        Mode::Live => live(&args, connect(&args).await?).await,
        Mode::Fill => fill(&args, connect(&args).await?).await,
        Mode::Bare => bare(&args, connect(&args).await?).await,
        Mode::Drain => drain(&args, connect(&args).await?).await,
        Mode::Clinic => clinic(&args, connect(&args).await?).await,
        Mode::Export => export(&args),
    }
}

async fn connect(args: &Args) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(&args.nats_url)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", args.nats_url))?;
    Ok(jetstream::new(client))
}

type AckFuture = std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>;

/// Publishes with up to `--in-flight` acknowledgements outstanding.
struct Publisher {
    js: jetstream::Context,
    pending: FuturesUnordered<AckFuture>,
    limit: usize,
    acked: Arc<AtomicU64>,
    failed: u64,
}

impl Publisher {
    fn new(js: jetstream::Context, limit: usize) -> Self {
        Self {
            js,
            pending: FuturesUnordered::new(),
            limit: limit.max(1),
            acked: Arc::new(AtomicU64::new(0)),
            failed: 0,
        }
    }

    async fn publish(&mut self, subject: String, payload: Bytes) -> anyhow::Result<()> {
        while self.pending.len() >= self.limit {
            self.reap_one().await;
        }
        let ack = self
            .js
            .publish_with_headers(subject, msgpack_headers(), payload)
            .await?;
        self.pending
            .push(Box::pin(async move { ack.await.is_ok() }));
        Ok(())
    }

    async fn reap_one(&mut self) {
        match self.pending.next().await {
            Some(true) => {
                self.acked.fetch_add(1, Relaxed);
            }
            Some(false) => self.failed += 1,
            None => {}
        }
    }

    async fn finish(&mut self) {
        while !self.pending.is_empty() {
            self.reap_one().await;
        }
    }

    /// Waits for every publish and prints what was stored since `start`.
    async fn report(
        &mut self,
        args: &Args,
        mode: &'static str,
        patients: usize,
        start: Instant,
    ) -> anyhow::Result<()> {
        self.finish().await;
        let elapsed = start.elapsed().as_secs_f64();
        let stored = self.acked.load(Relaxed);
        let report = Report {
            publish_failures: self.failed,
            ..Report::throughput(mode, patients, stored, elapsed)
        };
        print_report(args, &report)
    }
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Report {
    mode: &'static str,
    patients: usize,
    duration_s: f64,
    events_published: u64,
    publish_failures: u64,
    events_per_sec: f64,
    consumer_lag_max: u64,
    consumer_lag_end: u64,
    alerts_expected: u64,
    alerts_received: u64,
    latency_ms: Option<Latency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboards: Option<dashboards::DashboardReport>,
}

impl Report {
    /// `events` handled by `mode` in `elapsed` seconds.
    fn throughput(mode: &'static str, patients: usize, events: u64, elapsed: f64) -> Self {
        Self {
            mode,
            patients,
            duration_s: elapsed,
            events_published: events,
            events_per_sec: events as f64 / elapsed.max(1e-9),
            ..Self::default()
        }
    }
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    samples: u64,
}

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (n={})",
            self.p50, self.p90, self.p99, self.p999, self.max, self.samples
        )
    }
}

/// The patient of an `alert` frame that opens an alert (version 1), if `text` is one.
fn opened_alert_patient(text: &str) -> Option<String> {
    // Every alert frame starts so (gateway/src/session.rs); patient and snapshot frames, most
    // of the traffic, are skipped without parsing.
    if !text.starts_with(r#"{"type":"alert""#) {
        return None;
    }
    let v = serde_json::from_str::<serde_json::Value>(text).ok()?;
    if v["alert"]["version"] != 1 {
        return None;
    }
    v["alert"]["patientId"].as_str().map(str::to_string)
}

fn latency_of(h: &Histogram<u64>) -> Option<Latency> {
    (!h.is_empty()).then(|| Latency {
        p50: h.value_at_quantile(0.50) as f64 / 1000.0,
        p90: h.value_at_quantile(0.90) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
        p999: h.value_at_quantile(0.999) as f64 / 1000.0,
        max: h.max() as f64 / 1000.0,
        samples: h.len(),
    })
}

async fn consumer_pending(js: &jetstream::Context, name: &str) -> Option<(u64, u64, u64)> {
    stream_consumer_pending(js, "VITALS", name).await
}

async fn stream_consumer_pending(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Option<(u64, u64, u64)> {
    let stream = js.get_stream(stream).await.ok()?;
    let mut c: consumer::PullConsumer = stream.get_consumer(name).await.ok()?;
    let info = c.info().await.ok()?;
    Some((
        info.num_pending,
        info.num_ack_pending as u64,
        info.ack_floor.stream_sequence,
    ))
}

async fn live(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
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
    let reader = {
        let (triggers, histogram, received) =
            (triggers.clone(), histogram.clone(), received.clone());
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
    let trigger_task = {
        let (js, tenant, triggers, fanout) =
            (js.clone(), tenant.clone(), triggers.clone(), fanout.clone());
        let every = Duration::from_secs_f64(1.0 / args.triggers.max(0.01));
        tokio::spawn(async move {
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(every);
            let run = format!("{:x}", std::process::id());
            while Instant::now() < end {
                tick.tick().await;
                let patient = format!("lt-trig-{run}-{sent}");
                let subject = format!("vitals.{tenant}.{patient}");
                let t0 = chrono::Utc::now() - chrono::Duration::seconds(1);
                let first = vitals(&tenant, &patient, format!("{patient}-1"), t0, true);
                let ok = match js
                    .publish_with_headers(subject.clone(), msgpack_headers(), first)
                    .await
                {
                    Ok(ack) => ack.await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    continue;
                }
                let second = vitals(
                    &tenant,
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
                sent += 1;
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
        dashboards: (args.dashboards > 0).then(|| fanout.report()),
    };
    print_report(args, &report)
}

fn print_report(args: &Args, r: &Report) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("mode              {}", r.mode);
    println!("patients          {}", r.patients);
    println!("duration          {:.1} s", r.duration_s);
    println!(
        "events            {} ({} failed)",
        r.events_published, r.publish_failures
    );
    println!("sustained         {:.0} events/s", r.events_per_sec);
    if r.mode == "live" {
        println!(
            "consumer lag      max {} / at end {}",
            r.consumer_lag_max, r.consumer_lag_end
        );
        println!(
            "alerts            {} of {} timed",
            r.alerts_received, r.alerts_expected
        );
        match &r.latency_ms {
            Some(l) => println!("publish->alert    {l}"),
            None => println!("publish->alert    no alert received"),
        }
        if let Some(d) = &r.dashboards {
            println!(
                "dashboards        {} sockets: {} of {} alerts reached every one (fewest on one socket: {}), {} frames",
                d.sockets,
                d.alerts_to_every_socket,
                r.alerts_expected,
                d.fewest_on_one_socket,
                d.frames_received
            );
            match &d.latency_last_socket_ms {
                Some(l) => println!("  ->last socket   {l}"),
                None => println!("  ->last socket   no alert reached every socket"),
            }
        }
    }
    if let Some(d) = &r.dashboards
        && d.fewest_on_one_socket < r.alerts_expected
    {
        anyhow::bail!(
            "a dashboard received {} of {} sentinel alerts: some socket missed alerts in its scope",
            d.fewest_on_one_socket,
            r.alerts_expected
        );
    }
    if r.mode == "live" && r.alerts_received < r.alerts_expected {
        anyhow::bail!(
            "{} of {} sentinel alerts never reached the WebSocket: the figures above are not a \
             measurement. Check that --token belongs to --tenant ({}) and covers its units",
            r.alerts_expected - r.alerts_received,
            r.alerts_expected,
            args.tenant
        );
    }
    Ok(())
}

async fn fill(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    // The engine creates VITALS at start; create it the same way if the engine has not run yet.
    js.get_or_create_stream(jetstream::stream::Config {
        name: "VITALS".into(),
        subjects: vec!["vitals.*.*".into()],
        storage: jetstream::stream::StorageType::File,
        allow_direct: true,
        ..Default::default()
    })
    .await
    .context("cannot create VITALS")?;
    let mut publisher = Publisher::new(js, args.in_flight);
    let start = Instant::now();
    let mut workload = FillWorkload::new(args);
    while let Some((subject, payload)) = workload.next_reading(|env| {
        (
            format!("vitals.{}.{}", env.tenant_id, env.data.patient_id),
            msgpack(env),
        )
    }) {
        publisher.publish(subject, payload).await?;
    }
    publisher.report(args, "fill", args.patients, start).await
}

/// The `fill` and `export` workload: `--events` readings for `--patients` patients, one per
/// patient per minute of event time ending now, one patient in twenty alternating 30 sick
/// minutes and 30 well ones (so alerts open and clear), and with `--end-sick` every patient's
/// last two readings sick. With `--acuity-mix`, the readings come from [`acuity::Mix`] instead.
struct FillWorkload<'a> {
    args: &'a Args,
    mix: Option<acuity::Mix>,
    names: Vec<String>,
    readings: u64,
    base: chrono::DateTime<chrono::Utc>,
    run: String,
    next: u64,
}

impl<'a> FillWorkload<'a> {
    fn new(args: &'a Args) -> Self {
        let patients = args.patients.max(1) as u64;
        let readings = args.events.div_ceil(patients);
        Self {
            args,
            mix: args.acuity_mix.then(acuity::Mix::default),
            names: (0..patients).map(|i| format!("lt-{i}")).collect(),
            readings,
            base: chrono::Utc::now() - chrono::Duration::minutes(readings as i64 + 1),
            run: format!("{:x}", std::process::id()),
            next: 0,
        }
    }

    /// The next reading, encoded by `encode`.
    fn next_reading<T>(&mut self, encode: impl FnOnce(&Envelope<'_>) -> T) -> Option<T> {
        let i = self.next;
        if i >= self.args.events {
            return None;
        }
        self.next += 1;
        let patients = self.names.len() as u64;
        let p = i % patients;
        let minute = i / patients;
        let ending_sick = self.args.end_sick && minute + 2 >= self.readings;
        let sick = (p % 20 == 0 && (minute / 30) % 2 == 0) || ending_sick;
        let at = self.base + chrono::Duration::minutes(minute as i64);
        let patient = &self.names[p as usize];
        let event_id = format!("fill-{}-{i}", self.run);
        let values = match &mut self.mix {
            Some(mix) if !ending_sick => mix.reading(acuity::Acuity::of_patient(p)),
            _ => fixed(sick),
        };
        let env = reading(&self.args.tenant, patient, event_id, at, values);
        Some(encode(&env))
    }
}

/// Writes the fill workload as JSON lines, the form `vigil replay --events` reads.
fn export(args: &Args) -> anyhow::Result<()> {
    use std::io::Write;
    let out: Box<dyn Write> = if args.out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.out)
                .with_context(|| format!("cannot create {}", args.out))?,
        )
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let start = Instant::now();
    let mut workload = FillWorkload::new(args);
    let mut written = 0u64;
    while let Some(line) = workload.next_reading(|env| serde_json::to_vec(env)) {
        out.write_all(&line?)?;
        out.write_all(b"\n")?;
        written += 1;
    }
    out.flush()?;
    let elapsed = start.elapsed().as_secs_f64();
    let report = Report::throughput("export", args.patients, written, elapsed);
    if args.out == "-" {
        // The events went to standard output: keep the report off it.
        eprintln!("exported {written} events in {elapsed:.2} s");
        Ok(())
    } else {
        print_report(args, &report)
    }
}

async fn bare(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    let mut stream = js.get_stream("VITALS").await.context("no VITALS stream")?;
    let target = stream.info().await?.state.last_sequence;
    let name = format!("bare-{}", std::process::id());
    let c: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: consumer::AckPolicy::All,
            max_ack_pending: (args.batch * 32) as i64,
            ..Default::default()
        })
        .await?;
    let mut messages = c
        .stream()
        .max_messages_per_batch(512)
        .messages()
        .await?
        .ready_chunks(512);
    let start = Instant::now();
    let mut count = 0u64;
    while let Some(batch) = messages.next().await {
        let mut last_seq = 0;
        let mut last = None;
        for m in batch.into_iter().flatten() {
            count += 1;
            last_seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            if let Some(n) = args.ack_every
                && (count % n == 0 || last_seq >= target)
            {
                m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
                continue;
            }
            last = Some(m);
        }
        if args.ack_every.is_none()
            && let Some(m) = last
        {
            m.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        }
        if last_seq >= target {
            break;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let _ = stream.delete_consumer(&name).await;
    let report = Report::throughput("bare", args.patients, count, elapsed);
    print_report(args, &report)
}

async fn drain(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    for name in &args.streams {
        let mut stream = js
            .get_stream(name)
            .await
            .with_context(|| format!("no {name} stream"))?;
        targets.push((name.clone(), stream.info().await?.state.last_sequence));
    }
    // Wait for the engine's consumers to exist and to start moving.
    let mut start = None;
    let mut floors0: Vec<u64> = vec![0; targets.len()];
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if Instant::now() > deadline {
            bail!(
                "consumer {} did not finish within 10 minutes",
                args.consumer
            );
        }
        let mut done = true;
        for (i, (name, target)) in targets.iter().enumerate() {
            let Some((pending, ack_pending, floor)) =
                stream_consumer_pending(&js, name, &args.consumer).await
            else {
                done = false;
                continue;
            };
            if start.is_none() && (floor > 0 || ack_pending > 0 || pending < *target) {
                start = Some(Instant::now());
                floors0[i] = floor;
            }
            done &= floor >= *target && ack_pending == 0;
        }
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = start.map_or(0.0, |s| s.elapsed().as_secs_f64());
    let drained: u64 = targets
        .iter()
        .zip(&floors0)
        .map(|((_, target), floor)| target - floor)
        .sum();
    let report = Report::throughput("drain", args.patients, drained, elapsed);
    print_report(args, &report)
}

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

async fn clinic(args: &Args, js: jetstream::Context) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_run_whose_alerts_never_arrived_is_a_failure_not_a_figure() {
        let args = Args::parse_from(["vigil-loadtest", "--mode", "live", "--tenant", "clinic-abc"]);
        let mut r = Report::throughput("live", 10, 100, 1.0);
        r.alerts_expected = 201;
        let e = print_report(&args, &r).expect_err("0 of 201 timed");
        assert!(
            e.to_string()
                .contains("201 of 201 sentinel alerts never reached"),
            "{e}"
        );
        assert!(e.to_string().contains("clinic-abc"), "{e}");
        r.alerts_received = 201;
        assert!(print_report(&args, &r).is_ok());
    }
}
