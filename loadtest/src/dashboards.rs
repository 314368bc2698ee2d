//! `--dashboards N` (live mode): N staff dashboards on the gateway, each subscribed to `alerts`
//! and `patients` for the whole tenant, while the monitors publish. Each sentinel alert is timed
//! from its trigger's publish to the moment the *last* of the N sockets receives it (what the
//! slowest screen on the ward shows), and every socket must receive every sentinel alert.
//!
//! A socket behaves as a staff dashboard does under the contract's slow-client rule
//! (contracts.md §5): closed by the gateway with 1013, it reconnects and takes the sentinel
//! alerts it had not seen from the fresh `snapshot`. After the run the report waits (at most
//! [`SETTLE`]) for alerts still on their way, so an alert that is late is told apart from one
//! that never came.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::{Latency, latency_of, opened_alert_patient};

/// How long after the run the report waits for sentinel alerts still on their way to open
/// sockets.
pub const SETTLE: Duration = Duration::from_secs(30);

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
    /// Sentinel alerts whose trigger was published.
    sent: AtomicU64,
    /// Per socket: still connected (or reconnecting after a 1013).
    open: Vec<AtomicBool>,
    /// Closes by the gateway, by close code (1013 the slow-client rule).
    closed_by_gateway: Mutex<BTreeMap<u16, u64>>,
    /// Sockets that ended without a close frame, or could not reconnect.
    lost: AtomicU64,
    /// How long after the run the last sockets took to get every sentinel alert.
    settled_after: Mutex<Option<Duration>>,
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
    /// Publish to the last socket's receipt (alerts taken from a reconnect's snapshot
    /// included).
    pub latency_last_socket_ms: Option<Latency>,
    /// Closes by the gateway, by close code; each was followed by a reconnect.
    pub closed_by_gateway: BTreeMap<u16, u64>,
    /// Sockets that ended without a close frame, or could not reconnect.
    pub sockets_lost: u64,
    /// How long after the run the report waited for alerts still on their way.
    pub waited_after_run_ms: u64,
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
            sent: AtomicU64::new(0),
            open: (0..sockets).map(|_| AtomicBool::new(true)).collect(),
            closed_by_gateway: Mutex::default(),
            lost: AtomicU64::new(0),
            settled_after: Mutex::default(),
        }
    }

    /// The trigger of `patient`'s sentinel alert was published at `at`.
    pub fn sent(&self, patient: &str, at: Instant) {
        if let Ok(mut p) = self.pending.lock() {
            p.insert(patient.to_string(), (at, 0));
            self.sent.fetch_add(1, Relaxed);
        }
    }

    /// Whether a socket still connected lacks a sentinel alert that was sent.
    fn waiting(&self) -> bool {
        let sent = self.sent.load(Relaxed);
        self.per_socket
            .iter()
            .zip(&self.open)
            .any(|(n, open)| open.load(Relaxed) && n.load(Relaxed) < sent)
    }

    /// Waits, at most [`SETTLE`], until every connected socket has every sentinel alert sent.
    pub async fn settle(&self) {
        let start = Instant::now();
        while self.waiting() && start.elapsed() < SETTLE {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let Ok(mut s) = self.settled_after.lock() {
            *s = Some(start.elapsed());
        }
    }

    fn closed(&self, code: CloseCode) {
        if let Ok(mut c) = self.closed_by_gateway.lock() {
            *c.entry(u16::from(code)).or_default() += 1;
        }
    }

    fn lose(&self, socket: usize) {
        self.lost.fetch_add(1, Relaxed);
        if let Some(open) = self.open.get(socket) {
            open.store(false, Relaxed);
        }
    }

    /// Socket `socket` received an alert of sentinel `patient` at `at`; `false` when it does
    /// not count (no trigger of that patient published yet, or every socket has it). Each
    /// socket reports a patient once it counted.
    pub fn seen(&self, socket: usize, patient: &str, at: Instant) -> bool {
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        let Some((sent, count)) = pending.get_mut(patient) else {
            return false;
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
        true
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
            closed_by_gateway: self
                .closed_by_gateway
                .lock()
                .map(|c| c.clone())
                .unwrap_or_default(),
            sockets_lost: self.lost.load(Relaxed),
            waited_after_run_ms: self
                .settled_after
                .lock()
                .ok()
                .and_then(|s| *s)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

/// The sentinel patients of the alerts in a `snapshot` frame (what a reconnecting dashboard
/// is given), or none for any other frame.
fn snapshot_patients(text: &str) -> Vec<String> {
    if !text.starts_with(r#"{"type":"snapshot""#) {
        return Vec::new();
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    v["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["patientId"].as_str())
        .filter(|p| p.starts_with("lt-trig-"))
        .map(str::to_string)
        .collect()
}

/// How a dashboard's connection ended.
enum Ended {
    /// Closed by the gateway with this code: the dashboard reconnects.
    Closed(CloseCode),
    /// No close frame (reset, or the run's end).
    Lost,
}

/// Opens the dashboards and starts their readers; returns once every socket is subscribed.
pub async fn open(
    url: &str,
    fanout: &Arc<Fanout>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut readers = Vec::with_capacity(fanout.sockets);
    for socket in 0..fanout.sockets {
        let ws = connect(url)
            .await
            .with_context(|| format!("cannot open dashboard {socket} of {}", fanout.sockets))?;
        let (fanout, url) = (fanout.clone(), url.to_string());
        readers.push(tokio::spawn(async move {
            // Across reconnects: each sentinel counts once per socket.
            let mut counted: HashSet<String> = HashSet::new();
            let mut ws = ws;
            loop {
                match read(&mut ws, socket, &fanout, &mut counted).await {
                    Ended::Closed(code) => fanout.closed(code),
                    Ended::Lost => return fanout.lose(socket),
                }
                ws = match connect(&url).await {
                    Ok(ws) => ws,
                    Err(_) => return fanout.lose(socket),
                };
            }
        }));
    }
    Ok(readers)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and subscribes as a staff dashboard of the whole tenant.
async fn connect(url: &str) -> anyhow::Result<Socket> {
    let sub = r#"{"type":"subscribe","id":"dash","channels":["alerts","patients"]}"#;
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(socket_config()), false).await?;
    ws.send(Message::text(sub)).await?;
    Ok(ws)
}

/// A dashboard socket's settings: tungstenite zero-fills its whole read buffer before every
/// read (`FrameCodec::read_in`), 128 KiB by default: on 1,000 sockets that memset was a
/// quarter of the load tester's CPU (`perf record -p`), which the gateway then had to share
/// the machine with. Frames larger than the buffer still arrive whole (the codec reserves a
/// frame's length once its header is read), but a read takes at most the buffer's size.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// A dashboard socket's read buffer: fifty patient frames, or a sentinel's two alerts
/// (`sepsis.model` 8.5 KB and `news2.high` 1.9 KB) in one read. 4 KiB took three reads for a
/// sepsis alert: two alternating pairs of `DASHBOARDS=1000 scripts/bench live` gave a
/// last-socket p99 of 313 and 343 ms with 4 KiB against 193 and 235 ms with 16 KiB; 32 KiB
/// was no better than 16 (120 and 209 ms against 174 and 190 ms).
const READ_BUFFER: usize = 16 * 1024;

/// Reads one connection until it ends, counting each sentinel alert the first time the
/// socket has it (an opening `alert` frame, or the `snapshot` after a reconnect).
async fn read(
    ws: &mut Socket,
    socket: usize,
    fanout: &Fanout,
    counted: &mut HashSet<String>,
) -> Ended {
    while let Some(Ok(m)) = ws.next().await {
        let t = match m {
            Message::Text(t) => t,
            Message::Close(frame) => {
                return frame.map_or(Ended::Lost, |f| Ended::Closed(f.code));
            }
            _ => continue,
        };
        fanout.frames.fetch_add(1, Relaxed);
        take(t.as_str(), socket, fanout, counted, Instant::now());
    }
    Ended::Lost
}

/// Counts the sentinel alerts of one frame that socket `socket` received at `at`.
fn take(text: &str, socket: usize, fanout: &Fanout, counted: &mut HashSet<String>, at: Instant) {
    let patients = match opened_alert_patient(text) {
        Some(p) => vec![p],
        None => snapshot_patients(text),
    };
    for patient in patients {
        // An alert of the sentinel's first reading can overtake that publish's
        // acknowledgement: it is not the timed one, and must not stop the socket from counting
        // the alert of the trigger.
        if patient.starts_with("lt-trig-")
            && !counted.contains(&patient)
            && fanout.seen(socket, &patient, at)
        {
            counted.insert(patient);
        }
    }
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
        let escaped = r#"{"type":"alert","alert":{"alertId":"a","version":1,"patientId":"lt-trig-\u0031","why":{"x":[1]}}}"#;
        assert_eq!(opened_alert_patient(escaped).as_deref(), Some("lt-trig-1"));
        let broken = r#"{"type":"alert","alert":{"version":1}}"#;
        assert_eq!(opened_alert_patient(broken), None);
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

    #[test]
    fn an_alert_ahead_of_its_trigger_does_not_hide_the_trigger_s_alert() {
        let f = Fanout::new(1);
        let mut counted = HashSet::new();
        let t0 = Instant::now();
        let opened = r#"{"type":"alert","alert":{"version":1,"patientId":"lt-trig-1"}}"#;
        // The first reading's alert, before the trigger was published: not counted.
        take(opened, 0, &f, &mut counted, t0);
        assert!(counted.is_empty());
        f.sent("lt-trig-1", t0);
        take(opened, 0, &f, &mut counted, t0 + Duration::from_millis(3));
        let r = f.report();
        assert_eq!((r.alerts_to_every_socket, r.fewest_on_one_socket), (1, 1));
        // A later snapshot naming it again counts nothing more.
        let snapshot = r#"{"type":"snapshot","alerts":[{"patientId":"lt-trig-1"}]}"#;
        take(snapshot, 0, &f, &mut counted, t0);
        assert_eq!(f.report().fewest_on_one_socket, 1);
    }

    #[test]
    fn a_reconnect_s_snapshot_names_the_sentinel_alerts_it_holds() {
        let snapshot = r#"{"type":"snapshot","alerts":[{"patientId":"lt-trig-1","version":3},{"patientId":"lt-7"},{"patientId":"lt-trig-2"}]}"#;
        assert_eq!(snapshot_patients(snapshot), ["lt-trig-1", "lt-trig-2"]);
        assert!(snapshot_patients(r#"{"type":"snapshot","alerts":[]}"#).is_empty());
        let opened = r#"{"type":"alert","alert":{"version":1,"patientId":"lt-trig-1"}}"#;
        assert!(snapshot_patients(opened).is_empty());
        assert!(snapshot_patients(r#"{"type":"snapshot","alerts":"#).is_empty());
    }

    #[test]
    fn the_report_waits_for_connected_sockets_only() {
        let f = Fanout::new(2);
        let t0 = Instant::now();
        assert!(!f.waiting(), "nothing sent");
        f.sent("lt-trig-1", t0);
        f.seen(0, "lt-trig-1", t0);
        assert!(f.waiting(), "socket 1 is connected and lacks it");
        f.closed(CloseCode::Again);
        assert!(f.waiting(), "a 1013 reconnects: still waited for");
        f.lose(1);
        assert!(!f.waiting(), "a lost socket will not get it");
        let r = f.report();
        assert_eq!(r.sockets_lost, 1);
        assert_eq!(r.closed_by_gateway.get(&1013), Some(&1));
        assert_eq!(r.fewest_on_one_socket, 0, "the lost socket missed it");
    }
}
