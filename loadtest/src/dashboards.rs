//! `--dashboards N` (live mode): N staff dashboards on the gateway, each subscribed to `alerts`
//! and `patients` for the whole tenant, while the monitors publish. Each sentinel alert is timed
//! from its trigger's publish to the moment the *last* of the N sockets receives it (what the
//! slowest screen on the ward shows), and every socket must receive every sentinel alert.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::{Latency, latency_of, opened_alert_patient};

/// The sentinel alerts in flight to N sockets.
pub struct Fanout {
    sockets: usize,
    /// Sentinel patient -> (trigger published, sockets that have its alert).
    pending: Mutex<HashMap<String, (Instant, usize)>>,
    /// Publish to the last socket's receipt, µs.
    last_socket: Mutex<Histogram<u64>>,
    /// Sentinel alerts received, per socket.
    per_socket: Vec<AtomicU64>,
    /// Frames of any kind received, all sockets together.
    frames: AtomicU64,
}

/// What `--dashboards` measured.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardReport {
    pub sockets: usize,
    /// Sentinel alerts that reached every socket.
    pub alerts_to_every_socket: u64,
    /// The fewest sentinel alerts any one socket received.
    pub fewest_on_one_socket: u64,
    pub frames_received: u64,
    /// Publish to the last socket's receipt.
    pub latency_last_socket_ms: Option<Latency>,
}

impl Fanout {
    pub fn new(sockets: usize) -> Self {
        Self {
            sockets,
            pending: Mutex::default(),
            last_socket: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
            per_socket: (0..sockets).map(|_| AtomicU64::new(0)).collect(),
            frames: AtomicU64::new(0),
        }
    }

    /// The trigger of `patient`'s sentinel alert was published at `at`.
    pub fn sent(&self, patient: &str, at: Instant) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(patient.to_string(), (at, 0));
        }
    }

    /// Socket `socket` received the first alert of sentinel `patient` at `at`. Each socket
    /// reports a patient once.
    pub fn seen(&self, socket: usize, patient: &str, at: Instant) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let Some((sent, count)) = pending.get_mut(patient) else {
            return;
        };
        *count += 1;
        if let Some(n) = self.per_socket.get(socket) {
            n.fetch_add(1, Relaxed);
        }
        if *count == self.sockets {
            let us = at.duration_since(*sent).as_micros() as u64;
            if let Ok(mut h) = self.last_socket.lock() {
                let _ = h.record(us.max(1));
            }
            pending.remove(patient);
        }
    }

    pub fn report(&self) -> DashboardReport {
        let h = self.last_socket.lock().map(|h| h.clone()).ok();
        DashboardReport {
            sockets: self.sockets,
            alerts_to_every_socket: h.as_ref().map_or(0, Histogram::len),
            fewest_on_one_socket: self
                .per_socket
                .iter()
                .map(|n| n.load(Relaxed))
                .min()
                .unwrap_or(0),
            frames_received: self.frames.load(Relaxed),
            latency_last_socket_ms: h.as_ref().and_then(latency_of),
        }
    }
}

/// Opens the dashboards and starts their readers; returns once every socket is subscribed.
pub async fn open(
    url: &str,
    fanout: &Arc<Fanout>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let sub = r#"{"type":"subscribe","id":"dash","channels":["alerts","patients"]}"#;
    let mut readers = Vec::with_capacity(fanout.sockets);
    for socket in 0..fanout.sockets {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("cannot open dashboard {socket} of {}", fanout.sockets))?;
        ws.send(Message::text(sub)).await?;
        let fanout = fanout.clone();
        readers.push(tokio::spawn(async move {
            let mut counted: HashSet<String> = HashSet::new();
            while let Some(Ok(m)) = ws.next().await {
                let Message::Text(t) = m else { continue };
                fanout.frames.fetch_add(1, Relaxed);
                let now = Instant::now();
                let Some(patient) = opened_alert_patient(t.as_str()) else {
                    continue;
                };
                if patient.starts_with("lt-trig-") && counted.insert(patient.clone()) {
                    fanout.seen(socket, &patient, now);
                }
            }
        }));
    }
    Ok(readers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_an_opening_alert_frame_names_its_patient() {
        let opened = r#"{"type":"alert","alert":{"version":1,"patientId":"lt-trig-1"}}"#;
        assert_eq!(opened_alert_patient(opened).as_deref(), Some("lt-trig-1"));
        let later = r#"{"type":"alert","alert":{"version":2,"patientId":"lt-trig-1"}}"#;
        assert_eq!(opened_alert_patient(later), None);
        let tile = r#"{"type":"patient","patientId":"lt-trig-1"}"#;
        assert_eq!(opened_alert_patient(tile), None);
    }

    #[test]
    fn an_alert_is_timed_when_the_last_socket_has_it() {
        let f = Fanout::new(3);
        let t0 = Instant::now();
        f.sent("lt-trig-1", t0);
        f.seen(0, "lt-trig-1", t0 + Duration::from_millis(1));
        f.seen(2, "lt-trig-1", t0 + Duration::from_millis(2));
        assert_eq!(
            f.report().alerts_to_every_socket,
            0,
            "socket 1 has not got it"
        );
        f.seen(1, "lt-trig-1", t0 + Duration::from_millis(7));
        let r = f.report();
        assert_eq!(r.alerts_to_every_socket, 1);
        let l = r.latency_last_socket_ms.expect("timed");
        assert!((l.max - 7.0).abs() < 0.01, "{}", l.max);
        assert_eq!(r.fewest_on_one_socket, 1);
        // A second sentinel that only two sockets got: the report shows the gap.
        f.sent("lt-trig-2", t0);
        f.seen(0, "lt-trig-2", t0);
        f.seen(1, "lt-trig-2", t0);
        let r = f.report();
        assert_eq!((r.alerts_to_every_socket, r.fewest_on_one_socket), (1, 1));
        // An alert of a patient never sent (or already complete) counts nowhere.
        f.seen(2, "lt-trig-1", t0);
        f.seen(2, "lt-other", t0);
        assert_eq!(f.report().fewest_on_one_socket, 1);
    }
}
