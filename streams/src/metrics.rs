//! Ingest counters, rendered as Prometheus text for `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::envelope::RejectCode;

#[derive(Debug, Default)]
pub struct IngestMetrics {
    /// Accepted events: [vitals.observation.v1, lab.result.v1].
    pub events: [AtomicU64; 2],
    /// Nanoseconds spent decoding and validating, by the same index.
    pub decode_ns: [AtomicU64; 2],
    pub duplicates: AtomicU64,
    pub dead_letters: [AtomicU64; RejectCode::ALL.len()],
    /// Messages pending for the consumer, as of the latest delivery.
    pub consumer_lag: AtomicU64,
    pub batches_acked: AtomicU64,
    pub ack_failures: AtomicU64,
    /// Sum and count of batch hand-off to fully-applied-and-published, in microseconds.
    pub batch_apply_us: AtomicU64,
    pub alert_transitions: AtomicU64,
}

pub(crate) fn type_index(event_type: &str) -> usize {
    usize::from(event_type != crate::envelope::VITALS_OBSERVATION)
}

impl IngestMetrics {
    pub fn dead_letter(&self, code: RejectCode) {
        if let Some(i) = RejectCode::ALL.iter().position(|c| *c == code) {
            self.dead_letters[i].fetch_add(1, Relaxed);
        }
    }

    pub fn dead_letter_count(&self, code: RejectCode) -> u64 {
        RejectCode::ALL
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.dead_letters[i].load(Relaxed))
    }

    /// Appends the Prometheus text exposition of every counter.
    pub fn render(&self, out: &mut String) {
        let types = [
            crate::envelope::VITALS_OBSERVATION,
            crate::envelope::LAB_RESULT,
        ];
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
        let _ = writeln!(
            out,
            "vigil_consumer_lag{{stream=\"VITALS\"}} {}",
            self.consumer_lag.load(Relaxed)
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
    }
}
