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
    // The two fields read are found by a vectorised search, not by parsing the frame: a
    // `sepsis.model` alert is about 8.5 KB, and parsing it whole on each of 1,000 sockets was
    // a third of the load tester's CPU, which the engine under test shares the machine with.
    // `version` is the alert's last number (only optional timestamps follow it: the field
    // order of engine/src/alert/record.rs), so its last occurrence is the alert's own;
    // `patientId` is the alert's first field of that name. A key inside a string value is
    // escaped (`\"`), so it never matches. A frame of another shape, or an escaped patient
    // id, is parsed as before.
    match (version_of(text), patient_of(text)) {
        (Some(1), Some(patient)) => Some(patient.to_string()),
        (Some(_), Some(_)) => None,
        _ => parse_opened_alert_patient(text),
    }
}

/// The alert's `version`: the digits after the frame's last `"version":`.
fn version_of(text: &str) -> Option<u64> {
    let at = memchr::memmem::rfind(text.as_bytes(), br#""version":"#)?;
    let digits = &text[at + br#""version":"#.len()..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    // A number must be followed by the next field or the object's end.
    match digits[end..].chars().next() {
        Some(',' | '}') => digits[..end].parse().ok(),
        _ => None,
    }
}

/// The alert's `patientId` when it is a string without escapes.
fn patient_of(text: &str) -> Option<&str> {
    let at = memchr::memmem::find(text.as_bytes(), br#""patientId":""#)?;
    let value = &text[at + br#""patientId":""#.len()..];
    let end = memchr::memchr2(b'"', b'\\', value.as_bytes())?;
    (value.as_bytes()[end] == b'"').then(|| &value[..end])
}

fn parse_opened_alert_patient(text: &str) -> Option<String> {
    // Only the two fields read, borrowed; the rest is skipped unbuilt.
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

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_engine::scores::news2::{Component, ComponentValue};
    use vigil_engine::{Alert, Input, Rule, Timestamp};

    /// An alert frame as the gateway writes it: a `sepsis.model` alert of `version` with 60
    /// contributions, and texts that quote the two keys read.
    fn frame(version: u64, patient: Option<&str>) -> String {
        let at = Timestamp::from_millis(1_764_234_840_000);
        let mut alert = Alert::opening(Rule::SepsisModel, at, at);
        alert.alert_id = "alert-1".into();
        alert.patient_id = patient.map(str::to_string);
        alert.version = version;
        alert.message = r#"a note quoting {"patientId":"lt-trig-9","version":1}"#.into();
        alert.explanation.why = r#""version":1, "patientId":"x""#.into();
        alert.explanation.components = (0..60)
            .map(|i| Component {
                name: Input::Feature("hr.latest"),
                value: ComponentValue::Decimal(f64::from(i)),
                points: 0,
                observed_at: at,
                contribution: Some(0.01),
            })
            .collect();
        let json = serde_json::to_string(&alert).unwrap_or_default();
        format!(r#"{{"type":"alert","alert":{json}}}"#)
    }

    #[test]
    fn a_real_alert_frame_is_read_without_parsing_and_as_parsing_reads_it() {
        for (version, patient) in [(1, Some("lt-trig-1")), (3, Some("lt-trig-1")), (1, None)] {
            let text = frame(version, patient);
            assert!(text.len() > 5_000, "a frame the size of a sepsis alert");
            assert_eq!(version_of(&text), Some(version), "{version} {patient:?}");
            assert_eq!(patient_of(&text), patient, "{version} {patient:?}");
            let expected = patient.filter(|_| version == 1).map(str::to_string);
            assert_eq!(
                opened_alert_patient(&text),
                expected,
                "{version} {patient:?}"
            );
            assert_eq!(
                parse_opened_alert_patient(&text),
                expected,
                "{version} {patient:?}"
            );
        }
    }

    #[test]
    fn a_version_is_a_whole_number_before_the_next_field() {
        assert_eq!(version_of(r#"{"version":12,"x":1}"#), Some(12));
        assert_eq!(version_of(r#"{"version":1}"#), Some(1));
        assert_eq!(version_of(r#"{"version":1.5}"#), None);
        assert_eq!(version_of(r#"{"version":"1"}"#), None);
        assert_eq!(version_of(r#"{"version":1"#), None, "cut short");
    }
}
