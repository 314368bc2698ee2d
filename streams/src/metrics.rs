//! Ingest counters for `/metrics`. The hot path bumps plain atomics; each scrape reads them
//! through prometheus-client (a [`Collector`]), which writes the OpenMetrics text with HELP and
//! TYPE lines. The helpers at the end ([`counter`], [`gauge`], [`labelled`]) are how every
//! collector of the engine writes one metric.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::envelope::RejectCode;

#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Accepted events, by [`INBOUND_TYPES`] index.
    pub events: [AtomicU64; INBOUND_TYPES.len()],
    /// Nanoseconds spent decoding and validating, by the same index.
    pub decode_ns: [AtomicU64; INBOUND_TYPES.len()],
    pub duplicates: AtomicU64,
    pub dead_letters: [AtomicU64; RejectCode::ALL.len()],
    /// Messages pending for each consumer, as of its latest delivery, by [`INBOUND_STREAMS`].
    pub consumer_lag: [AtomicU64; INBOUND_STREAMS.len()],
    /// Practice events waiting for their appointment's schedule (gauge).
    pub practice_held: AtomicU64,
    /// Held practice events applied as an unscheduled appointment, or dead-lettered, because
    /// no schedule came in time.
    pub practice_unscheduled: AtomicU64,
    /// `patient.flow.update.v1` messages published.
    pub flow_updates: AtomicU64,
    /// Alert states in `ALERTS` the latest recovery could not read (each one an alert that may
    /// be open and is not restored).
    pub recovery_unreadable_alerts: AtomicU64,
    pub batches_acked: AtomicU64,
    pub ack_failures: AtomicU64,
    /// Jumps in a consumer's delivery sequence: deliveries lost on the way (a NATS node or a
    /// connection lost), each answered by restarting the consumer at its ack floor.
    pub consumer_gaps: AtomicU64,
    /// Durable consumers deleted under this process (a partition's new owner recreates them
    /// at their ack floor): ingest of that consumer ends.
    pub consumers_deleted: AtomicU64,
    /// Each batch from hand-off to fully applied and published, seconds.
    pub batch_apply: Seconds<BATCH_BUCKETS_LEN>,
    pub alert_transitions: AtomicU64,
    /// Opened alerts by delay from the triggering reading's `occurredAt` to emission.
    pub alert_delay: Seconds<DELAY_BUCKETS_LEN>,
    /// Partitions this process runs now (a process without `[cluster]` runs the one whole
    /// stream: 1 once started).
    pub partitions_owned: AtomicU64,
    /// Hand-overs: each time a cluster member's engine moved to a new set of partitions.
    pub handovers: AtomicU64,
    /// Each hand-over from its start to the engine running the new set, seconds.
    pub handover: Seconds<DELAY_BUCKETS_LEN>,
    /// Commands sent to the cluster member that owns their alert's partition.
    pub forwarded_commands: AtomicU64,
    /// Times this member found itself a stale owner (`ALERTS` refused its transition, or a
    /// consumer was recreated under it) and gave up every partition.
    pub displaced: AtomicU64,
}

const DELAY_BUCKETS_LEN: usize = 12;
const BATCH_BUCKETS_LEN: usize = 10;

/// Upper bounds (seconds) of the alert delay buckets.
pub const DELAY_BUCKETS: [f64; DELAY_BUCKETS_LEN] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0,
];

/// Upper bounds (seconds) of the batch apply buckets.
pub const BATCH_BUCKETS: [f64; BATCH_BUCKETS_LEN] =
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0];

/// A prometheus-client histogram of durations over fixed buckets.
#[derive(Debug)]
pub struct Seconds<const N: usize>(Histogram);

impl Default for Seconds<DELAY_BUCKETS_LEN> {
    fn default() -> Self {
        Self(Histogram::new(DELAY_BUCKETS))
    }
}

impl Default for Seconds<BATCH_BUCKETS_LEN> {
    fn default() -> Self {
        Self(Histogram::new(BATCH_BUCKETS))
    }
}

impl<const N: usize> Seconds<N> {
    /// Records a duration in milliseconds (negative counts as 0).
    pub fn record_ms(&self, ms: i64) {
        self.0.observe(ms.max(0) as f64 / 1000.0);
    }

    pub fn record(&self, d: std::time::Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

/// The inbound event types, in the order of the per-type counters.
pub const INBOUND_TYPES: [&str; 8] = [
    vigil_engine::event::VITALS_OBSERVATION,
    vigil_engine::event::LAB_RESULT,
    vigil_engine::event::PATIENT_ADMITTED,
    "appointment.scheduled.v1",
    "patient.checkin.v1",
    "appointment.status.changed.v1",
    "provider.status.update.v1",
    "resource.occupancy.update.v1",
];

/// The consumed streams, in the order of the per-stream counters.
pub const INBOUND_STREAMS: [&str; 3] = ["VITALS", "CHECKINS", "OCCUPANCY"];

pub(crate) fn type_index(event_type: &str) -> usize {
    INBOUND_TYPES
        .iter()
        .position(|t| *t == event_type)
        .unwrap_or(0)
}

pub(crate) fn stream_index(stream: &str) -> usize {
    INBOUND_STREAMS
        .iter()
        .position(|s| *s == stream)
        .unwrap_or(0)
}

impl IngestMetrics {
    pub fn dead_letter(&self, code: RejectCode) {
        if let Some(i) = RejectCode::ALL.iter().position(|c| *c == code) {
            self.dead_letters[i].fetch_add(1, Relaxed);
        }
    }
}

impl Collector for IngestMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let load = |a: &AtomicU64| a.load(Relaxed);
        labelled(
            &mut e,
            "vigil_events_ingested",
            "Inbound events accepted (new, valid), by event type",
            MetricType::Counter,
            "type",
            INBOUND_TYPES
                .iter()
                .zip(&self.events)
                .map(|(t, v)| (*t, load(v) as f64)),
        )?;
        labelled(
            &mut e,
            "vigil_event_decode_seconds",
            "Time spent decoding, validating and fingerprinting (for the dedupe) accepted events, by event type",
            MetricType::Counter,
            "type",
            INBOUND_TYPES
                .iter()
                .zip(&self.decode_ns)
                .map(|(t, v)| (*t, load(v) as f64 / 1e9)),
        )?;
        counter(
            &mut e,
            "vigil_events_duplicate",
            "Events ignored because their (tenantId, eventId) was already applied",
            load(&self.duplicates),
        )?;
        labelled(
            &mut e,
            "vigil_dlq",
            "Messages dead-lettered, by error code",
            MetricType::Counter,
            "code",
            RejectCode::ALL
                .iter()
                .zip(&self.dead_letters)
                .map(|(c, v)| (c.as_str(), load(v) as f64)),
        )?;
        labelled(
            &mut e,
            "vigil_consumer_lag",
            "Messages pending for each consumer, as of its latest delivery",
            MetricType::Gauge,
            "stream",
            INBOUND_STREAMS
                .iter()
                .zip(&self.consumer_lag)
                .map(|(s, v)| (*s, load(v) as f64)),
        )?;
        gauge(
            &mut e,
            "vigil_practice_held",
            "Practice events waiting for their appointment's schedule",
            load(&self.practice_held) as i64,
        )?;
        counter(
            &mut e,
            "vigil_practice_unscheduled",
            "Held practice events applied unscheduled or dead-lettered: no schedule came in time",
            load(&self.practice_unscheduled),
        )?;
        counter(
            &mut e,
            "vigil_flow_updates",
            "patient.flow.update.v1 messages published",
            load(&self.flow_updates),
        )?;
        gauge(
            &mut e,
            "vigil_recovery_unreadable_alerts",
            "Alert states in ALERTS the latest recovery could not read (not restored)",
            load(&self.recovery_unreadable_alerts) as i64,
        )?;
        counter(
            &mut e,
            "vigil_batches_acked",
            "Inbound batches acknowledged after every event was applied and its outputs stored",
            load(&self.batches_acked),
        )?;
        counter(
            &mut e,
            "vigil_ack_failures",
            "Batch acknowledgements NATS did not take (the batch is redelivered)",
            load(&self.ack_failures),
        )?;
        counter(
            &mut e,
            "vigil_consumer_gaps",
            "Deliveries lost on the way to this process, each answered by restarting the consumer at its ack floor",
            load(&self.consumer_gaps),
        )?;
        counter(
            &mut e,
            "vigil_consumers_deleted",
            "Durable consumers deleted under this process (another cluster member took the partition over, or an operator)",
            load(&self.consumers_deleted),
        )?;
        let m = e.encode_descriptor(
            "vigil_batch_apply_seconds",
            "Each batch from hand-off to fully applied and its outputs stored",
            None,
            MetricType::Histogram,
        )?;
        self.batch_apply.0.encode(m)?;
        counter(
            &mut e,
            "vigil_alert_transitions",
            "Alert transitions emitted (opened, escalated, acknowledged, resolved, ...)",
            load(&self.alert_transitions),
        )?;
        let m = e.encode_descriptor(
            "vigil_alert_open_delay_seconds",
            "From the occurredAt of what opened an alert to its emission: how late staff hear of it",
            None,
            MetricType::Histogram,
        )?;
        self.alert_delay.0.encode(m)?;
        gauge(
            &mut e,
            "vigil_cluster_partitions_owned",
            "Partitions of VITALS, CHECKINS and OCCUPANCY this process runs (1: the whole streams, no [cluster])",
            load(&self.partitions_owned) as i64,
        )?;
        counter(
            &mut e,
            "vigil_cluster_handovers",
            "Times this cluster member's engine moved to a new set of partitions",
            load(&self.handovers),
        )?;
        counter(
            &mut e,
            "vigil_cluster_forwarded_commands",
            "Commands sent to the cluster member that owns their alert's partition",
            load(&self.forwarded_commands),
        )?;
        counter(
            &mut e,
            "vigil_cluster_displaced",
            "Times this member found itself a stale owner (ALERTS refused its write, or its consumer was recreated) and gave up every partition",
            load(&self.displaced),
        )?;
        let m = e.encode_descriptor(
            "vigil_cluster_handover_seconds",
            "Each hand-over, from its start to the engine running the new set of partitions",
            None,
            MetricType::Histogram,
        )?;
        self.handover.0.encode(m)
    }
}

/// One counter without labels (the sample line gets OpenMetrics' `_total`).
///
/// # Errors
/// The writer's.
pub fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

/// One gauge without labels.
///
/// # Errors
/// The writer's.
pub fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A counter or gauge family with one label: one sample per `(label value, value)`.
///
/// # Errors
/// The writer's.
pub fn labelled<'v>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    label: &str,
    values: impl Iterator<Item = (&'v str, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (v, x) in values {
        let labels = [(label, v)];
        let sample = m.encode_family(&labels)?;
        match kind {
            MetricType::Gauge if x.fract() == 0.0 && x.abs() < 9.0e15 => {
                ConstGauge::new(x as i64).encode(sample)?;
            }
            MetricType::Gauge => ConstGauge::new(x).encode(sample)?,
            // Whole numbers stay whole: counts print as integers, durations as decimals.
            _ if x.fract() == 0.0 && x < 9.0e15 => ConstCounter::new(x as u64).encode(sample)?,
            _ => ConstCounter::new(x).encode(sample)?,
        }
    }
    Ok(())
}

/// Writes `collectors` as the OpenMetrics text `/metrics` serves.
pub fn render(collectors: Vec<Box<dyn Collector>>) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    for c in collectors {
        registry.register_collector(c);
    }
    let mut out = String::with_capacity(8192);
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: IngestMetrics) -> String {
        render(vec![Box::new(m)])
    }

    #[test]
    fn delay_histogram_is_cumulative_with_edges_inclusive() {
        let m = IngestMetrics::default();
        for ms in [0, 1, 2, 9, 10, 11, 70_000] {
            m.alert_delay.record_ms(ms);
        }
        let out = text(m);
        let d = "vigil_alert_open_delay_seconds";
        for (le, n) in [
            ("0.001", 2),
            ("0.002", 3),
            ("0.01", 5),
            ("0.02", 6),
            ("60.0", 6),
        ] {
            assert!(
                out.contains(&format!("{d}_bucket{{le=\"{le}\"}} {n}\n")),
                "{le}: {out}"
            );
        }
        assert!(
            out.contains(&format!("{d}_bucket{{le=\"+Inf\"}} 7\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{d}_count 7\n")), "{out}");
        assert!(out.contains(&format!("# TYPE {d} histogram\n")), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
    }

    #[test]
    fn every_dead_letter_code_is_rendered_with_help_and_type() {
        let m = IngestMetrics::default();
        m.dead_letter(RejectCode::VitalOutOfRange);
        m.decode_ns[0].fetch_add(1_500_000, Relaxed);
        let out = text(m);
        assert!(
            out.contains("vigil_dlq_total{code=\"VITAL_OUT_OF_RANGE\"} 1\n"),
            "{out}"
        );
        assert_eq!(
            out.matches("vigil_dlq_total{").count(),
            RejectCode::ALL.len()
        );
        assert!(out.contains("# HELP vigil_dlq Messages dead-lettered, by error code\n"));
        assert!(out.contains("# TYPE vigil_dlq counter\n"));
        assert!(
            out.contains(
                "vigil_event_decode_seconds_total{type=\"vitals.observation.v1\"} 0.0015\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("vigil_consumer_lag{stream=\"VITALS\"} 0\n"),
            "{out}"
        );
    }
}
