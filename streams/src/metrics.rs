//! Ingest counters, rendered as Prometheus text for `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    pub batches_acked: AtomicU64,
    pub ack_failures: AtomicU64,
    /// Sum and count of batch hand-off to fully-applied-and-published, in microseconds.
    pub batch_apply_us: AtomicU64,
    pub alert_transitions: AtomicU64,
    /// Opened alerts by delay from the triggering reading's `occurredAt` to emission.
    pub alert_delay: DelayHistogram,
}

/// Upper bounds (seconds) of the alert delay buckets.
pub const DELAY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0,
];

/// A Prometheus histogram over [`DELAY_BUCKETS`], lock-free.
#[derive(Debug, Default)]
pub struct DelayHistogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl DelayHistogram {
    pub fn record(&self, delay_ms: i64) {
        let ms = delay_ms.max(0) as u64;
        let secs = ms as f64 / 1000.0;
        if let Some(i) = DELAY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(ms * 1000, Relaxed);
    }

    fn render(&self, name: &str, out: &mut String) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in DELAY_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {:.6}",
            self.sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// The inbound event types, in the order of the per-type counters.
pub const INBOUND_TYPES: [&str; 7] = [
    crate::envelope::VITALS_OBSERVATION,
    crate::envelope::LAB_RESULT,
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

    /// Appends the Prometheus text exposition of every counter.
    pub fn render(&self, out: &mut String) {
        let types = INBOUND_TYPES;
        let _ = writeln!(out, "# TYPE vigil_events_ingested_total counter");
        for (i, t) in types.iter().enumerate() {
            let _ = writeln!(
                out,
                "vigil_events_ingested_total{{type=\"{t}\"}} {}",
                self.events[i].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# TYPE vigil_event_decode_seconds_total counter");
        for (i, t) in types.iter().enumerate() {
            let secs = self.decode_ns[i].load(Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "vigil_event_decode_seconds_total{{type=\"{t}\"}} {secs:.6}"
            );
        }
        let _ = writeln!(out, "# TYPE vigil_events_duplicate_total counter");
        let _ = writeln!(
            out,
            "vigil_events_duplicate_total {}",
            self.duplicates.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_dlq_total counter");
        for (i, c) in RejectCode::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "vigil_dlq_total{{code=\"{}\"}} {}",
                c.as_str(),
                self.dead_letters[i].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# TYPE vigil_consumer_lag gauge");
        for (i, s) in INBOUND_STREAMS.iter().enumerate() {
            let _ = writeln!(
                out,
                "vigil_consumer_lag{{stream=\"{s}\"}} {}",
                self.consumer_lag[i].load(Relaxed)
            );
        }
        let _ = writeln!(out, "# TYPE vigil_practice_held gauge");
        let _ = writeln!(
            out,
            "vigil_practice_held {}",
            self.practice_held.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_practice_unscheduled_total counter");
        let _ = writeln!(
            out,
            "vigil_practice_unscheduled_total {}",
            self.practice_unscheduled.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_flow_updates_total counter");
        let _ = writeln!(
            out,
            "vigil_flow_updates_total {}",
            self.flow_updates.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_batches_acked_total counter");
        let _ = writeln!(
            out,
            "vigil_batches_acked_total {}",
            self.batches_acked.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_ack_failures_total counter");
        let _ = writeln!(
            out,
            "vigil_ack_failures_total {}",
            self.ack_failures.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_batch_apply_seconds summary");
        let us = self.batch_apply_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "vigil_batch_apply_seconds_sum {us:.6}");
        let _ = writeln!(
            out,
            "vigil_batch_apply_seconds_count {}",
            self.batches_acked.load(Relaxed)
        );
        let _ = writeln!(out, "# TYPE vigil_alert_transitions_total counter");
        let _ = writeln!(
            out,
            "vigil_alert_transitions_total {}",
            self.alert_transitions.load(Relaxed)
        );
        self.alert_delay
            .render("vigil_alert_open_delay_seconds", out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_histogram_is_cumulative_with_edges_inclusive() {
        let h = DelayHistogram::default();
        for ms in [0, 1, 2, 9, 10, 11, 70_000] {
            h.record(ms);
        }
        let mut out = String::new();
        h.render("d", &mut out);
        assert!(out.contains("d_bucket{le=\"0.001\"} 2\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"0.002\"} 3\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"0.01\"} 5\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"0.02\"} 6\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"60\"} 6\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"+Inf\"} 7\n"), "{out}");
        assert!(out.contains("d_count 7\n"), "{out}");
    }

    #[test]
    fn every_dead_letter_code_is_rendered() {
        let m = IngestMetrics::default();
        m.dead_letter(RejectCode::VitalOutOfRange);
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("vigil_dlq_total{code=\"VITAL_OUT_OF_RANGE\"} 1\n"));
        assert_eq!(
            out.matches("vigil_dlq_total{").count(),
            RejectCode::ALL.len()
        );
    }
}
