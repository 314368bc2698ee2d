//! What a run measured, as text or JSON, and the readings of the engine's consumer and of
//! alert frames that every mode shares.

use async_nats::jetstream::{self, consumer};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{Args, dashboards};

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) patients: usize,
    pub(crate) duration_s: f64,
    pub(crate) events_published: u64,
    pub(crate) publish_failures: u64,
    pub(crate) events_per_sec: f64,
    pub(crate) consumer_lag_max: u64,
    pub(crate) consumer_lag_end: u64,
    pub(crate) alerts_expected: u64,
    pub(crate) alerts_received: u64,
    pub(crate) latency_ms: Option<Latency>,
    /// Live mode with `--partitions`: each partition's latency, by partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) latency_by_partition: Vec<(u32, Latency)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dashboards: Option<dashboards::DashboardReport>,
}

impl Report {
    /// `events` handled by `mode` in `elapsed` seconds.
    pub(crate) fn throughput(
        mode: &'static str,
        patients: usize,
        events: u64,
        elapsed: f64,
    ) -> Self {
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
pub(crate) struct Latency {
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
    pub(crate) samples: u64,
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
pub(crate) fn opened_alert_patient(text: &str) -> Option<String> {
    // Every alert frame starts so (gateway/src/session.rs); patient and snapshot frames, most
    // of the traffic, are skipped without parsing.
    if !text.starts_with(r#"{"type":"alert""#) {
        return None;
    }
    // Only the two fields read, borrowed; the rest is skipped unbuilt. A `serde_json::Value`
    // of every alert frame on 1,000 sockets was most of the load tester's CPU.
    #[derive(serde::Deserialize)]
    struct Frame<'a> {
        #[serde(borrow)]
        alert: Head<'a>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head<'a> {
        version: u64,
        #[serde(borrow)]
        patient_id: std::borrow::Cow<'a, str>,
    }
    let frame = serde_json::from_str::<Frame<'_>>(text).ok()?;
    (frame.alert.version == 1).then(|| frame.alert.patient_id.into_owned())
}

pub(crate) fn latency_of(h: &Histogram<u64>) -> Option<Latency> {
    (!h.is_empty()).then(|| Latency {
        p50: h.value_at_quantile(0.50) as f64 / 1000.0,
        p90: h.value_at_quantile(0.90) as f64 / 1000.0,
        p99: h.value_at_quantile(0.99) as f64 / 1000.0,
        p999: h.value_at_quantile(0.999) as f64 / 1000.0,
        max: h.max() as f64 / 1000.0,
        samples: h.len(),
    })
}

pub(crate) async fn consumer_pending(
    js: &jetstream::Context,
    name: &str,
) -> Option<(u64, u64, u64)> {
    let (pending, ack_pending, floor, _) = stream_consumer_pending(js, "VITALS", name).await?;
    Some((pending, ack_pending, floor))
}

pub(crate) async fn stream_consumer_pending(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
) -> Option<(u64, u64, u64, u64)> {
    let stream = js.get_stream(stream).await.ok()?;
    let mut c: consumer::PullConsumer = stream.get_consumer(name).await.ok()?;
    let info = c.info().await.ok()?;
    Some((
        info.num_pending,
        info.num_ack_pending as u64,
        info.ack_floor.stream_sequence,
        info.ack_floor.consumer_sequence,
    ))
}

pub(crate) fn print_report(args: &Args, r: &Report) -> anyhow::Result<()> {
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
        for (p, l) in &r.latency_by_partition {
            println!("  partition {p:<5} {l}");
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
            let closes: Vec<String> = d
                .closed_by_gateway
                .iter()
                .map(|(code, n)| format!("{n} with {code}"))
                .collect();
            println!(
                "  connections     closed by the gateway: {}; lost: {}; waited {:.1} s after the run for late alerts",
                if closes.is_empty() {
                    "none".to_string()
                } else {
                    format!(
                        "{} (each reconnected and took a snapshot)",
                        closes.join(", ")
                    )
                },
                d.sockets_lost,
                d.waited_after_run_ms as f64 / 1000.0
            );
        }
    }
    if let Some(d) = &r.dashboards
        && d.fewest_on_one_socket < r.alerts_expected
    {
        anyhow::bail!(
            "a dashboard received {} of {} sentinel alerts, {:.0} s after the run ({} sockets \
             lost): some socket missed alerts in its scope",
            d.fewest_on_one_socket,
            r.alerts_expected,
            d.waited_after_run_ms as f64 / 1000.0,
            d.sockets_lost
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
